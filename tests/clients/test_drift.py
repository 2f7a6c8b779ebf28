"""The clients cannot drift from the server: the Python models and the browser client's
types are what the generator makes of the current OpenAPI document, every route of the
document is an operation of the Python client with the same query parameters, body and
answer, and its sync and async clients offer the same methods. The Python package stays
standalone and passes mypy --strict."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import subprocess
import sys
from types import ModuleType
from typing import Any

import pytest

from fastinsight_client import AsyncFastInsight, FastInsight, ops
from fastinsight_client._call import Route
from fastinsight_client.ops import admin, audiences, catalog, events, experiments, insights, operator, recs
from tests.clients.recorder import BROWSER_ONLY
from tests.conftest import ROOT

CLIENT = ROOT / "clients" / "python"
OP_MODULES = (admin, audiences, catalog, events, experiments, insights, operator, recs)
IMPORT_MEDIA = {"application/json", "application/x-ndjson", "text/csv"}
SKIPPED_QUERY = {"format"}  # CSV answers: the client reads JSON


def _generator() -> ModuleType:
    name = "fastinsight_client_tools_generate_models"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, CLIENT / "tools" / "generate_models.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    document: dict[str, Any] = _generator().server_openapi()
    return document


def _routes() -> list[Route[Any]]:
    return [value for module in OP_MODULES for value in vars(module).values() if isinstance(value, Route)]


def test_the_committed_models_are_those_of_the_current_server(openapi: dict[str, Any]) -> None:
    committed = (CLIENT / "src" / "fastinsight_client" / "models.py").read_text(encoding="utf-8")
    assert _generator().render(openapi) == committed, (
        "the server's schemas changed: run PYTHONPATH=src .venv/bin/python clients/python/tools/generate_models.py")


def test_the_browser_client_types_are_those_of_the_current_server(openapi: dict[str, Any]) -> None:
    committed = (ROOT / "clients" / "js" / "src" / "api-types.ts").read_text(encoding="utf-8")
    assert _generator().render_ts(openapi) == committed, "run clients/python/tools/generate_models.py"


def _schema_name(schema: dict[str, Any] | None) -> str:
    if not schema:
        return "None"
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1].replace("Page_", "Page").rstrip("_").replace("_", "")
    if schema.get("type") == "array" and "$ref" in schema.get("items", {}):
        return f"list[{_schema_name(schema['items'])}]"
    raise AssertionError(f"an answer schema the client cannot name: {schema}")


def test_every_route_is_an_operation_with_the_same_parameters_body_and_answer(openapi: dict[str, Any]) -> None:
    routes = {(r.method, r.path): r for r in _routes()}
    documented = {(m.upper(), p): op for p, operations in openapi["paths"].items() for m, op in operations.items()}
    assert set(routes) == set(documented) - BROWSER_ONLY
    for key, route in routes.items():
        op = documented[key]
        params = op.get("parameters", [])
        query = {p["name"] for p in params if p["in"] == "query"} - SKIPPED_QUERY
        assert set(route.query) == query, key
        assert not [p["name"] for p in params if p["in"] == "query" and p.get("required")], key
        path_params = {p["name"] for p in params if p["in"] == "path"}
        assert path_params == set(route.path.replace("}", "{").split("{")[1::2]), key
        content = op.get("requestBody", {}).get("content", {})
        if route.body == "import":
            assert set(content) == IMPORT_MEDIA, key
        else:
            body = content.get("application/json", {}).get("schema")
            assert (route.body or "None") == _schema_name(body), key
        answers = {_schema_name(r.get("content", {}).get("application/json", {}).get("schema"))
                   for status, r in op["responses"].items() if status.startswith("2")}
        assert set(route.answer.describes.split(" | ")) == answers, key


def test_both_clients_offer_the_same_operations_built_from_the_same_functions() -> None:
    def methods(cls: type) -> dict[str, Any]:
        return {n: getattr(cls, n) for n in dir(cls) if not n.startswith("_") and callable(getattr(cls, n))}

    sync, aio = methods(FastInsight), methods(AsyncFastInsight)
    assert set(sync) == set(aio)
    factories = {name: m.__wrapped__ for name, m in sync.items() if hasattr(m, "__wrapped__")}
    assert {n: m.__wrapped__ for n, m in aio.items() if hasattr(m, "__wrapped__")} == factories
    for name, method in sync.items():
        if name in factories:
            continue  # the helpers (iterators, imports, waits) are coroutines in the async client
        assert inspect.iscoroutinefunction(aio[name]) or inspect.isasyncgenfunction(aio[name]), name
        assert inspect.signature(method).parameters == inspect.signature(aio[name]).parameters, name
    public = {f for module in OP_MODULES for n, f in vars(module).items()
              if inspect.isfunction(f) and f.__module__ == module.__name__ and not n.startswith(("_", "new_", "with_"))}
    assert public == set(factories.values())  # every operation function is a method


def test_the_client_package_imports_nothing_of_the_server() -> None:
    package = CLIENT / "src" / "fastinsight_client"
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not [n for n in names if n == "fastinsight" or n.startswith("fastinsight.")], path
    assert ops.__doc__


def test_mypy_strict_passes_on_the_client_package() -> None:
    run = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(ROOT / ".mypy_cache" / "client")],
                         cwd=CLIENT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "strict = true" in (CLIENT / "pyproject.toml").read_text()
