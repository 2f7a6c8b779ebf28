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

DEFAULT_SPACES: dict[str, dict[str, list[Any]]] = {
    "popularity": {"measure": ["users", "weight"]},
    "itemknn": {
        "k": [20, 50, 100, 200, 400],
        "weighting": ["cosine", "bm25"],
        "shrink": [0.0, 10.0, 50.0],
    },
    "ease": {"l2": [50.0, 100.0, 200.0, 300.0, 500.0, 1000.0, 2000.0]},
    "als": {
        "factors": [32, 64, 128],
        "regularization": [0.01, 0.05, 0.1, 0.5],
        "alpha": [1.0, 5.0, 10.0, 20.0],
    },
    "two_tower": {
        "dim": [32, 64, 128],
        "temperature": [0.05, 0.1],
        "learning_rate": [0.002, 0.005, 0.01],
    },
    "implicit_als": {
        "factors": [32, 64, 128],
        "regularization": [0.01, 0.05, 0.1, 0.5],
        "alpha": [1.0, 5.0, 10.0, 20.0],
    },
    "implicit_bpr": {
        "factors": [32, 64, 128],
        "learning_rate": [0.005, 0.01, 0.05],
        "regularization": [0.001, 0.01, 0.1],
        "iterations": [100, 300],
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
