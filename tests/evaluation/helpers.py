"""Small datasets with answers known in advance."""

import numpy as np
import scipy.sparse as sp

from fastinsight.recsys.evaluation.data import EvalDataset


def csr(rows: list[list[int]], n_items: int) -> sp.csr_matrix:
    r = [u for u, items in enumerate(rows) for _ in items]
    c = [i for items in rows for i in items]
    return sp.csr_matrix((np.ones(len(c), dtype=np.float32), (r, c)), shape=(len(rows), n_items))


def blocks(group_sizes: tuple[int, ...] = (12, 4), items_per_group: int = 5) -> EvalDataset:
    """Users of group g like every item of block g and nothing else."""
    users, items = [], []
    u = 0
    for g, size in enumerate(group_sizes):
        for _ in range(size):
            for i in range(items_per_group):
                users.append(u)
                items.append(g * items_per_group + i)
            u += 1
    n_items = items_per_group * len(group_sizes)
    ua, ia = np.array(users), np.array(items)
    return EvalDataset(
        users=ua, items=ia, weights=np.ones(ua.size, dtype=np.float32),
        timestamps=np.arange(ua.size, dtype=float), user_ids=np.array([f"u{i}" for i in range(u)]),
        item_ids=np.array([f"i{i}" for i in range(n_items)]),
        item_meta={f"i{i}": {"title": f"item {i}", "categories": [f"g{i // items_per_group}"]}
                   for i in range(n_items)},
        source="blocks",
    )
