"""The flowlake Kopf operator: FlowCollector and FlowMetric resources -> a deployed pipeline.

    objs = render_all(collector)                 # pure: every object a FlowCollector asks for
    Reconciler(Kube(api_client, MANAGER)).reconcile(collector)   # apply, prune, status

`flowlake operator run` starts Kopf with the handlers of `handlers.py`. Names load lazily, so the CLI's
`--help` does not pay for the kubernetes client or Polars.
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
    from flowlake.operator.crds import all_crds
    from flowlake.operator.kube import Kube, KubeError
    from flowlake.operator.reconcile import Reconciler
    from flowlake.operator.render import MANAGER, render_all

_WHERE = {"all_crds": "crds", "Kube": "kube", "KubeError": "kube", "Reconciler": "reconcile",
          "MANAGER": "render", "render_all": "render"}

__all__ = ["Kube", "KubeError", "MANAGER", "Reconciler", "all_crds", "render_all"]


def __getattr__(name: str) -> object:
    if name in _WHERE:
        return getattr(_importlib.import_module(f"flowlake.operator.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
