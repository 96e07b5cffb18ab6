"""The web console (/console), the member live-balance page (/me) and GraphiQL (/graphql in a browser).

Static files shipped in this package (``static/``): the pages are plain ES modules on vendored Preact +
htm, graphql-ws and uPlot (``static/vendor/README.md``), so they work offline and no Node is needed to
run the hub. Every page talks to /graphql only, with the key or token the user typed (kept in
``sessionStorage``). The Content-Security-Policy lets them load and connect to this origin alone.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC = Path(__file__).parent / "static"

# Same origin only: scripts, styles, images, fetch and websockets. Inline styles are allowed for the
# chart library and GraphiQL's editor, which set style attributes; no inline script runs anywhere.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:;"
    " font-src 'self' data:; connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none';"
    " form-action 'none'"
)
PAGE_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}


def page(name: str) -> Response:
    return FileResponse(STATIC / name, media_type="text/html", headers=PAGE_HEADERS)


async def console_page(request: Request) -> Response:
    return page("console.html")


async def me_page(request: Request) -> Response:
    return page("me.html")


async def to_console(request: Request) -> Response:
    return RedirectResponse("/console", status_code=308)


def graphiql_page() -> Response:
    """GraphiQL on the vendored assets (Strawberry's own template loads them from a CDN)."""
    return page("graphiql.html")


class _Assets(StaticFiles):
    """The pages' scripts and styles, with the same security headers as the pages."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update({"x-content-type-options": "nosniff", "cache-control": "no-cache"})
        return response


def routes() -> list[BaseRoute]:
    return [
        Route("/console", console_page),
        Route("/console/", to_console),
        Route("/me", me_page),
        Mount("/console/assets", app=_Assets(directory=STATIC), name="console-assets"),
    ]
