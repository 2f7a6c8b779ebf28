"""Models by name: create from (algorithm, params), load from a saved directory.

``ALGORITHMS`` holds the models whose imports are cheap (NumPy/SciPy/implicit).
Models that pull in a heavy framework are listed in ``LAZY_ALGORITHMS`` as
``"module:Class"`` and imported on first use, so importing this module (and serving a
popularity or ALS model) never starts Keras/JAX. Registering a new model is one line
in either table; the shared contract test suite picks it up from :func:`algorithms`.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from fastinsight.errors import ModelError, ValidationFailed
from fastinsight.recsys.als import ALSRecommender
from fastinsight.recsys.base import META_FILE, Recommender
from fastinsight.recsys.ease import EASERecommender
from fastinsight.recsys.itemknn import ItemKNNRecommender
from fastinsight.recsys.popularity import PopularityRecommender, TrendingRecommender

log = logging.getLogger(__name__)

ALGORITHMS: dict[str, type[Recommender[Any]]] = {
    cls.algorithm: cls
    for cls in (
        PopularityRecommender,
        TrendingRecommender,
        ItemKNNRecommender,
        EASERecommender,
        ALSRecommender,
    )
}

LAZY_ALGORITHMS: dict[str, str] = {
    "two_tower": "fastinsight.recsys.two_tower:TwoTower",
    "hybrid": "fastinsight.recsys.hybrid:HybridRecommender",
}


def algorithms() -> list[str]:
    """Every registered algorithm name, sorted (lazy ones included, not imported)."""
    return sorted({*ALGORITHMS, *LAZY_ALGORITHMS})


def get_algorithm(name: str) -> type[Recommender[Any]]:
    """The model class for ``name``; ``ValidationFailed`` if there is none."""
    if name in ALGORITHMS:
        return ALGORITHMS[name]
    target = LAZY_ALGORITHMS.get(name)
    if target is None:
        raise ValidationFailed.field(
            "algorithm", f"unknown algorithm {name!r}; choose one of {', '.join(algorithms())}"
        )
    module_name, _, class_name = target.partition(":")
    cls: type[Recommender[Any]] = getattr(importlib.import_module(module_name), class_name)
    if getattr(cls, "algorithm", None) != name:
        raise ModelError(f"{target} declares algorithm {getattr(cls, 'algorithm', None)!r}")
    ALGORITHMS[name] = cls
    return cls


model_class = get_algorithm


def params_schema(name: str) -> dict[str, Any]:
    """JSON schema of an algorithm's parameters (for docs and admin forms)."""
    return get_algorithm(name).params_class.model_json_schema()


def create(algorithm: str, params: Mapping[str, Any] | None = None) -> Recommender[Any]:
    """An unfitted model; bad names or parameters raise ``ValidationFailed`` (HTTP 422)."""
    cls = get_algorithm(algorithm)
    try:
        typed = cls.params_class.model_validate(dict(params or {}))
    except ValidationError as exc:
        details = [
            {
                "field": ".".join(["params", *(str(p) for p in err["loc"])]),
                "message": err["msg"],
            }
            for err in exc.errors()
        ]
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details)
        raise ValidationFailed(f"invalid {algorithm} params: {summary}", details=details) from exc
    return cls(typed)


def load_model(directory: Path) -> Recommender[Any]:
    """Load whatever model ``directory`` holds, dispatching on ``meta.json``."""
    try:
        meta = json.loads((Path(directory) / META_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"{directory}: cannot read {META_FILE}: {exc}") from exc
    algorithm = meta.get("algorithm") if isinstance(meta, dict) else None
    if not isinstance(algorithm, str):
        raise ModelError(f"{directory}: {META_FILE} names no algorithm")
    try:
        cls = get_algorithm(algorithm)
    except ValidationFailed as exc:
        raise ModelError(f"{directory}: {exc.message}") from exc
    try:
        return cls.load(Path(directory))
    except (OSError, KeyError, ValueError) as exc:
        raise ModelError(f"{directory}: cannot load {algorithm} model: {exc}") from exc
