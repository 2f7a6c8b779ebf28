"""Feature routers (recommendations, admin, insights, jobs, dashboard) and their start-up hooks.

Each ``install_*`` adds routers with their auth dependencies and registers lifespan hooks
that build the feature's services from the shared container.
"""

from __future__ import annotations

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    """Add every feature router."""
