"""The ``fastinsight`` command. Each module adds its commands through ``register(app)``."""

from __future__ import annotations

import logging
import os

import typer

app = typer.Typer(
    name="fastinsight", help="FastInsight: recommendations and customer insight.",
    no_args_is_help=True, pretty_exceptions_enable=False,
)


def _register() -> None:
    from fastinsight.cli import core

    core.register(app)
    # Feature commands (one line each).
    from fastinsight.cli import train

    train.register(app)
    from fastinsight.cli import evaluate

    evaluate.register(app)
    from fastinsight.cli import ops

    ops.register(app)
    from fastinsight.cli import insights

    insights.register(app)
    from fastinsight.cli import tenants

    tenants.register(app)


def main() -> None:
    from fastinsight.logging_setup import configure_logging

    configure_logging(os.environ.get("FASTINSIGHT_LOG_LEVEL", "INFO"),
                      json_logs=os.environ.get("FASTINSIGHT_LOG_JSON", "0") == "1")
    logging.getLogger("pymongo").setLevel(logging.WARNING)
    from fastinsight.ops.settings import warn_unknown_variables

    warn_unknown_variables()
    _register()
    app()
