"""The published OpenAPI: every error status an operation can answer, with the service's own error body.

FastAPI declares a 422 with its own validation body and nothing else; the service answers every
error as ``ErrorBody`` (``{"detail", "code"}``) with a code from ``errors.CODES``. ``describe_errors``
rewrites the schema so that it says so: the statuses shared by every operation (below), those of
each operation (``OPERATION_ERRORS``), each with the codes that status carries.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from ..errors import CODES

# Beyond the shared ones: what each operation can answer, by (method, path).
OPERATION_ERRORS: dict[tuple[str, str], tuple[int, ...]] = {
    ("post", "/stage_data"): (400, 403, 404, 409, 413, 429, 500, 502, 507),
    ("post", "/api/v1/jobs"): (400, 403, 413, 429),
    ("get", "/api/v1/jobs"): (403,),
    ("get", "/api/v1/jobs/{job_id}"): (404,),
    ("delete", "/api/v1/jobs/{job_id}"): (404, 409),
    ("get", "/api/v1/jobs/{job_id}/attempts"): (404,),
    ("post", "/api/v1/jobs/{job_id}/retry"): (400, 403, 404, 409, 413, 429),
    ("patch", "/api/v1/jobs/{job_id}"): (400, 403, 404, 409),
    ("delete", "/api/v1/jobs/{job_id}/data"): (403, 404, 409, 500),
    ("get", "/api/v1/requests/{request_id}"): (404,),
    ("delete", "/api/v1/requests/{request_id}"): (404,),
    ("patch", "/api/v1/requests/{request_id}"): (400, 403, 404),
    ("delete", "/api/v1/requests/{request_id}/data"): (403, 404, 500),
    ("get", "/api/v1/jobs/{job_id}/events"): (404,),
    ("get", "/api/v1/events"): (403,),
    ("get", "/api/v1/usage"): (403,),
    ("get", "/api/v1/usage/users"): (403,),
    ("get", "/api/v1/download"): (400, 403, 404, 409),
    ("get", "/api/v1/storage"): (400, 403, 404),
    ("get", "/api/v1/dids"): (400, 403, 502),
    ("get", "/api/v1/dids/{scope}/{name}"): (400, 403, 404, 502),
    ("get", "/api/v1/logs"): (403,),
    ("get", "/api/v1/logs/stream"): (403,),
    ("post", "/api/v1/files"): (400, 403, 404, 409, 413),
}
NO_DATABASE = {"/healthz"}  # answers without the service being ready
NO_CALLER = {"/healthz", "/readyz", "/metrics", "/api/v1/config"}  # never ask who calls
ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}


def _codes_by_status() -> dict[int, list[str]]:
    found: dict[int, list[str]] = defaultdict(list)
    for code, entry in CODES.items():
        found[entry.status].append(code)
    return found


def _error_statuses(method: str, path: str, operation: dict[str, Any]) -> set[int]:
    statuses = set(OPERATION_ERRORS.get((method, path), ()))
    statuses.update(int(status) for status in operation.get("responses", {}) if status[0] in "45")
    if path not in NO_DATABASE:
        statuses.add(503)
    if path not in NO_CALLER:
        statuses.update((401, 403))  # signed-in modes: no or an invalid token; a user acting for another
    if operation.get("parameters") or "requestBody" in operation:
        statuses.add(422)
    if "requestBody" in operation:
        statuses.add(413)
    return statuses


def describe_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Declare ``ErrorBody`` for every error status of every operation, with that status's codes."""
    codes = _codes_by_status()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for status in sorted(_error_statuses(method, path, operation)):
                listed = ", ".join(f"`{code}`" for code in codes.get(status, []))
                responses[str(status)] = {
                    "description": f"Error; `code` is one of: {listed}" if listed else "Error",
                    "content": {"application/json": {"schema": ERROR_REF}},
                }
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema


def install_openapi(app: FastAPI) -> None:
    """Serve the rewritten schema at ``app.openapi_url``."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = describe_errors(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
