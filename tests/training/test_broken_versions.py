"""A broken model version never reaches users (issue 18, item 9).

Three guards stand between a stored version and the request path: the sanity check at
activation (``check_and_activate``), the same check when a serving process loads the
version the database points at (``ModelManager.sync``), and the SHA-256 of every
artefact file, checked as it is read back (``ModelVersionRepository``). Each test below
fails when its guard is removed:

- activation check: a NaN-factor version activated through the API is refused (409);
- serving check: a NaN-factor version the pointer names anyway (set by a path that
  skipped the check) is not switched in;
- checksum: a chunk replaced by another, valid file (a version's arrays swapped for an
  older version's) loads and passes every other check; only the checksum catches it.

A version that fails to load is remembered with the reason (``load_error`` in
``GET /v1/admin/models``) and not downloaded again until it is activated again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pymongo.database import Database

from fastinsight.api.app import create_app
from fastinsight.config import Settings
from fastinsight.services.training.pipeline import train
from fastinsight.storage.mongo.models import CHUNKS, ModelVersionRepository
from tests.api.test_recommend import seed
from tests.conftest import ADMIN_KEY, API_KEY, services_of

Db = Database[dict[str, Any]]
ADMIN = {"X-API-Key": ADMIN_KEY}
ALS = {"factors": 8, "iterations": 15}
USER_FACTORS = "model/arrays/000_user_factors.npy"  # ALS saves user_factors first


@pytest.fixture()
def serving(db: Db, settings: Settings) -> Iterator[tuple[TestClient, str]]:
    """An API process serving a healthy ALS version ``v1``."""
    seed(db, settings)
    v1 = str(train(db, settings, "als", ALS, evaluate=False)["version"])
    with TestClient(create_app(settings), headers={"X-API-Key": API_KEY}) as client:
        assert _served(client) == v1
        yield client, v1


def _served(client: TestClient) -> str:
    r = client.get("/v1/users/a0/recommendations", params={"k": 3})
    assert r.status_code == 200, r.text
    return str(r.json()["model_version"])


def _listed(client: TestClient, version: str) -> dict[str, Any]:
    versions = client.get("/v1/admin/models", headers=ADMIN).json()
    return next(v for v in versions if v["version"] == version)


def _wait(done: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return True
        time.sleep(0.05)
    return done()


def _copy_version(db: Db, version: str, new: str, workdir: Path,
                  change: Callable[[dict[str, np.ndarray]], None]) -> str:
    """Store ``version``'s artefacts again as ``new`` with the model arrays changed (and
    their checksums recorded faithfully: the file is what training wrote)."""
    repo = ModelVersionRepository(db)
    doc = repo.get(version)
    assert doc is not None
    out = repo.download(version, workdir / new)
    files = json.loads((out / "model" / "meta.json").read_text())["arrays"]
    arrays = {name: np.load(out / "model" / "arrays" / file) for name, file in files.items()}
    change(arrays)
    for name, file in files.items():
        np.save(out / "model" / "arrays" / file, arrays[name])
    keep = {k: v for k, v in doc.items() if k not in {"_id", "files", "last_activated_at"}}
    repo.save({**keep, "version": new, "status": "ready", "created_at": datetime.now(UTC)}, out)
    return new


def _nan_factors(arrays: dict[str, np.ndarray]) -> None:
    # One user's vector: their scores are NaN. (NaN item vectors are also refused by
    # the similar-items index a serving process builds; user vectors only by the check.)
    arrays["user_factors"][0] = np.nan


def test_a_nan_factor_version_is_never_activated_and_serving_keeps_the_old_one(
    serving: tuple[TestClient, str], db: Db, tmp_path: Path
) -> None:
    client, v1 = serving
    repo = ModelVersionRepository(db)
    bad = _copy_version(db, v1, "nan-factors", tmp_path, _nan_factors)

    # Guard 1: the activation check.
    r = client.post(f"/v1/admin/models/{bad}/activate", headers=ADMIN)
    assert r.status_code == 409, r.text
    assert r.json()["error"] == "model_rejected" and "NaN" in r.json()["message"]
    assert repo.active_version() == v1
    listed = _listed(client, bad)
    assert listed["status"] == "rejected" and "NaN" in listed["rejected_reason"]
    assert _served(client) == v1

    # Guard 2: the serving check, when the pointer names the version anyway (an older
    # release, a hand-edited database, a restore).
    repo.activate(bad, "skipped the check")
    assert _wait(lambda: _listed(client, bad)["load_error"] is not None), "never tried"
    assert "NaN" in _listed(client, bad)["load_error"]
    assert _served(client) == v1
    assert services_of(client).models.active_version == v1


def test_a_version_with_a_corrupted_chunk_is_never_activated_and_serving_keeps_the_old_one(
    serving: tuple[TestClient, str], db: Db, settings: Settings
) -> None:
    client, v1 = serving
    repo = ModelVersionRepository(db)
    # Same data, other parameters: the arrays differ but have the same shapes.
    v2 = str(train(db, settings, "als", {**ALS, "iterations": 14}, evaluate=False,
                   activate=False)["version"])
    chunk = f"{v2}/{USER_FACTORS}#00000"
    original = db[CHUNKS].find_one({"_id": chunk})
    older = db[CHUNKS].find_one({"_id": f"{v1}/{USER_FACTORS}#00000"})
    assert original is not None and older is not None and original["data"] != older["data"]
    # A chunk holding another version's bytes: a valid file that loads and passes the
    # sanity check; only its SHA-256 shows it is not what training stored for v2.
    db[CHUNKS].update_one({"_id": chunk}, {"$set": {"data": older["data"]}})

    r = client.post(f"/v1/admin/models/{v2}/activate", headers=ADMIN)
    assert r.status_code == 409, r.text
    assert "checksum" in r.json()["message"]
    assert repo.active_version() == v1
    assert _listed(client, v2)["status"] == "rejected"

    repo.activate(v2, "skipped the check")
    assert _wait(lambda: _listed(client, v2)["load_error"] is not None), "never tried"
    assert "checksum" in _listed(client, v2)["load_error"]
    assert _served(client) == v1


def test_a_version_that_fails_to_load_is_not_downloaded_again_until_it_changes(
    serving: tuple[TestClient, str], db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, v1 = serving
    repo = ModelVersionRepository(db)
    manager = services_of(client).models
    attempts: list[str] = []
    downloads: list[str] = []
    fetch, download = manager.artefacts.fetch, manager.repo.download

    def counted_fetch(repo: ModelVersionRepository, version: str) -> tuple[Path, dict[str, Any]]:
        attempts.append(version)
        return fetch(repo, version)

    def counted_download(version: str, target: Path, doc: dict[str, Any] | None = None) -> Path:
        downloads.append(version)
        return download(version, target, doc)

    monkeypatch.setattr(manager.artefacts, "fetch", counted_fetch)
    monkeypatch.setattr(manager.repo, "download", counted_download)
    bad = _copy_version(db, v1, "nan-again", tmp_path, _nan_factors)
    repo.activate(bad, "skipped the check")
    assert _wait(lambda: bad in manager.load_errors())
    time.sleep(12 * 0.2)  # a dozen polls
    assert attempts == [bad] and downloads == [bad]
    assert manager.active_version == v1

    repo.activate(bad, "an operator tries again")  # activated again: one more attempt
    assert _wait(lambda: len(attempts) == 2)
    time.sleep(5 * 0.2)
    # ... from this host's copy: the stored files did not change, so no second download.
    assert attempts == [bad, bad] and downloads == [bad] and manager.active_version == v1

    repo.activate(v1, "back to the good one")
    time.sleep(3 * 0.2)
    assert manager.active_version == v1 and _served(client) == v1
