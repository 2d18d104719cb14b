"""Layer stage: K8S_FlowLayer per FLP's EnrichLayer rule, on hand-built rows and on a synthetic cluster."""

from __future__ import annotations

import polars as pl
import pytest

from flowlake.engine import config
from flowlake.engine.errors import ConfigError
from flowlake.engine.stages.layer import LayerStage
from flowlake.engine.synth import SynthFlows
from flowlake.engine.synth.catalog import INFRA_NAMESPACES
from tests.conftest import make_batch

DEFAULTS = config.LayerConfig()

CASES = [  # (src ns, src name, dst ns, dst name) -> layer with the default prefixes and refs
    pytest.param("shop", "web", "payments", "api", "app", id="app-app"),
    pytest.param("shop", "web", "kube-system", "coredns", "app", id="app-infra: either end app"),
    pytest.param("openshift-dns", "dns", "shop", "web", "app", id="infra-app"),
    pytest.param("openshift-dns", "dns", "kube-system", "x", "infra", id="infra-infra"),
    pytest.param("netobserv", "flp", None, None, "infra", id="infra-external"),
    pytest.param("shop", "web", None, None, "app", id="app-external"),
    pytest.param(None, None, None, None, "infra", id="node-to-external: no namespace"),
    pytest.param("", "x", "", "y", "infra", id="empty namespaces"),
    pytest.param("shop", "web", "default", "kubernetes", "app", id="app-to-apiserver"),
    pytest.param("kube-system", "x", "default", "kubernetes", "infra", id="infra-to-apiserver-ref"),
    pytest.param("kube-system", "x", "default", "web", "app", id="default-ns-is-app-except-refs"),
    pytest.param("flowlake", "processor", "kube-system", "x", "infra", id="our-namespace"),
]


@pytest.mark.parametrize(("src_ns", "src_name", "dst_ns", "dst_name", "want"), CASES)
def test_layer_rule(src_ns: str | None, src_name: str | None, dst_ns: str | None, dst_name: str | None,
                    want: str) -> None:
    df = pl.from_arrow(make_batch(1, SrcK8S_Namespace=[src_ns], SrcK8S_Name=[src_name],
                                  DstK8S_Namespace=[dst_ns], DstK8S_Name=[dst_name]))
    assert isinstance(df, pl.DataFrame)
    out = LayerStage(DEFAULTS.infra_prefixes, DEFAULTS.infra_refs).process(df)
    assert out["K8S_FlowLayer"].to_list() == [want]


def test_upstream_layer_is_kept() -> None:
    df = pl.from_arrow(make_batch(2, SrcK8S_Namespace=["shop", "shop"], K8S_FlowLayer=["infra", None]))
    assert isinstance(df, pl.DataFrame)
    assert LayerStage(["kube-"], []).process(df)["K8S_FlowLayer"].to_list() == ["infra", "app"]


def test_no_prefixes_no_refs_every_namespaced_end_is_app() -> None:
    df = pl.from_arrow(make_batch(2, SrcK8S_Namespace=["kube-system", None]))
    assert isinstance(df, pl.DataFrame)
    assert LayerStage([], []).process(df)["K8S_FlowLayer"].to_list() == ["app", "infra"]


def test_synthetic_cluster_layers(synth: SynthFlows, synth_enriched: pl.DataFrame) -> None:
    # The generator's infrastructure namespaces; `default` holds only the API server Service.
    prefixes = [ns for ns in INFRA_NAMESPACES if ns != "default"]
    out = LayerStage(prefixes, ["default/kubernetes"]).process(synth_enriched)
    src, dst = synth.src_namespace, synth.dst_namespace
    app = (src.is_not_null() & ~src.is_in(INFRA_NAMESPACES)) | (dst.is_not_null() & ~dst.is_in(INFRA_NAMESPACES))
    want = pl.select(pl.when(app.fill_null(False)).then(pl.lit("app")).otherwise(pl.lit("infra"))).to_series()
    assert out["K8S_FlowLayer"].to_list() == want.to_list()
    assert set(want.value_counts()["literal"].to_list()) == {"app", "infra"}


def test_bad_ref_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"layer\.infra_refs: .*'kubernetes' is not namespace/name"):
        config.load(None, **{"layer.infra_refs": ["kubernetes"]})
