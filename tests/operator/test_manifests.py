"""deploy/ and docs/operator.md are fresh (regenerate with `flowlake operator manifests`), the operator's install
objects validate strictly, the CRD schemas accept every sample offline and refuse bad values, and the
`flowlake operator` CLI renders a sample."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from flowlake.engine import cli as engine_cli
from flowlake.operator import crd_flowcollector as fc
from flowlake.operator import crd_flowmetric as fm
from flowlake.operator import defaults, manifests
from flowlake.operator.cli import expected_files
from flowlake.operator.kube import KINDS
from flowlake.operator.samples import SAMPLES
from tests.operator.specs import SPECS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("rel", sorted(expected_files()))
def test_generated_file_is_fresh(rel: str) -> None:
    path = ROOT / rel
    assert path.exists() and path.read_text() == expected_files()[rel], \
        f"{rel} is stale: run `.venv/bin/flowlake operator manifests`"


def test_manifests_check_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["operator", "manifests", "--dir", str(tmp_path / "deploy"), "--docs", str(tmp_path / "operator.md")]
    assert engine_cli.main([*args, "--check"]) == 1
    assert "run `flowlake operator manifests`" in capsys.readouterr().err
    assert engine_cli.main(args) == 0
    assert engine_cli.main([*args, "--check"]) == 0
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == [
        "deploy/crds.yaml", "deploy/operator.yaml", "deploy/samples/flowcollector-direct.yaml",
        "deploy/samples/flowcollector-kafka.yaml", "deploy/samples/flowcollector-service.yaml",
        "deploy/samples/flowmetric.yaml", "operator.md"]


def test_deploy_objects_validate_strict() -> None:
    objs = [o for name in ("crds.yaml", "operator.yaml")
            for o in yaml.safe_load_all((ROOT / "deploy" / name).read_text()) if o]
    assert [o["kind"] for o in objs] == ["CustomResourceDefinition", "CustomResourceDefinition", "Namespace",
                                         "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment"]
    for obj in objs:
        kubernetes_validate.validate(obj, "1.37", strict=True)


def test_operator_role_covers_every_kind_it_manages() -> None:
    rules = manifests.cluster_role_rules()
    for kind, k in KINDS.items():
        if kind in ("FlowCollector", "FlowMetric", "CustomResourceDefinition"):
            continue
        group = k.api_version.rpartition("/")[0]
        verbs = {v for r in rules if group in r["apiGroups"] and k.plural in r["resources"] for v in r["verbs"]}
        assert {"get", "list", "create", "patch", "delete"} <= verbs, kind


def _validator(schema: dict[str, Any]) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(schema)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_samples_match_their_schema_offline(name: str) -> None:
    sample = SAMPLES[name]
    crd = fc if sample["kind"] == "FlowCollector" else fm
    filled = {**sample, "spec": defaults.apply(crd.spec_schema(), sample["spec"])}
    errors = list(_validator(crd.openapi_schema()).iter_errors(filled))
    assert errors == []


@pytest.mark.parametrize("spec_id", sorted(SPECS))
def test_specs_match_the_schema_offline(spec_id: str) -> None:
    obj = {"apiVersion": "flows.flowlake.io/v1alpha1", "kind": "FlowCollector", "metadata": {"name": "cluster"},
           "spec": defaults.apply(fc.spec_schema(), SPECS[spec_id])}
    assert list(_validator(fc.openapi_schema()).iter_errors(obj)) == []


BAD = [({"deploymentModel": "Mesh"}, "'Mesh' is not one of ['Direct', 'Service', 'Kafka']"),
       ({"agent": {"sampling": -5}}, "-5 is less than the minimum of 0"),
       ({"agent": {"cacheActiveTimeout": "soon"}}, "'soon' does not match"),
       ({"processor": {"replicas": 0}}, "0 is less than the minimum of 1"),
       ({"agent": {"flowFilter": {"rules": [{"action": "Accept"}]}}}, "'cidr' is a required property"),
       ({"lake": {"retentionDays": "7"}}, "'7' is not of type 'number'")]


@pytest.mark.parametrize(("spec", "message"), BAD, ids=[m.split(" ")[0] for _, m in BAD])
def test_bad_values_are_refused_offline(spec: dict[str, Any], message: str) -> None:
    obj = {"apiVersion": "flows.flowlake.io/v1alpha1", "kind": "FlowCollector", "metadata": {"name": "cluster"},
           "spec": defaults.apply(fc.spec_schema(), copy.deepcopy(spec))}
    errors = [e.message for e in _validator(fc.openapi_schema()).iter_errors(obj)]
    assert len(errors) == 1 and message in errors[0], errors


def test_render_command_prints_the_objects(capsys: pytest.CaptureFixture[str]) -> None:
    path = ROOT / "deploy" / "samples" / "flowcollector-kafka.yaml"
    assert engine_cli.main(["operator", "render", "-f", str(path)]) == 0
    objs = [o for o in yaml.safe_load_all(capsys.readouterr().out) if o]
    kinds = [o["kind"] for o in objs]
    assert kinds.count("RoleBinding") == 2 and kinds.count("HorizontalPodAutoscaler") == 1
    # the 13 of the default spec, a NetworkPolicy, the HPA, and for Kubernetes auth: the API's ClusterRole and
    # binding, the flows-reader ClusterRole, the admins' binding and one RoleBinding per tenant namespace (2)
    assert len(objs) == 13 + 1 + 1 + 6


def test_render_command_refuses_what_is_not_a_flowcollector(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("kind: Deployment\n")
    assert engine_cli.main(["operator", "render", "-f", str(path)]) == 2
    assert f"{path}: expected a FlowCollector (kind: FlowCollector)" in capsys.readouterr().err
