"""The jemalloc options every `flowlake` command sets before Polars loads (engine/allocator.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars  # noqa: F401 - loaded, as in every test process: it wrote its default into the environment
import pytest

from flowlake.engine import allocator


@pytest.fixture
def no_polars(monkeypatch: pytest.MonkeyPatch) -> None:
    """`configure` as the CLI sees it: Polars not imported yet (this test process has it)."""
    monkeypatch.delitem(sys.modules, "polars")


@pytest.mark.parametrize(("inherited", "expected"), [
    (None, allocator.DEFAULT),
    # a parent that imported Polars passes its default on: not a choice to keep
    (allocator.POLARS_DEFAULT, allocator.DEFAULT),
    # what a user sets comes after ours, so it wins
    ("dirty_decay_ms:0", f"{allocator.DEFAULT},dirty_decay_ms:0"),
    (f"{allocator.POLARS_DEFAULT},dirty_decay_ms:0", f"{allocator.DEFAULT},dirty_decay_ms:0"),
    (allocator.DEFAULT, allocator.DEFAULT),
])
def test_configure_puts_our_options_first(monkeypatch: pytest.MonkeyPatch, no_polars: None,
                                          inherited: str | None, expected: str) -> None:
    if inherited is None:
        monkeypatch.delenv(allocator.ENV, raising=False)
    else:
        monkeypatch.setenv(allocator.ENV, inherited)
    allocator.configure()
    assert os.environ[allocator.ENV] == expected


def test_configure_leaves_a_loaded_polars_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(allocator.ENV, "x")
    allocator.configure()  # polars is loaded in this process: too late, nothing changes
    import os
    assert os.environ[allocator.ENV] == "x"


def test_the_cli_applies_it_before_polars_loads() -> None:
    """Through the real entry point, in a fresh process that inherits this one's environment (where
    `import polars` wrote its default): after `flowlake docs --check`, Polars holds its own default
    followed by ours, and later options win in jemalloc."""
    probe = ("import os, sys\nfrom flowlake.engine import cli\n"
             "code = cli.main(['--log-level', 'ERROR', 'docs', '--check'])\n"
             "import polars\nprint(code, os.environ['_RJEM_MALLOC_CONF'])\n")
    assert os.environ.get(allocator.ENV, "").startswith(allocator.POLARS_DEFAULT)  # what the child inherits
    out = subprocess.run([sys.executable, "-P", "-c", probe], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parents[2]).stdout.split()
    assert out == ["0", f"{allocator.POLARS_DEFAULT},{allocator.DEFAULT}"]
