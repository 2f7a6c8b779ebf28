"""ALS specifics: fold-in equals implicit's own least-squares user solve."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from fastinsight.recsys.als import ALSParams, ALSRecommender

from .conftest import block_matrix


def random_matrix() -> sp.csr_matrix:
    m = sp.random(120, 40, density=0.1, random_state=5, format="csr", dtype=np.float32)
    m.data = np.ceil(m.data * 4).astype(np.float32)
    return m


def test_fold_in_matches_implicit_recalculate_user():
    params = ALSParams(factors=6, regularization=0.1, alpha=2.0, iterations=10, random_state=3)
    ours = ALSRecommender(params).fit(random_matrix())
    ref = AlternatingLeastSquares(factors=6, regularization=0.1, alpha=2.0, random_state=3)
    ref.item_factors = ours.item_factors().copy()
    ref.user_factors = ours.user_factors().copy()
    histories = random_matrix()[10:20]
    with threadpool_limits(1, "blas"):
        expected = ref.recalculate_user(np.arange(10), histories)
    np.testing.assert_allclose(ours.fold_in(histories), expected, rtol=1e-3, atol=1e-4)


def test_fold_in_of_a_training_row_reproduces_the_trained_factors():
    model = ALSRecommender(ALSParams(factors=8, iterations=30, use_cg=False)).fit(block_matrix())
    trained = model.user_factors()[:20]
    folded = model.fold_in(block_matrix()[:20])
    cos = np.sum(trained * folded, axis=1) / (
        np.linalg.norm(trained, axis=1) * np.linalg.norm(folded, axis=1)
    )
    assert cos.min() > 0.99


def test_thread_count_does_not_change_the_result():
    one = ALSRecommender(ALSParams(factors=8, num_threads=1)).fit(random_matrix())
    two = ALSRecommender(ALSParams(factors=8, num_threads=2)).fit(random_matrix())
    np.testing.assert_array_equal(one.item_factors(), two.item_factors())


def test_empty_history_folds_in_to_zero():
    model = ALSRecommender(ALSParams(factors=4)).fit(block_matrix())
    assert not model.fold_in(sp.csr_matrix((2, 12), dtype=np.float32)).any()


def test_singular_fold_in_falls_back_to_the_least_norm_solution():
    # More factors than items and no regularisation: the normal equations are singular,
    # so the Cholesky solve fails and the least-norm solution must be used instead.
    model = ALSRecommender(ALSParams(factors=16, regularization=0.0, iterations=5)).fit(block_matrix())
    history = block_matrix()[:1]
    folded = model.fold_in(history)
    assert np.isfinite(folded).all() and folded.any()
    y = model.item_factors().astype(np.float64)
    conf = model.params.alpha * history.data.astype(np.float64)
    seen = y[history.indices]
    lhs = y.T @ y + (seen.T * (conf - 1.0)) @ seen
    expected = np.linalg.lstsq(lhs, seen.T @ conf, rcond=None)[0]
    np.testing.assert_allclose(folded[0], expected, rtol=1e-4, atol=1e-5)


def test_a_loaded_model_has_its_fold_in_gram_ready(tmp_path: Path) -> None:
    """The Gram every fold-in starts from is computed at load (mapped files included), not
    in the first live answer; and it is the one fitting would have built."""
    model = ALSRecommender(ALSParams(factors=6, iterations=5)).fit(random_matrix())
    model.save(tmp_path / "als")
    loaded = ALSRecommender.load(tmp_path / "als", mmap=True)
    assert loaded._gram is not None
    model._gram = None
    np.testing.assert_allclose(loaded._gram, model._item_gram())
