"""Customer segments: k-means over the active model's user embeddings, described with the
rollup snapshot (top categories, top items, activity) and paired with campaign items.

Vectors are L2-normalised first, so segments group people by taste rather than by how
much they do; activity is reported separately. ``k`` is given or chosen by silhouette on
a sample. Campaign score of item *i* for segment *s*: the mean over members of the
predicted affinity ``u @ v_i``, where members who already interacted with *i* count 0;
items most of the segment already saw sink without an arbitrary cut-off.
"""

from __future__ import annotations

import csv
import io
import logging
import secrets
from datetime import UTC, datetime
from typing import Any

import numpy as np
from pymongo.database import Database

from fastinsight.errors import NotFoundError, ValidationFailed
from fastinsight.schemas.insights import (
    CampaignRow,
    CampaignsOut,
    SegmentMember,
    SegmentOut,
    SegmentsOut,
    SegmentUsersOut,
)
from fastinsight.services.insights.analytics import InsightsService
from fastinsight.services.insights.cache import BackgroundTask, LoadedEmbeddings
from fastinsight.services.insights.rollup import Rollup
from fastinsight.services.writes import ensure_writable
from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.insights import SegmentStore
from fastinsight.storage.mongo.users import erasure_key

log = logging.getLogger(__name__)

K_CANDIDATES = range(2, 11)
SILHOUETTE_SAMPLE = 3000
MINIBATCH_ABOVE = 100_000
CAMPAIGN_ITEMS = 10
TOP_LIST = 5


