from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from fastinsight.errors import ModelError
from fastinsight.recsys import content as content_mod
from fastinsight.recsys.content import (
    ENCODERS,
    ConcatEncoder,
    ItemContent,
    MultiHotEncoder,
    TfidfSvdEncoder,
    default_content_encoder,
    load_encoder,
)
from fastinsight.recsys.content_sentence import SentenceEmbeddingEncoder

from .conftest import topic_of_item


def test_tfidf_matches_scikit_learn(items: list[ItemContent]) -> None:
    enc = TfidfSvdEncoder(dim=8).fit(items)
    ref = TfidfVectorizer(strip_accents="unicode", stop_words="english", sublinear_tf=True)
    expected = ref.fit_transform([i.text() for i in items]).toarray()
    order = [ref.vocabulary_[t] for t in sorted(enc.vocabulary, key=enc.vocabulary.__getitem__)]
    np.testing.assert_allclose(enc.tfidf(items).toarray(), expected[:, order], atol=1e-6)


def test_rows_are_unit_length_and_float32(items: list[ItemContent]) -> None:
    x = default_content_encoder(text_dim=8).fit(items).transform(items)
    assert x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)


def test_unseen_item_lands_next_to_its_topic(items: list[ItemContent]) -> None:
    enc = default_content_encoder(text_dim=8).fit(items)
    known = enc.transform(items)
    new = [
        ItemContent("n1", title="alien rocket", description="a planet in orbit"),  # text only
        ItemContent("n2", title="Untitled", categories=("horror",)),  # category only
        ItemContent("n3", title="chef bread", categories=("Cooking",), tags=("spice",)),
    ]
    vectors = enc.transform(new)
    for row, topic in zip(vectors, (0, 2, 3), strict=True):
        nearest = np.argsort(-(known @ row))[:5]
        assert {topic_of_item(int(i)) for i in nearest} == {topic}


def test_item_without_metadata_is_a_zero_row(items: list[ItemContent]) -> None:
    enc = default_content_encoder(text_dim=8).fit(items)
    row = enc.transform([ItemContent("empty", title="zzz unknownword")])
    assert row.shape == (1, enc.dim)
    assert not row.any()


def test_save_load_round_trip(items: list[ItemContent], tmp_path: Path) -> None:
    enc = default_content_encoder(text_dim=8).fit(items)
    enc.save(tmp_path / "enc")
    loaded = load_encoder(tmp_path / "enc")
    assert isinstance(loaded, ConcatEncoder)
    probe = [*items[:5], ItemContent("new", title="haunted crypt", tags=("ghost",))]
    np.testing.assert_array_equal(loaded.transform(probe), enc.transform(probe))
    assert loaded.dim == enc.dim
    # npz holds plain arrays only: loading never unpickles.
    with np.load(tmp_path / "enc" / "part0" / "encoder.npz", allow_pickle=False) as npz:
        assert npz["terms"].dtype.kind == "U"


def test_multi_hot_vocabulary_keeps_the_most_frequent_labels() -> None:
    items = [
        ItemContent("a", categories=("Drama",), tags=("x", "y")),
        ItemContent("b", categories=("drama", "War"), tags=("y",)),
        ItemContent("c", categories=("Drama",), tags=("z",)),
    ]
    enc = MultiHotEncoder(max_vocab=2).fit(items)
    assert list(enc.vocabulary) == ["c:drama", "t:y"]
    row = enc.transform([ItemContent("d", categories=("DRAMA", "unknown"), tags=("y",))])
    np.testing.assert_allclose(row, [[2**-0.5, 2**-0.5]], atol=1e-6)


def test_tiny_corpus_pads_to_the_requested_dim() -> None:
    items = [ItemContent("a", title="red apple"), ItemContent("b", title="green pear")]
    enc = TfidfSvdEncoder(dim=16).fit(items)
    out = enc.transform(items)
    assert out.shape == (2, 16)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_a_new_encoder_kind_plugs_into_the_registry(tmp_path: Path) -> None:
    class LengthEncoder:
        kind: ClassVar[str] = "test_length"
        dim = 1

        def fit(self, items: Sequence[ItemContent]) -> Self:
            return self

        def transform(self, items: Sequence[ItemContent]) -> np.ndarray:
            return np.ones((len(items), 1), dtype=np.float32)

        def save(self, directory: Path) -> None:
            content_mod.write_encoder_files(directory, self.kind, {}, {})

        @classmethod
        def load(cls, directory: Path) -> Self:
            return cls()

    # The registry is read-only; a new kind comes in through the mapping passed to the loader.
    registry: Any = ENCODERS
    with pytest.raises(TypeError):
        registry["test_length"] = LengthEncoder
    kinds = {**ENCODERS, LengthEncoder.kind: LengthEncoder}
    enc = ConcatEncoder([LengthEncoder(), MultiHotEncoder()], [1.0, 1.0])
    enc.fit([ItemContent("a", categories=("k",))]).save(tmp_path / "e")
    loaded = load_encoder(tmp_path / "e", kinds)  # the parts are loaded with the same kinds
    np.testing.assert_allclose(loaded.transform([ItemContent("b", categories=("k",))]),
                               [[2**-0.5, 2**-0.5]], atol=1e-6)
    with pytest.raises(ModelError, match="unknown content encoder kind 'test_length'"):
        load_encoder(tmp_path / "e")
    assert "test_length" not in ENCODERS


def test_unknown_kind_and_missing_sentence_package_fail_clearly(tmp_path: Path) -> None:
    content_mod.write_encoder_files(tmp_path / "s", "sentence", {"model": "/nonexistent", "batch_size": 8}, {})
    loaded = load_encoder(tmp_path / "s")  # through the registry
    assert isinstance(loaded, SentenceEmbeddingEncoder) and loaded.model == "/nonexistent"
    content_mod.write_encoder_files(tmp_path, "nope", {}, {})
    with pytest.raises(ModelError, match="unknown content encoder"):
        load_encoder(tmp_path)
    try:
        import sentence_transformers  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        with pytest.raises(ModelError, match="sentence-transformers"):
            SentenceEmbeddingEncoder("/nonexistent").fit([])

