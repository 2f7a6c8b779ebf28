"""Training: interactions in MongoDB -> matrix -> model -> a new model version in MongoDB.

A run reads a snapshot of the interactions, measures the algorithm on a held-out split,
fits on everything, and stores the artefacts (model files, embeddings, serving arrays)
with the version document. Activation happens only after the stored version loads back
and passes a sanity check. Serving never trains; this runs in the CLI or a background job.
"""

from __future__ import annotations

import logging
import secrets
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from pymongo.database import Database
from pymongo.errors import PyMongoError

from fastinsight.config import Settings
from fastinsight.errors import RejectedVersion, ValidationFailed
from fastinsight.observability import TRAINING_SECONDS
from fastinsight.recsys import registry
from fastinsight.recsys.base import Recommender
from fastinsight.recsys.candidates import item_pools, precompute
from fastinsight.recsys.matrix import InteractionMatrix, from_arrays
from fastinsight.recsys.side import ContentFeatures, SideData
from fastinsight.services.serving.artefacts import write_arrays
from fastinsight.services.serving.bundle import CANDIDATES_DIR, SERVING_DIR, TRENDING_DAYS, ModelBundle
from fastinsight.services.training.retention import prune_versions, trim_realtime_buffer
from fastinsight.services.training.stages import StageClock
from fastinsight.services.writes import ensure_writable
from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.interactions import InteractionRepository
from fastinsight.storage.mongo.items import ItemRepository
from fastinsight.storage.mongo.models import EMBEDDINGS_FILE, ModelVersionRepository

if TYPE_CHECKING:
    from fastinsight.recsys.evaluation.selection import SelectSearch


log = logging.getLogger(__name__)

Progress = Callable[[str], None]
EVAL_USERS = 3000
EVAL_K = (10, 20)


def read_interactions(db: Database[Document]) -> dict[str, np.ndarray]:
    """One scan of the interactions, as column arrays."""
    users: list[str] = []
    items: list[str] = []
    types: list[str] = []
    values: list[float] = []
    stamps: list[float] = []
    for row in InteractionRepository(db).iter_training_rows():
        users.append(row["user_id"])
        items.append(row["item_id"])
        types.append(row["type"])
        value = row.get("value")
        values.append(np.nan if value is None else float(value))
        stamps.append(row["timestamp"].timestamp())
    return {
        "users": np.asarray(users, dtype=str), "items": np.asarray(items, dtype=str),
        "types": np.asarray(types, dtype=str), "values": np.asarray(values, dtype=np.float64),
        "timestamps": np.asarray(stamps, dtype=np.float64),
    }


def daily_item_counts(
    columns: Mapping[str, np.ndarray], data: InteractionMatrix, weights: Mapping[str, float],
    now: datetime,
) -> sp.csr_matrix:
    """items x days (0 = the day before ``now``) of positive weights, for trending."""
    age_days = np.floor((now.timestamp() - columns["timestamps"]) / 86400.0).astype(np.int64)
    index = data.item_index()
    item_idx = np.fromiter((index.get(i, -1) for i in columns["items"].tolist()),
                           dtype=np.int64, count=len(columns["items"]))
    w = np.fromiter((max(weights.get(t, 0.0), 0.0) for t in columns["types"].tolist()),
                    dtype=np.float32, count=len(columns["types"]))
    keep = (age_days >= 0) & (age_days < TRENDING_DAYS) & (item_idx >= 0) & (w > 0)
    return sp.csr_matrix((w[keep], (item_idx[keep], age_days[keep])),
                         shape=(data.n_items, TRENDING_DAYS), dtype=np.float32)


