"""The process's copy of the tenants never goes back to an older read of the control database."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from fastinsight.config import Settings
from fastinsight.schemas.tenants import TenantIn, TenantPatch, TenantQuotas
from fastinsight.services.tenancy.admin import TenantAdmin
from fastinsight.services.tenancy.directory import TenantDirectory
from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.tenants import TenantRepository
from tests.api.tenants import drop_deployment


class _SlowFirstRead(TenantRepository):
    """The control database as it is, except that one chosen read of all tenants returns
    what it read only when the test lets it (a poller's refresh overtaken by a change)."""

    def __init__(self, client: MongoClient[Document], name: str) -> None:
        super().__init__(client, name)
        self.hold = False
        self.read_done = threading.Event()
        self.release = threading.Event()

    def all(self) -> list[Document]:
        docs = super().all()
        if self.hold and threading.current_thread() is not threading.main_thread():
            self.read_done.set()
            assert self.release.wait(30), "the test never released the slow read"
        return docs


def test_a_refresh_that_read_before_a_change_does_not_undo_it(
    settings: Settings, mongo_uri: str, db_name: str, tmp_path: Path
) -> None:
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_uri, tz_aware=True)
    try:
        repo = _SlowFirstRead(client, f"{db_name}_control")
        directory = TenantDirectory(settings, repo)
        admin = TenantAdmin(settings, repo, directory, tmp_path / "backups",
                            lambda _t: {"loaded": False, "model_bytes": 0, "requests": 0,
                                        "rate_limited": 0}, lambda _t: None)
        admin.create(TenantIn(id="shop", quotas=TenantQuotas(items=3)))
        assert directory.tenant("shop").quotas == {"items": 3}  # type: ignore[union-attr]

        repo.hold = True
        poller = threading.Thread(target=directory.refresh)
        poller.start()  # reads the tenants with the old quota, then waits
        assert repo.read_done.wait(30)
        admin.update("shop", TenantPatch(quotas=TenantQuotas(items=10)))  # refreshes itself
        assert directory.tenant("shop").quotas == {"items": 10}  # type: ignore[union-attr]
        repo.release.set()
        poller.join(30)
        assert not poller.is_alive()
        assert directory.tenant("shop").quotas == {"items": 10}  # type: ignore[union-attr]

        directory.refresh()  # a read that starts later is installed as usual
        admin.repo.update("shop", {"quotas": {"items": 12}})
        directory.refresh()
        assert directory.tenant("shop").quotas == {"items": 12}  # type: ignore[union-attr]
    finally:
        client.close()
        drop_deployment(mongo_uri, db_name)
