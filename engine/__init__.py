"""flowlake processor engine."""
