"""Synthetic clusters and network flows with ground truth: `flowlake synth`, `flowlake up`, tests.

    cluster = make_cluster(seed=1, nodes=6, zones=3)
    static.dump("cluster.json", cluster.metadata_table(), cluster.name)
    synth = generate(cluster, start_ms, end_ms, n_flows=1_000_000, seed=1)
    synth.batch                       # pyarrow RecordBatch in schema.SCHEMA, K8S_* left to the processor
    synth.truth_by_namespace_pair()   # what the enriched lake must add up to

Names load lazily so that `flowlake --help` (which imports `synth.cli`) does not pay for numpy/polars.
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
    from flowlake.engine.synth.cluster import Cluster, make_cluster
    from flowlake.engine.synth.flows import SynthFlows, diurnal_cdf, generate, generate_chunks
    from flowlake.engine.synth.live import stream

_WHERE = {"Cluster": "cluster", "make_cluster": "cluster", "SynthFlows": "flows", "diurnal_cdf": "flows",
          "generate": "flows", "generate_chunks": "flows", "stream": "live"}

__all__ = ["Cluster", "SynthFlows", "diurnal_cdf", "generate", "generate_chunks", "make_cluster", "stream"]


def __getattr__(name: str) -> object:
    if name in _WHERE:
        return getattr(_importlib.import_module(f"flowlake.engine.synth.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
