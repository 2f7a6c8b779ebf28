from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp

from fastinsight.errors import ValidationFailed
from fastinsight.recsys.evaluation.data import EvalDataset, PairTable, filter_min_positives
from fastinsight.recsys.evaluation.splits import (
    cold_item_split,
    holdout_matrix,
    make_split,
    random_split,
    temporal_split,
)


def dataset(per_user: list[int], n_items: int = 40) -> EvalDataset:
    """User u has items 0..per_user[u]-1 with timestamp = item index (later = larger)."""
    users, items = [], []
    for u, n in enumerate(per_user):
        users += [u] * n
        items += list(range(n))
    users_a = np.array(users, dtype=np.int64)
    items_a = np.array(items, dtype=np.int64)
    return EvalDataset(
        users=users_a, items=items_a, weights=np.ones(users_a.size, dtype=np.float32),
        timestamps=items_a.astype(float),
        user_ids=np.array([f"u{i}" for i in range(len(per_user))]),
        item_ids=np.array([f"i{i}" for i in range(n_items)]),
    )


def with_context(data: EvalDataset, per_user: list[int], first_item: int = 20) -> EvalDataset:
    """User u also has items first_item.. first_item+per_user[u]-1 as context (weight 0.5)."""
    users = np.repeat(np.arange(len(per_user)), per_user).astype(np.int64)
    items = np.concatenate([first_item + np.arange(n) for n in per_user]).astype(np.int64)
    ctx = PairTable(users, items, np.full(users.size, 0.5, dtype=np.float32),
                    items.astype(float))
    return replace(data, context=ctx)


def counts(m: sp.csr_matrix) -> list[int]:
    return np.diff(m.indptr).tolist()


def test_random_split_counts_per_user():
    # 10 -> 8/1/1; 5 -> 3/1/1 (0.5 rounds up); 2 -> 1/0/1 (one must stay in train)
    s = random_split(dataset([10, 5, 2]), 0.1, 0.1, seed=0)
    assert counts(s.train) == [8, 3, 1]
    assert counts(s.validation) == [1, 1, 0]
    assert counts(s.test) == [1, 1, 1]


def test_random_split_partitions_every_pair():
    data = dataset([10, 7, 20, 5])
    s = random_split(data, seed=4)
    total = s.train + s.validation + s.test
    assert total.nnz == data.n_pairs
    assert (total != data.matrix()).nnz == 0
    assert s.train.multiply(s.test).nnz == 0
    assert s.train.multiply(s.validation).nnz == 0
    assert s.validation.multiply(s.test).nnz == 0


def test_random_split_is_seeded():
    data = dataset([30, 30, 30])
    a, b, c = (random_split(data, seed=s) for s in (1, 1, 2))
    assert (a.test != b.test).nnz == 0
    assert (a.test != c.test).nnz > 0


def test_no_validation_part():
    s = make_split(dataset([10]), "random", validation=0.0, test=0.2)
    assert counts(s.validation) == [0]
    assert counts(s.test) == [2]


def test_temporal_split_holds_out_most_recent():
    s = temporal_split(dataset([10, 5]), 0.1, 0.1)
    assert s.test[0].indices.tolist() == [9]
    assert s.validation[0].indices.tolist() == [8]
    assert s.test[1].indices.tolist() == [4]
    assert s.validation[1].indices.tolist() == [3]
    assert sorted(s.train[1].indices.tolist()) == [0, 1, 2]


def test_cold_item_split_moves_all_pairs_of_cold_items():
    data = dataset([20, 20, 20], n_items=20)
    s = cold_item_split(data, validation=0.1, test=0.2, seed=3)
    assert s.cold_items.size == 4
    test_items = set(s.test.indices.tolist())
    assert test_items == set(s.cold_items.tolist())
    assert not test_items & set(s.train.indices.tolist())
    assert not test_items & set(s.validation.indices.tolist())
    val_items = set(s.validation.indices.tolist())
    assert len(val_items) == 2
    assert not val_items & set(s.train.indices.tolist())
    # Every pair of a cold item is in test: 3 users each.
    assert s.test.nnz == 4 * 3
    assert s.shape == (3, 20)  # cold items stay in the catalogue


