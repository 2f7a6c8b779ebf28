"""Demo data: a synthetic catalogue that behaves like a real one, or MovieLens from a path.

The synthetic generator gives each user a latent taste over categories (Dirichlet),
items a power-law popularity within their category, and interactions a realistic mix
of event types spread over the last ``days`` days. Everything goes through the same
validated ingest path as client data.
"""

from __future__ import annotations

import csv
import logging
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from fastinsight.schemas.core import ImportReport
from fastinsight.services.data.ingest import IngestService, Progress
from fastinsight.services.data.parsing import ParsedRow

log = logging.getLogger(__name__)

CATEGORIES = {
    "books": ["novel", "mystery", "history", "poetry", "biography"],
    "music": ["jazz", "rock", "classical", "vinyl", "live"],
    "outdoors": ["hiking", "camping", "climbing", "trail", "tent"],
    "kitchen": ["cookware", "knife", "baking", "coffee", "tea"],
    "games": ["board", "puzzle", "strategy", "family", "cards"],
    "garden": ["seeds", "tools", "plants", "soil", "flowers"],
    "fitness": ["yoga", "running", "weights", "cycling", "mat"],
    "tech": ["laptop", "phone", "audio", "camera", "charger"],
    "toys": ["lego", "doll", "blocks", "robot", "plush"],
    "fashion": ["jacket", "shoes", "scarf", "denim", "bag"],
    "beauty": ["skincare", "perfume", "makeup", "hair", "nails"],
    "travel": ["luggage", "maps", "guide", "adapter", "pillow"],
}
ADJECTIVES = ["classic", "compact", "deluxe", "essential", "handmade", "modern", "premium",
              "rustic", "smart", "vintage", "everyday", "pro"]
EVENT_TYPES = ["view", "click", "like", "add_to_cart", "purchase", "rating", "dislike"]
EVENT_P = [0.55, 0.2, 0.08, 0.07, 0.05, 0.03, 0.02]


@dataclass(frozen=True)
class DemoSize:
    users: int = 2000
    items: int = 1000
    interactions: int = 50_000
    days: int = 90
    seed: int = 7


def synthetic_items(size: DemoSize) -> Iterator[dict[str, Any]]:
    rng = np.random.default_rng(size.seed)
    names = list(CATEGORIES)
    for i in range(size.items):
        cat = names[i % len(names)]
        words = CATEGORIES[cat]
        tags = sorted(set(rng.choice(words, size=2, replace=False).tolist()))
        adj = ADJECTIVES[int(rng.integers(len(ADJECTIVES)))]
        second = names[int(rng.integers(len(names)))] if rng.random() < 0.15 else None
        yield {
            "item_id": f"item-{i:06d}",
            "title": f"{adj.title()} {words[i % len(words)]} #{i}",
            "description": f"A {adj} {cat} product for {' and '.join(tags)} lovers.",
            "categories": [cat] + ([second] if second and second != cat else []),
            "tags": tags,
            "attributes": {"price": round(float(rng.lognormal(3, 0.6)), 2)},
            "published_at": (datetime.now(UTC) - timedelta(days=int(rng.integers(1, 365)))).isoformat(),
        }


def synthetic_users(size: DemoSize) -> Iterator[dict[str, Any]]:
    rng = np.random.default_rng(size.seed + 1)
    for u in range(size.users):
        yield {
            "user_id": f"user-{u:06d}",
            "attributes": {"country": str(rng.choice(["DE", "FR", "GB", "US", "NL", "ES"])),
                           "plan": str(rng.choice(["free", "plus", "pro"], p=[0.7, 0.2, 0.1]))},
        }


@dataclass(frozen=True)
class DemoWorld:
    """The hidden structure the synthetic interactions are drawn from (bench/online.py's
    simulated shoppers click by it)."""

    tastes: np.ndarray  # users x categories; each row sums to 1
    activity: np.ndarray  # per user, sums to 1: who acts how often
    item_category: np.ndarray  # item index -> category index
    item_weight: np.ndarray  # item index -> its probability within its category

    def preference(self, user: int, item: int) -> float:
        """How likely ``user``'s next event is on ``item``, relative to a uniform choice."""
        n_items = len(self.item_category)
        return float(self.tastes[user, self.item_category[item]] * self.item_weight[item]) * n_items


