"""The house rules on which layer may import which (docs/architecture.md).

Every module under ``src/fastinsight`` is parsed with ``ast``; nothing is imported or
executed. The graph holds every ``import``/``from ... import``, wherever it is written
(module level, inside functions, under ``TYPE_CHECKING``), relative imports resolved,
plus the dynamic imports named by a ``"fastinsight.x.y[:Name]"`` string (lazy model
and encoder entries, uvicorn's app path).

Layers, top to bottom: ``cli`` -> ``api`` -> ``ops`` -> ``services`` -> ``storage`` /
``recsys`` -> ``schemas`` -> the shared modules (``config``, ``errors``,
``observability``, ``logging_setup``).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "fastinsight"
SHARED = frozenset({"config", "errors", "observability", "logging_setup"})

# subsystem -> subsystems it must never import, with the reason shown on failure.
FORBIDDEN: dict[str, dict[str, str]] = {
    "services": {
        "api": "services are plain Python below the API",
        "ops": "ops may use services, never the other way round",
        "cli": "nothing imports the CLI",
    },
    "storage": {
        s: "storage owns MongoDB and sits below everything that uses it"
        for s in ("services", "recsys", "ops", "api", "cli")
    },
    "recsys": {
        s: "models know matrices and arrays, not the database or the services"
        for s in ("services", "storage", "ops", "api", "cli")
    },
    "schemas": {
        s: "schemas are data shapes only"
        for s in ("services", "ops", "api", "storage", "recsys", "cli")
    },
    "api": {"cli": "nothing imports the CLI"},
    "ops": {"cli": "nothing imports the CLI", "api": "ops run without the web app"},
    **{
        shared: {
            s: "the shared modules are the bottom layer"
            for s in ("services", "storage", "recsys", "schemas", "ops", "api", "cli")
        }
        for shared in SHARED
    },
}


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported module (or the package a name was taken from)
    line: int
    text: str  # the statement as written, for messages

    def __str__(self) -> str:
        return f"{self.source} (line {self.line}: `{self.text}`)"


def module_name(path: Path, root: Path = SRC) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def subsystem(module: str) -> str | None:
    """``fastinsight.services.serving.rules`` -> ``services``; None outside the package."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    return parts[1] if len(parts) > 1 else PACKAGE


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(source: str, module: str, *, is_package: bool = False,
               known: frozenset[str] = frozenset()) -> Iterator[Import]:
    """Every import in ``source`` (the text of ``module``), wherever it is written."""
    tree = ast.parse(source)
    lines = source.splitlines()
    for node in ast.walk(tree):
        text = lines[node.lineno - 1].strip() if hasattr(node, "lineno") else ""
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno, text)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(node, module, is_package)
            for alias in node.names:
                # ``from fastinsight.recsys import registry`` imports a module.
                sub = f"{target}.{alias.name}"
                yield Import(module, sub if sub in known else target, node.lineno, text)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            named = node.value.split(":", 1)[0]
            if "." in named and named in known and named != module:
                yield Import(module, named, node.lineno, f"dynamic import {node.value!r}")


def _modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((SRC / PACKAGE).rglob("*.py"))}


@pytest.fixture(scope="module")
def all_imports() -> list[Import]:
    modules = _modules()
    known = frozenset(modules)
    edges: list[Import] = []
    for name, path in modules.items():
        edges += imports_of(path.read_text(), name, is_package=path.name == "__init__.py", known=known)
    return edges


@pytest.fixture(scope="module")
def graph(all_imports: list[Import]) -> list[Import]:
    return [e for e in all_imports if subsystem(e.target) is not None]


def test_the_graph_sees_every_module_and_the_imports_inside_functions(graph: list[Import]) -> None:
    sources = {e.source for e in graph}
    assert len(_modules()) > 50 and "fastinsight.services.training.pipeline" in sources
    # Lazy imports inside functions count like the ones at the top.
    assert any(e.source == "fastinsight.services.training.pipeline"
               and e.target == "fastinsight.recsys.evaluation.metrics" for e in graph)


