"""Blend components fitted once per evaluation, and reused by every blend that needs them.

A blend fits each component twice (on a holdout of its fit data, then on all of it),
and an evaluation builds several blends over the same tuned components: the hybrid's
options, the stacked blend, and each blend again without one model (the paired
ablations). The fits are the same each time (same algorithm, parameters, matrix and
side data), so inside :func:`reusing_component_fits` a blend takes a component already
fitted on the same inputs instead of fitting it again. The key holds a digest of the
matrix and of the side data, never an object's identity, so a different matrix is
never served a stale fit. Outside the context (serving, training jobs) nothing is kept.
Only the offline evaluation opens one (:func:`.evaluation.experiment.evaluate_dataset`):
``train --select`` runs on a production catalogue, where holding every component's fit
at once (a dense EASE is 4 bytes x items²) could exceed the memory a fit is sized for.

The reuse is scoped to one ``with`` block (a context variable, not module state), and
a fitted component is read-only once fitted: blends only score it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from fastinsight.recsys.base import Recommender
from fastinsight.recsys.side import SideData


@dataclass
class FitReuse:
    """Fitted components by key, and how often a fit was reused or made."""

    fitted: dict[str, Recommender[Any]] = field(default_factory=dict)
    reused: int = 0
    made: int = 0


_ACTIVE: ContextVar[FitReuse | None] = ContextVar("fastinsight_fit_reuse", default=None)


@contextmanager
def reusing_component_fits() -> Iterator[FitReuse]:
    """Within the block, blends share component fits made on the same inputs."""
    reuse = FitReuse()
    token = _ACTIVE.set(reuse)
    try:
        yield reuse
    finally:
        _ACTIVE.reset(token)


def _digest_array(h: Any, array: np.ndarray) -> None:
    h.update(str((array.dtype.str, array.shape)).encode())
    h.update(np.ascontiguousarray(array).tobytes())


def _digest(matrix: sp.csr_matrix, side: SideData) -> str:
    h = hashlib.blake2b(digest_size=20)
    csr = sp.csr_matrix(matrix)
    for part in (csr.indptr, csr.indices, csr.data):
        _digest_array(h, np.asarray(part))
    h.update(str(csr.shape).encode())
    if side.times is not None:
        times = sp.csr_matrix(side.times)
        for part in (times.indptr, times.indices, times.data):
            _digest_array(h, np.asarray(part))
    if side.content is not None:
        _digest_array(h, np.asarray(side.content.features))
        h.update(repr(side.content.encoder).encode())
    return h.hexdigest()


def fit_component(
    algorithm: str, params: dict[str, Any], matrix: sp.csr_matrix, side: SideData,
    make: Callable[[], Recommender[Any]],
) -> Recommender[Any]:
    """``make()`` fitted on ``matrix`` (side data already given to it), or, inside
    :func:`reusing_component_fits`, the same component fitted earlier on equal inputs."""
    reuse = _ACTIVE.get()
    if reuse is None:
        model = make()
        model.fit(matrix)
        return model
    key = json.dumps([algorithm, params, _digest(matrix, side)], sort_keys=True, default=str)
    kept = reuse.fitted.get(key)
    if kept is not None:
        reuse.reused += 1
        return kept
    model = make()
    model.fit(matrix)
    reuse.fitted[key] = model
    reuse.made += 1
    return model
