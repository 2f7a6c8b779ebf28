"""Known-answer data for the neural models: four topical clusters of items and users.

Items 20*c .. 20*c+19 belong to topic ``c`` (category, title words and tags drawn
from that topic's vocabulary). User ``u`` belongs to topic ``u % 4`` and interacts
with 8 items of that topic only, so the right answers are known: a user's
recommendations, an item's neighbours and a new item's neighbours are in its topic.
Item ``COLD_ITEM`` has metadata but no interactions.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from fastinsight.recsys.content import ItemContent, default_content_encoder
from fastinsight.recsys.two_tower import TwoTower, TwoTowerParams

TOPICS = {
    "scifi": ["space", "rocket", "galaxy", "alien", "robot", "planet", "laser", "orbit"],
    "romance": ["love", "wedding", "heart", "kiss", "romance", "couple", "bride", "date"],
    "horror": ["ghost", "zombie", "blood", "haunted", "scream", "curse", "vampire", "crypt"],
    "cooking": ["recipe", "kitchen", "bake", "pasta", "chef", "sauce", "bread", "spice"],
}
N_TOPICS, PER_TOPIC, N_USERS, PER_USER = 4, 20, 160, 8
N_ITEMS = N_TOPICS * PER_TOPIC
COLD_ITEM = N_ITEMS - 1

# Small enough to fit in a few seconds on 2 cores, large enough to learn the clusters.
SMALL_PARAMS = TwoTowerParams(
    dim=16, epochs=12, batch_size=64, learning_rate=0.02, temperature=0.1,
    history_length=8, validation_fraction=0.0, seed=3,
)


def topic_of_item(item: int) -> int:
    return item // PER_TOPIC


def make_items(rng: np.random.Generator) -> list[ItemContent]:
    items = []
    for t, (name, words) in enumerate(TOPICS.items()):
        for j in range(PER_TOPIC):
            picked = rng.choice(words, 5, replace=False)
            items.append(ItemContent(
                item_id=f"i{t * PER_TOPIC + j}", title=" ".join(picked[:2]),
                description=" ".join(picked[2:]), categories=(name,), tags=(str(picked[0]),),
            ))
    return items


def make_matrix(rng: np.random.Generator) -> sp.csr_matrix:
    rows, cols = [], []
    for u in range(N_USERS):
        t = u % N_TOPICS
        pool = np.setdiff1d(np.arange(t * PER_TOPIC, (t + 1) * PER_TOPIC), [COLD_ITEM])
        chosen = rng.choice(pool, PER_USER, replace=False)
        rows += [u] * PER_USER
        cols += chosen.tolist()
    return sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(N_USERS, N_ITEMS)
    )


@pytest.fixture(scope="session")
def items() -> list[ItemContent]:
    return make_items(np.random.default_rng(11))


@pytest.fixture(scope="session")
def matrix() -> sp.csr_matrix:
    return make_matrix(np.random.default_rng(12))


@pytest.fixture(scope="session")
def content(items: list[ItemContent]):  # type: ignore[no-untyped-def]
    encoder = default_content_encoder(text_dim=8).fit(items)
    return encoder, encoder.transform(items)


@pytest.fixture(scope="session")
def fitted(matrix: sp.csr_matrix, content) -> TwoTower:  # type: ignore[no-untyped-def]
    encoder, features = content
    return TwoTower(SMALL_PARAMS).set_item_content(features, encoder).fit(matrix)