def test_imports_point_down_only(graph: list[Import]) -> None:
    problems = []
    for edge in graph:
        src, dst = subsystem(edge.source), subsystem(edge.target)
        if src is None or dst is None or src == dst:
            continue
        reason = FORBIDDEN.get(src, {}).get(dst)
        if reason:
            problems.append(f"{edge} imports {edge.target}: {src} must not import {dst} ({reason})")
    assert not problems, "layering violations:\n" + "\n".join(sorted(problems))


def test_nothing_outside_the_cli_imports_the_cli(graph: list[Import]) -> None:
    offenders = [f"{e} imports {e.target}" for e in graph
                 if subsystem(e.target) == "cli" and subsystem(e.source) not in {"cli", PACKAGE}]
    assert not offenders, "only the CLI may import the CLI:\n" + "\n".join(sorted(offenders))


def test_models_and_schemas_never_touch_the_database(all_imports: list[Import]) -> None:
    """Storage owns MongoDB: recsys and schemas get arrays and documents, never a driver."""
    driver = ("pymongo", "bson", "gridfs")
    offenders = [f"{e} imports {e.target}" for e in all_imports
                 if subsystem(e.source) in {"recsys", "schemas"} and e.target.split(".")[0] in driver]
    assert not offenders, "database driver imported outside storage:\n" + "\n".join(sorted(offenders))


def test_no_import_cycle_between_subsystems(graph: list[Import]) -> None:
    example: dict[tuple[str, str], Import] = {}
    for e in graph:
        src, dst = subsystem(e.source), subsystem(e.target)
        if src and dst and src != dst and PACKAGE not in (src, dst):
            example.setdefault((src, dst), e)
    cycles = find_cycles({pair[0] for pair in example} | {pair[1] for pair in example}, set(example))
    messages = []
    for cycle in cycles:
        hops = [f"  {a} -> {b}: {example[(a, b)]} imports {example[(a, b)].target}"
                for a, b in zip(cycle, [*cycle[1:], cycle[0]], strict=True)]
        messages.append(" -> ".join([*cycle, cycle[0]]) + "\n" + "\n".join(hops))
    assert not messages, "import cycles between subsystems:\n" + "\n".join(messages)


def find_cycles(nodes: set[str], edges: set[tuple[str, str]]) -> list[list[str]]:
    """One shortest cycle through each node that is on a cycle (as a node list)."""
    out: dict[str, list[str]] = defaultdict(list)
    for a, b in edges:
        out[a].append(b)
    found: list[list[str]] = []
    covered: set[str] = set()
    for start in sorted(nodes):
        if start in covered:
            continue
        # Breadth-first from ``start`` back to itself gives its shortest cycle.
        paths = [[start]]
        seen = {start}
        cycle: list[str] | None = None
        while paths and cycle is None:
            grown = []
            for path in paths:
                for nxt in sorted(out[path[-1]]):
                    if nxt == start:
                        cycle = path
                        break
                    if nxt not in seen:
                        seen.add(nxt)
                        grown.append([*path, nxt])
                if cycle:
                    break
            paths = grown
        if cycle:
            found.append(cycle)
            covered.update(cycle)
    return found


# ---- the checker itself ---------------------------------------------------------------------
def test_checker_resolves_relative_and_function_level_imports() -> None:
    source = (
        "import os\n"
        "from . import sibling\n"
        "from ...storage.mongo import models\n"
        "def f():\n"
        "    from fastinsight.api import deps\n"
        "LAZY = 'fastinsight.ops.proxy:make'\n"
    )
    known = frozenset({"fastinsight.services.data.sibling", "fastinsight.storage.mongo.models",
                       "fastinsight.ops.proxy"})
    found = {(e.target, e.line) for e in imports_of(source, "fastinsight.services.data.x", known=known)}
    assert found == {
        ("os", 1), ("fastinsight.services.data.sibling", 2), ("fastinsight.storage.mongo.models", 3),
        ("fastinsight.api", 5), ("fastinsight.ops.proxy", 6),
    }
    assert find_cycles({"a", "b", "c"}, {("a", "b"), ("b", "c"), ("c", "a")}) == [["a", "b", "c"]]
    assert find_cycles({"a", "b"}, {("a", "b")}) == []
