"""Size of the browser client as shipped: the JavaScript tsc emits into dist/ (ES2020
modules, not minified), per file and in all, raw and gzip-compressed (level 9).

    .venv/bin/python bench/clients_js_size.py      # writes bench/results/clients_js_size.json

It builds from a copy in a temporary directory (nothing is written in clients/js) with
the TypeScript compiler from clients/js/node_modules (scripts/bootstrap.sh installs it).
``tests/clients/test_js_size.py`` fails when the committed figures are not those of the
current code.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
JS = ROOT / "clients" / "js"
RESULT = ROOT / "bench" / "results" / "clients_js_size.json"


def gzip_size(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def measure(dist: Path) -> dict[str, Any]:
    files = sorted(dist.glob("*.js"))
    per_file = {f.name: {"bytes": f.stat().st_size, "gzip_bytes": gzip_size(f.read_bytes())} for f in files}
    together = b"".join(f.read_bytes() for f in files)
    typescript = json.loads((JS / "node_modules" / "typescript" / "package.json").read_text())["version"]
    return {
        "what": "JavaScript emitted by tsc into dist/ (ES2020 modules, not minified, comments kept)",
        "typescript": typescript,
        "files": per_file,
        "total_bytes": len(together),
        "total_gzip_bytes": gzip_size(together),
        "runtime_dependencies": len(json.loads((JS / "package.json").read_text()).get("dependencies", {})),
    }


def build(into: Path) -> Path:
    copy = into / "js"
    shutil.copytree(JS, copy, ignore=shutil.ignore_patterns("node_modules", "dist", "*.tgz"))
    (copy / "node_modules").symlink_to(JS / "node_modules", target_is_directory=True)
    subprocess.run(["node", str(JS / "node_modules" / "typescript" / "bin" / "tsc"), "-p", "tsconfig.json"],
                   cwd=copy, check=True)
    return copy / "dist"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(build(Path(tmp)))
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"\n{'file':<16}{'bytes':>8}{'gzip':>8}")
    for name, size in result["files"].items():
        print(f"{name:<16}{size['bytes']:>8}{size['gzip_bytes']:>8}")
    print(f"{'total':<16}{result['total_bytes']:>8}{result['total_gzip_bytes']:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
