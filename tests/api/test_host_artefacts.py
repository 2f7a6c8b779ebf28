"""One copy of each served version per host, mapped read-only by every worker process.

Known-answer data from ``test_recommend``; the HNSW threshold is 0 so that the graphs
built once per host and read back are what serving searches.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from pymongo import MongoClient
from pymongo.database import Database

from fastinsight.api.app import create_app
from fastinsight.config import Settings
from fastinsight.services.serving.artefacts import PARTIAL, HostArtefacts, folder_name
from fastinsight.services.serving.bundle import ModelBundle
from fastinsight.services.training.pipeline import train
from fastinsight.storage.mongo.models import ModelVersionRepository
from tests.api.test_recommend import seed
from tests.conftest import ADMIN_KEY, API_KEY
from tests.live import (
    drop_database,
    free_port,
    live_process,
    live_settings,
    mongo_uri_for_tests,
    server_env,
    uvicorn_argv,
)

Db = Database[dict[str, Any]]
ALS = {"factors": 4, "iterations": 15, "num_threads": 1}
USERS = [f"{g}{n}" for g in "ab" for n in range(12)] + ["newcomer"]


def mapped_file(arr: np.ndarray) -> str | None:
    """The file ``arr`` is a view of, or None when it lives in private memory."""
    base: object = arr
    while base is not None:
        if isinstance(base, np.memmap):
            return str(base.filename)
        base = getattr(base, "base", None)
    return None


def served_arrays(bundle: ModelBundle) -> dict[str, np.ndarray]:
    model = bundle.model
    assert model.user_items is not None and bundle.candidates is not None
    assert bundle.ann is not None and bundle.retrieval is not None
    assert bundle.item_unit_vectors is not None
    return {
        **{f"model.{k}": v for k, v in model._state_arrays().items()},
        "model.user_items": model.user_items.data, "user_ids": bundle.user_ids,
        "item_ids": bundle.item_ids, "negatives.indptr": bundle.negatives.indptr,
        "daily": bundle.daily, "candidates.ids": bundle.candidates.ids,
        "candidates.scores": bundle.candidates.scores,
        "candidates.because": bundle.candidates.because,
        "item_unit_vectors": bundle.item_unit_vectors, "ann.vectors": bundle.ann.vectors,
        "retrieval.vectors": bundle.retrieval.vectors,
    }


def as_npz_version(repo: ModelVersionRepository, version: str, new: str, workdir: Path) -> str:
    """Store ``version`` again as ``new`` in the layout versions had before the .npy
    files (arrays.npz, serving.npz, candidates.npz): read into memory when served."""
    out = repo.download(version, workdir / new)
    meta_path = out / "model" / "meta.json"
    meta = json.loads(meta_path.read_text())
    files = meta.pop("arrays")
    np.savez(out / "model" / "arrays.npz",  # type: ignore[arg-type]
             **{name: np.load(out / "model" / "arrays" / f) for name, f in files.items()})
    shutil.rmtree(out / "model" / "arrays")
    meta["format_version"] = 1
    meta_path.write_text(json.dumps(meta))
    for folder, archive in (("serving", "serving.npz"), ("candidates", "candidates.npz")):
        np.savez(out / archive,  # type: ignore[arg-type]
                 **{p.stem: np.load(p) for p in (out / folder).glob("*.npy")})
        shutil.rmtree(out / folder)
    doc = repo.get(version)
    assert doc is not None
    keep = {k: v for k, v in doc.items() if k not in {"_id", "files", "last_activated_at"}}
    repo.save({**keep, "version": new}, out)
    return new


def answers(client: TestClient | httpx.Client) -> list[Any]:
    out: list[Any] = []
    for user in USERS:
        body = client.get(f"/v1/users/{user}/recommendations", params={"k": 5}).json()
        out.append([(i["item_id"], i["score"], i["reason"]) for i in body["items"]])
    for item in ("a0", "b3"):
        out.append(client.get(f"/v1/items/{item}/similar", params={"k": 4}).json()["items"])
    out.append(client.post("/v1/recommendations/session",
                           json={"items": ["a0", "b1"], "k": 4}).json()["items"])
    return out


def wait_for(done: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_served_arrays_are_mapped_read_only_and_answer_as_the_in_memory_layout(
    db: Db, settings: Settings, tmp_path: Path
) -> None:
    hnsw = settings.model_copy(update={"ann_exact_max_items": 0})
    seed(db, hnsw)
    mapped = str(train(db, hnsw, "als", ALS, evaluate=False)["version"])
    repo = ModelVersionRepository(db)
    in_memory = as_npz_version(repo, mapped, "in-memory", tmp_path)

    host = HostArtefacts(tmp_path / "host")
    directory, doc = host.fetch(repo, mapped)
    bundle = ModelBundle.open(directory, doc, host=host, exact_max_items=0)
    assert not bundle.ann.exact and not bundle.retrieval.exact  # type: ignore[union-attr]
    for name, arr in served_arrays(bundle).items():
        assert not arr.flags.writeable, name
        where = mapped_file(arr)
        assert where is not None and Path(where).is_relative_to(directory), name
        if arr.size:
            with pytest.raises(ValueError, match="read-only"):
                arr.reshape(-1)[0] = arr.reshape(-1)[0]
    directory, doc = host.fetch(repo, in_memory)
    old = ModelBundle.open(directory, doc, host=host, exact_max_items=0)
    for name, arr in served_arrays(old).items():  # read into memory, yet never written
        assert not arr.flags.writeable, name

    with TestClient(create_app(hnsw), headers={"X-API-Key": API_KEY}) as client:
        admin = {"X-API-Key": ADMIN_KEY}
        results = {}
        for version in (mapped, in_memory):
            assert client.post(f"/v1/admin/models/{version}/activate", headers=admin).status_code == 200
            wait_for(lambda v=version: client.get("/v1/users/a0/recommendations").json()[  # type: ignore[misc]
                "model_version"] == v)
            results[version] = answers(client)
        assert results[mapped] == results[in_memory]
        # Live-scored (fold-in, HNSW search, exact re-scoring) on both layouts alike.
        for item in ("b0", "b1", "b2"):
            client.post("/v1/interactions", json={"user_id": "a2", "item_id": item, "type": "purchase"})
        live = {}
        for version in (mapped, in_memory):
            client.post(f"/v1/admin/models/{version}/activate", headers=admin)
            wait_for(lambda v=version: client.get("/v1/users/a0/recommendations").json()[  # type: ignore[misc]
                "model_version"] == v)
            live[version] = client.get("/v1/users/a2/recommendations", params={"k": 5}).json()["items"]
        assert live[mapped] == live[in_memory]
        assert live[mapped][0]["item_id"] in {"b3", "b4"}


def _fetch_in_process(uri: str, db_name: str, version: str, root: str, log: str) -> str:
    """One process's ``HostArtefacts.fetch``, noting each download it makes in ``log``."""
    client: MongoClient[dict[str, Any]] = MongoClient(uri, tz_aware=True)
    try:
        repo = ModelVersionRepository(client[db_name])
        download = repo.download

        def noted(version: str, target: Path, doc: dict[str, Any] | None = None) -> Path:
            with open(log, "a") as fh:
                fh.write(f"{os.getpid()}\n")
            return download(version, target, doc)

        repo.download = noted  # type: ignore[method-assign]
        directory, _ = HostArtefacts(Path(root)).fetch(repo, version)
        return str(directory)
    finally:
        client.close()


