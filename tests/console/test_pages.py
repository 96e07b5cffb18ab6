"""The console's files as the hub serves them: pages with their security headers, every asset a page
names present, GraphiQL on vendored files, nothing loaded from another host, nothing outside the folder."""

from __future__ import annotations

import posixpath
import re
from pathlib import PurePosixPath

import pytest

from hub.console import STATIC
from tests.helpers import Api

PAGES = ["/console", "/me"]
_PAGE_REFERENCE = re.compile(r'(?:src|href)="([^"]+)"')  # what a page loads
_MODULE_REFERENCE = re.compile(r'(?:from|import)\s+"([^"]+)"')  # what a module imports


async def _get(api: Api, path: str, accept: str = "text/html") -> tuple[int, dict[str, str], str]:
    response = await api.client.get(path, headers={"accept": accept})
    return response.status_code, dict(response.headers), response.text


@pytest.mark.parametrize("path", [*PAGES, "/graphql"])
async def test_each_page_and_what_it_loads_is_served_from_this_origin(api: Api, path: str) -> None:
    status, headers, body = await _get(api, path)
    assert status == 200 and headers["content-type"].startswith("text/html"), (status, body[:200])
    assert "default-src 'self'" in headers["content-security-policy"]
    assert "script-src 'self';" in headers["content-security-policy"]  # no inline script allowed
    assert "<script>" not in body  # ... and none needed
    todo = [r for r in _PAGE_REFERENCE.findall(body) if not r.startswith("data:")]
    assert todo, body
    seen: set[str] = set()
    while todo:
        url = todo.pop()
        assert url.startswith("/console/assets/"), f"{path} loads {url} from elsewhere"
        if url in seen:
            continue
        seen.add(url)
        status, headers, text = await _get(api, url, "*/*")
        assert status == 200, url
        assert headers["x-content-type-options"] == "nosniff"
        if url.endswith(".js") and "/vendor/" not in url:
            # Our module's imports, resolved against the module's own folder (as the browser does).
            folder = PurePosixPath(url).parent
            todo += [posixpath.normpath(str(folder / m)) for m in _MODULE_REFERENCE.findall(text)]
    assert any(u.endswith("/api.js") for u in seen) or path == "/graphql", seen


async def test_graphiql_no_longer_comes_from_a_cdn(api: Api) -> None:
    _, _, body = await _get(api, "/graphql")
    assert "unpkg" not in body and "cdn" not in body.lower()
    assert "/console/assets/vendor/graphiql/graphiql.min.js" in body
    # A GraphQL request to the same path is still answered as GraphQL.
    response = await api.client.post("/graphql", json={"query": "{ viewer { role } }"})
    assert response.json() == {"data": {"viewer": None}}


def test_no_shipped_file_names_another_host() -> None:
    """The vendored builds may mention URLs in comments and messages; our own files name none."""
    for path in STATIC.rglob("*"):
        if path.is_file() and "vendor" not in path.parts:
            text = path.read_text()
            assert not re.search(r"https?://(?!127\.0\.0\.1)", text), path


async def test_the_asset_folder_serves_nothing_outside_it(api: Api) -> None:
    for path in [
        "/console/assets/../__init__.py",
        "/console/assets/%2e%2e/__init__.py",
        "/console/assets/nope.js",
    ]:
        status, _, body = await _get(api, path, "*/*")
        assert status == 404, (path, status)
        assert "import" not in body


async def test_the_trailing_slash_leads_to_the_console(api: Api) -> None:
    response = await api.client.get("/console/")
    assert (response.status_code, response.headers["location"]) == (308, "/console")
