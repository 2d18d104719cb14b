"""Layer stage: K8S_FlowLayer = `infra` or `app`, from the namespaces (and names) of both ends.

Built by the processor from `stages: [layer]` (settings in `layer:`); it runs after `enrich`. The rule
is FLP's add_kubernetes_infra (`pkg/pipeline/transform/kubernetes/enrich.go`, `EnrichLayer` and
`objectIsApp`), which `reference/netobserv.md` §3.3 only summarizes ("namespace prefixes and refs"):

- an end is an *application* end when it has a non-empty namespace that starts with none of
  `infra_prefixes` and whose `namespace/name` is none of `infra_refs`;
- a flow is `app` when EITHER end is an application end, else `infra`. So infra-to-infra, infra-to-node
  and infra-to-external flows are `infra`, and so is node-to-external (no namespace on either end),
  while any flow touching an application pod or Service is `app`.

Defaults (`layer:` in engine.config): the reference operator uses its own namespace and `openshift` as prefixes and the
`default/kubernetes` and `default/openshift` Services as refs (§3.3). We add `kube-` (kube-system,
kube-public, kube-node-lease on any Kubernetes) and `flowlake` (our own namespace). A K8S_FlowLayer
that is already set (by an upstream processor) is kept, as the enrich stage keeps identities.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl


def _app_end(side: str, prefixes: tuple[str, ...], refs: tuple[str, ...]) -> pl.Expr:
    ns, name = pl.col(f"{side}K8S_Namespace"), pl.col(f"{side}K8S_Name")
    tests = [ns.str.starts_with(p) for p in prefixes]
    for ref in refs:  # plain equality on both columns: cheaper than building "ns/name" strings per row
        ref_ns, _, ref_name = ref.partition("/")
        tests.append((ns == ref_ns) & (name == ref_name))
    infra = pl.any_horizontal(tests) if tests else pl.lit(False)
    return (ns.is_not_null() & (ns != "") & ~infra.fill_null(False)).fill_null(False)


def layer_expr(prefixes: tuple[str, ...], refs: tuple[str, ...]) -> pl.Expr:
    """`app` when either end is an application end, else `infra` (never null)."""
    app = _app_end("Src", prefixes, refs) | _app_end("Dst", prefixes, refs)
    return pl.when(app).then(pl.lit("app")).otherwise(pl.lit("infra"))


class LayerStage:
    """Sets K8S_FlowLayer where it is null."""

    name = "layer"

    def __init__(self, infra_prefixes: Sequence[str], infra_refs: Sequence[str]) -> None:
        self.expr = pl.coalesce(pl.col("K8S_FlowLayer"), layer_expr(tuple(infra_prefixes), tuple(infra_refs)))

    def process(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(self.expr.alias("K8S_FlowLayer"))

    def flush(self) -> pl.DataFrame | None:
        return None
