"""The clients build into installable artefacts: a wheel and an sdist of the Python
client (``python -m build``), an npm tarball of the JS one (``npm pack``). Everything is
built from a copy in a temporary directory, so nothing is left in the repository."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

from tests.conftest import ROOT

PY_CLIENT = ROOT / "clients" / "python"
IGNORED = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist", ".mypy_cache")


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{argv}: {done.stdout}\n{done.stderr}"
    return done.stdout


def test_python_client_builds_a_wheel_that_installs_and_imports(tmp_path: Path) -> None:
    missing = [m for m in ("build", "wheel") if importlib.util.find_spec(m) is None]
    assert not missing, f"{missing} missing: the dev extras install them (scripts/bootstrap.sh)"
    src = tmp_path / "fastinsight-client"
    shutil.copytree(PY_CLIENT, src, ignore=IGNORED)
    dist = tmp_path / "dist"
    # Without isolation: the build tools come from the dev extras, no download.
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(src)], tmp_path)
    wheel = next(dist.glob("fastinsight_client-*-py3-none-any.whl"))
    sdist = next(dist.glob("fastinsight[-_]client-*.tar.gz"))
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    assert {"fastinsight_client/py.typed", "fastinsight_client/models.py",
            "fastinsight_client/ops/recs.py"} <= names
    assert not [n for n in names if n.startswith(("tests", "tools", "examples"))]
    with tarfile.open(sdist) as tf:
        assert any(n.endswith("src/fastinsight_client/models.py") for n in tf.getnames())

    site = tmp_path / "site"
    _run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)],
         tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTINSIGHT_")}
    env["PYTHONPATH"] = str(site)
    probe = ("import fastinsight_client as f, importlib.metadata as m, pathlib;"
             "print(f.__file__); print(m.version('fastinsight-client'));"
             "print((pathlib.Path(f.__file__).parent / 'py.typed').exists());"
             "c = f.FastInsight('http://127.0.0.1:9', api_key='k'); print(c.settings.base_url)")
    out = _run([sys.executable, "-c", probe], tmp_path, env).split()
    assert out[0].startswith(str(site)) and out[1] == "0.1.0" and out[2] == "True"
    assert out[3] == "http://127.0.0.1:9"
    assert not list(PY_CLIENT.glob("**/*.egg-info")) and not (PY_CLIENT / "build").exists()


def test_js_client_packs_into_a_tarball_that_installs_and_imports(js_build: Path, tmp_path: Path) -> None:
    packed = json.loads(_run(["npm", "pack", "--json", "--pack-destination", str(tmp_path)], js_build))
    files = {f["path"] for f in packed[0]["files"]}
    assert {"package.json", "README.md", "dist/index.js", "dist/index.d.ts", "dist/tracker.js",
            "dist/api-types.d.ts"} <= files
    assert not [f for f in files if f.startswith(("src/", "test/", "demo/", "node_modules/"))]
    tarball = tmp_path / packed[0]["filename"]

    shop = tmp_path / "shop"
    shop.mkdir()
    (shop / "package.json").write_text('{"name": "shop", "version": "1.0.0", "private": true}')
    _run(["npm", "install", "--offline", "--no-audit", "--no-fund", "--loglevel=error", str(tarball)], shop)
    probe = ("import('fastinsight-client').then((m) => console.log(typeof m.createTracker, "
             "typeof m.FastInsightClient, new m.FastInsightError(404, null, 'x', null).status))")
    assert _run(["node", "-e", probe], shop).split() == ["function", "function", "404"]
    manifest = json.loads((shop / "node_modules" / "fastinsight-client" / "package.json").read_text())
    assert "dependencies" not in manifest  # nothing to download at run time
