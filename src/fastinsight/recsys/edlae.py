"""EDLAE / DLAE: linear autoencoders regularised as if their input were dropped out.

Steck (2020) shows that training a full-rank linear autoencoder with dropout of
probability ``p`` on its input is, in expectation, ridge regression with a penalty
proportional to each item's own Gram entry: ``Λ = λI + p/(1-p) · diag(XᵀX)``.
Popular items (large ``diag``) are then regularised more, which counters the pull of a
free model towards the identity. Two closed forms, both in
:func:`fastinsight.recsys.ease._closed_form`:

* **EDLAE** (``emphasis=True``, dropout *emphasised*: the diagonal is held at zero as in
  EASE): ``B = I - P · diag(1/diag(P))`` with ``P = (XᵀX + Λ)⁻¹``. With ``dropout=0``
  this is EASE exactly.
* **DLAE** (``emphasis=False``): ``B = (XᵀX + Λ)⁻¹ XᵀX = I - PΛ``; the diagonal is left
  free (it never matters for ranking unseen items, since a user's own items are excluded).
* **RDLAE** (``emphasis=True``, ``max_diagonal`` ξ > 0; Moon et al., 2023): the zero
  diagonal relaxed to ``diag(B) <= ξ``. Items whose free (DLAE) diagonal is at most ξ
  keep their DLAE column; the others are EDLAE's column scaled by ``1 - ξ``. So ξ = 0 is
  EDLAE and ξ = 1 ranks as DLAE: one parameter spans both, and the search chooses.

The variants differ by a per-column factor of ``P`` only, so a search derives each ξ (and
DLAE) from one fit of ``(λ, p)`` in O(items²) (:meth:`.base.Recommender.derive_from`).
Everything else (sessions, ``max_items``, memory guard, persistence) is EASE's.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from fastinsight.errors import ModelError
from fastinsight.recsys.ease import EASEParams, EASERecommender


class EDLAEParams(EASEParams):
    l2: float = Field(default=50.0, ge=0, description="L2 penalty λ added to the diagonal")
    dropout: float = Field(
        default=0.25, ge=0, lt=1,
        description="dropout probability p; adds p/(1-p) · diag(XᵀX) to the penalty",
    )
    emphasis: bool = Field(
        default=True, description="EDLAE (zero diagonal, as EASE); False: DLAE (free diagonal)",
    )
    max_diagonal: float = Field(
        default=0.0, ge=0, le=1,
        description="with emphasis: relax diag(B) = 0 to diag(B) <= this (RDLAE); 0 = EDLAE,"
                    " 1 ranks as DLAE",
    )


class EDLAERecommender(EASERecommender):
    algorithm = "edlae"
    params_class = EDLAEParams
    # One factorisation serves every diagonal variant (a column rescaling apart).
    derived_params = ("emphasis", "max_diagonal")

    def _variant(self) -> dict[str, Any]:
        p = self.params
        if not isinstance(p, EDLAEParams):
            raise ModelError("edlae needs EDLAEParams")
        return {"dropout": p.dropout, "zero_diagonal": p.emphasis,
                "max_diagonal": p.max_diagonal}
