"""Models by name: create from (algorithm, params), load from a saved directory.

:data:`MODELS` is an immutable :class:`ModelRegistry` built once, never changed at run
time. Models whose imports are cheap (NumPy/SciPy/implicit) are listed as classes;
models that pull in a heavy framework as ``"module:Class"``, imported on first use, so
importing this module (and serving a popularity or ALS model) never starts Keras/JAX.
Adding a model is one line in :data:`MODELS`; the shared contract test suite picks it
up from :func:`algorithms`. Code that needs other models (tests, plug-ins) builds its
own registry with :meth:`ModelRegistry.extended` and passes it explicitly.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pydantic import ValidationError

from fastinsight.errors import ModelError, ValidationFailed
from fastinsight.recsys.als import ALSRecommender
from fastinsight.recsys.base import META_FILE, ModelParams, Recommender
from fastinsight.recsys.ease import EASERecommender
from fastinsight.recsys.edlae import EDLAERecommender
from fastinsight.recsys.itemknn import ItemKNNRecommender
from fastinsight.recsys.popularity import PopularityRecommender, TrendingRecommender

log = logging.getLogger(__name__)

# A model class, or "module:Class" for one imported only when it is first used.
Entry = type[Recommender[Any]] | str


@dataclass(frozen=True)
class ModelRegistry:
    """Algorithm name -> model; read-only once built."""

    entries: Mapping[str, Entry]

    def __post_init__(self) -> None:
        object.__setattr__(self, "entries", MappingProxyType(dict(self.entries)))

    def extended(self, extra: Mapping[str, Entry]) -> ModelRegistry:
        """A new registry with ``extra`` added (or replacing entries of the same name)."""
        return ModelRegistry({**self.entries, **extra})

    def names(self) -> list[str]:
        """Every algorithm name, sorted (lazy ones included, not imported)."""
        return sorted(self.entries)

    def get(self, name: str) -> type[Recommender[Any]]:
        """The model class for ``name``; ``ValidationFailed`` if there is none."""
        entry = self.entries.get(name)
        if entry is None:
            raise ValidationFailed.field(
                "algorithm", f"unknown algorithm {name!r}; choose one of {', '.join(self.names())}"
            )
        if not isinstance(entry, str):
            return entry
        module_name, _, class_name = entry.partition(":")
        # Imported modules are cached by Python itself; nothing is cached here.
        cls: type[Recommender[Any]] = getattr(importlib.import_module(module_name), class_name)
        if getattr(cls, "algorithm", None) != name:
            raise ModelError(f"{entry} declares algorithm {getattr(cls, 'algorithm', None)!r}")
        return cls

    def params_schema(self, name: str) -> dict[str, Any]:
        """JSON schema of an algorithm's parameters (for docs and admin forms)."""
        return self.get(name).params_class.model_json_schema()

    def create(self, algorithm: str, params: Mapping[str, Any] | None = None) -> Recommender[Any]:
        """An unfitted model; bad names or parameters raise ``ValidationFailed`` (HTTP 422)."""
        return self.get(algorithm)(self.validate_params(algorithm, params))

    def validate_params(self, algorithm: str, params: Mapping[str, Any] | None = None,
                        strict: bool = False) -> ModelParams:
        """``params`` as the algorithm's typed parameters; ``ValidationFailed`` naming the
        field (``params.<name>``, or ``algorithm``) when they do not fit. ``strict``: the
        JSON types as declared (``true`` is not ``1``, ``"5"`` is not ``5``), for
        parameters a client sent."""
        cls = self.get(algorithm)
        try:
            if strict:
                return cls.params_class.model_validate_json(json.dumps(dict(params or {})), strict=True)
            return cls.params_class.model_validate(dict(params or {}))
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

    def load(self, directory: Path, *, mmap: bool = False) -> Recommender[Any]:
        """Load whatever model ``directory`` holds, dispatching on ``meta.json``; ``mmap``
        maps its arrays read-only (see ``Recommender.load``)."""
        try:
            meta = json.loads((Path(directory) / META_FILE).read_text())
        except (OSError, ValueError) as exc:
            raise ModelError(f"{directory}: cannot read {META_FILE}: {exc}") from exc
        algorithm = meta.get("algorithm") if isinstance(meta, dict) else None
        if not isinstance(algorithm, str):
            raise ModelError(f"{directory}: {META_FILE} names no algorithm")
        try:
            cls = self.get(algorithm)
        except ValidationFailed as exc:
            raise ModelError(f"{directory}: {exc.message}") from exc
        try:
            return cls.load(Path(directory), mmap=mmap)
        except (OSError, KeyError, ValueError) as exc:
            raise ModelError(f"{directory}: cannot load {algorithm} model: {exc}") from exc


MODELS = ModelRegistry({
    **{
        cls.algorithm: cls
        for cls in (
            PopularityRecommender,
            TrendingRecommender,
            ItemKNNRecommender,
            EASERecommender,
            EDLAERecommender,
            ALSRecommender,
        )
    },
    "two_tower": "fastinsight.recsys.two_tower:TwoTower",
    "hybrid": "fastinsight.recsys.hybrid:HybridRecommender",
    "stacked": "fastinsight.recsys.stacked:StackedRecommender",
    "multvae": "fastinsight.recsys.multvae:MultVAERecommender",
})


def algorithms() -> list[str]:
    """Every algorithm name in :data:`MODELS`, sorted."""
    return MODELS.names()


def get_algorithm(name: str) -> type[Recommender[Any]]:
    return MODELS.get(name)


def params_schema(name: str) -> dict[str, Any]:
    return MODELS.params_schema(name)


def create(algorithm: str, params: Mapping[str, Any] | None = None) -> Recommender[Any]:
    return MODELS.create(algorithm, params)


def validate_params(algorithm: str, params: Mapping[str, Any] | None = None,
                    strict: bool = False) -> ModelParams:
    return MODELS.validate_params(algorithm, params, strict)


def load_model(directory: Path, *, mmap: bool = False) -> Recommender[Any]:
    return MODELS.load(directory, mmap=mmap)
