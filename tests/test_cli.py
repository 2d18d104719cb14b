"""The `flowlake` front door: every subcommand has a useful --help, and user errors are one clear line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from flowlake.engine import cli

EXPECTED = {
    "up": ["--data-dir", "--api-port", "SYNTHETIC"],
    "processor": ["--listen", "--lake", "--metadata", "docs/config.md"],
    "api": ["--lake", "--port"],
    "synth": ["--flows", "--target", "--out", "--stdout", "--metadata-out", "--live"],
    "docs": ["--write", "--check"],
}


def run_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-P", "-m", "flowlake.engine.cli", *argv], capture_output=True,
                          text=True, timeout=60)


def test_top_level_help_lists_every_command() -> None:
    res = run_cli("--help")
    assert res.returncode == 0
    for name in cli.COMMANDS:
        assert name in res.stdout
    assert "quick start" in res.stdout


@pytest.mark.parametrize("command", sorted(EXPECTED))
def test_subcommand_help(command: str) -> None:
    res = run_cli(command, "--help")
    assert res.returncode == 0, res.stderr
    for word in EXPECTED[command]:
        assert word in res.stdout, f"{command} --help lacks {word}"


def test_user_error_is_one_line_without_traceback(tmp_path: object) -> None:
    res = run_cli("processor", "--metadata", "/nonexistent/cluster.json", "--metrics-address", "",
                  "--listen", "grpc://127.0.0.1:0")
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert "metadata file /nonexistent/cluster.json not found" in res.stderr


def test_generated_docs_are_fresh() -> None:
    res = run_cli("docs", "--check", "--dir", str(Path(__file__).resolve().parents[1] / "docs"))
    assert res.returncode == 0, res.stderr


def test_port_in_use_is_a_clear_error() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = run_cli("processor", "--listen", f"grpc://127.0.0.1:{port}", "--metrics-address", "")
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert f"cannot listen on grpc://127.0.0.1:{port}" in res.stderr and "--listen" in res.stderr


@pytest.mark.parametrize(("argv", "message"), [
    pytest.param(["--metrics-address", "nonsense"], "metrics_address: Value error, expected HOST:PORT",
                 id="metrics-address"),
    pytest.param(["--listen", "http://x:1"], "listen: Value error, expected grpc://HOST:PORT", id="listen"),
])
def test_bad_addresses_are_named(argv: list[str], message: str) -> None:
    res = run_cli("processor", *argv)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert message in res.stderr
