"""Optional content encoder: sentence embeddings from a local sentence-transformers model.

Listed as kind ``sentence`` in ``content.ENCODERS``; ``load_encoder`` imports this
module only when such an encoder is loaded. Nothing is downloaded: the model must already be on disk.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from fastinsight.errors import ModelError
from fastinsight.recsys.content import (
    ItemContent,
    l2_normalise,
    read_encoder_meta,
    write_encoder_files,
)


class SentenceEmbeddingEncoder:
    """Sentence embeddings from a locally installed ``sentence-transformers`` model.

    Optional: nothing is downloaded; ``model`` must be a local directory (or a name
    already in the local cache). Fitting is a no-op; only the model reference is saved.
    """

    kind: ClassVar[str] = "sentence"

    def __init__(self, model: str, batch_size: int = 64) -> None:
        self.model = model
        self.batch_size = batch_size
        self._encoder: Any = None
        self._dim: int | None = None

    def _load(self) -> Any:
        if self._encoder is None:
            try:
                from sentence_transformers import SentenceTransformer  # type: ignore[import-not-found]
            except ImportError as exc:
                raise ModelError(
                    "the 'sentence' content encoder needs the sentence-transformers package"
                ) from exc
            self._encoder = SentenceTransformer(self.model, local_files_only=True)
        return self._encoder

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self._load().get_sentence_embedding_dimension())
        return self._dim

    def fit(self, items: Sequence[ItemContent]) -> Self:
        self._load()
        return self

    def transform(self, items: Sequence[ItemContent]) -> np.ndarray:
        vectors = self._load().encode(
            [item.text() for item in items], batch_size=self.batch_size,
            normalize_embeddings=True, show_progress_bar=False,
        )
        return l2_normalise(np.asarray(vectors, dtype=np.float32).reshape(len(items), -1))

    def save(self, directory: Path) -> None:
        write_encoder_files(directory, self.kind, {"model": self.model, "batch_size": self.batch_size}, {})

    @classmethod
    def load(cls, directory: Path) -> Self:
        return cls(**read_encoder_meta(directory)["config"])