def offline_metrics(
    algorithm: str, params: Mapping[str, Any] | None, matrix: sp.csr_matrix,
    prepare: Callable[[Recommender[Any]], None],
) -> dict[str, float]:
    """Random per-user 10% holdout; full-catalogue ranking metrics on up to 3,000 users."""
    from fastinsight.recsys.evaluation.metrics import ranking_metrics
    from fastinsight.recsys.evaluation.splits import holdout_matrix

    train, held = holdout_matrix(matrix, fraction=0.1, min_positives=5, seed=0)
    users = np.flatnonzero(np.diff(held.indptr) > 0)
    if len(users) == 0:
        return {}
    if len(users) > EVAL_USERS:
        users = np.random.default_rng(0).choice(users, EVAL_USERS, replace=False)
    model = registry.create(algorithm, dict(params or {}))
    prepare(model)
    model.fit(train)
    recs, _ = model.recommend_many(train[users], max(EVAL_K), users=users)
    per_user = ranking_metrics(recs, held[users], EVAL_K)
    metrics = {name: round(float(np.mean(vals)), 5) for name, vals in per_user.items()}
    metrics["evaluated_users"] = float(len(users))
    return metrics


def item_content_features(
    items: list[Document], item_ids: np.ndarray
) -> tuple[np.ndarray, Any]:
    """Text (TF-IDF + SVD) and category/tag multi-hot features, aligned with ``item_ids``."""
    from fastinsight.recsys.content import ItemContent, default_content_encoder

    by_id = {d["item_id"]: d for d in items}
    rows = [
        ItemContent(
            item_id=str(i), title=by_id.get(str(i), {}).get("title", ""),
            description=by_id.get(str(i), {}).get("description", ""),
            categories=tuple(by_id.get(str(i), {}).get("categories", [])),
            tags=tuple(by_id.get(str(i), {}).get("tags", [])),
        )
        for i in item_ids.tolist()
    ]
    encoder = default_content_encoder().fit(rows)
    return encoder.transform(rows), encoder


def new_version(algorithm: str, now: datetime) -> str:
    return f"{now.strftime('%Y%m%dT%H%M%S')}-{algorithm}-{secrets.token_hex(2)}"


