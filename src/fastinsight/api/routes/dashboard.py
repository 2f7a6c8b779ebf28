"""The dashboard: static HTML/JS served by the API, no build step.

The page itself needs no key; it asks for one, keeps it in ``sessionStorage`` and sends it
as ``X-API-Key`` on every data call. Chart.js comes from the npm package installed into
``src/fastinsight/dashboard/node_modules`` (git-ignored) by the install step.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from fastinsight.api.security import deployment_of
from fastinsight.errors import NotFoundError

DASHBOARD_DIR = Path(__file__).resolve().parents[2] / "dashboard"
STATIC_DIR = DASHBOARD_DIR / "static"
VENDOR_FILE = Path("node_modules/chart.js/dist/chart.umd.min.js")
CHART_JS = DASHBOARD_DIR / VENDOR_FILE
INSTALL_HINT = "npm install --prefix src/fastinsight/dashboard --no-audit --no-fund --no-package-lock"

router = APIRouter(tags=["dashboard"], include_in_schema=False)
_NO_STORE = {"Cache-Control": "no-store"}


@router.get("/dashboard")
def dashboard_page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", headers=_NO_STORE)


@router.get("/dashboard/")
def dashboard_slash() -> RedirectResponse:
    return RedirectResponse("/dashboard")


def chart_js_path(var_dir: Path) -> Path | None:
    """The installed library: next to the package (editable installs) or under var_dir
    (``npm install --prefix <var_dir>/dashboard chart.js`` for non-editable installs)."""
    for path in (CHART_JS, var_dir / "dashboard" / VENDOR_FILE):
        if path.is_file():
            return path
    return None


@router.get("/dashboard/vendor/chart.js")
def chart_library(request: Request) -> FileResponse:
    """Public like the page (no key): the deployment's var_dir, not a tenant's."""
    path = chart_js_path(deployment_of(request).settings.var_dir)
    if path is None:
        raise NotFoundError(f"Chart.js is not installed; run: {INSTALL_HINT}")
    return FileResponse(path, media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})


def static_files() -> StaticFiles:
    """The page's own scripts and styles, mounted at ``/dashboard/static``."""
    return StaticFiles(directory=STATIC_DIR)