def _kmeans(x: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.cluster import KMeans, MiniBatchKMeans

    if len(x) > MINIBATCH_ABOVE:
        model: Any = MiniBatchKMeans(n_clusters=k, random_state=seed, batch_size=4096, n_init=3)
    else:
        model = KMeans(n_clusters=k, random_state=seed, n_init=3)
    labels = model.fit_predict(x)
    return np.asarray(labels, dtype=np.int64), np.asarray(model.cluster_centers_)


def choose_k(x: np.ndarray, seed: int) -> tuple[int, float]:
    """The k with the best silhouette on a sample (ties go to the smaller k)."""
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(seed)
    sample = x if len(x) <= SILHOUETTE_SAMPLE else x[rng.choice(len(x), SILHOUETTE_SAMPLE, replace=False)]
    best_k, best = 2, -2.0
    for k in K_CANDIDATES:
        if k >= len(sample):
            break
        labels, _ = _kmeans(sample, k, seed)
        if len(np.unique(labels)) < 2:
            continue
        score = float(silhouette_score(sample, labels))
        if score > best + 1e-9:
            best_k, best = k, score
    return best_k, best


def _activity(mean_events: float, overall: float) -> str:
    if mean_events >= 1.25 * overall:
        return "highly active"
    if mean_events <= 0.75 * overall:
        return "occasional"
    return "moderately active"


def _label(cats: list[tuple[str, float, float]], activity: str, n: int) -> str:
    """Categories with the clearest over-representation (lift) among those that matter."""
    strong = [c for c in cats if c[1] >= 0.05 and c[2] >= 1.2][:2]
    names = [c[0] for c in (strong or cats[:1])]
    if not names:
        return f"Segment {n}, {activity}"
    return f"{' & '.join(name.replace('_', ' ').title() for name in names)} fans, {activity}"


def build_segments(
    loaded: LoadedEmbeddings, rollup: Rollup, k: int | None, seed: int = 0,
    leave_out: np.ndarray | None = None,
) -> tuple[Document, list[tuple[list[str], np.ndarray]]]:
    """Cluster the version's users. ``leave_out`` (a mask of embedding rows: users erased
    since training) keeps rows out of the members, the sizes and the counts; they are
    still clustered, as the model that ranks the others still holds them."""
    emb = loaded.emb
    n_users = len(emb.user_ids)
    if n_users < 3:
        raise ValidationFailed.field("k", f"the model has {n_users} users; segments need at least 3")
    x = emb.user_vectors / np.maximum(np.linalg.norm(emb.user_vectors, axis=1, keepdims=True), 1e-9)
    silhouette: float | None = None
    if k is None:
        k, silhouette = choose_k(x, seed)
    k = min(k, n_users)
    labels, centres = _kmeans(x, k, seed)
    order = np.argsort(-np.bincount(labels, minlength=k), kind="stable")
    labels = np.argsort(order)[labels]  # segment 0 is the largest
    centres = centres[order]
    centres /= np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-9)
    similarity = np.einsum("ij,ij->i", x, centres[labels])
    kept = np.ones(n_users, dtype=bool) if leave_out is None else ~leave_out
    sizes = np.bincount(labels[kept], minlength=k)
    n_kept = int(kept.sum())

    user_map, item_map = loaded.maps_for(rollup)
    emb_to_roll = np.full(n_users, -1, dtype=np.int64)
    known = np.flatnonzero(user_map >= 0)
    emb_to_roll[user_map[known]] = known
    events = np.where(emb_to_roll >= 0, rollup.user_events[np.maximum(emb_to_roll, 0)], 0)
    overall = float(events.mean()) if n_users else 0.0

    # (item, member) pairs from the snapshot: how many members engaged with each item
    pair_items = np.repeat(np.arange(rollup.n_items), np.diff(rollup.seen_indptr))
    pair_users = user_map[rollup.seen_users]
    keep = pair_users >= 0
    pair_items, pair_users = pair_items[keep], pair_users[keep]
    pair_seg = labels[pair_users]
    reach = np.bincount(pair_seg * rollup.n_items + pair_items,
                        minlength=k * rollup.n_items).reshape(k, rollup.n_items)
    slots = np.diff(rollup.cat_indptr)
    cat_counts = np.vstack([
        np.bincount(rollup.cat_indices, weights=np.repeat(reach[s], slots),
                    minlength=len(rollup.categories)) for s in range(k)
    ]) if len(rollup.categories) else np.zeros((k, 0))
    global_share = cat_counts.sum(axis=0) / max(float(cat_counts.sum()), 1.0)

    # campaigns on the model's items: mean affinity, members who saw the item count 0
    n_emb_items = len(emb.item_ids)
    pair_emb_items = item_map[pair_items]
    in_model = pair_emb_items >= 0
    seen_aff = np.einsum("ij,ij->i", emb.user_vectors[pair_users[in_model]],
                         emb.item_vectors[pair_emb_items[in_model]])
    flat = pair_seg[in_model] * n_emb_items + pair_emb_items[in_model]
    seen_sum = np.bincount(flat, weights=seen_aff, minlength=k * n_emb_items).reshape(k, n_emb_items)
    seen_count = np.bincount(flat, minlength=k * n_emb_items).reshape(k, n_emb_items)
    blocked = np.ones(n_emb_items, dtype=bool)  # only visible catalogue items are suggested
    visible = (item_map >= 0) & rollup.in_catalogue & ~rollup.hidden
    blocked[item_map[visible]] = False

    titles = dict(zip(rollup.item_ids, rollup.item_titles, strict=True))
    segments: list[Document] = []
    members: list[tuple[list[str], np.ndarray]] = []
    for s in range(k):
        idx = np.flatnonzero((labels == s) & kept)
        idx = idx[np.argsort(-similarity[idx], kind="stable")]
        members.append(([str(u) for u in emb.user_ids[idx].tolist()], similarity[idx]))
        mean_events = float(events[idx].mean()) if idx.size else 0.0
        activity = _activity(mean_events, overall)
        total = max(float(cat_counts[s].sum()), 1.0) if cat_counts.size else 1.0
        cats = []
        for c in np.argsort(-cat_counts[s], kind="stable")[:TOP_LIST].tolist() if cat_counts.size else []:
            if cat_counts[s, c] <= 0:
                break
            share = float(cat_counts[s, c]) / total
            lift = share / global_share[c] if global_share[c] > 0 else 0.0
            cats.append((rollup.categories[c], round(share, 4), round(lift, 3)))
        top_items = [
            {"item_id": rollup.item_ids[i], "title": rollup.item_titles[i],
             "members": int(reach[s, i]), "share": round(float(reach[s, i]) / max(idx.size, 1), 4)}
            for i in np.argsort(-reach[s], kind="stable")[:TOP_LIST].tolist() if reach[s, i] > 0
        ]
        score = (emb.user_vectors[idx].sum(axis=0) @ emb.item_vectors.T - seen_sum[s]) / max(idx.size, 1)
        score[blocked] = -np.inf
        best = [int(i) for i in np.argsort(-score, kind="stable")[:CAMPAIGN_ITEMS] if np.isfinite(score[i])]
        segments.append({
            "segment_id": f"s{s + 1}", "label": _label(cats, activity, s + 1),
            "size": int(sizes[s]), "share": round(float(sizes[s]) / max(n_kept, 1), 5),
            "activity_level": activity, "mean_events": round(mean_events, 3),
            "top_categories": [{"category": c, "share": sh, "lift": lf} for c, sh, lf in cats],
            "top_items": top_items,
            "campaign": [
                {"item_id": str(emb.item_ids[i]), "title": titles.get(str(emb.item_ids[i]), ""),
                 "score": round(float(score[i]), 6), "audience": int(sizes[s] - seen_count[s, i])}
                for i in best
            ],
        })
    manifest: Document = {
        "model_version": emb.version, "build_id": secrets.token_hex(4),
        "built_at": datetime.now(UTC), "k": k,
        "silhouette": None if silhouette is None else round(silhouette, 5),
        "chosen_by": "silhouette" if silhouette is not None else "given", "users": n_kept,
        "insights_as_of": rollup.computed_at, "segments": segments,
    }
    return manifest, members


