"""Model versions for administrators: list them, switch the active one (also rollback)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from pymongo.database import Database

from fastinsight.config import Settings
from fastinsight.errors import NotFoundError
from fastinsight.schemas.recs import ModelVersionOut
from fastinsight.services.training.pipeline import check_and_activate
from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.models import ModelVersionRepository

log = logging.getLogger(__name__)


def version_out(doc: dict[str, Any], active: str | None, load_error: str | None = None) -> ModelVersionOut:
    return ModelVersionOut(
        version=doc["version"], algorithm=doc["algorithm"], status=doc.get("status", "ready"),
        active=doc["version"] == active, created_at=doc["created_at"], params=doc.get("params", {}),
        metrics=doc.get("metrics", {}), snapshot=doc.get("snapshot", {}),
        fit_seconds=doc.get("fit_seconds"), duration_seconds=doc.get("duration_seconds"),
        stages=doc.get("stages") or {}, artefact_bytes=doc.get("artefact_bytes"),
        reason=doc.get("reason"), rejected_reason=doc.get("rejected_reason"), load_error=load_error,
    )


def _none() -> Mapping[str, str]:
    return {}


class ModelAdmin:
    def __init__(
        self, db: Database[Document], settings: Settings,
        load_errors: Callable[[], Mapping[str, str]] = _none,
    ) -> None:
        self.db = db
        self.settings = settings
        self.repo = ModelVersionRepository(db)
        # Called after a switch, so this process serves the new version at once instead of
        # at its next poll; the other replicas pick it up from the database.
        self.activated_listeners: list[Callable[[], object]] = []
        # Versions the serving side of this process failed to load, with the reason.
        self.load_errors = load_errors

    def list_versions(self) -> list[ModelVersionOut]:
        active = self.repo.active_version()
        failed = self.load_errors()
        return [version_out(d, active, failed.get(str(d["version"]))) for d in self.repo.list()]

    def activate(self, version: str, reason: str = "activated through the API") -> ModelVersionOut:
        """Switch every replica to ``version`` once it loads back and passes its check
        (``RejectedVersion`` otherwise; ``Unavailable`` while a backup pauses writes)."""
        doc = self.repo.get(version)
        if doc is None:
            raise NotFoundError(f"model version {version!r} does not exist")
        check_and_activate(self.db, self.settings, version, reason)
        for listener in self.activated_listeners:
            try:
                listener()
            except Exception:  # the switch is stored: the poller picks it up instead
                log.warning("model version %s activated; switching this process at once failed",
                            version, exc_info=True)
        return version_out(doc, version)
