"""The OpenAPI document names every status a route can answer, with the one error body,
and the closed sets the server checks."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from pymongo.database import Database

from fastinsight.api.app import create_app
from fastinsight.config import Settings

ERROR = {"$ref": "#/components/schemas/ErrorBody"}
PUBLIC = {"/health/live", "/health/ready"}
# Browsers leaving a page: the key is in the body, and 403 refuses the admin key there.
YEARS = "^(19[7-9][0-9]|[2-9][0-9]{3})-"


@pytest.fixture()
def doc(client: TestClient) -> dict[str, Any]:
    served: dict[str, Any] = client.get("/openapi.json").json()
    return served


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, ops in doc["paths"].items() for method, op in ops.items()]


def test_every_error_status_uses_the_error_body(doc: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    for method, path, op in _operations(doc):
        for status, response in op["responses"].items():
            if status.startswith(("4", "5")):
                assert response["content"]["application/json"]["schema"] == ERROR, (method, path, status)


def test_key_levels_are_documented(doc: dict[str, Any]) -> None:
    for method, path, op in _operations(doc):
        codes = set(op["responses"])
        if path in PUBLIC:
            assert "401" not in codes
            continue
        assert {"401", "403"} <= codes, (method, path)  # 403: scope, suspension, quotas
        # A tenant's routes are rate limited; the operator's are not.
        assert ("429" in codes) == (not path.startswith("/v1/operator/")), (method, path)
        assert "503" in codes, (method, path)


def test_shape_statuses_follow_from_parameters_and_bodies(doc: dict[str, Any]) -> None:
    for method, path, op in _operations(doc):
        codes = set(op["responses"])
        if "{" in path:
            assert "404" in codes, (method, path)
        if op.get("parameters") or op.get("requestBody"):
            assert "422" in codes, (method, path)
        if op.get("requestBody"):
            assert {"400", "413", "415"} <= codes, (method, path)
    imports = doc["paths"]["/v1/interactions/import"]["post"]
    assert set(imports["requestBody"]["content"]) == {"application/json", "application/x-ndjson", "text/csv"}


def test_recommendations_route_documents_its_errors(doc: dict[str, Any]) -> None:
    op = doc["paths"]["/v1/users/{user_id}/recommendations"]["get"]
    assert {"200", "401", "404", "422", "503"} <= set(op["responses"])
    assert {p["name"] for p in op["parameters"]} >= {"user_id", "k", "offset", "exclude"}


def test_csv_answers_and_date_parameters(doc: dict[str, Any]) -> None:
    for path in ("/v1/items/{item_id}/audience", "/v1/categories/{name}/audience",
                 "/v1/segments/campaigns", "/v1/segments/{segment_id}/users"):
        assert "text/csv" in doc["paths"][path]["get"]["responses"]["200"]["content"], path
    end = next(p for p in doc["paths"]["/v1/insights/activity"]["get"]["parameters"] if p["name"] == "end")
    assert {"type": "string", "format": "date", "pattern": YEARS} in end["schema"]["anyOf"]
    before = next(p for p in doc["paths"]["/v1/users/{user_id}/interactions"]["get"]["parameters"]
                  if p["name"] == "before")
    assert {"type": "string", "format": "date-time", "pattern": YEARS} in before["schema"]["anyOf"]
    timestamp = doc["components"]["schemas"]["InteractionIn"]["properties"]["timestamp"]
    assert {"type": "number", "minimum": 0, "maximum": 253402300799} in timestamp["anyOf"][0]["anyOf"]


def test_closed_sets_are_enums(settings: Settings, db: Database[dict[str, object]]) -> None:
    custom = settings.model_copy(update={"interaction_weights": {"play": 1.0, "skip": -1.0}})
    schemas = create_app(custom).openapi()["components"]["schemas"]
    assert schemas["InteractionIn"]["properties"]["type"]["enum"] == ["play", "skip"]
    assert "als" in schemas["TrainIn"]["properties"]["algorithm"]["enum"]
    kinds = {v["properties"]["name"]["enum"][0]: v for v in schemas["JobIn"]["oneOf"]}
    assert set(kinds) == {"backup", "cleanup_logs", "monitor", "restore", "retrain"}
    assert "drop" in kinds["restore"]["properties"]["args"]["properties"]


def test_public_routes_are_the_documented_ones(client: TestClient) -> None:
    anonymous = {"X-API-Key": ""}
    for path in ("/health/live", "/metrics", "/docs", "/openapi.json", "/dashboard"):
        assert client.get(path, headers=anonymous).status_code == 200, path
    for path in ("/v1/users", "/v1/insights/overview", "/v1/admin/models", "/v1/users/u/recommendations"):
        assert client.get(path, headers=anonymous).status_code == 401, path
    description = client.get("/openapi.json").json()["info"]["description"]
    assert all(p in description for p in ("/metrics", "/docs", "/openapi.json", "/dashboard", "/health/live"))


def test_insights_before_the_first_refresh_answer_a_documented_404(client: TestClient,
                                                                   doc: dict[str, Any]) -> None:
    for name in ("overview", "top-items", "funnel"):
        r = client.get(f"/v1/insights/{name}")
        assert r.status_code == 404 and "refresh" in r.json()["message"], name
        assert "404" in doc["paths"][f"/v1/insights/{name}"]["get"]["responses"], name


def test_the_document_is_built_once_on_first_use(settings: Settings, db: Database[dict[str, object]]) -> None:
    """Not at start-up (about a second per process), then the same corrected dict."""
    app = create_app(settings)
    assert app.openapi_schema is None
    with TestClient(app, headers={"X-API-Key": ""}) as anonymous:
        served = anonymous.get("/openapi.json").json()
    assert "ErrorBody" in served["components"]["schemas"]
    assert "HTTPValidationError" not in served["components"]["schemas"]
    assert app.openapi() is app.openapi() is app.openapi_schema
    assert app.openapi() == served
