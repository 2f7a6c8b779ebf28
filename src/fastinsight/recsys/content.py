"""Content embeddings of items: text and category features for cold start.

An encoder turns item metadata (:class:`ItemContent`) into one float32 row per item,
L2-normalised (rows of items with no usable metadata stay all-zero). Encoders are
fitted on the catalogue once, then transform any item, including items created after
fitting, without refitting. They persist as ``encoder.json`` + ``encoder.npz`` in a
directory (never pickle); :func:`load_encoder` dispatches on the stored ``kind``
through :data:`ENCODERS`.

The default (:func:`default_content_encoder`) concatenates a TF-IDF + truncated SVD
embedding of all text with a multi-hot encoding of categories and tags.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np
import scipy.sparse as sp

from fastinsight.errors import ModelError

log = logging.getLogger(__name__)

ENCODER_META = "encoder.json"
ENCODER_ARRAYS = "encoder.npz"


@dataclass(frozen=True, slots=True)
class ItemContent:
    """The metadata of one item that content encoders read."""

    item_id: str
    title: str = ""
    description: str = ""
    categories: tuple[str, ...] = field(default_factory=tuple)
    tags: tuple[str, ...] = field(default_factory=tuple)

    def text(self) -> str:
        return " ".join([self.title, self.description, *self.categories, *self.tags]).strip()


@runtime_checkable
class ContentEncoder(Protocol):
    """Metadata -> float32 rows; fitted once, then transforms unseen items too."""

    kind: ClassVar[str]

    @property
    def dim(self) -> int: ...

    def fit(self, items: Sequence[ItemContent]) -> Self: ...

    def transform(self, items: Sequence[ItemContent]) -> np.ndarray: ...

    def save(self, directory: Path) -> None: ...

    @classmethod
    def load(cls, directory: Path) -> Self: ...


# An encoder class, or "module:Class" for one whose module is imported only when such an
# encoder is loaded.
EncoderEntry = type[ContentEncoder] | str
EncoderKinds = Mapping[str, EncoderEntry]


def load_encoder(directory: Path, kinds: EncoderKinds | None = None) -> ContentEncoder:
    """Load the encoder saved in ``directory``, dispatching on its stored ``kind``.

    ``kinds`` defaults to :data:`ENCODERS`; pass a mapping to load kinds of your own.
    """
    kinds = ENCODERS if kinds is None else kinds
    kind = read_encoder_meta(directory).get("kind")
    entry = kinds.get(kind) if isinstance(kind, str) else None
    if entry is None:
        raise ModelError(f"{directory}: unknown content encoder kind {kind!r}")
    cls: type[ContentEncoder]
    if isinstance(entry, str):
        module_name, _, class_name = entry.partition(":")
        cls = getattr(importlib.import_module(module_name), class_name)
    else:
        cls = entry
    if getattr(cls, "kind", None) != kind:
        raise ModelError(f"content encoder {cls.__name__} does not declare kind {kind!r}")
    if cls is ConcatEncoder:  # its parts are loaded with the same kinds
        return ConcatEncoder.load(directory, kinds)
    return cls.load(directory)


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Row-wise unit length; all-zero rows stay zero."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    out = np.zeros_like(x)
    np.divide(x, norms, out=out, where=norms > 0)
    return out


def read_encoder_meta(directory: Path) -> dict[str, Any]:
    path = directory / ENCODER_META
    if not path.exists():
        raise ModelError(f"{directory}: no {ENCODER_META}")
    meta: dict[str, Any] = json.loads(path.read_text())
    return meta


def write_encoder_files(
    directory: Path, kind: str, config: dict[str, Any], arrays: dict[str, np.ndarray]
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / ENCODER_META).write_text(json.dumps({"kind": kind, "config": config}, indent=2))
    np.savez(directory / ENCODER_ARRAYS, **arrays)  # type: ignore[arg-type]


def read_encoder_arrays(directory: Path) -> dict[str, np.ndarray]:
    with np.load(directory / ENCODER_ARRAYS, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _check_fitted(fitted: bool, name: str) -> None:
    if not fitted:
        raise ModelError(f"{name} is not fitted")


class TfidfSvdEncoder:
    """TF-IDF over all text of an item, reduced to ``dim`` dimensions by truncated SVD.

    scikit-learn fits the vocabulary, idf and SVD basis; the transform is done here
    from those arrays, so a loaded encoder computes exactly what the fitted one did.
    When the corpus is too small for ``dim`` components the rest are zero.
    """

    kind: ClassVar[str] = "tfidf_svd"

    def __init__(
        self, dim: int = 64, max_features: int = 20_000, min_df: int = 1, seed: int = 0
    ) -> None:
        if dim < 1:
            raise ValueError("dim must be >= 1")
        self._dim = dim
        self.max_features = max_features
        self.min_df = min_df
        self.seed = seed
        self.vocabulary: dict[str, int] = {}
        self.idf = np.zeros(0, dtype=np.float32)
        self.components = np.zeros((0, 0), dtype=np.float32)
        self._fitted = False

    @property
    def dim(self) -> int:
        return self._dim

    def _config(self) -> dict[str, Any]:
        return {"dim": self._dim, "max_features": self.max_features, "min_df": self.min_df,
                "seed": self.seed}

    @staticmethod
    def _analyzer() -> Callable[[str], list[str]]:
        from sklearn.feature_extraction.text import TfidfVectorizer

        analyzer: Callable[[str], list[str]] = TfidfVectorizer(
            strip_accents="unicode", lowercase=True, stop_words="english"
        ).build_analyzer()
        return analyzer

    def fit(self, items: Sequence[ItemContent]) -> Self:
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        docs = [item.text() for item in items]
        vectorizer = TfidfVectorizer(
            strip_accents="unicode", lowercase=True, stop_words="english", sublinear_tf=True,
            min_df=self.min_df, max_features=self.max_features, dtype=np.float32,
        )
        try:
            tfidf = vectorizer.fit_transform(docs)
        except ValueError:  # empty vocabulary: no item has usable text
            self.vocabulary, self.idf = {}, np.zeros(0, dtype=np.float32)
            self.components = np.zeros((0, 0), dtype=np.float32)
            self._fitted = True
            return self
        self.vocabulary = {str(t): int(i) for t, i in vectorizer.vocabulary_.items()}
        self.idf = np.asarray(vectorizer.idf_, dtype=np.float32)
        k = min(self._dim, min(tfidf.shape) - 1)
        if k >= 1:
            svd = TruncatedSVD(n_components=k, algorithm="randomized", random_state=self.seed)
            svd.fit(tfidf)
            self.components = np.asarray(svd.components_, dtype=np.float32)
        else:
            self.components = np.zeros((0, len(self.vocabulary)), dtype=np.float32)
        self._fitted = True
        log.info("tfidf_svd fit docs=%d terms=%d components=%d", len(docs), len(self.idf), k)
        return self

    def tfidf(self, items: Sequence[ItemContent]) -> sp.csr_matrix:
        """The L2-normalised sublinear TF-IDF rows over the fitted vocabulary."""
        _check_fitted(self._fitted, "tfidf_svd encoder")
        analyzer = self._analyzer()
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        for r, item in enumerate(items):
            counts = Counter(
                self.vocabulary[t] for t in analyzer(item.text()) if t in self.vocabulary
            )
            for col, count in counts.items():
                rows.append(r)
                cols.append(col)
                vals.append(1.0 + float(np.log(count)))
        mat = sp.csr_matrix(
            (np.asarray(vals, dtype=np.float32), (rows, cols)),
            shape=(len(items), len(self.vocabulary)),
        )
        mat = sp.csr_matrix(mat.multiply(self.idf[None, :]), dtype=np.float32)
        norms = np.sqrt(np.asarray(mat.multiply(mat).sum(axis=1))).ravel()
        norms[norms == 0] = 1.0
        return sp.csr_matrix(sp.diags(1.0 / norms) @ mat, dtype=np.float32)

    def transform(self, items: Sequence[ItemContent]) -> np.ndarray:
        out = np.zeros((len(items), self._dim), dtype=np.float32)
        if self.components.shape[0] and len(items):
            reduced = np.asarray(self.tfidf(items) @ self.components.T, dtype=np.float32)
            out[:, : reduced.shape[1]] = reduced
        else:
            _check_fitted(self._fitted, "tfidf_svd encoder")
        return l2_normalise(out)

    def save(self, directory: Path) -> None:
        _check_fitted(self._fitted, "tfidf_svd encoder")
        terms = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        write_encoder_files(directory, self.kind, self._config(), {
            "terms": np.asarray(terms, dtype=np.str_), "idf": self.idf,
            "components": self.components,
        })

    @classmethod
    def load(cls, directory: Path) -> Self:
        meta = read_encoder_meta(directory)
        enc = cls(**meta["config"])
        arrays = read_encoder_arrays(directory)
        enc.vocabulary = {str(t): i for i, t in enumerate(arrays["terms"].tolist())}
        enc.idf = arrays["idf"].astype(np.float32)
        enc.components = arrays["components"].astype(np.float32)
        enc._fitted = True
        return enc


class MultiHotEncoder:
    """One column per category (``c:name``) and tag (``t:name``), rows L2-normalised.

    The vocabulary keeps the ``max_vocab`` most frequent labels seen at least
    ``min_count`` times (ties broken by name); unseen labels of new items are ignored.
    """

    kind: ClassVar[str] = "multi_hot"

    def __init__(self, max_vocab: int = 256, min_count: int = 1) -> None:
        self.max_vocab = max_vocab
        self.min_count = min_count
        self.vocabulary: dict[str, int] = {}
        self._fitted = False

    @property
    def dim(self) -> int:
        return len(self.vocabulary)

    @staticmethod
    def labels(item: ItemContent) -> set[str]:
        cats = {f"c:{c.strip().lower()}" for c in item.categories if c.strip()}
        return cats | {f"t:{t.strip().lower()}" for t in item.tags if t.strip()}

    def fit(self, items: Sequence[ItemContent]) -> Self:
        counts = Counter(label for item in items for label in self.labels(item))
        kept = sorted(
            (label for label, n in counts.items() if n >= self.min_count),
            key=lambda label: (-counts[label], label),
        )[: self.max_vocab]
        self.vocabulary = {label: i for i, label in enumerate(kept)}
        self._fitted = True
        return self

    def transform(self, items: Sequence[ItemContent]) -> np.ndarray:
        _check_fitted(self._fitted, "multi_hot encoder")
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        for r, item in enumerate(items):
            cols = [self.vocabulary[x] for x in self.labels(item) if x in self.vocabulary]
            out[r, cols] = 1.0
        return l2_normalise(out)

    def save(self, directory: Path) -> None:
        _check_fitted(self._fitted, "multi_hot encoder")
        labels = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        write_encoder_files(directory, self.kind, {"max_vocab": self.max_vocab, "min_count": self.min_count},
               {"labels": np.asarray(labels, dtype=np.str_)})

    @classmethod
    def load(cls, directory: Path) -> Self:
        enc = cls(**read_encoder_meta(directory)["config"])
        labels = read_encoder_arrays(directory)["labels"].tolist()
        enc.vocabulary = {str(x): i for i, x in enumerate(labels)}
        enc._fitted = True
        return enc


class ConcatEncoder:
    """Side-by-side blocks of other encoders, each scaled by its weight, rows unit length."""

    kind: ClassVar[str] = "concat"

    def __init__(self, parts: Sequence[ContentEncoder], weights: Sequence[float] | None = None):
        if not parts:
            raise ValueError("ConcatEncoder needs at least one part")
        self.parts = list(parts)
        self.weights = [1.0] * len(parts) if weights is None else [float(w) for w in weights]
        if len(self.weights) != len(self.parts):
            raise ValueError("one weight per part")

    @property
    def dim(self) -> int:
        return sum(p.dim for p in self.parts)

    def fit(self, items: Sequence[ItemContent]) -> Self:
        for part in self.parts:
            part.fit(items)
        return self

    def transform(self, items: Sequence[ItemContent]) -> np.ndarray:
        blocks = [w * p.transform(items) for p, w in zip(self.parts, self.weights, strict=True)]
        return l2_normalise(np.concatenate(blocks, axis=1))

    def save(self, directory: Path) -> None:
        for i, part in enumerate(self.parts):
            part.save(directory / f"part{i}")
        write_encoder_files(directory, self.kind, {"weights": self.weights, "n_parts": len(self.parts)}, {})

    @classmethod
    def load(cls, directory: Path, kinds: EncoderKinds | None = None) -> Self:
        config = read_encoder_meta(directory)["config"]
        parts = [load_encoder(directory / f"part{i}", kinds) for i in range(int(config["n_parts"]))]
        return cls(parts, config["weights"])


# Every encoder kind, built once; never changed at run time.
ENCODERS: EncoderKinds = MappingProxyType({
    TfidfSvdEncoder.kind: TfidfSvdEncoder,
    MultiHotEncoder.kind: MultiHotEncoder,
    ConcatEncoder.kind: ConcatEncoder,
    "sentence": "fastinsight.recsys.content_sentence:SentenceEmbeddingEncoder",
})


def default_content_encoder(
    text_dim: int = 64, max_labels: int = 256, seed: int = 0, label_weight: float = 1.0
) -> ConcatEncoder:
    """TF-IDF+SVD text embedding next to a category/tag multi-hot block."""
    return ConcatEncoder(
        [TfidfSvdEncoder(dim=text_dim, seed=seed), MultiHotEncoder(max_vocab=max_labels)],
        [1.0, label_weight],
    )