def train(
    db: Database[Document],
    settings: Settings,
    algorithm: str | None = None,
    params: Mapping[str, Any] | None = None,
    *,
    activate: bool = True,
    evaluate: bool = True,
    reason: str = "trained",
    progress: Progress | None = None,
    select_from: Sequence[str] | None = None,
    select_search: SelectSearch = "none",
    select_budget_seconds: float = 60.0,
    columns: Mapping[str, np.ndarray] | None = None,
) -> Document:
    """Train one model version and (by default) activate it. Returns the version document.

    ``columns`` are interactions already read (as ``read_interactions`` returns them), for
    a caller that holds them (``bench/scale.py`` at sizes the development database cannot
    ingest in reasonable time); by default the database is read. The time and peak memory
    of each stage are recorded in the version's ``stages`` (:mod:`.stages`).

    With ``select_from``, each candidate algorithm is measured on a validation holdout
    first and the one the evaluation's choice rule serves is trained (the best by NDCG@10,
    unless a model with fewer fitted parts is within one standard error of it); the
    scores, the reasons and the seconds per candidate are recorded.
    ``select_search="complete"`` tunes every candidate as the offline evaluation does
    (:mod:`fastinsight.recsys.evaluation.selection`) and trains the winner's configuration;
    ``"budget"`` searches each candidate for ``select_budget_seconds`` instead (bounded
    time, but what a search reaches depends on the machine's load).
    """
    say = progress or (lambda msg: log.info("%s", msg))
    algorithm = algorithm or settings.default_algorithm
    registry.get_algorithm(algorithm)  # unknown names fail before any work
    ensure_writable(db, "training")  # and a backup in progress, too
    started = time.perf_counter()
    snapshot_at = datetime.now(UTC)
    clock = StageClock()
    with clock.stage("read"):
        if columns is None:
            columns = read_interactions(db)
        items = ItemRepository(db).all_documents()
    if len(columns["users"]) == 0:
        raise ValidationFailed.field("interactions", "there are no interactions to train on")
    with clock.stage("matrix"):
        catalogue = np.asarray(
            sorted({d["item_id"] for d in items} | set(np.unique(columns["items"]).tolist())),
            dtype=str)
        data = from_arrays(
            columns["users"], columns["items"], columns["types"], columns["values"],
            columns["timestamps"], settings.interaction_weights,
            half_life_days=settings.time_decay_half_life_days, now=snapshot_at, item_ids=catalogue,
        )
    say(f"read {len(columns['users'])} interactions: {data.n_users} users x {data.n_items} items "
        f"in {time.perf_counter() - started:.1f}s")
    content: list[ContentFeatures] = []

    def side_for(*takers: object) -> SideData:
        """The side data models get; the item content is built once, and only when one
        of ``takers`` (models or model classes) takes it."""
        if not content and any(hasattr(t, "set_item_content") for t in takers):
            content.append(ContentFeatures(*item_content_features(items, data.item_ids)))
        return SideData(content[0] if content else None, data.times)

    selection: dict[str, Any] | None = None
    if select_from:
        from fastinsight.recsys.evaluation.selection import select_model

        # Candidates are measured with the same side data the trained model gets below.
        side = side_for(*(registry.get_algorithm(a) for a in select_from))
        chosen = select_model(
            data.matrix, list(select_from), side=side, search=select_search,
            search_budget_seconds=select_budget_seconds if select_search == "budget" else 0.0,
            progress=lambda msg: say(f"select: {msg}"),
        )
        algorithm, params, reason = chosen.winner, chosen.params, chosen.reasons[0]
        selection = chosen.to_dict()
        for line in chosen.reasons:
            say(f"select: {line}")

    def prepare(model: Recommender[Any]) -> None:
        side_for(model).give_to(model)

    metrics: dict[str, float] = {}
    if evaluate:
        with clock.stage("evaluate"):
            metrics = offline_metrics(algorithm, params, data.matrix, prepare)
    if metrics:
        say(f"held-out metrics: ndcg@10={metrics.get('ndcg@10', 0):.4f} "
            f"recall@10={metrics.get('recall@10', 0):.4f}")
    model = registry.create(algorithm, dict(params or {}))
    with clock.stage("fit"):
        prepare(model)
        model.fit(data.matrix)
    say(f"fitted {algorithm} in {model.fit_seconds:.1f}s")

    version = new_version(algorithm, snapshot_at)
    stamps = columns["timestamps"]
    doc: Document = {
        "version": version, "algorithm": algorithm, "params": model.params.model_dump(mode="json"),
        "status": "ready", "created_at": datetime.now(UTC), "reason": reason,
        "snapshot": {
            "taken_at": snapshot_at, "interactions": len(stamps),
            "users": data.n_users, "items": data.n_items, "nnz": int(data.matrix.nnz),
            "from": datetime.fromtimestamp(float(stamps.min()), UTC),
            "to": datetime.fromtimestamp(float(stamps.max()), UTC),
        },
        "metrics": metrics, "fit_seconds": round(model.fit_seconds, 3),
        "has_embeddings": model.embedding_space() is not None,
    }
    if selection is not None:
        doc["selection"] = selection
    repo = ModelVersionRepository(db)
    ensure_writable(db, "storing the trained version")  # a backup may have started meanwhile
    with tempfile.TemporaryDirectory(prefix="fastinsight-train-") as tmp:
        out = Path(tmp)
        with clock.stage("artefacts"):
            daily = daily_item_counts(columns, data, settings.interaction_weights, snapshot_at)
            model.save(out / "model")
            _write_serving_arrays(out, data, daily)
            _write_embeddings(out, model, data)
            doc["fallback"] = fallback_list(daily, data.item_ids)
        with clock.stage("candidates"):
            doc["candidates"] = _write_candidates(out, model, data, settings)
        doc["artefact_bytes"] = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
        doc["duration_seconds"] = round(time.perf_counter() - started, 3)
        doc["stages"] = clock.to_doc()
        with clock.stage("upload"):
            repo.save(doc, out)
    repo.set_fields(version, stages=clock.to_doc())
    if activate:
        with clock.stage("check_and_activate"):
            check_and_activate(db, settings, version, reason)
        repo.set_fields(version, stages=clock.to_doc())
    doc["stages"] = clock.to_doc()
    # Pruning also trims the real-time buffer, but only up to the oldest snapshot a
    # servable version needs: a version stored without activation leaves it alone.
    prune_versions(db, settings.model_keep_versions)
    TRAINING_SECONDS.labels(algorithm).observe(time.perf_counter() - started)
    say(f"model version {version} stored{' and activated' if activate else ''}")
    doc.pop("_id", None)
    return doc


