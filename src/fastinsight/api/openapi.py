"""The OpenAPI document tells the truth: one pass over the app's routes at creation adds
every error status a route can answer, with the one error body (``ErrorBody``).

Which statuses a route can answer follows from what it is, not from a list per route:
400 everywhere (the HTTP server refuses malformed or oversized requests before the app),
its key level (401; 403 for admin routes), whether it reads parameters or a body (422;
413 and 415 for a body), whether it has path parameters (404), and whether it reads the
database or writes (503 while the database is down or a backup pauses writes).
The few statuses that come from the work itself (409 for a job already running, 404 for
a missing model) are listed in ``ROUTE_ERRORS``. Sets the server accepts are enums:
interaction types from the settings, job names, algorithms.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel

from fastinsight.api.deps import require_writable
from fastinsight.api.security import require_admin, require_api_key, require_operator
from fastinsight.config import Settings
from fastinsight.schemas.core import BeaconIn, ErrorBody
from fastinsight.schemas.types import ATTRIBUTE_VALUE_SCHEMA

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
DESCRIPTIONS = {
    400: "The request could not be read: malformed HTTP, a request line or headers over the "
         "HTTP server's size limits, or a JSON body nested too deeply to decode",
    401: "Missing or unknown X-API-Key",
    403: "The key may not call this route (the admin key needed; a tracking key off its routes; "
         "the operator key on a tenant's route), the tenant is suspended, or a row quota is reached",
    404: "Not found",
    409: "Conflict: the same kind of work is already running",
    413: "The request body is larger than the limit (FASTINSIGHT_MAX_BODY_BYTES)",
    415: "Content-Type is not one of the accepted media types",
    422: "Validation failed; `details` names each field",
    429: "The tenant is over its request rate limit; see Retry-After",
    503: "The database is unreachable, writes are paused for a backup, or the work needs what "
         "is not ready yet (a trained model, a running refresh); see Retry-After",
}
TENANT = "/v1/operator/tenants/{tenant_id}"
NO_SNAPSHOT = {404: "No insights snapshot yet: an admin starts one (POST /v1/admin/insights/refresh)"}
# Statuses that come from the work a route does rather than from its shape.
ROUTE_ERRORS: dict[tuple[str, str], dict[int, str]] = {
    **{("GET", f"/v1/insights/{name}"): NO_SNAPSHOT for name in (
        "overview", "activity", "top-items", "top-categories", "funnel", "funnel/categories",
        "catalogue")},
    ("POST", "/v1/admin/train"): {409: "A training job is already running",
                                  503: "The job runner is not enabled in this process"},
    ("POST", "/v1/admin/jobs"): {409: "A job of this kind is already running"},
    ("POST", "/v1/admin/insights/refresh"): {409: "A refresh is already running"},
    ("POST", "/v1/admin/segments/rebuild"): {
        404: "No model version is active yet", 409: "A rebuild is already running"},
    ("GET", "/v1/segments"): {404: "No segments for this model version yet"},
    ("POST", "/v1/beacon"): {401: "Missing or unknown key in the body",
                             403: "The admin key, which must never be sent from a browser",
                             429: DESCRIPTIONS[429]},
    ("GET", "/v1/segments/campaigns"): {404: "No segments for this model version yet"},
    ("POST", "/v1/operator/tenants"): {409: "The tenant id (or its database) is taken"},
    **{(method, path): {409: "The default tenant is configured through the deployment's settings"}
       for method, path in (("PATCH", TENANT), ("DELETE", TENANT), ("POST", f"{TENANT}/suspend"),
                            ("POST", f"{TENANT}/resume"))},
}
READS = {"GET", "HEAD"}
# Routes whose handler never touches the database.
NO_DATABASE = {("GET", "/health/live")}


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dep in dependant.dependencies:
        if dep.call is not None:
            yield dep.call
        yield from _calls(dep)


def route_errors(route: Any, method: str) -> dict[int, str]:
    """The error statuses ``route`` can answer to ``method``, with what each means."""
    calls = set(_calls(route.dependant))
    extra = route.openapi_extra or {}
    codes: dict[int, str] = {400: DESCRIPTIONS[400]}  # the HTTP server's own refusals
    if require_operator in calls:
        codes.update({401: DESCRIPTIONS[401], 403: DESCRIPTIONS[403]})
    elif require_admin in calls or require_api_key in calls or "security" in extra:
        codes.update({401: DESCRIPTIONS[401], 403: DESCRIPTIONS[403], 429: DESCRIPTIONS[429]})
    has_params = bool(route.dependant.query_params or route.dependant.path_params
                      or extra.get("parameters"))
    reads_body = route.body_field is not None or "requestBody" in extra
    if has_params or reads_body:
        codes[422] = DESCRIPTIONS[422]
    if reads_body:
        codes.update({413: DESCRIPTIONS[413], 415: DESCRIPTIONS[415]})
    if "{" in route.path_format:
        codes[404] = DESCRIPTIONS[404]
    if (method, route.path_format) not in NO_DATABASE:
        codes[503] = DESCRIPTIONS[503]
    if require_writable in calls and method not in READS:
        codes[503] = DESCRIPTIONS[503]
    codes.update(ROUTE_ERRORS.get((method, route.path_format), {}))
    return dict(sorted(codes.items()))


def _api_routes(app: FastAPI) -> Iterator[Any]:
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, APIRoute) and route.include_in_schema:
            yield route


def _error_responses(doc: dict[str, Any], app: FastAPI) -> None:
    for route in _api_routes(app):
        for method in route.methods:
            operation = doc["paths"].get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            for code, description in route_errors(route, method).items():
                existing = responses.get(str(code), {})
                if "content" in existing and code not in {422}:
                    continue  # the route documents this status itself (e.g. a 202 model)
                content: dict[str, Any] = {"application/json": {"schema": ERROR_REF}}
                if code == 400:  # the HTTP server answers in plain text before the app runs
                    content["text/plain"] = {"schema": {"type": "string"}}
                responses[str(code)] = {"description": description, "content": content}


def _csv_answers(doc: dict[str, Any]) -> None:
    """Routes with ``format=csv`` answer the same rows as ``text/csv``."""
    for operations in doc["paths"].values():
        for operation in operations.values():
            params = operation.get("parameters", [])
            if any(p["name"] == "format" and "csv" in str(p.get("schema")) for p in params):
                ok = operation["responses"]["200"].setdefault("content", {})
                ok["text/csv"] = {"schema": {"type": "string",
                                             "description": "The same rows as CSV, header first"}}


def _enums(doc: dict[str, Any], settings: Settings) -> None:
    """Closed sets the server checks, named in the schema."""
    from fastinsight.ops.jobs.kinds import JOB_KINDS
    from fastinsight.recsys.registry import algorithms

    schemas = doc["components"]["schemas"]
    interaction = schemas.get("InteractionIn", {})
    _set_enum(interaction, "type", sorted(settings.interaction_types))
    if "rating" in settings.interaction_types and interaction:
        interaction["if"] = {"properties": {"type": {"const": "rating"}}, "required": ["type"]}
        interaction["then"] = {"properties": {"value": {"type": "number"}}, "required": ["value"]}
    _set_enum(schemas.get("TrainIn", {}), "algorithm", algorithms())
    job = schemas.get("JobIn")
    if job is not None:
        # One variant per job kind, with that kind's own arguments.
        timeout = job["properties"]["timeout_seconds"]
        variants = []
        for name, kind in sorted(JOB_KINDS.items()):
            args = _component(schemas, kind.args_model)
            variants.append({
                "type": "object", "title": f"JobIn {name}", "additionalProperties": False,
                "required": ["name", "args"] if args.get("required") else ["name"],
                "description": kind.description,
                "properties": {"name": {"type": "string", "enum": [name]}, "args": args,
                               "timeout_seconds": timeout}})
        schemas["JobIn"] = {"title": "JobIn", "description": "A job to start", "oneOf": variants}


def _component(schemas: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema, its nested models moved to the components."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(schema.pop("$defs", {}))
    return schema


def _set_enum(schema: dict[str, Any], field: str, values: list[str]) -> None:
    prop = schema.get("properties", {}).get(field)
    if prop is None:
        return
    # An optional field that refuses null (TrainIn.algorithm): one string branch.
    branches = [b for b in prop.pop("anyOf", []) if b.get("type") != "null"]
    if branches:
        prop.update(branches[0])
        prop.pop("default", None)
    for key in ("minLength", "maxLength", "pattern"):
        prop.pop(key, None)
    prop["enum"] = values


def _error_schema(doc: dict[str, Any]) -> None:
    schemas = doc["components"].setdefault("schemas", {})
    schemas["ErrorBody"] = _component(schemas, ErrorBody)
    # Read by a route from its raw body (text/plain too), so FastAPI does not list it.
    schemas["BeaconIn"] = _component(schemas, BeaconIn)
    schemas["AttributeValue"] = ATTRIBUTE_VALUE_SCHEMA
    # FastAPI's own 422 body is replaced by ErrorBody everywhere.
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)


def document_api(app: FastAPI, settings: Settings) -> None:
    """Correct FastAPI's document, once every router is included: ``app.openapi()`` (what
    ``/openapi.json`` and ``/docs`` serve) builds FastAPI's document on its first call,
    corrects it in place and keeps serving that dict, while the routes stay as they are,
    so nothing else has to know. Built on first use, not here: building it takes about a
    second, which every process start (and every app a test creates) would pay."""
    build = app.openapi
    lock = threading.Lock()

    def openapi() -> dict[str, Any]:
        with lock:
            if app.openapi_schema is None:
                doc = build()
                _error_schema(doc)
                _error_responses(doc, app)
                _csv_answers(doc)
                _enums(doc, settings)
                app.openapi_schema = doc
            return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
