"""Rendered objects, for every spec of specs.SPECS: valid Kubernetes objects (kubernetes-validate --strict against
the v1.37 JSON schemas, the newest it ships, matching the test API server), a processor config the engine's
pydantic model loads, agent and API arguments their real argparse parsers accept, and exact expectations."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from flowlake.agent import cli as agent_cli
from flowlake.agent import filters as agent_filters
from flowlake.agent.run import FEATURES as AGENT_FEATURES
from flowlake.api import cli as api_cli
from flowlake.engine import config as engine_config
from flowlake.engine.metadata.kube import RBAC_RULES
from flowlake.engine.transport import kafka_options
from flowlake.operator.render import render_all, spec_of
from flowlake.operator.render.agent import CAPABILITIES
from flowlake.operator.render.common import CONFIG_HASH, digest
from flowlake.operator.render.config import processor_config
from tests.operator.specs import SPECS, collector

K8S_VERSION = "1.37"
IDS = list(SPECS)
DNS_ERRORS = {"metricName": "dns_errors_total", "type": "Counter", "labels": ["SrcK8S_Namespace"],
              "filters": [{"field": "DnsFlagsResponseCode", "value": "NoError", "matchType": "NotEqual"}]}


def objects(spec: dict[str, Any], **kw: Any) -> list[dict[str, Any]]:
    return render_all(collector(spec), **kw)


def find(objs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    hits = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(hits) == 1, f"{kind}/{name}: {len(hits)} found in {[(o['kind'], o['metadata']['name']) for o in objs]}"
    return hits[0]


def container(obj: dict[str, Any]) -> dict[str, Any]:
    return dict(obj["spec"]["template"]["spec"]["containers"][0])


def parse_subcommand(module: Any, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    module.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


@pytest.mark.parametrize("spec_id", IDS)
def test_every_object_validates_strict(spec_id: str) -> None:
    objs = objects(SPECS[spec_id], metric_definitions=[DNS_ERRORS], service_monitor=True)
    checked = 0
    for obj in objs:
        if obj["kind"] == "ServiceMonitor":  # a CRD kind: no schema in kubernetes-validate; checked end to end
            continue
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        checked += 1
    assert checked == len(objs) - 2


def _load_config(cfg_text: str, tmp_path: Path) -> engine_config.ProcessorConfig:
    """Load as the processor does, with the Secret files it names present (under tmp_path, as if mounted)."""
    text = cfg_text.replace("/etc/flowlake/", f"{tmp_path}/")
    for line in text.splitlines():
        for token in line.replace("&", " ").replace("=", " ").replace("?", " ").split():
            if token.startswith(str(tmp_path)):
                Path(token).parent.mkdir(parents=True, exist_ok=True)
                Path(token).write_text("secret\n")
    path = tmp_path / "processor.yaml"
    path.write_text(text)
    return engine_config.load(path)


def _assert_subset(rendered: Any, loaded: Any, where: str = "") -> None:
    if isinstance(rendered, dict):
        for k, v in rendered.items():
            _assert_subset(v, loaded[k], f"{where}.{k}")
    elif isinstance(rendered, list):
        assert len(rendered) == len(loaded), where
        for i, (r, lo) in enumerate(zip(rendered, loaded, strict=True)):
            _assert_subset(r, lo, f"{where}[{i}]")
    else:
        assert rendered == loaded, f"{where}: rendered {rendered!r}, loaded {loaded!r}"


@pytest.mark.parametrize("spec_id", IDS)
def test_processor_config_loads_with_the_engine_model(spec_id: str, tmp_path: Path) -> None:
    objs = objects(SPECS[spec_id], metric_definitions=[DNS_ERRORS])
    text = find(objs, "ConfigMap", "flowlake-processor-config")["data"]["processor.yaml"]
    loaded = _load_config(text, tmp_path)
    rendered = yaml.safe_load(text.replace("/etc/flowlake/", f"{tmp_path}/"))
    _assert_subset(rendered, loaded.model_dump())  # every rendered value survives validation unchanged
    assert [d.metricName for d in loaded.metrics.definitions] == ["dns_errors_total"]


@pytest.mark.parametrize("spec_id", IDS)
def test_agent_arguments_parse_with_the_agent_cli(spec_id: str) -> None:
    spec = spec_of(collector(SPECS[spec_id]))
    objs = objects(SPECS[spec_id])
    if spec["execution"]["mode"] == "OnHold":
        assert not [o for o in objs if o["kind"] == "DaemonSet" and o["metadata"]["name"] == "flowlake-agent"]
        return
    c = container(find(objs, "DaemonSet", "flowlake-agent"))
    assert c["command"] == ["flowlake", "agent"]
    ns = parse_subcommand(agent_cli, ["agent", *c["args"]])
    a = spec["agent"]
    assert ns.sampling == a["sampling"] and ns.cache_max_flows == a["cacheMaxFlows"]
    assert ns.interfaces.split(",") == (a["interfaces"] or [""])
    assert ns.exclude_interfaces.split(",") == a["excludeInterfaces"]
    features = [f for f in ns.features.split(",") if f]
    assert features == a["features"] and set(features) <= set(AGENT_FEATURES)
    rules = a["flowFilter"]["rules"] if a["flowFilter"]["enable"] else []
    assert len(agent_filters.parse(ns.filter_rules)) == len(rules) if rules else ns.filter_rules == ""
    model = spec["deploymentModel"]
    if model == "Kafka":
        settings, _ = kafka_options.parse_url(ns.target)
        assert settings.brokers == ",".join(spec["kafka"]["brokers"]) and settings.topic == spec["kafka"]["topic"]
    elif model == "Direct":
        assert ns.target == "grpc://$(HOST_IP):2055"
        assert {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}} in c["env"]
    else:
        assert ns.target == f"grpc://flowlake-processor.{spec['namespace']}.svc:2055"


def test_agent_flags_exact_for_the_filter_spec() -> None:
    c = container(find(objects(SPECS["service-features-filters"]), "DaemonSet", "flowlake-agent"))
    args = c["args"]
    assert args[:18] == ["--target", "grpc://flowlake-processor.netflows.svc:2055", "--interfaces", "eth0,/^ens/",
                         "--exclude-interfaces", "lo,docker0", "--cache-active-timeout", "2.5", "--cache-max-flows",
                         "50000", "--sampling", "1", "--features", "PacketDrop,DNSTracking,FlowRTT", "--dns-port",
                         "53", "--metrics-address", "0.0.0.0:9400"]
    assert json.loads(args[19]) == [
        {"ip_cidr": "10.128.0.0/14", "action": "Accept", "protocol": "TCP", "destination_port": "443"},
        {"ip_cidr": "10.0.0.0/8", "action": "Reject", "port": "8000-8100", "peer_cidr": "10.1.0.0/16"},
        {"ip_cidr": "0.0.0.0/0", "action": "Accept", "protocol": "ICMP", "icmp_type": 8, "sample": 100}]


@pytest.mark.parametrize("spec_id", IDS)
def test_api_arguments_parse_with_the_api_cli(spec_id: str) -> None:
    spec = spec_of(collector(SPECS[spec_id]))
    objs = objects(SPECS[spec_id])
    api = [o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == "flowlake-api"]
    if not spec["api"]["enable"] or spec["execution"]["mode"] == "OnHold":
        assert api == []
        return
    args = container(api[0])["args"]
    if "--tokens" in args and "--tokens" not in api_cli.add_parser(argparse.ArgumentParser().add_subparsers()) \
            .format_help():
        pytest.xfail("`flowlake api` has no --tokens option yet (authentication arrives with issue 6)")
    ns = parse_subcommand(api_cli, ["api", *args])
    assert (ns.lake, ns.host, ns.port) == (spec["lake"]["url"], "0.0.0.0", spec["api"]["port"])


def test_default_spec_renders_exactly_these_objects() -> None:
    got = [(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in objects({})]
    assert got == [
        ("Namespace", "", "flowlake"), ("ServiceAccount", "flowlake", "flowlake-agent"),
        ("ServiceAccount", "flowlake", "flowlake-processor"), ("ServiceAccount", "flowlake", "flowlake-api"),
        ("ClusterRole", "", "flowlake-processor-flowlake"), ("ClusterRoleBinding", "", "flowlake-processor-flowlake"),
        ("ConfigMap", "flowlake", "flowlake-processor-config"), ("Service", "flowlake", "flowlake-processor"),
        ("Service", "flowlake", "flowlake-agent-metrics"), ("Service", "flowlake", "flowlake-api"),
        ("DaemonSet", "flowlake", "flowlake-agent"), ("Deployment", "flowlake", "flowlake-processor"),
        ("Deployment", "flowlake", "flowlake-api")]


def test_every_object_is_owned_and_labelled() -> None:
    for spec_id in IDS:
        for obj in objects(SPECS[spec_id], service_monitor=True):
            assert obj["metadata"]["ownerReferences"] == [{
                "apiVersion": "flows.flowlake.io/v1alpha1", "kind": "FlowCollector", "name": "cluster",
                "uid": "0b6c3c2e-6a1e-4d53-9d7e-5a4f1f2c0001", "controller": True, "blockOwnerDeletion": True}]
            labels = obj["metadata"]["labels"]
            assert labels["app.kubernetes.io/managed-by"] == "flowlake-operator"
            assert labels["flows.flowlake.io/collector"] == "cluster"


def test_agent_daemonset_capabilities_and_host_mounts() -> None:
    ds = find(objects({}), "DaemonSet", "flowlake-agent")
    pod = ds["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True and pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert pod["automountServiceAccountToken"] is False
    sc = pod["containers"][0]["securityContext"]
    assert sc == {"runAsUser": 0, "privileged": False,
                  "capabilities": {"add": ["BPF", "PERFMON", "NET_ADMIN", "SYS_RESOURCE"], "drop": ["ALL"]}}
    assert CAPABILITIES == ["BPF", "PERFMON", "NET_ADMIN", "SYS_RESOURCE"]
    assert {v["hostPath"]["path"] for v in pod["volumes"]} == {
        "/sys/fs/bpf", "/sys/kernel/tracing", "/lib/modules", "/usr/src", "/sys/kernel/btf"}
    mounts = {m["mountPath"]: m.get("readOnly", False) for m in pod["containers"][0]["volumeMounts"]}
    assert mounts == {"/sys/fs/bpf": False, "/sys/kernel/tracing": True, "/lib/modules": True, "/usr/src": True,
                      "/sys/kernel/btf": True}
    privileged = find(objects(SPECS["direct-conntrack-loki"]), "DaemonSet", "flowlake-agent")
    assert container(privileged)["securityContext"] == {"privileged": True, "runAsUser": 0}
    assert privileged["spec"]["template"]["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux"}


def test_processor_workload_per_model() -> None:
    svc = find(objects({}), "Deployment", "flowlake-processor")
    assert svc["spec"]["replicas"] == 3
    assert [p["containerPort"] for p in container(svc)["ports"]] == [2055, 9102]
    direct = objects(SPECS["direct-conntrack-loki"])
    ds = find(direct, "DaemonSet", "flowlake-processor")
    assert ds["spec"]["template"]["spec"]["hostNetwork"] is True
    assert not [o for o in direct if o["kind"] == "Deployment" and o["metadata"]["name"] == "flowlake-processor"]
    assert [p["name"] for p in find(direct, "Service", "flowlake-processor")["spec"]["ports"]] == ["metrics"]
    kafka = objects(SPECS["kafka-tls-sasl-hpa-exporter"])
    dep = find(kafka, "Deployment", "flowlake-processor")
    assert "replicas" not in dep["spec"]  # the HPA owns it
    hpa = find(kafka, "HorizontalPodAutoscaler", "flowlake-processor")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 8)
    assert hpa["spec"]["metrics"][0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 60}
    assert [p["containerPort"] for p in container(dep)["ports"]] == [9102]
    no_hpa = objects(SPECS["kafka-plain-no-api"])
    assert find(no_hpa, "Deployment", "flowlake-processor")["spec"]["replicas"] == 3
    assert not [o for o in no_hpa if o["kind"] == "HorizontalPodAutoscaler"]


def test_kafka_secrets_are_mounted_where_the_config_points() -> None:
    objs = objects(SPECS["kafka-tls-sasl-hpa-exporter"])
    cfg = yaml.safe_load(find(objs, "ConfigMap", "flowlake-processor-config")["data"]["processor.yaml"])
    assert cfg["ingest"] == (
        "kafka://kafka-0.kafka:9093,kafka-1.kafka:9093/flows?compression=lz4&tls=true"
        "&tls_ca_cert_path=/etc/flowlake/kafka-ca/ca.crt&tls_user_cert_path=/etc/flowlake/kafka-user/tls.crt"
        "&tls_user_key_path=/etc/flowlake/kafka-user/tls.key&sasl=plain"
        "&sasl_client_id_path=/etc/flowlake/kafka-sasl/username"
        "&sasl_client_secret_path=/etc/flowlake/kafka-sasl/password&group=flowlake-processor")
    assert cfg["sinks"] == ["lake", "metrics", "kafka", "ipfix"]
    assert cfg["kafka_export"]["sasl"] == {"type": "Plain",
                                           "client_id_path": "/etc/flowlake/export-kafka-sasl/username",
                                           "client_secret_path": "/etc/flowlake/export-kafka-sasl/password"}
    proc = container(find(objs, "Deployment", "flowlake-processor"))
    assert {m["mountPath"] for m in proc["volumeMounts"]} == {
        "/etc/flowlake/config", "/data", "/tmp", "/etc/flowlake/kafka-ca", "/etc/flowlake/kafka-user",
        "/etc/flowlake/kafka-sasl",
        "/etc/flowlake/export-kafka-ca", "/etc/flowlake/export-kafka-user", "/etc/flowlake/export-kafka-sasl"}
    assert proc["envFrom"] == [{"secretRef": {"name": "lake-s3"}}]
    agent = container(find(objs, "DaemonSet", "flowlake-agent"))
    assert {"/etc/flowlake/kafka-ca", "/etc/flowlake/kafka-sasl"} <= {m["mountPath"] for m in agent["volumeMounts"]}
    api = find(objs, "Deployment", "flowlake-api")
    assert container(api)["args"][-2:] == ["--tokens", "/etc/flowlake/auth/t.yaml"]
    assert container(api)["envFrom"] == [{"secretRef": {"name": "lake-s3"}}]
    assert api["spec"]["template"]["spec"]["volumes"][2] == {
        "name": "tokens", "secret": {"secretName": "tokens", "items": [{"key": "t.yaml", "path": "t.yaml"}]}}


def test_config_hash_rolls_only_the_processor_on_config_change() -> None:
    base = objects({})
    changed = objects({"processor": {"clusterName": "west"}})
    sampling = objects({"agent": {"sampling": 7}})

    def hash_of(objs: list[dict[str, Any]]) -> str:
        return str(find(objs, "Deployment", "flowlake-processor")["spec"]["template"]["metadata"]["annotations"]
                   [CONFIG_HASH])

    assert hash_of(base) == digest(processor_config(spec_of(collector({})), []))
    assert hash_of(changed) != hash_of(base)
    assert hash_of(sampling) == hash_of(base)  # the agent's flags are in its own template: it rolls by itself
    assert container(find(sampling, "DaemonSet", "flowlake-agent"))["args"][11] == "7"


def test_onhold_keeps_configuration_and_drops_workloads() -> None:
    kinds = {o["kind"] for o in objects(SPECS["onhold"])}
    assert kinds == {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "Service"}


def test_rbac_is_exactly_the_informer_rules() -> None:
    objs = objects({"namespace": "netobs"})
    assert find(objs, "ClusterRole", "flowlake-processor-netobs")["rules"] == [dict(r) for r in RBAC_RULES]
    binding = find(objs, "ClusterRoleBinding", "flowlake-processor-netobs")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "flowlake-processor", "namespace": "netobs"}]
    assert not [o for o in objs if o["kind"] in ("Role", "RoleBinding")]


def test_network_policy_and_service_monitors() -> None:
    objs = objects(SPECS["kafka-tls-sasl-hpa-exporter"], service_monitor=True)
    np_ = find(objs, "NetworkPolicy", "flowlake")
    assert np_["spec"]["ingress"] == [{"from": [
        {"podSelector": {}}, {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "openshift-console"}}}]}]
    service_np = find(objects({"networkPolicy": {"enable": True}}), "NetworkPolicy", "flowlake")
    assert service_np["spec"]["ingress"][1] == {"ports": [{"port": 2055, "protocol": "TCP"}]}
    assert sorted(o["metadata"]["name"] for o in objs if o["kind"] == "ServiceMonitor") == [
        "flowlake-agent", "flowlake-processor"]
    assert not [o for o in objects({}) if o["kind"] in ("ServiceMonitor", "NetworkPolicy")]


def test_kubernetes_auth_binds_admins_and_tenants() -> None:
    objs = objects({"api": {"auth": {"type": "Kubernetes", "adminGroups": ["netops"]}, "tenants": [
        {"name": "shop", "namespaces": ["shop", "payments"], "users": ["alice"], "groups": ["shop-devs"]}]}})
    api = find(objs, "Deployment", "flowlake-api")
    assert container(api)["args"][-1] == "--kube-auth"
    assert api["spec"]["template"]["spec"]["automountServiceAccountToken"] is True
    assert parse_subcommand(api_cli, ["api", *container(api)["args"]]).kube_auth is True
    assert find(objs, "ClusterRole", "flowlake-api-flowlake")["rules"] == [
        {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
        {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list"]}]
    assert find(objs, "ClusterRole", "flowlake-flows-reader-flowlake")["rules"] == [
        {"apiGroups": ["flows.flowlake.io"], "resources": ["flows"], "verbs": ["get"]}]
    admins = find(objs, "ClusterRoleBinding", "flowlake-flows-reader-flowlake-admins")
    assert admins["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "netops"}]
    bindings = [(o["metadata"]["namespace"], o["metadata"]["name"], o["roleRef"]["name"], o["subjects"])
                for o in objs if o["kind"] == "RoleBinding"]
    subjects = [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"},
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "shop-devs"}]
    assert bindings == [("shop", "flowlake-tenant-shop", "flowlake-flows-reader-flowlake", subjects),
                        ("payments", "flowlake-tenant-shop", "flowlake-flows-reader-flowlake", subjects)]
    assert not [o for o in objects({}) if o["kind"] == "RoleBinding" or "reader" in o["metadata"]["name"]]


def test_ipfix_and_opentelemetry_exporters_become_sinks() -> None:
    cfg = yaml.safe_load(find(objects(SPECS["kafka-tls-sasl-hpa-exporter"]), "ConfigMap",
                              "flowlake-processor-config")["data"]["processor.yaml"])
    assert cfg["sinks"] == ["lake", "metrics", "kafka", "ipfix"]
    assert cfg["ipfix"] == {"target_host": "collector", "target_port": 4739, "transport": "udp", "enterprise_id": 2}
    objs = objects(SPECS["direct-conntrack-loki"])
    cfg = yaml.safe_load(find(objs, "ConfigMap", "flowlake-processor-config")["data"]["processor.yaml"])
    assert cfg["sinks"] == ["lake", "loki", "metrics", "otlp"]
    assert cfg["otlp"] == {
        "target_host": "otel-collector.monitoring", "target_port": 4318, "protocol": "http", "tls": True,
        "ca_cert_path": "/etc/flowlake/otlp-ca/ca.crt", "headers": {"x-tenant": "net"},
        "fields_mapping": [{"input": "DnsLatencyMs", "output": "dns.latency", "multiplier": 0.001}],
        "logs": True, "metrics": True, "metrics_push_seconds": 60.0}
    proc = find(objs, "DaemonSet", "flowlake-processor")["spec"]["template"]["spec"]
    assert {"name": "otlp-ca", "mountPath": "/etc/flowlake/otlp-ca", "readOnly": True} in \
        proc["containers"][0]["volumeMounts"]
    assert {"name": "otlp-ca", "secret": {"secretName": "otel-ca", "items": [{"key": "ca.crt", "path": "ca.crt"}]}} \
        in proc["volumes"]


def test_the_kubernetes_validate_cli_passes_every_rendered_file(tmp_path: Path) -> None:
    """The same check by the tool's own command line, on the YAML `flowlake operator render` would print."""
    import subprocess
    import sys

    from flowlake.operator import manifests

    files = []
    for spec_id in IDS:
        path = tmp_path / f"{spec_id}.yaml"
        path.write_text(manifests.dump(objects(SPECS[spec_id], metric_definitions=[DNS_ERRORS])))
        files.append(str(path))
    cli = Path(sys.executable).with_name("kubernetes-validate")
    out = subprocess.run([str(cli), "--strict", "--quiet", "-k", "1.37.0", *files], capture_output=True, text=True)
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")