FALLBACK_ITEMS = 500


def fallback_list(daily: sp.csr_matrix, item_ids: np.ndarray, window_days: int = 7) -> Document:
    """The most interacted-with items of the last ``window_days`` (all kept days when that
    window is empty), stored in the version document itself: what a process answers
    with while it is still loading this version's files (a tenant loaded on demand)."""
    days = max(1, min(window_days, daily.shape[1]))
    scores = np.asarray(daily[:, :days].sum(axis=1)).ravel()
    if not scores.any():
        scores = np.asarray(daily.sum(axis=1)).ravel()
    top = np.argsort(-scores, kind="stable")[:FALLBACK_ITEMS]
    top = top[scores[top] > 0]
    return {"items": [str(item_ids[i]) for i in top], "scores": [float(scores[i]) for i in top]}


def _write_serving_arrays(out: Path, data: InteractionMatrix, daily: sp.csr_matrix) -> None:
    neg = data.negatives.tocsr()
    write_arrays(out / SERVING_DIR, {
        "user_ids": data.user_ids, "item_ids": data.item_ids,
        "neg_data": neg.data, "neg_indices": neg.indices, "neg_indptr": neg.indptr,
        "daily": daily.toarray().astype(np.float32),
    })


def _write_embeddings(out: Path, model: Recommender[Any], data: InteractionMatrix) -> None:
    space = model.embedding_space()
    if space is None:
        return
    np.savez(out / EMBEDDINGS_FILE, user_ids=data.user_ids, item_ids=data.item_ids,
             user_vectors=np.asarray(space.users, dtype=np.float32),
             item_vectors=np.asarray(space.items, dtype=np.float32))


def _write_candidates(
    out: Path, model: Recommender[Any], data: InteractionMatrix, settings: Settings
) -> dict[str, Any] | None:
    """Each trained user's best items, and each item's pool, ready for serving (see
    recsys.candidates and recsys.pools)."""
    if not settings.candidate_cache_size:
        return None
    space = model.embedding_space()
    index = (space.retrieval_index(exact_threshold=settings.ann_exact_max_items, num_threads=2)
             if space is not None and space.n_items == data.n_items else None)
    lists = precompute(model, data.matrix, data.negatives, settings.candidate_cache_size,
                       exact_threshold=settings.ann_exact_max_items, index=index)
    if lists is None:
        return None
    arrays = {"ids": lists.ids, "scores": lists.scores, "because": lists.because}
    started = time.perf_counter()
    if index is not None:
        arrays["pools"] = item_pools(model, settings.candidate_cache_size, index)
    write_arrays(out / CANDIDATES_DIR, arrays)
    return {"size": lists.size, "users": int(lists.ids.shape[0]),
            "seconds": round(lists.seconds, 3),
            "item_pools_seconds": round(time.perf_counter() - started, 3) if index is not None else None}


def check_and_activate(db: Database[Document], settings: Settings, version: str, reason: str) -> None:
    """Load the stored version back and sanity-check it before switching it in.

    A version whose artefacts do not load (a checksum mismatch, a missing chunk, a file
    the model cannot read) or whose scores fail the check is marked ``rejected`` and
    never activated (``RejectedVersion``, HTTP 409). Activation moves the real-time
    buffer's trim point (a roll-back can only make it wait longer, never lose events).
    """
    ensure_writable(db, f"activating model version {version}")
    repo = ModelVersionRepository(db)
    try:
        with tempfile.TemporaryDirectory(prefix="fastinsight-check-") as tmp:
            bundle = ModelBundle.load(repo, version, Path(tmp), build_index=False)
        problem = bundle.sanity_problem()
    except PyMongoError:
        raise  # the database, not the version: nothing to hold against it
    except Exception as exc:
        problem = f"it does not load: {exc}"
    if problem:
        repo.set_status(version, "rejected", rejected_reason=problem)
        raise RejectedVersion(f"model version {version} failed its sanity check: {problem}")
    repo.activate(version, reason)
    trim_realtime_buffer(db)