def _world(size: DemoSize, rng: np.random.Generator) -> DemoWorld:
    n_cat = len(CATEGORIES)
    item_category = np.arange(size.items) % n_cat
    item_weight = np.zeros(size.items)
    for c in range(n_cat):
        items = np.arange(c, size.items, n_cat)
        weights = 1.0 / np.arange(1, len(items) + 1) ** 1.1
        item_weight[items] = weights / weights.sum()
    tastes = rng.dirichlet(np.full(n_cat, 0.3), size=size.users)
    activity = rng.pareto(1.5, size.users) + 1
    return DemoWorld(tastes=tastes, activity=activity / activity.sum(), item_category=item_category,
                     item_weight=item_weight)


def demo_world(size: DemoSize) -> DemoWorld:
    """The latent tastes behind ``synthetic_interactions(size)`` (same seed, same draws)."""
    return _world(size, np.random.default_rng(size.seed + 2))


def synthetic_interactions(size: DemoSize, now: datetime | None = None) -> Iterator[dict[str, Any]]:
    """Users pick categories by taste, items within a category by a power law."""
    rng = np.random.default_rng(size.seed + 2)
    now = now or datetime.now(UTC)
    names = list(CATEGORIES)
    world = _world(size, rng)
    by_cat = {c: np.flatnonzero(world.item_category == c) for c in range(len(names))}
    tastes = world.tastes
    users = rng.choice(size.users, size=size.interactions, p=world.activity)
    seconds = rng.uniform(0, size.days * 86400, size=size.interactions)
    kinds = rng.choice(len(EVENT_TYPES), size=size.interactions, p=EVENT_P)
    for n in range(size.interactions):
        u = int(users[n])
        cat = int(rng.choice(len(names), p=tastes[u]))
        items = by_cat[cat]
        if not len(items):
            continue
        item = int(items[rng.choice(len(items), p=world.item_weight[items])])
        kind = EVENT_TYPES[int(kinds[n])]
        row: dict[str, Any] = {
            "user_id": f"user-{u:06d}", "item_id": f"item-{item:06d}", "type": kind,
            "timestamp": (now - timedelta(seconds=float(seconds[n]))).isoformat(),
        }
        if kind == "rating":
            row["value"] = float(np.clip(np.round(3.5 + tastes[u][cat] * 3 + rng.normal(0, 0.7)), 1, 5))
        yield row


def _numbered(rows: Iterator[dict[str, Any]]) -> Iterator[ParsedRow]:
    return ((n, r) for n, r in enumerate(rows, start=1))


def load_synthetic(
    svc: IngestService, size: DemoSize, progress: Progress | None = None
) -> dict[str, ImportReport]:
    return {
        "items": svc.import_items(_numbered(synthetic_items(size)), progress),
        "users": svc.import_users(_numbered(synthetic_users(size)), progress),
        "interactions": svc.import_interactions(_numbered(synthetic_interactions(size)), progress),
    }


# ---- MovieLens (ml-latest-small layout), read from where the user keeps it -------------
def movielens_items(directory: Path) -> Iterator[dict[str, Any]]:
    tags: dict[str, set[str]] = defaultdict(set)
    tags_file = directory / "tags.csv"
    if tags_file.exists():
        with tags_file.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                tag = row["tag"].strip()[:100]
                if tag and all(ord(ch) >= 32 for ch in tag):
                    tags[row["movieId"]].add(tag)
    with (directory / "movies.csv").open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            genres = [g for g in row["genres"].split("|") if g and g != "(no genres listed)"]
            yield {"item_id": row["movieId"], "title": row["title"][:1000],
                   "categories": genres, "tags": sorted(tags.get(row["movieId"], set()))[:200]}


def movielens_interactions(directory: Path) -> Iterator[dict[str, Any]]:
    with (directory / "ratings.csv").open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            yield {"user_id": row["userId"], "item_id": row["movieId"], "type": "rating",
                   "value": float(row["rating"]), "timestamp": int(row["timestamp"])}


def load_movielens(
    svc: IngestService, directory: Path, progress: Progress | None = None
) -> dict[str, ImportReport]:
    if not (directory / "ratings.csv").exists() or not (directory / "movies.csv").exists():
        raise FileNotFoundError(f"{directory} does not hold ratings.csv and movies.csv")
    return {
        "items": svc.import_items(_numbered(movielens_items(directory)), progress),
        "interactions": svc.import_interactions(_numbered(movielens_interactions(directory)), progress),
    }
