"""``fastinsight evaluate``: offline evaluation and comparison of models."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

console = Console(stderr=True)


class SplitChoice(StrEnum):
    random = "random"
    temporal = "temporal"
    cold_items = "cold-items"


class ProtocolChoice(StrEnum):
    product = "product"
    binary = "binary"


class ModeChoice(StrEnum):
    random = "random"
    grid = "grid"


def _load(movielens: Path | None, file: Path | None, mongo: bool, min_rating: float) -> Any:
    from fastinsight.config import get_settings
    from fastinsight.recsys.evaluation import data

    sources = sum([movielens is not None, file is not None, mongo])
    if sources != 1:
        raise typer.BadParameter("give exactly one of --movielens DIR, --file F, --mongo")
    settings = get_settings()
    if movielens is not None:
        return data.load_movielens(movielens, min_rating=min_rating)
    if file is not None:
        return data.load_interaction_file(file, settings.interaction_weights, min_rating)
    from fastinsight.services.training.evaluation import load_dataset
    from fastinsight.storage.mongo import connect, get_database

    client = connect(settings)
    try:
        return load_dataset(get_database(client, settings), settings.interaction_weights, min_rating)
    finally:
        client.close()


def _store(report: dict[str, Any], model_version: str | None) -> Any:
    from fastinsight.config import get_settings
    from fastinsight.services.training.evaluation import store_evaluation
    from fastinsight.storage.mongo import connect, get_database

    settings = get_settings()
    client = connect(settings)
    try:
        return store_evaluation(get_database(client, settings), report, model_version)
    finally:
        client.close()


def register(app: typer.Typer) -> None:
    @app.command("evaluate")
    def evaluate(
        movielens: Annotated[Path | None, typer.Option(
            help="MovieLens directory (ratings.csv, movies.csv)")] = None,
        file: Annotated[Path | None, typer.Option(
            help="Interactions file in the import format (.jsonl or .csv)")] = None,
        mongo: Annotated[bool, typer.Option(
            "--mongo", help="Read the interactions collection of the configured database")] = False,
        min_rating: Annotated[float, typer.Option(help="Ratings at or above are positive")] = 4.0,
        protocol: Annotated[ProtocolChoice, typer.Option(
            help="product: the product's training inputs; binary: ratings >= --min-rating of "
                 "weight 1 are the only input (no context, times or content) for every "
                 "model")] = ProtocolChoice.product,
        split: Annotated[SplitChoice, typer.Option(help="How to hold data out")] = SplitChoice.random,
        validation: Annotated[float, typer.Option(help="Validation fraction")] = 0.1,
        test: Annotated[float, typer.Option(help="Test fraction")] = 0.1,
        min_positives: Annotated[int, typer.Option(help="Keep users with this many")] = 5,
        algorithms: Annotated[list[str] | None, typer.Option(
            "--algorithms", "-a",
            help="Models to compare, repeatable or comma-separated (default: all registered "
                 "+ implicit_als, implicit_bpr)")] = None,
        k: Annotated[list[int] | None, typer.Option(
            "--k", help="Cut-offs, repeatable (default 10 and 20)")] = None,
        search: Annotated[bool, typer.Option(help="Tune each model on validation")] = True,
        budget_seconds: Annotated[float, typer.Option(help="Search budget per model")] = 60.0,
        search_mode: Annotated[ModeChoice, typer.Option(help="Order of trials")] = ModeChoice.random,
        max_trials: Annotated[int | None, typer.Option(help="Cap on trials per model")] = None,
        complete: Annotated[bool, typer.Option(
            "--complete", help="Run every trial of every grid whatever the time (the budget "
            "and --max-trials are ignored) and widen grids whose best is on an edge")] = False,
        max_widenings: Annotated[int, typer.Option(
            help="With --complete: how many times an edge parameter's grid may widen")] = 3,
        max_alternations: Annotated[int, typer.Option(
            min=0, help="With --complete: how many more times a staged search (ALS's "
            "sessions, then its other parameters) may alternate its two stages towards a "
            "point neither improves (0: one pass)")] = 0,
        metric: Annotated[str | None, typer.Option(
            help="Selection metric (default ndcg@<first K>)")] = None,
        seed: Annotated[int, typer.Option(help="Seed of the split and the search")] = 0,
        content: Annotated[bool, typer.Option(
            help="Give content-aware models item metadata features")] = True,
        times: Annotated[bool, typer.Option(
            help="Give session-aware models (EASE, ALS) the interaction times of the pairs "
                 "they are fitted on")] = True,
        positives_only: Annotated[bool, typer.Option(
            "--positives-only",
            help="Train on positives alone; by default interactions that are not positive "
                 "(e.g. low ratings) are training input and excluded from lists, as in "
                 "the product")] = False,
        out: Annotated[Path, typer.Option(help="Directory for JSON, Markdown and plots")] = Path(
            "var/evaluation"),
        name: Annotated[str, typer.Option(help="Base name of the result files")] = "evaluation",
        store: Annotated[bool, typer.Option(
            help="Also store the result in the evaluations collection")] = False,
        model_version: Annotated[str | None, typer.Option(
            help="Model version to attach to the stored result")] = None,
    ) -> None:
        """Compare models offline on a held-out split; write JSON, Markdown and plots."""
        from fastinsight.errors import FastInsightError
        from fastinsight.recsys.evaluation.experiment import EvaluationConfig, run_evaluation
        from fastinsight.recsys.evaluation.report import markdown, write_report

        ks = tuple(sorted(set(k or [10, 20])))
        names = tuple(a.strip() for item in (algorithms or []) for a in item.split(",")
                      if a.strip())
        try:
            config = EvaluationConfig(
                protocol="binary" if protocol is ProtocolChoice.binary else "product",
                complete=complete, max_widenings=max_widenings,
                max_alternations=max_alternations, split=split.value,
                validation=validation, test=test, seed=seed,
                min_positives=min_positives, ks=ks, algorithms=names or None, search=search,
                budget_seconds=budget_seconds,
                search_mode="grid" if search_mode is ModeChoice.grid else "random",
                max_trials=max_trials, metric=metric or f"ndcg@{ks[0]}", use_content=content,
                use_times=times, context=not positives_only, extra={"min_rating": min_rating},
            )
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        try:
            dataset = _load(movielens, file, mongo, min_rating)
            report = run_evaluation(dataset, config)
        except FastInsightError as exc:
            console.print(f"[red]evaluate failed:[/red] {exc.message}")
            raise typer.Exit(1) from exc
        paths = write_report(report, out, name)
        if store:
            stored = _store(report, model_version)
            console.print(f"stored evaluation {stored}")
        typer.echo(markdown(report).split("\n## ")[0])
        for path in paths:
            console.print(f"wrote {path}")
