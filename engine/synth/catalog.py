"""What the synthetic cluster runs: workloads, external services and the traffic edges between them.

Pure data, read by `cluster.make_cluster`. Edit this file to change what `flowlake synth` simulates;
the generator itself knows nothing about shops or payments.
"""

from __future__ import annotations

from typing import NamedTuple

TCP, UDP, ICMP = 6, 17, 1
# Edge ports resolved per chosen server pod (kubelet probes and Prometheus scrapes hit each pod's own port).
PROBE_PORT, METRICS_PORT = -1, -2
# Special group names (workload groups are "namespace/name", external groups "ext:...").
NODES, APISERVER, PODS, INTERNET, UPSTREAM_DNS, NODE_OF_SERVER = (
    "@nodes", "@apiserver", "@pods", "@internet", "@upstream-dns", "@node-of-server")
UPSTREAM_DNS_IP = "10.0.0.2"  # the VPC resolver: inside the VPC, yet no Kubernetes identity
INFRA_NAMESPACES = ("default", "ingress-nginx", "kube-system", "monitoring")


class WorkloadSpec(NamedTuple):
    namespace: str
    name: str
    kind: str  # Deployment, StatefulSet or DaemonSet (DaemonSets run one pod per node)
    replicas: int
    port: int
    metrics_port: int
    service: str = ""  # name of the Service in front of it ("" = none)
    host_network: bool = False  # host-network pods use the node IP, so flows show the Node
    probe_port: int = 0  # 0 = same as port


WORKLOADS: tuple[WorkloadSpec, ...] = (
    WorkloadSpec("kube-system", "coredns", "Deployment", 2, 53, 9153, "kube-dns", probe_port=8080),
    WorkloadSpec("kube-system", "kube-proxy", "DaemonSet", 0, 10256, 10249, host_network=True),
    WorkloadSpec("kube-system", "metrics-server", "Deployment", 1, 10250, 10250, "metrics-server"),
    WorkloadSpec("ingress-nginx", "ingress-nginx-controller", "Deployment", 2, 443, 10254,
                 "ingress-nginx-controller"),
    WorkloadSpec("monitoring", "prometheus-k8s", "StatefulSet", 2, 9090, 9090, "prometheus-k8s"),
    WorkloadSpec("monitoring", "node-exporter", "DaemonSet", 0, 9100, 9100, host_network=True),
    WorkloadSpec("monitoring", "kube-state-metrics", "Deployment", 1, 8443, 8443, "kube-state-metrics"),
    WorkloadSpec("monitoring", "blackbox-exporter", "Deployment", 1, 9115, 9115, "blackbox-exporter"),
    WorkloadSpec("shop", "frontend", "Deployment", 3, 8080, 8080, "frontend"),
    WorkloadSpec("shop", "cart", "Deployment", 2, 8080, 8080, "cart"),
    WorkloadSpec("shop", "catalog", "Deployment", 2, 8080, 8080, "catalog"),
    WorkloadSpec("shop", "checkout", "Deployment", 2, 8080, 8080, "checkout"),
    WorkloadSpec("shop", "redis", "StatefulSet", 1, 6379, 9121, "redis"),
    WorkloadSpec("payments", "payments-api", "Deployment", 2, 8443, 8443, "payments-api"),
    WorkloadSpec("payments", "postgres", "StatefulSet", 2, 5432, 9187, "postgres"),
    WorkloadSpec("auth", "auth-api", "Deployment", 2, 8080, 8080, "auth-api"),
    WorkloadSpec("auth", "auth-db", "StatefulSet", 1, 5432, 9187, "auth-db"),
    WorkloadSpec("analytics", "kafka", "StatefulSet", 3, 9092, 9308, "kafka"),
    WorkloadSpec("analytics", "ingest", "Deployment", 2, 8080, 8080, "ingest"),
    WorkloadSpec("analytics", "etl", "Deployment", 1, 8080, 8080, "etl"),
    WorkloadSpec("search", "search-api", "Deployment", 2, 8080, 8080, "search-api"),
    WorkloadSpec("search", "elasticsearch", "StatefulSet", 3, 9200, 9114, "elasticsearch"),
)


class ExternalSpec(NamedTuple):
    group: str
    hostname: str  # `{region}` is replaced by the cluster's region
    prefix: str  # first two octets of its public addresses
    addresses: int  # how many IPs it resolves to


EXTERNALS: tuple[ExternalSpec, ...] = (
    ExternalSpec("ext:stripe", "api.stripe.com.", "52.28.", 3),
    ExternalSpec("ext:s3", "s3.{region}.amazonaws.com.", "52.218.", 4),
    ExternalSpec("ext:registry", "quay.io.", "34.224.", 2),
    ExternalSpec("ext:registry", "registry-1.docker.io.", "34.226.", 2),
    ExternalSpec("ext:cdn", "cdn.jsdelivr.net.", "151.101.", 4),
    ExternalSpec("ext:github", "api.github.com.", "140.82.", 2),
    ExternalSpec("ext:sentry", "o4504.ingest.sentry.io.", "34.120.", 1),
)
# Internet clients reaching the ingress controller: residential and hosting ranges.
INTERNET_PREFIXES = ("24.", "73.", "81.", "86.", "92.", "176.", "185.", "203.")
INTERNET_CLIENTS = 256


