"""ASGI entry point for uvicorn: ``fastinsight.api.asgi:app``."""

from __future__ import annotations

import logging
import os

from fastinsight.api.app import create_app
from fastinsight.config import get_settings
from fastinsight.errors import ConfigurationError
from fastinsight.logging_setup import configure_logging
from fastinsight.ops.settings import warn_unknown_variables

_settings = get_settings()
configure_logging(os.environ.get("FASTINSIGHT_LOG_LEVEL", "INFO"), json_logs=_settings.log_json,
                  log_file=_settings.log_dir / "api.log")
warn_unknown_variables()
try:
    app = create_app(_settings)
except ConfigurationError as exc:  # missing or well-known keys: the server must not start
    logging.getLogger("fastinsight").critical("%s", exc.message)
    raise SystemExit(2) from None
