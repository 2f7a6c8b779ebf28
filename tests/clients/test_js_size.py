"""The committed bundle size (bench/results/clients_js_size.json, quoted in
docs/clients.md) is that of the current code: rerun bench/clients_js_size.py after a change."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from tests.conftest import ROOT


def test_the_committed_size_is_that_of_the_current_build(js_build: Path) -> None:
    spec = importlib.util.spec_from_file_location("clients_js_size", ROOT / "bench" / "clients_js_size.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    measured = module.measure(js_build / "dist")
    committed = json.loads((ROOT / "bench" / "results" / "clients_js_size.json").read_text())
    assert measured == committed, "the JS client changed: run .venv/bin/python bench/clients_js_size.py"
    assert committed["runtime_dependencies"] == 0
    docs = (ROOT / "docs" / "clients.md").read_text()
    assert f"{committed['total_bytes']:,} bytes" in docs and f"{committed['total_gzip_bytes']:,} bytes" in docs
