"""The agent DaemonSet (`flowlake agent` on every node, host network) and its command-line arguments.

Called by render.render_all. The arguments are the flags of `flowlake.agent.cli` (a test parses them with
its real parser); Kubernetes expands `$(HOST_IP)` from the pod's environment (Direct model target).
"""

from __future__ import annotations

import json

from flowlake.operator.render import kafka
from flowlake.operator.render.common import AGENT, PROCESSOR, Obj, meta, seconds, selector

CAPABILITIES = ["BPF", "PERFMON", "NET_ADMIN", "SYS_RESOURCE"]
# bpffs for pinned maps, tracefs for the drop tracepoint's format, kernel headers for bcc's compiler,
# and BTF for the struct offsets of the running kernel (design.md, Packaging).
HOST_PATHS = [("bpffs", "/sys/fs/bpf", False, "DirectoryOrCreate"),
              ("tracefs", "/sys/kernel/tracing", True, "Directory"), ("modules", "/lib/modules", True, "Directory"),
              ("usr-src", "/usr/src", True, "Directory"),
              ("btf", "/sys/kernel/btf", True, "Directory")]
_RULE_KEYS = {"cidr": "ip_cidr", "action": "action", "direction": "direction", "protocol": "protocol",
              "sourcePorts": "source_port", "destPorts": "destination_port", "ports": "port",
              "icmpType": "icmp_type", "icmpCode": "icmp_code", "peerCIDR": "peer_cidr", "tcpFlags": "tcp_flags",
              "sampling": "sample"}


def filter_rules(spec: Obj) -> str:
    """flowFilter rules as the agent's --filter-rules JSON (snake_case keys); '' when filtering is off."""
    ff = spec["agent"]["flowFilter"]
    if not ff["enable"]:
        return ""
    rules = [{_RULE_KEYS[k]: v for k, v in r.items() if k in _RULE_KEYS and not (k == "sampling" and v == 0)}
             for r in ff["rules"]]
    return json.dumps(rules, separators=(",", ":"))


def target(spec: Obj) -> str:
    port = spec["processor"]["port"]
    model = spec["deploymentModel"]
    if model == "Direct":
        return f"grpc://$(HOST_IP):{port}"
    if model == "Kafka":
        return kafka.url(spec["kafka"], kafka.files(spec["kafka"], "kafka"))
    return f"grpc://{PROCESSOR}.{spec['namespace']}.svc:{port}"


def args(spec: Obj) -> list[str]:
    """`flowlake agent` flags for this spec (after the `agent` subcommand)."""
    a = spec["agent"]
    out = ["--target", target(spec), "--interfaces", ",".join(a["interfaces"]),
           "--exclude-interfaces", ",".join(a["excludeInterfaces"]),
           "--cache-active-timeout", f"{seconds(a['cacheActiveTimeout']):g}",
           "--cache-max-flows", str(a["cacheMaxFlows"]), "--sampling", str(a["sampling"]),
           "--features", ",".join(a["features"]), "--dns-port", str(a["dnsTrackingPort"]),
           "--metrics-address", f"0.0.0.0:{a['metricsPort']}"]
    rules = filter_rules(spec)
    if rules:
        out += ["--filter-rules", rules]
    return out


def _security(privileged: bool) -> Obj:
    if privileged:
        return {"privileged": True, "runAsUser": 0}
    return {"runAsUser": 0, "privileged": False, "capabilities": {"add": list(CAPABILITIES), "drop": ["ALL"]}}


def daemonset(collector: Obj, spec: Obj) -> Obj:
    a = spec["agent"]
    volumes = [{"name": n, "hostPath": {"path": p, "type": t}} for n, p, _, t in HOST_PATHS]
    # readOnly only when true: the API server stores a false one as absent (server-side apply stays a no-op)
    mounts = [{"name": n, "mountPath": p, **({"readOnly": True} if ro else {})} for n, p, ro, _ in HOST_PATHS]
    if spec["deploymentModel"] == "Kafka":
        files = kafka.files(spec["kafka"], "kafka")
        volumes += files.volumes
        mounts += files.mounts
    env = [{"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
           {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]
    container = {
        "name": "agent", "image": spec["image"], "imagePullPolicy": spec["imagePullPolicy"],
        "command": ["flowlake", "agent"], "args": args(spec), "env": env,
        "ports": [{"name": "metrics", "containerPort": a["metricsPort"], "protocol": "TCP"}],
        "resources": a["resources"], "securityContext": _security(a["privileged"]), "volumeMounts": mounts,
    }
    pod: Obj = {"serviceAccountName": AGENT, "automountServiceAccountToken": False, "hostNetwork": True,
                "dnsPolicy": "ClusterFirstWithHostNet", "tolerations": [{"operator": "Exists"}],
                "terminationGracePeriodSeconds": 30,
                "containers": [container], "volumes": volumes}
    if a.get("nodeSelector"):
        pod["nodeSelector"] = dict(a["nodeSelector"])
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": meta(collector, AGENT, AGENT, spec["namespace"]),
            "spec": {"selector": {"matchLabels": selector(AGENT)},
                     "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}},
                     "template": {"metadata": {"labels": meta(collector, AGENT, AGENT, None)["labels"]},
                                  "spec": pod}}}
