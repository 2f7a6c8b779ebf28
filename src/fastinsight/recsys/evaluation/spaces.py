"""Default hyper-parameter search spaces, per algorithm.

Values are discrete on purpose: a grid is reproducible, and ``random`` search visits
it in a seeded order until the time budget runs out. Keys a model does not declare
are dropped (with a warning), so a renamed parameter cannot silently break a search.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)

# Sized so that each grid completes in about a minute on two cores for a catalogue of a
# few thousand items (MovieLens small); larger data needs a larger budget or max_trials.
# The ALS space reaches 256 factors and 60 iterations: with at most 128 factors and 15
# iterations the chosen configuration sat on the edge of the grid, and a wider search of
# the reference (216 configurations) found it up to 10% better on MovieLens, which made
# our lead look larger than it is. 24 configurations, about 70 s on MovieLens small.
_MF_SPACE: dict[str, list[Any]] = {
    "factors": [128, 256],
    "regularization": [10.0, 20.0, 50.0],
    "alpha": [1.0, 5.0],
    "iterations": [15, 60],
}

SESSION_KEYS: tuple[str, ...] = ("session_gap_seconds", "session_weight")
# Sessions at 5 and 30 minutes, and off (a gap of 0, where the weight changes nothing:
# the runner scores such repeats once). Dropped when no interaction times are given.
_SESSION_SPACE: dict[str, list[Any]] = {
    "session_gap_seconds": [0.0, 300.0, 1800.0],
    "session_weight": [0.5, 1.0, 2.0],
}

# Parameters searched in a second stage, after the others (held at their defaults
# meanwhile), with the others at their best (``search.run_search``'s ``staged``). The
# ALS models search their sessions so: jointly, the 24-point grid would grow to 216
# trials; staged, it grows by 9 (7 distinct models). EASE, cheap to fit, searches them
# jointly.
STAGED: dict[str, tuple[str, ...]] = {"als": SESSION_KEYS, "implicit_als": SESSION_KEYS}

DEFAULT_SPACES: dict[str, dict[str, list[Any]]] = {
    "popularity": {"measure": ["users", "weight"]},
    # Both neighbour selections (source: our original; target: the usual item-kNN).
    # k from the largest down: each smaller k is cut from the fit before (one
    # similarity computation per weighting, besides the defaults' own fit).
    "itemknn": {"k": [1600, 400, 100], "weighting": ["cosine", "bm25"],
                "selection": ["source", "target"]},
    # 27 configurations, 21 distinct models (the 6 that repeat gap 0 are scored once).
    "ease": {"l2": [100.0, 200.0, 400.0], **_SESSION_SPACE},
    # EDLAE, RDLAE and DLAE through the bound on the diagonal (0: EDLAE, 1: DLAE's
    # ranking); dropout regularises popular items more. λ = 10 never won on MovieLens
    # (100 or 200 won on every seed), so the grid starts at 50. 45 configurations.
    "edlae": {
        "l2": [50.0, 100.0, 200.0],
        "dropout": [0.1, 0.25, 0.5],
        "max_diagonal": [0.0, 0.1, 0.2, 0.3, 1.0],
    },
    # Mult-VAE (Keras): the KL weight and the training length; 600-200-600 as published.
    "multvae": {"beta": [0.1, 0.2, 0.4], "epochs": [20, 50]},
    # Our ALS and the implicit reference search the same space, sessions included
    # (staged, see STAGED), so the two ALS rows differ by their implementations alone.
    "als": {**_MF_SPACE, **_SESSION_SPACE},
    "two_tower": {
        "dim": [32, 64, 128],
        "temperature": [0.05, 0.1],
        "learning_rate": [0.002, 0.005, 0.01],
        "user_ids": [True, False],
    },
    # The external references get the same space as our ALS (and a BPR one of similar
    # size): a reference tuned less than our models would flatter us.
    "implicit_als": {**_MF_SPACE, **_SESSION_SPACE},
    "implicit_bpr": {
        "factors": [64, 128],
        "learning_rate": [0.005, 0.01, 0.05],
        "regularization": [0.001, 0.01],
    },
}


def _declared_fields(algorithm: str) -> Sequence[str] | None:
    from fastinsight.recsys.evaluation.external import ImplicitRanker

    if algorithm in ImplicitRanker.kinds:
        return list(ImplicitRanker.kinds[algorithm].model_fields)
    try:
        from fastinsight.recsys import registry

        model = registry.create(algorithm, {})
    except Exception:
        return None
    return list(type(model.params).model_fields)


def default_space(algorithm: str) -> dict[str, list[Any]]:
    """The default space of ``algorithm``, limited to parameters the model declares."""
    space = DEFAULT_SPACES.get(algorithm, {})
    fields = _declared_fields(algorithm)
    if fields is None:
        return {}
    unknown = sorted(set(space) - set(fields))
    if unknown:
        log.warning("search space of %s: dropping undeclared parameters %s", algorithm, unknown)
    return {k: list(v) for k, v in space.items() if k in fields}
