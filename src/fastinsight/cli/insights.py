"""``fastinsight insights refresh | segments | status``: the rollups and segments from the shell
(for cron, or right after an import or a training run)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from fastinsight.config import get_settings

console = Console(stderr=True)


def register(app: typer.Typer) -> None:
    insights_app = typer.Typer(help="Analytics rollups and customer segments.", no_args_is_help=True)
    app.add_typer(insights_app, name="insights")

    @insights_app.command("refresh")
    def refresh(
        segments: Annotated[bool, typer.Option(help="Also rebuild the active model's segments")] = False,
        k: Annotated[int | None, typer.Option(min=2, max=50, help="Segments (default: silhouette)")] = None,
    ) -> None:
        """Recompute the insight rollups (one scan of the interactions)."""
        from fastinsight.errors import FastInsightError
        from fastinsight.services.insights.analytics import InsightsService
        from fastinsight.services.insights.segments import SegmentService
        from fastinsight.storage.mongo import connect, get_database

        settings = get_settings()
        client = connect(settings)
        try:
            svc = InsightsService(get_database(client, settings))
            out = svc.refresh(wait=True)
            console.print(f"insights snapshot {out.snapshot_id}: {out.interactions} interactions "
                          f"in {out.duration_seconds:.1f}s")
            if segments:
                built = SegmentService(svc.db, svc).rebuild(k, wait=True)
                assert built is not None
                for seg in built.segments:
                    console.print(f"  {seg.segment_id}: {seg.label} ({seg.size} users)")
        except FastInsightError as exc:  # e.g. writes paused for a backup
            console.print(f"[red]insights refresh failed:[/red] {exc.message}")
            raise typer.Exit(1) from exc
        finally:
            client.close()

    @insights_app.command("status")
    def status() -> None:
        """When the current snapshot was computed (JSON on stdout)."""
        from fastinsight.services.insights.analytics import InsightsService
        from fastinsight.storage.mongo import connect, get_database

        settings = get_settings()
        client = connect(settings)
        try:
            current = InsightsService(get_database(client, settings)).status().current
        finally:
            client.close()
        if current is None:
            console.print("no insights snapshot yet: run `fastinsight insights refresh`")
            raise typer.Exit(1)
        typer.echo(json.dumps(current.model_dump(mode="json")))
