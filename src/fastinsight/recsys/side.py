"""Side data: what a model may use besides its fit matrix (item content, interaction times).

Models opt in by having a setter (``set_item_content``, ``set_interaction_times``);
:meth:`SideData.give_to` is the one place that hands side data to a model, used by
training, the offline evaluation and the hybrid model's components alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class ContentFeatures:
    """Item content rows aligned with the catalogue, for models that take content."""

    features: np.ndarray
    encoder: Any = None


@dataclass(frozen=True)
class SideData:
    """Side data for a model; each model takes what it has a setter for.

    ``times`` holds epoch seconds for (user, item) pairs of the whole data set; a model
    reads only those of the pairs it is fitted on (:mod:`fastinsight.recsys.sessions`).
    """

    content: ContentFeatures | None = None
    times: sp.csr_matrix | None = None

    def give_to(self, model: Any) -> None:
        if self.content is not None and hasattr(model, "set_item_content"):
            model.set_item_content(self.content.features, self.content.encoder)
        if self.times is not None and hasattr(model, "set_interaction_times"):
            model.set_interaction_times(self.times)
