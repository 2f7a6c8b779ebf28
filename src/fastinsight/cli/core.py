"""Core commands: serve, db init/status, import, demo."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from fastinsight.config import get_settings
from fastinsight.schemas.core import ImportReport

if TYPE_CHECKING:
    from pymongo.database import Database

    from fastinsight.storage.mongo.client import Document

console = Console(stderr=True)


class Kind(StrEnum):
    users = "users"
    items = "items"
    interactions = "interactions"


def _progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=False)


def _print_report(name: str, report: ImportReport, max_rejected: int = 20) -> None:
    console.print(
        f"{name}: inserted={report.inserted} updated={report.updated} "
        f"unchanged={report.unchanged} duplicates={report.duplicates} "
        f"rejected={report.rejected_count} users_created={report.users_created}"
    )
    for rej in report.rejected[:max_rejected]:
        errs = "; ".join(f"{e.field}: {e.message}" for e in rej.errors)
        console.print(f"  row {rej.row}: {errs}")
    if report.rejected_count > max_rejected:
        console.print(f"  ... {report.rejected_count - max_rejected} more rejected rows")


def _writable_or_exit(db: Database[Document], what: str, close: Callable[[], None]) -> None:
    """Exit 1 with the reason while a backup pauses writes."""
    from fastinsight.errors import Unavailable
    from fastinsight.services.writes import ensure_writable

    try:
        ensure_writable(db, what)
    except Unavailable as exc:
        close()
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from exc


def register(app: typer.Typer) -> None:
    db_app = typer.Typer(help="Database schema and status.", no_args_is_help=True)
    app.add_typer(db_app, name="db")

    @db_app.command("init")
    def db_init() -> None:
        """Create collections and apply every declared index."""
        from fastinsight.storage.mongo import apply_indexes, connect, get_database

        settings = get_settings()
        client = connect(settings)
        try:
            created = apply_indexes(get_database(client, settings))
        finally:
            client.close()
        for name, indexes in created.items():
            console.print(f"{name}: {', '.join(indexes)}")

    @db_app.command("status")
    def db_status() -> None:
        """Exit 0 if the database answers ping."""
        from fastinsight.errors import Unavailable
        from fastinsight.storage.mongo import connect, ping

        client = connect(get_settings())
        try:
            ping(client)
            console.print("database: up")
        except Unavailable as exc:
            console.print(f"database: down ({exc.message})")
            raise typer.Exit(1) from exc
        finally:
            client.close()

    @app.command("serve")
    def serve(
        host: Annotated[str | None, typer.Option(help="Bind address")] = None,
        port: Annotated[int | None, typer.Option(help="Port")] = None,
        workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
        dev: Annotated[bool, typer.Option(
            "--dev", help="Local development mode (FASTINSIGHT_DEV_MODE=1): missing keys are "
            "generated for this run and only 127.0.0.1 is served")] = False,
    ) -> None:
        """Serve the API (and dashboard) with uvicorn. Needs FASTINSIGHT_API_KEY and
        FASTINSIGHT_ADMIN_KEY unless --dev."""
        import uvicorn

        from fastinsight.api.keys import KEY_SETTINGS, checked_settings, generated_dev_keys, is_loopback
        from fastinsight.errors import ConfigurationError

        if dev:
            os.environ["FASTINSIGHT_DEV_MODE"] = "1"
            get_settings.cache_clear()
        settings = get_settings()
        bind = host or settings.host
        if settings.dev_mode:
            if not is_loopback(bind):
                console.print(f"[red]development mode serves 127.0.0.1 only, not {bind}: drop "
                              "--host or FASTINSIGHT_HOST, or set both keys and leave dev mode[/red]")
                raise typer.Exit(2)
            # Generated once here so every worker process shares them.
            generated = generated_dev_keys(settings)
            for name, value in generated.items():
                os.environ[KEY_SETTINGS[name]] = value
                console.print(f"[yellow]development mode: {KEY_SETTINGS[name]}={value}[/yellow]")
            get_settings.cache_clear()
            settings = get_settings()
        try:
            checked_settings(settings)
        except ConfigurationError as exc:
            console.print(f"[red]{exc.message}[/red]")
            raise typer.Exit(2) from exc
        uvicorn.run("fastinsight.api.asgi:app", host=bind, port=port or settings.port,
                    workers=workers, log_config=None, access_log=False)

    @app.command("import")
    def import_file(
        kind: Annotated[Kind, typer.Argument(help="What the file holds")],
        file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
        json_report: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
    ) -> None:
        """Import a JSON array, JSON Lines or CSV file; exit 1 if any row was rejected."""
        from fastinsight.services.data.ingest import IngestService
        from fastinsight.services.data.parsing import format_from_path, read_rows
        from fastinsight.storage.mongo import apply_indexes, connect, get_database

        settings = get_settings()
        fmt = format_from_path(file.name)
        client = connect(settings)
        db = get_database(client, settings)
        _writable_or_exit(db, f"importing {kind.value}", client.close)
        apply_indexes(db)
        svc = IngestService(db, settings)
        importer = {"users": svc.import_users, "items": svc.import_items,
                    "interactions": svc.import_interactions}[kind.value]
        try:
            with file.open("rb") as fh, _progress() as progress:
                task = progress.add_task(f"import {kind.value}", total=None)
                report = importer(read_rows(fh, fmt, kind.value),
                                  lambda n: progress.advance(task, n))
        finally:
            client.close()
        if json_report:
            sys.stdout.write(json.dumps(report.model_dump()) + "\n")
        _print_report(kind.value, report)
        if report.rejected:
            raise typer.Exit(1)

    @app.command("demo")
    def demo(
        users: Annotated[int, typer.Option(min=1)] = 2000,
        items: Annotated[int, typer.Option(min=1)] = 1000,
        interactions: Annotated[int, typer.Option(min=1)] = 50_000,
        seed: int = 7,
        movielens: Annotated[Path | None, typer.Option(
            help="Load this ml-latest-small directory instead of synthetic data",
            exists=True, file_okay=False)] = None,
    ) -> None:
        """Load demo data: a synthetic catalogue, or MovieLens from a directory."""
        from fastinsight.services.data.demo import DemoSize, load_movielens, load_synthetic
        from fastinsight.services.data.ingest import IngestService
        from fastinsight.storage.mongo import apply_indexes, connect, get_database

        settings = get_settings()
        client = connect(settings)
        db = get_database(client, settings)
        _writable_or_exit(db, "loading demo data", client.close)
        apply_indexes(db)
        svc = IngestService(db, settings)
        try:
            with _progress() as progress:
                task = progress.add_task("demo data", total=None)
                def advance(n: int) -> None:
                    progress.advance(task, n)
                if movielens is not None:
                    reports = load_movielens(svc, movielens, advance)
                else:
                    size = DemoSize(users=users, items=items, interactions=interactions, seed=seed)
                    reports = load_synthetic(svc, size, advance)
        finally:
            client.close()
        for name, report in reports.items():
            _print_report(name, report, max_rejected=5)
