"""`flowlake api --tokens FILE` as a real process on loopback: tokens decide what each caller sees.

Also the CLI's own errors: a bad token file ends the command with one line naming the entry.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import procs
from tests.api import model
from tests.conftest import BASE_MS

FLOWLAKE = str(Path(sys.executable).with_name("flowlake"))


@pytest.fixture(scope="module")
def api(model_lake: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tokens = Path(tmp_path_factory.mktemp("cli")) / "tokens.yaml"
    tokens.write_text("tokens:\n  - {name: root, token: root-token-123, role: admin}\n"
                      "  - {name: shop, token: shop-token-123, role: tenant, namespaces: [shop]}\n")
    port = procs.free_port()
    proc = subprocess.Popen([FLOWLAKE, "api", "--lake", model_lake, "--port", str(port), "--tokens", str(tokens),
                             "--flight-port", "0", "--log-level", "warning"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ})
    url = f"http://127.0.0.1:{port}"
    try:
        if not procs.wait_http(f"{url}/healthz", proc, timeout=30):
            assert proc.stderr is not None
            raise AssertionError(f"flowlake api did not start: {proc.stderr.read()!r}")
        yield url
    finally:
        procs.finish(proc, grace=10)


def _get(url: str, token: str | None) -> tuple[int, Any]:
    query = f"startTime={BASE_MS // 1000}&endTime={BASE_MS // 1000 + 7199}&limit=100000"
    req = urllib.request.Request(f"{url}/api/flows?{query}",
                                 headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def test_tokens_decide_what_each_caller_sees(api: str) -> None:
    status, body = _get(api, None)
    assert status == 401 and body["parameter"] == "Authorization"
    status, body = _get(api, "root-token-123")
    assert status == 200 and len(body["flows"]) == model.N
    status, body = _get(api, "shop-token-123")
    assert status == 200 and len(body["flows"]) == len(model.visible(model.ROWS, frozenset({"shop"})))
    with urllib.request.urlopen(urllib.request.Request(
            f"{api}/api/status", headers={"Authorization": "Bearer shop-token-123"}), timeout=5) as resp:
        status_body = json.loads(resp.read())
    assert status_body["info"]["auth"] == "tokens" and status_body["user"]["role"] == "tenant"


def test_bad_token_file_is_one_clear_line(tmp_path: Path) -> None:
    bad = tmp_path / "tokens.yaml"
    bad.write_text("tokens:\n  - {name: t, token: tenant-token-1, role: tenant}\n")
    out = subprocess.run([FLOWLAKE, "api", "--lake", str(tmp_path / "lake"), "--tokens", str(bad),
                          "--flight-port", "0"], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "tokens[0].namespaces: a tenant needs at least one namespace" in out.stderr
    assert "Traceback" not in out.stderr
    both = subprocess.run([FLOWLAKE, "api", "--tokens", str(bad), "--kube-auth"], capture_output=True, text=True,
                          timeout=60)
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