def test_processes_fetching_at_once_download_once_and_share_the_folder(
    db: Db, settings: Settings, db_name: str, tmp_path: Path
) -> None:
    seed(db, settings)
    version = str(train(db, settings, "als", ALS, evaluate=False)["version"])
    log = tmp_path / "downloads.log"
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        folders = pool.starmap(_fetch_in_process, [
            (mongo_uri_for_tests(), db_name, version, str(tmp_path / "host"), str(log))] * 4)
    assert len(set(folders)) == 1
    assert len(log.read_text().split()) == 1  # the others waited for the lock, then found it
    home = tmp_path / "host" / folder_name(version)
    assert [p.name for p in home.iterdir() if p.name.startswith(PARTIAL)] == []
    assert (Path(folders[0]) / "model" / "meta.json").exists()

    # A version no longer stored loses its copy; a stored one keeps it.
    HostArtefacts(tmp_path / "host").prune([version])
    assert home.is_dir()
    HostArtefacts(tmp_path / "host").prune([])
    assert not home.exists()


def worker_pids(parent: int) -> list[int]:
    """The uvicorn worker processes of ``parent`` (not multiprocessing's resource tracker)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            argv = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == parent and b"spawn_main" in argv:
            out.append(int(stat.parent.name))
    return sorted(out)


def mapped_files(pid: int, under: Path) -> set[tuple[str, int]]:
    """(path, inode) of the files under ``under`` that process ``pid`` maps."""
    found = set()
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) == 6 and parts[5].startswith(str(under)):
            found.add((parts[5], int(parts[4])))
    return found


@pytest.fixture()
def two_workers(tmp_path: Path) -> Iterator[tuple[httpx.Client, int, Path, str, str]]:
    """A real uvicorn with two worker processes over a database with two ALS versions."""
    name = f"fi_host_{uuid.uuid4().hex[:10]}"
    settings = live_settings(name, tmp_path, ann_exact_max_items=0)
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_uri_for_tests(), tz_aware=True)
    try:
        db = client[name]
        seed(db, settings)
        v1 = str(train(db, settings, "als", ALS, evaluate=False)["version"])
        v2 = str(train(db, settings, "als", {**ALS, "iterations": 14}, evaluate=False,
                       activate=False)["version"])
        port = free_port()
        env = server_env(name, tmp_path, FASTINSIGHT_ANN_EXACT_MAX_ITEMS="0",
                         FASTINSIGHT_MODEL_POLL_SECONDS="0.2")
        with live_process([*uvicorn_argv(port), "--workers", "2"], env, tmp_path, port) as live, \
                httpx.Client(base_url=live.url, headers={"X-API-Key": API_KEY}, timeout=30) as http:
            wait_for(lambda: http.get("/health/ready").json().get("model_version") == v1, 60)
            wait_for(lambda: len(worker_pids(live.process.pid)) == 2)
            yield http, live.process.pid, tmp_path / "var" / "models", v1, v2
    finally:
        client.close()
        drop_database(name)


def test_two_workers_map_the_same_files_and_switch_versions_under_load_without_a_failure(
    two_workers: tuple[httpx.Client, int, Path, str, str],
) -> None:
    http, parent, models, v1, v2 = two_workers
    url = str(http.base_url).rstrip("/")
    workers = worker_pids(parent)
    # Each worker has loaded v1 once its /health/ready says so: ask until both have answered.
    wait_for(lambda: all(mapped_files(pid, models) for pid in workers), 60)
    maps = [mapped_files(pid, models) for pid in workers]
    assert maps[0] == maps[1]
    names = {Path(path).relative_to(models).parts[2:] for path, _ in maps[0]}
    assert ("candidates", "ids.npy") in names and ("serving", "user_ids.npy") in names
    assert any(p[:2] == ("model", "arrays") and p[-1].endswith("user_factors.npy") for p in names)
    assert ("derived", "item_unit_vectors.npy") in names
    assert {Path(path).relative_to(models).parts[0] for path, _ in maps[0]} == {v1}

    # a2 is scored live (fold-in and HNSW search), a0 from the lists, newcomer by trending.
    for item in ("b0", "b1"):
        assert http.post("/v1/interactions", json={"user_id": "a2", "item_id": item,
                                                   "type": "purchase"}).status_code == 201
    errors: list[str] = []
    versions: set[str] = set()
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=url, headers={"X-API-Key": API_KEY},
                          timeout=30) as mine:
            while not stop.is_set():
                for user in ("a0", "a2", "newcomer"):
                    r = mine.get(f"/v1/users/{user}/recommendations", params={"k": 3})
                    if r.status_code != 200:
                        errors.append(f"{r.status_code} {r.text}")
                    else:
                        versions.add(r.json()["model_version"])

    def serving_everywhere(version: str) -> bool:
        # A new connection lands on either worker: a run of answers all from ``version``.
        got = [httpx.get(f"{url}/v1/users/a0/recommendations",
                         headers={"X-API-Key": API_KEY}).json()["model_version"] for _ in range(20)]
        return set(got) == {version}

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for _ in range(3):
            for version in (v2, v1):
                r = http.post(f"/v1/admin/models/{version}/activate",
                              headers={"X-API-Key": ADMIN_KEY})
                assert r.status_code == 200, r.text
                wait_for(lambda v=version: serving_everywhere(v), 60)  # type: ignore[misc]
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    assert versions == {v1, v2}
    # Both versions' copies stay on the host (both are stored); each worker maps v1 again
    # from the same files.
    assert {p.name for p in models.iterdir()} == {v1, v2}
    maps = [mapped_files(pid, models) for pid in workers]
    assert maps[0] == maps[1] and {Path(p).relative_to(models).parts[0] for p, _ in maps[0]} >= {v1}