class EdgeSpec(NamedTuple):
    client: str
    server: str
    proto: int
    port: int  # 0 = the server workload's port; PROBE_PORT / METRICS_PORT = per server pod
    profile: str  # key of PROFILES
    share: float = 0.0  # fixed share of all conversations; 0 = an app edge, weighted Zipf-like by rank
    service_share: float = 0.3  # share of conversations addressed to the server's Service IP


# Byte-size profiles: (request median, request sigma, response median, response sigma) of a lognormal.
PROFILES: dict[str, tuple[float, float, float, float]] = {
    "http": (900, 1.2, 5_000, 1.8), "ingress": (1_500, 1.3, 20_000, 2.0), "redis": (150, 1.0, 600, 1.6),
    "sql": (400, 1.3, 3_000, 2.2), "kafka": (20_000, 1.8, 800, 1.2), "search": (1_200, 1.3, 15_000, 2.0),
    "bulk": (150_000, 1.8, 2_500, 1.0), "scrape": (250, 0.3, 30_000, 1.0), "probe": (150, 0.2, 200, 0.3),
    "api": (1_200, 1.2, 6_000, 2.0), "pull": (2_000, 0.8, 300_000, 2.0),
    "dns": (80, 0.2, 160, 0.4), "icmp": (98, 0.0, 98, 0.0),
}

_APP = (
    ("ingress-nginx/ingress-nginx-controller", "shop/frontend", "http"),
    ("ingress-nginx/ingress-nginx-controller", "auth/auth-api", "http"),
    ("ingress-nginx/ingress-nginx-controller", "search/search-api", "http"),
    ("shop/frontend", "shop/catalog", "http"), ("shop/frontend", "shop/cart", "http"),
    ("shop/frontend", "shop/checkout", "http"), ("shop/frontend", "auth/auth-api", "http"),
    ("shop/frontend", "search/search-api", "http"), ("shop/cart", "shop/redis", "redis"),
    ("shop/catalog", "shop/redis", "redis"), ("shop/catalog", "search/elasticsearch", "search"),
    ("shop/checkout", "payments/payments-api", "http"), ("shop/checkout", "analytics/kafka", "kafka"),
    ("payments/payments-api", "payments/postgres", "sql"),
    ("payments/payments-api", "analytics/kafka", "kafka"),
    ("payments/postgres", "payments/postgres", "sql"), ("auth/auth-api", "auth/auth-db", "sql"),
    ("search/search-api", "search/elasticsearch", "search"),
    ("search/elasticsearch", "search/elasticsearch", "search"),
    ("analytics/kafka", "analytics/kafka", "kafka"), ("analytics/ingest", "analytics/kafka", "kafka"),
    ("analytics/etl", "analytics/kafka", "kafka"),
)
_APP_EGRESS = (
    ("analytics/etl", "ext:s3", "bulk"), ("payments/payments-api", "ext:stripe", "http"),
    ("shop/frontend", "ext:cdn", "http"), ("auth/auth-api", "ext:github", "http"),
    ("shop/checkout", "ext:sentry", "http"),
)
_API_CLIENTS = ("kube-system/coredns", "kube-system/metrics-server", "ingress-nginx/ingress-nginx-controller",
                "monitoring/prometheus-k8s", "monitoring/kube-state-metrics")
DNS_SHARE = 0.18  # all pods -> CoreDNS, split by replica count in `cluster`

_PEER_PORTS = {"search/elasticsearch": 9300}  # cluster-internal transport port of self-edges

EDGES: tuple[EdgeSpec, ...] = (
    *(EdgeSpec(c, s, TCP, _PEER_PORTS.get(c, 0) if c == s else 0, p) for c, s, p in _APP),
    *(EdgeSpec(c, s, TCP, 443, p, service_share=0.0) for c, s, p in _APP_EGRESS),
    EdgeSpec(INTERNET, "ingress-nginx/ingress-nginx-controller", TCP, 443, "ingress", 0.08, 0.0),
    EdgeSpec("kube-system/coredns", UPSTREAM_DNS, UDP, 53, "dns", 0.02, 0.0),
    EdgeSpec("monitoring/prometheus-k8s", PODS, TCP, METRICS_PORT, "scrape", 0.04, 0.0),
    EdgeSpec("monitoring/prometheus-k8s", "monitoring/node-exporter", TCP, 9100, "scrape", 0.01, 0.0),
    EdgeSpec("monitoring/prometheus-k8s", NODES, TCP, 10250, "scrape", 0.01, 0.0),
    EdgeSpec("kube-system/metrics-server", NODES, TCP, 10250, "scrape", 0.005, 0.0),
    EdgeSpec(NODE_OF_SERVER, PODS, TCP, PROBE_PORT, "probe", 0.03, 0.0),
    EdgeSpec(NODES, APISERVER, TCP, 6443, "api", 0.02, 0.0),
    *(EdgeSpec(c, APISERVER, TCP, 6443, "api", 0.004, 0.6) for c in _API_CLIENTS),
    EdgeSpec(NODES, "ext:registry", TCP, 443, "pull", 0.004, 0.0),
    EdgeSpec(NODES, NODES, ICMP, 0, "icmp", 0.004, 0.0),
    EdgeSpec("monitoring/blackbox-exporter", "ext:cdn", ICMP, 0, "icmp", 0.002, 0.0),
    EdgeSpec("monitoring/blackbox-exporter", "ext:github", ICMP, 0, "icmp", 0.001, 0.0),
)