class SegmentService:
    def __init__(self, db: Database[Document], insights: InsightsService) -> None:
        self.store = SegmentStore(db)
        self.insights = insights
        self.task: BackgroundTask[SegmentsOut] = BackgroundTask("segment rebuild")

    def rebuild(self, k: int | None, wait: bool = True, seed: int = 0) -> SegmentsOut | None:
        return self.task.run(lambda: self._rebuild(k, seed), wait)

    def _rebuild(self, k: int | None, seed: int) -> SegmentsOut:
        ensure_writable(self.insights.db, "segment rebuild")
        loaded = self.insights.embeddings.get()
        rollup = self.insights.rollup_or_refresh()
        erased = self.insights.embeddings.erased(loaded)
        leave_out = (np.fromiter((erasure_key(u) in erased for u in loaded.emb.user_ids.tolist()),
                                 dtype=bool, count=len(loaded.emb.user_ids)) if erased else None)
        manifest, members = build_segments(loaded, rollup, k, seed, leave_out)
        ensure_writable(self.insights.db, "storing the segments")  # building takes a while
        self.store.save(manifest, members)
        log.info("segments for %s: k=%d (%s)", loaded.emb.version, manifest["k"], manifest["chosen_by"])
        return self._out(manifest)

    def _manifest(self, version: str | None) -> Document:
        version = version or self.insights.models.active_version()
        if version is None:
            raise NotFoundError("no model version is active yet; train one first")
        doc = self.store.manifest(version)
        if doc is None:
            raise NotFoundError(f"no segments for model version {version}; an admin can build "
                                "them with POST /v1/admin/segments/rebuild")
        return doc

    @staticmethod
    def _out(doc: Document) -> SegmentsOut:
        return SegmentsOut(
            model_version=doc["model_version"], built_at=doc["built_at"], k=doc["k"],
            silhouette=doc.get("silhouette"), chosen_by=doc["chosen_by"], users=doc["users"],
            insights_as_of=doc.get("insights_as_of"),
            segments=[SegmentOut.model_validate(s) for s in doc["segments"]],
        )

    def list(self, version: str | None = None) -> SegmentsOut:
        return self._out(self._manifest(version))

    def users(
        self, segment_id: str, offset: int, limit: int, version: str | None = None
    ) -> SegmentUsersOut:
        doc = self._manifest(version)
        seg = next((s for s in doc["segments"] if s["segment_id"] == segment_id), None)
        if seg is None:
            raise NotFoundError(f"segment {segment_id!r} does not exist in {doc['model_version']}")
        users, scores = self.store.members(doc, segment_id, offset, limit)
        end = offset + len(users)
        erased = self.insights.embeddings.erased(str(doc["model_version"]))
        members = [SegmentMember(user_id=u, similarity=s) for u, s in zip(users, scores, strict=True)
                   if not (erased and erasure_key(u) in erased)]
        return SegmentUsersOut(
            segment_id=segment_id, model_version=doc["model_version"], total=seg["size"],
            offset=offset, next_offset=end if end < seg["size"] else None, users=members,
            erased=len(users) - len(members),
        )

    def campaigns(self, per_segment: int, version: str | None = None) -> CampaignsOut:
        doc = self._manifest(version)
        rows = [
            CampaignRow(segment_id=s["segment_id"], segment_label=s["label"], segment_size=s["size"],
                        rank=n + 1, **c)
            for s in doc["segments"] for n, c in enumerate(s["campaign"][:per_segment])
        ]
        return CampaignsOut(model_version=doc["model_version"], built_at=doc["built_at"], rows=rows)


# A spreadsheet runs a cell starting with one of these as a formula (tab and carriage
# return too: some strip them before looking).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_text(value: str) -> str:
    """A text cell of a CSV export (an id, a title, a label) as a spreadsheet must show it:
    text starting like a formula gets a leading ``'``, so it is shown, never run."""
    return f"'{value}" if value.startswith(FORMULA_START) else value


def rows_csv(header: list[str], rows: list[list[Any]]) -> str:
    """Every ``str`` cell goes through :func:`csv_text`; numbers stay numbers (pass them as
    ``int``/``float``, not as text, or a negative one would get the apostrophe)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([csv_text(c) if isinstance(c, str) else c for c in row] for row in rows)
    return buf.getvalue()


def campaigns_csv(out: CampaignsOut) -> str:
    fields = list(CampaignRow.model_fields)
    return rows_csv(fields, [[getattr(r, f) for f in fields] for r in out.rows])


def members_csv(out: SegmentUsersOut) -> str:
    return rows_csv(["user_id", "similarity"], [[m.user_id, m.similarity] for m in out.users])
