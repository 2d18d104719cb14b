"""The console's HTTP side without a browser: the page, its files, the missing-libraries message and
/api/frontend-config (fields from the schema, quick filters from FLOWLAKE_CONSOLE_CONFIG)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from flowlake.api import create_app, routes_console
from flowlake.engine import schema
from tests.console.conftest import REQUIRE_BROWSER


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(str(tmp_path / "lake"))) as c:
        yield c


def test_page_and_modules_are_served(client: TestClient) -> None:
    if not routes_console.vendored():
        why = "the console's front-end libraries are missing: run make console"
        if REQUIRE_BROWSER:
            pytest.fail(f"under FLOWLAKE_REQUIRE_BROWSER=1: {why}")
        pytest.skip(why)
    page = client.get("/")
    assert page.status_code == 200
    assert '<script type="module" src="console/js/main.js">' in page.text
    assert page.headers["cache-control"] == "no-cache"
    for path in ("/console/js/main.js", "/console/js/views/topology.js", "/console/vendor/uplot.js",
                 "/console/vendor/cytoscape.js"):
        resp = client.get(path)
        assert resp.status_code == 200, path
        assert resp.headers["content-type"].startswith("text/javascript"), path
    assert client.get("/console/vendor/uplot.css").headers["content-type"].startswith("text/css")
    big = client.get("/console/vendor/cytoscape.js", headers={"Accept-Encoding": "gzip"})
    assert big.headers["content-encoding"] == "gzip"
    assert big.num_bytes_downloaded < len(big.content) / 2  # on the wire vs decoded


def test_missing_libraries_say_run_make_console(client: TestClient, monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    monkeypatch.setattr(routes_console, "VENDOR_DIR", tmp_path / "nowhere")
    for path in ("/", "/console/vendor/uplot.js"):
        resp = client.get(path)
        assert resp.status_code == 503, path
        assert "make console" in resp.text


def test_files_outside_the_web_folder_are_not_served(client: TestClient) -> None:
    for path in ("/console/../package.json", "/console/package.json", "/console/%2e%2e/package-lock.json",
                 "/console/vendor/../../routes_console.py"):
        assert client.get(path).status_code == 404, path


def test_frontend_config_defaults(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(routes_console.CONFIG_ENV, raising=False)
    body = client.get("/api/frontend-config").json()
    assert [f["name"] for f in body["fields"]] == [f.name for f in schema.FIELDS]
    assert {f["filterId"] for f in body["fields"] if f["filterId"]} == set(schema.FILTER_IDS)
    assert body["commonKeys"]["namespace"] == ["SrcK8S_Namespace", "DstK8S_Namespace"]
    assert set(body["columns"]) <= set(schema.BY_NAME)
    assert [s["id"] for s in body["scopes"]] == ["cluster", "zone", "host", "namespace", "owner", "resource"]
    quick = {q["name"]: q for q in body["quickFilters"]}
    assert quick["Applications"] == {"name": "Applications", "filter": {"flow_layer": '"app"'}, "default": True}
    assert {n for n, q in quick.items() if q["default"]} == {"Applications", "Pods network"}
    assert body["configError"] is None


def test_frontend_config_from_file(client: TestClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "console.yaml"
    cfg.write_text("quickFilters:\n"
                   '  - {name: Shop, filter: {namespace: \'"shop"\', "dst_port!": "53"}, default: true}\n'
                   "columns: [SrcAddr, DstAddr, Bytes]\n")
    monkeypatch.setenv(routes_console.CONFIG_ENV, str(cfg))
    body = client.get("/api/frontend-config").json()
    assert body["quickFilters"] == [{"name": "Shop", "filter": {"namespace": '"shop"', "dst_port!": "53"},
                                     "default": True}]
    assert body["columns"] == ["SrcAddr", "DstAddr", "Bytes"]
    assert body["configError"] is None


@pytest.mark.parametrize("text", ["quickFilters: [{filter: {a: b}}]\n", "colums: [SrcAddr]\n", "[: bad yaml"],
                         ids=["no-name", "unknown-key", "not-yaml"])
def test_a_bad_config_file_keeps_the_defaults_and_says_why(client: TestClient, monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Path, text: str) -> None:
    cfg = tmp_path / "console.yaml"
    cfg.write_text(text)
    monkeypatch.setenv(routes_console.CONFIG_ENV, str(cfg))
    resp = client.get("/api/frontend-config")
    assert resp.status_code == 200
    body = resp.json()
    assert body["configError"].startswith(f"{routes_console.CONFIG_ENV}={cfg} was not used")
    assert [q["name"] for q in body["quickFilters"]][:2] == ["Applications", "Infrastructure"]
