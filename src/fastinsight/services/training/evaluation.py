"""Offline evaluation against the stored data: the interactions and items read through
the repositories, and reports stored in ``evaluations``.

The evaluation itself (splits, models, metrics) is :mod:`fastinsight.recsys.evaluation`,
which never touches the database.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pymongo.database import Database

from fastinsight.recsys.evaluation.data import DEFAULT_MIN_RATING, EvalDataset, from_records, with_item_meta
from fastinsight.recsys.evaluation.report import evaluation_document
from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.evaluations import EvaluationRepository
from fastinsight.storage.mongo.interactions import InteractionRepository
from fastinsight.storage.mongo.items import ItemRepository


def load_dataset(
    db: Database[Document], weights: Mapping[str, float] | None = None,
    min_rating: float = DEFAULT_MIN_RATING, *, with_items: bool = True,
) -> EvalDataset:
    """Full scan of ``interactions`` (fine for an offline job), plus item metadata.

    Only ``interactions`` is read: events still in the real-time buffer that training
    has not consolidated yet are not part of the evaluation.
    """
    data = from_records(InteractionRepository(db).iter_training_rows(), weights, min_rating,
                        source=f"mongo:{db.name}.interactions")
    return with_item_meta(data, ItemRepository(db).all_documents()) if with_items else data


def store_evaluation(
    db: Database[Document], report: Mapping[str, Any], model_version: str | None = None
) -> Any:
    """Insert the report into ``evaluations``; returns its ``_id``."""
    return EvaluationRepository(db).insert(evaluation_document(report, model_version))
