"""Each package's front door: `__all__` is sorted, complete and every name in it exists."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = ["flowlake.agent", "flowlake.engine.transport", "flowlake.engine.synth", "flowlake.engine.query",
            "flowlake.engine.metrics", "flowlake.engine.metadata", "flowlake.api", "flowlake.operator"]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_resolvable(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported, f"{name} has no __all__"
    assert list(exported) == sorted(exported), f"{name}.__all__ is not sorted"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names missing attributes: {missing}"
    public = {n for n, v in vars(module).items()
              if not n.startswith("_") and not isinstance(v, type(importlib)) and n != "annotations"}
    assert public <= set(exported), f"{name} exposes names not in __all__: {sorted(public - set(exported))}"