def test_bad_fractions_and_kind():
    with pytest.raises(ValidationFailed):
        random_split(dataset([5]), 0.6, 0.5)
    with pytest.raises(ValidationFailed):
        make_split(dataset([5]), "bogus")


def test_filter_min_positives_reindexes():
    data = dataset([6, 4, 5], n_items=10)
    f = filter_min_positives(data, 5)
    assert f.user_ids.tolist() == ["u0", "u2"]
    assert f.item_ids.tolist() == [f"i{i}" for i in range(6)]  # items 6..9 had no positives
    assert f.n_pairs == 11
    kept = filter_min_positives(data, 5, keep_all_items=True)
    assert kept.n_items == 10


def test_holdout_matrix_keeps_light_users_whole():
    m = dataset([10, 3]).matrix()
    train, held = holdout_matrix(m, fraction=0.2, min_positives=5, seed=0)
    assert counts(held) == [2, 0]
    assert counts(train) == [8, 3]
    assert (train + held != m).nnz == 0


def test_context_is_split_on_its_own_and_never_a_target():
    plain = dataset([10, 5])
    data = with_context(plain, [10, 3])
    s = random_split(data, 0.1, 0.1, seed=0)
    # The positive parts are those of the same data without context.
    p = random_split(plain, 0.1, 0.1, seed=0)
    assert (s.validation != p.validation).nnz == 0 and (s.test != p.test).nnz == 0
    # Targets hold positives only; train holds train positives + train context.
    assert s.validation.indices.max() < 20 and s.test.indices.max() < 20
    ctx_train = s.train[:, 20:]
    assert counts(ctx_train) == [8, 1]  # 10 -> 8/1/1, 3 -> 1/1/1
    assert set(np.unique(ctx_train.data).tolist()) == {0.5}
    assert p.train[:, 20:].nnz == 0 and (s.train[:, :20] != p.train[:, :20]).nnz == 0
    assert s.summary()["train"] == p.train.nnz
    assert (s.summary()["train_context"], s.summary()["validation_context"],
            s.summary()["test_context"]) == (9, 2, 2)
    # The final fit adds validation positives and validation context; test context stays out.
    final = s.train_validation()
    assert final.nnz == p.train_validation().nnz + 9 + 2
    assert counts(final[:, 20:]) == [9, 2]


def test_temporal_split_holds_out_most_recent_context():
    s = temporal_split(with_context(dataset([10]), [10]), 0.1, 0.1)
    assert sorted(s.train[0, 20:].indices.tolist()) == list(range(8))  # items 20..27
    assert s.validation_context[0].indices.tolist() == [28]


def test_cold_item_split_holds_out_context_of_cold_items():
    # Users 0 and 1 like items 0..9; user 2 has rated every one of them low (context).
    data = replace(dataset([10, 10, 0], n_items=10), context=PairTable(
        np.full(10, 2), np.arange(10), np.ones(10, dtype=np.float32), np.zeros(10)))
    s = cold_item_split(data, validation=0.1, test=0.2, seed=3)
    assert s.cold_items.size == 2
    assert not set(s.cold_items.tolist()) & set(s.train.indices.tolist())
    assert s.summary()["test_context"] == 2 and s.summary()["validation_context"] == 1
    assert s.train[2].nnz == 7  # user 2's context on the 7 warm items


def test_filter_min_positives_drops_context_of_dropped_users_and_items():
    data = with_context(dataset([6, 4], n_items=30), [2, 2])
    f = filter_min_positives(data, 5)
    assert f.user_ids.tolist() == ["u0"]
    # Context items 20, 21 have no positive pair: dropped from the catalogue, and so is
    # their context.
    assert f.context.size == 0
    kept = filter_min_positives(data, 5, keep_all_items=True)
    assert kept.context.size == 2 and kept.context.users.tolist() == [0, 0]
