"""Blend components fitted once per evaluation: reused on equal inputs, never on others."""

import numpy as np
import scipy.sparse as sp

from fastinsight.recsys import registry
from fastinsight.recsys.evaluation.experiment import EvaluationConfig, evaluate_dataset
from fastinsight.recsys.fit_reuse import reusing_component_fits

from .helpers import blocks

COMPONENTS = [{"algorithm": "ease", "params": {"l2": 1.0}},
              {"algorithm": "itemknn", "params": {"k": 5}}]


def _stacked():
    return registry.create("stacked", {"components": COMPONENTS, "k": 2, "min_positives": 3})


def test_blends_reuse_component_fits_on_the_same_matrix_only():
    matrix = blocks((10, 8), 6).matrix()
    alone = _stacked().fit(matrix)
    with reusing_component_fits() as reuse:
        first = _stacked().fit(matrix)
        made = reuse.made
        # Both components on the holdout, then those with a weight refitted on all of it.
        assert made == 2 + len(first.components) and reuse.reused == 0
        again = _stacked().fit(matrix)
        assert reuse.made == made and reuse.reused == made
        users = np.arange(matrix.shape[0])
        np.testing.assert_allclose(again.score_users(users), first.score_users(users))
        np.testing.assert_allclose(alone.score_users(users), first.score_users(users),
                                   rtol=1e-5, atol=1e-6)
        changed = sp.lil_matrix(matrix)
        changed[0, 7] = 1.0  # one more interaction: every fit is made again
        _stacked().fit(sp.csr_matrix(changed))
        assert reuse.made >= made + 3
    # Outside the block nothing is kept.
    fresh = _stacked().fit(matrix).components.values()
    assert all(a is not b for a, b in zip(fresh, first.components.values(), strict=True))


def test_an_evaluation_reuses_fits_across_blends_and_ablations():
    cfg = EvaluationConfig(
        protocol="binary", algorithms=("itemknn", "ease", "edlae", "stacked"), ks=(2,),
        metric="ndcg@2", search=False, ablate=("itemknn",),
    )
    report = evaluate_dataset(blocks((12, 8), 10), cfg).report
    fits = report["timings"]["blend_component_fits"]
    # The ablation's holdout fits and refits of ease and edlae are the stack's own.
    assert fits["reused"] >= 4 and fits["made"] >= 6
