"""Select the JAX backend before Keras is first imported.

Keras reads ``KERAS_BACKEND`` once, at its first import, and cannot switch later. Our
models are written for the JAX backend on CPU, so every module that imports Keras
calls :func:`use_jax_backend` first; importing this module does nothing.
"""

from __future__ import annotations

import logging
import os
import sys

from fastinsight.errors import ModelError

log = logging.getLogger(__name__)


def use_jax_backend() -> None:
    """Make the next ``import keras`` use JAX on CPU; fail if Keras runs another backend."""
    if "keras" in sys.modules:
        import keras

        backend = keras.backend.backend()
        if backend != "jax":
            raise ModelError(
                f"Keras was already imported with the {backend!r} backend; the neural models "
                "need JAX. Import fastinsight's models before anything imports Keras, or set "
                "KERAS_BACKEND=jax."
            )
        return
    previous = os.environ.get("KERAS_BACKEND")
    if previous not in (None, "jax"):
        log.warning("KERAS_BACKEND=%s overridden with 'jax'", previous)
    os.environ["KERAS_BACKEND"] = "jax"
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
