"""The flowlake Kopf operator: FlowCollector and FlowMetric resources -> a deployed pipeline."""
