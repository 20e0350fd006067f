"""OpenAPI 3 from aiohttp-apispec's decorators, plus the bundled Swagger UI.

aiohttp-apispec 3.0.0b2 hard-codes ``openapi_version="2.0"`` and emits Swagger-2 operations
(``in: body`` parameters, a bare response ``schema``). ``OpenApi3Spec`` keeps its decorators and
route walking but rebuilds the APISpec as 3.0.3 and converts each operation: a json schema
becomes ``requestBody``, query schemas become OAS3 parameters, responses get ``content`` with
``application/json`` (or ``application/problem+json`` for errors). It never mutates the
handlers' ``__apispec__`` (two apps in one process each build their own document).

``tailor`` then writes what only the live configuration knows into the document: per bot type
request variants (its bots, its max timeout), enums of bot types, and security when API keys
are configured — so a generated request is valid exactly when the server accepts it.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import re
from http import HTTPStatus
from pathlib import Path
from typing import Any

import aiohttp_apispec
from aiohttp import web
from aiohttp_apispec import AiohttpApiSpec
from aiohttp_apispec.utils import get_path, get_path_keys
from apispec import APISpec

from .. import __version__
from ..appkeys import PAGE_CSP, REGISTRY, SETTINGS, TYPE_CATALOG
from .schemas import WEBHOOK_URL_PATTERN, Problem

DOCS_PATH = "/api-docs"
SPEC_PATH = "/api-docs/swagger.json"
STATIC_PATH = "/api-docs/static"
STATIC_DIR = Path(aiohttp_apispec.__file__).parent / "static"
OPERATION_KEYS = ("tags", "summary", "description", "security", "operationId", "deprecated")
RATE_HEADERS = {
    name: {"description": text, "schema": {"type": "integer"}}
    for name, text in (
        ("RateLimit-Limit", "requests allowed per window"),
        ("RateLimit-Remaining", "requests left in this window"),
        ("RateLimit-Reset", "seconds until the window resets"),
    )
}


class OpenApi3Spec(AiohttpApiSpec):
    def __init__(self, **spec_kwargs: Any) -> None:
        # routes are ours; only the plugin and the operation conversion are reused
        super().__init__(url=None, title=spec_kwargs["title"], version=spec_kwargs["version"])
        self.spec = APISpec(openapi_version="3.0.3", plugins=(self.plugin,), **spec_kwargs)

    def build(self, app: web.Application) -> dict:
        for route in app.router.routes():
            view = route.handler
            path = get_path(route)
            if hasattr(view, "__apispec__") and path:
                self._update_paths(view.__apispec__, route.method.lower(), path)
        return self.spec.to_dict()

    def _update_paths(self, data: dict, method: str, url_path: str) -> None:
        op = {k: data[k] for k in OPERATION_KEYS if k in data}
        params = [copy.deepcopy(p) for p in data.get("parameters", [])]
        for spec in data.get("schemas", []):
            if spec["location"] == "json":
                op["requestBody"] = _request_body(spec["schema"], data.get("request_examples"))
            else:
                params += self.plugin.converter.schema2parameters(spec["schema"], location="query")
        params += [
            {"in": "path", "name": key, "required": True, "schema": {"type": "string"}}
            for key in get_path_keys(url_path)
        ]
        if params:
            op["parameters"] = params
        op["responses"] = {code: _response(code, r) for code, r in data["responses"].items()}
        self.spec.path(path=url_path, operations={method: op})


def _request_body(schema, examples: dict | None) -> dict:
    media: dict[str, Any] = {"schema": schema}
    if examples:
        media["examples"] = examples
    return {"required": True, "content": {"application/json": media}}


def _response(code: str, r: dict) -> dict:
    out = {"description": r.get("description") or HTTPStatus(int(code)).phrase}
    if "schema" in r:
        media = (
            "application/problem+json" if isinstance(r["schema"], Problem) else "application/json"
        )
        out["content"] = {media: {"schema": r["schema"]}}
    elif "content" in r:
        out["content"] = r["content"]
    headers = dict(r.get("headers", {}))
    if code.startswith("2") or code == "429":
        headers.update(RATE_HEADERS)
    if headers:
        out["headers"] = headers
    return out


def build_document(app: web.Application) -> dict:
    settings = app[SETTINGS]
    spec = OpenApi3Spec(
        title="botsys API",
        version=__version__,
        info={
            "description": "Run Python, Node.js and Java bots on demand over HTTP. Errors are "
            "application/problem+json; see docs/API.md.\n\n"
            "Queue dashboard: [/admin/queues](/admin/queues) (live counts, job search, cancel, "
            "retry, redeliver)."
        },
        servers=[{"url": "/"}],
    )
    doc = spec.build(app)
    tailor(doc, settings, app[REGISTRY].describe())
    return doc


def tailor(doc: dict, settings, bot_types: list[dict]) -> None:
    """What the schemas cannot say: the current types, the URL pattern, the security."""
    schemas = doc["components"]["schemas"]
    base = schemas.pop("InvokeRequest")
    base["properties"]["webhookUrl"]["pattern"] = WEBHOOK_URL_PATTERN
    for name in ("DeliverRequest", "EndpointCreate", "EndpointPatch"):
        schemas[name]["properties"]["url"]["pattern"] = WEBHOOK_URL_PATTERN
    schemas["InvokeRequest"] = {"oneOf": _invoke_variants(schemas, base, bot_types)}
    _type_parameters(doc, bot_types)
    _security(doc, settings)


def _invoke_variants(schemas: dict, base: dict, bot_types: list[dict]) -> list[dict]:
    """One InvokeRequest per bot type (its bots, its longest timeout), and the target form."""
    variants = [_target_variant(schemas, base, bot_types)]
    for t in bot_types:
        variant = copy.deepcopy(base)
        variant["required"] = ["botType"]
        props = variant["properties"]
        del props["target"], props["params"]
        props["botType"] = {"type": "string", "enum": [t["botType"]]}
        props["bot"] = {"type": "string", "enum": t["bots"] or [t["defaultBot"]]}
        props["timeout"]["maximum"] = t["maxTimeoutS"]
        name = f"InvokeRequest_{t['botType']}"
        schemas[name] = variant
        variants.append({"$ref": f"#/components/schemas/{name}"})
    return variants


def _type_parameters(doc: dict, bot_types: list[dict]) -> None:
    type_enum = {"type": "string", "enum": [t["botType"] for t in bot_types]}
    for path, item in doc["paths"].items():
        if path.startswith("/admin/config/"):
            continue  # names a type to create, reset or delete: not only the current ones
        for op in item.values():
            for p in op.get("parameters", []):
                if p["name"] == "botType":
                    p["schema"] = dict(type_enum)


def _security(doc: dict, settings) -> None:
    if settings.api.keys or settings.api.admin_keys:
        doc["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
        doc["security"] = [{"bearer": []}, {"apiKey": []}]
    else:
        for item in doc["paths"].values():
            for op in item.values():
                op.pop("security", None)


def _target_variant(schemas: dict, base: dict, bot_types: list[dict]) -> dict:
    """The original system's form: ``target`` and ``params`` (no botType, bot or payload).
    Groups change at runtime (an unknown one is a 404); the types are known here."""
    variant = copy.deepcopy(base)
    props = variant["properties"]
    del props["botType"], props["bot"], props["payload"]
    types = "|".join(re.escape(t["botType"]) for t in bot_types)
    props["target"]["pattern"] = (
        rf"^(groupId:[A-Za-z0-9][A-Za-z0-9_.-]{{0,63}}|botType:({types}))\Z"
    )
    props["timeout"]["maximum"] = min((t["maxTimeoutS"] for t in bot_types), default=0)
    variant["required"] = ["target"]
    schemas["InvokeRequest_target"] = variant
    return {"$ref": "#/components/schemas/InvokeRequest_target"}


SWAGGER_BOOT = f"""
window.onload = function () {{
  window.ui = SwaggerUIBundle({{
    url: "{SPEC_PATH}", dom_id: "#swagger-ui", deepLinking: true, validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl], layout: "StandaloneLayout"
  }});
}};
"""

SWAGGER_PAGE = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="UTF-8"><title>botsys API</title>
<link rel="stylesheet" href="{STATIC_PATH}/swagger-ui.css">
<link rel="icon" type="image/png" href="{STATIC_PATH}/favicon-32x32.png" sizes="32x32">
</head><body><div id="swagger-ui"></div>
<script src="{STATIC_PATH}/swagger-ui-bundle.js"></script>
<script src="{STATIC_PATH}/swagger-ui-standalone-preset.js"></script>
<script>{SWAGGER_BOOT}</script>
</body></html>
"""
_BOOT_HASH = base64.b64encode(hashlib.sha256(SWAGGER_BOOT.encode()).digest()).decode()
# The UI's own scripts may run (same origin + the boot script's hash); nothing else, no framing.
SWAGGER_CSP = (
    f"default-src 'self'; script-src 'self' 'sha256-{_BOOT_HASH}'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'"
)


def setup_openapi(app: web.Application) -> None:
    """Adds the docs routes, then builds the document from every route added before."""

    async def swagger_json(request: web.Request) -> web.Response:
        # Bot types change at runtime (their variants and enums are in the document): rebuilt
        # when the catalog's version moved.
        version = app[TYPE_CATALOG].version
        if built["version"] != version:
            built.update(version=version, document=build_document(app))
        return web.json_response(built["document"])

    async def swagger_ui(request: web.Request) -> web.Response:
        request[PAGE_CSP] = SWAGGER_CSP
        return web.Response(text=SWAGGER_PAGE, content_type="text/html")

    built = {"version": 0, "document": build_document(app)}
    app.router.add_get(SPEC_PATH, swagger_json, allow_head=False)
    app.router.add_get(DOCS_PATH, swagger_ui, allow_head=False)
    app.router.add_static(STATIC_PATH, STATIC_DIR)
