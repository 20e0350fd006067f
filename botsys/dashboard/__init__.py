"""The queue dashboard (``/admin/queues``) and the service index (``/``).

The dashboard is three static files (no build step, no CDN): the page is open, and its script
calls the public API with the key the user types in, so it sees exactly what that key may see.
Everything it shows comes from Redis through the API, so any replica serves the same picture.
"""

from __future__ import annotations

import html
from pathlib import Path

from aiohttp import web

from .. import __version__
from ..appkeys import PAGE_CSP, SETTINGS

HERE = Path(__file__).parent
PAGE_PATH = "/admin/queues"
STATIC_PATH = "/admin/queues/static"
# The only files served from this folder (never the package's Python sources).
ASSETS = {"app.js": "text/javascript", "style.css": "text/css"}
LINKS = {"docs": "/api-docs", "dashboard": PAGE_PATH, "metrics": "/metrics", "health": "/health"}

# Own files only: no inline script or style, no other origin, no framing.
DASHBOARD_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
INDEX_CSP = "default-src 'none'; style-src 'self'; base-uri 'none'; frame-ancestors 'none'"


async def dashboard_page(request: web.Request) -> web.StreamResponse:
    request[PAGE_CSP] = DASHBOARD_CSP
    return web.FileResponse(HERE / "index.html", headers={"Content-Type": "text/html"})


async def asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in ASSETS:
        raise web.HTTPNotFound()
    return web.FileResponse(HERE / name, headers={"Content-Type": ASSETS[name]})


def _wants_html(request: web.Request) -> bool:
    """Browsers list text/html first; curl and API clients send */* or application/json."""
    accept = request.headers.get("Accept", "")
    html_at, json_at = accept.find("text/html"), accept.find("application/json")
    return html_at >= 0 and (json_at < 0 or html_at < json_at)


async def index(request: web.Request) -> web.Response:
    bot_types = list(request.app[SETTINGS].bot_types)
    if not _wants_html(request):
        body = {"name": "botsys", "version": __version__, "botTypes": bot_types, "links": LINKS}
        return web.json_response(body)
    request[PAGE_CSP] = INDEX_CSP
    items = "".join(
        f'<li><a href="{html.escape(url)}">{html.escape(name)}</a> <code>{html.escape(url)}</code>'
        "</li>"
        for name, url in LINKS.items()
    )
    types = html.escape(", ".join(bot_types))
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>botsys</title><link rel="stylesheet" href="{STATIC_PATH}/style.css"></head>'
        f'<body class="index"><main><h1>botsys <small>{html.escape(__version__)}</small></h1>'
        f"<p>Runs bots on demand over HTTP. Bot types: {types}.</p><ul>{items}</ul></main>"
        "</body></html>"
    )
    return web.Response(text=page, content_type="text/html")


def setup_dashboard(app: web.Application) -> None:
    # no implicit HEAD routes, like the API (the Allow header lists exactly what is served)
    app.router.add_get("/", index, allow_head=False)
    app.router.add_get(PAGE_PATH, dashboard_page, allow_head=False)
    app.router.add_get(PAGE_PATH + "/", dashboard_page, allow_head=False)
    app.router.add_get(STATIC_PATH + "/{name}", asset, allow_head=False)
