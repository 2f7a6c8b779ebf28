"""``fastinsight train`` and ``fastinsight models``: model versions from the command line."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console

from fastinsight.config import get_settings

console = Console(stderr=True)


class SelectSearchChoice(StrEnum):
    complete = "complete"
    budget = "budget"
    none = "none"


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train(
        algorithm: Annotated[str | None, typer.Option(help="Model to train (default: settings)")] = None,
        params: Annotated[str | None, typer.Option(help='JSON object, e.g. {"factors": 64}')] = None,
        activate: Annotated[bool, typer.Option(help="Switch serving to the new version")] = True,
        evaluate: Annotated[bool, typer.Option(help="Measure on a held-out split first")] = True,
        select: Annotated[bool, typer.Option(
            "--select", help="Evaluate the candidates on validation NDCG@10 and train the best "
                             "(a model with fewer fitted parts within one standard error of "
                             "it is preferred)")] = False,
        candidates: Annotated[str, typer.Option(
            help="Comma-separated candidates for --select (default: every model the offline "
                 "evaluation compares)")] = "",
        select_search: Annotated[SelectSearchChoice, typer.Option(
            help="complete: tune every candidate with the offline evaluation's complete "
                 "searches (what the evaluation reports is what gets served; hours on a "
                 "large catalogue); budget: search each candidate for --select-budget "
                 "seconds; none: defaults only")] = SelectSearchChoice.complete,
        select_budget: Annotated[float, typer.Option(
            min=1.0, help="Seconds of search per candidate with --select-search budget")] = 60.0,
    ) -> None:
        """Train on the interactions in MongoDB and store a new model version."""
        from fastinsight.errors import FastInsightError
        from fastinsight.services.training.pipeline import train as run_training
        from fastinsight.storage.mongo import apply_indexes, connect, get_database

        settings = get_settings()
        try:
            parsed = json.loads(params) if params else None
        except ValueError as exc:
            console.print(f"[red]train failed:[/red] --params is not valid JSON: {exc}")
            raise typer.Exit(2) from exc
        if parsed is not None and not isinstance(parsed, dict):
            console.print("[red]train failed:[/red] --params must be a JSON object")
            raise typer.Exit(2)
        client = connect(settings)
        try:
            db = get_database(client, settings)
            apply_indexes(db)
            doc = run_training(
                db, settings, algorithm, parsed, activate=activate, evaluate=evaluate,
                progress=lambda msg: console.print(f"[train] {msg}"),
                select_from=_candidates(candidates) if select else None,
                select_search=select_search.value, select_budget_seconds=select_budget,
            )
        except FastInsightError as exc:
            console.print(f"[red]train failed:[/red] {exc.message}")
            raise typer.Exit(1) from exc
        finally:
            client.close()
        typer.echo(json.dumps({"version": doc["version"], "algorithm": doc["algorithm"],
                               "metrics": doc["metrics"], "fit_seconds": doc["fit_seconds"],
                               "selection": doc.get("selection")}, default=str))


def _candidates(text: str) -> list[str]:
    names = [c.strip() for c in text.split(",") if c.strip()]
    if names:
        return names
    from fastinsight.recsys.evaluation.selection import default_candidates

    return default_candidates()
