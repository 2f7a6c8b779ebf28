"""``fastinsight deploy ...`` (blue/green behind the proxy) and ``fastinsight jobs ...``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from fastinsight.config import get_settings
from fastinsight.ops.settings import get_ops_settings

console = Console(stderr=True)

EXIT_FAILED = 1
EXIT_ROLLED_BACK = 6


def _emit(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, default=str) + "\n")


def _deploy_config(backend_cmd: str | None, ready_timeout: float | None) -> Any:
    from fastinsight.ops.deploy import DEFAULT_BACKEND_CMD, DeployConfig

    settings, ops = get_settings(), get_ops_settings()
    return DeployConfig(
        run_dir=ops.run_path(settings),
        listen_host=settings.host,
        listen_port=settings.port,
        backend_ports=ops.deploy_backend_ports,
        backend_cmd=backend_cmd or DEFAULT_BACKEND_CMD,
        ready_timeout=ready_timeout or ops.deploy_ready_timeout,
        drain_timeout=ops.deploy_drain_timeout,
    )


def register(app: typer.Typer) -> None:
    deploy_app = typer.Typer(help="Zero-downtime restart of the API on this host.", no_args_is_help=True)
    jobs_app = typer.Typer(help="Run and inspect operations jobs.", no_args_is_help=True)
    app.add_typer(deploy_app, name="deploy")
    app.add_typer(jobs_app, name="jobs")

    @deploy_app.command("run")
    def deploy_run(
        backend_cmd: Annotated[
            str | None, typer.Option(help="API command; {python} {port} {drain} are substituted")
        ] = None,
        ready_timeout: Annotated[float | None, typer.Option(min=1)] = None,
    ) -> None:
        """Start a new API, wait for /health/ready, switch the proxy, stop the old one.

        Exit 6 if the new API never became ready (it is stopped; the old one keeps serving).
        """
        from fastinsight.ops.deploy import DeployError, deploy

        cfg = _deploy_config(backend_cmd, ready_timeout)
        try:
            result = deploy(cfg)
        except DeployError as exc:
            console.print(f"[red]deploy failed:[/red] {exc}")
            raise typer.Exit(EXIT_ROLLED_BACK if exc.rolled_back else EXIT_FAILED) from exc
        console.print(
            f"deployed: port {result.previous_port} -> {result.active_port} "
            f"(pid {result.active_pid}) in {result.seconds:.1f}s; proxy {cfg.proxy_url}"
        )
        _emit(result.__dict__)

    @deploy_app.command("status")
    def deploy_status() -> None:
        """Show the active backend, whether it runs, and what the proxy reports."""
        from fastinsight.ops.deploy import status

        info = status(_deploy_config(None, None))
        _emit(info)
        if not info["api_alive"] or info["proxy"] is None:
            raise typer.Exit(EXIT_FAILED)

    @deploy_app.command("stop")
    def deploy_stop() -> None:
        """Stop the API and the proxy started by 'deploy run'."""
        from fastinsight.ops.deploy import stop_all

        stop_all(_deploy_config(None, None))
        console.print("stopped")

    @jobs_app.command("run")
    def jobs_run(
        name: Annotated[str, typer.Argument(help="backup | restore | cleanup_logs | monitor | retrain")],
        arg: Annotated[
            list[str] | None, typer.Option("--arg", help="key=value (JSON values allowed), repeatable")
        ] = None,
        timeout: Annotated[float | None, typer.Option(min=0.1)] = None,
    ) -> None:
        """Run a job through the same runner as the API (lock, record, timeout) and wait."""
        from fastinsight.errors import FastInsightError
        from fastinsight.ops.jobs.runner import JobService
        from fastinsight.storage.mongo import connect, get_database
        from fastinsight.storage.mongo.jobs import JobStore

        args: dict[str, Any] = {}
        for item in arg or []:
            key, sep, raw = item.partition("=")
            if not sep:
                raise typer.BadParameter(f"--arg {item!r} is not key=value")
            try:
                args[key] = json.loads(raw)
            except ValueError:
                args[key] = raw
        settings, ops = get_settings(), get_ops_settings()
        client = connect(settings)
        try:
            service = JobService(JobStore(get_database(client, settings)), settings=settings, ops=ops)
            try:
                record = service.submit(name, args, timeout_seconds=timeout, requested_by="cli")
            except FastInsightError as exc:
                console.print(f"[red]error:[/red] {exc.message}")
                raise typer.Exit(2 if exc.status == 422 else EXIT_FAILED) from exc
            record = service.wait(record.id)
        finally:
            client.close()
        sys.stderr.write(record.output_tail)
        _emit(record.model_dump(mode="json"))
        if record.status != "succeeded":
            raise typer.Exit(EXIT_FAILED)

    @jobs_app.command("list")
    def jobs_list(
        name: Annotated[str | None, typer.Option()] = None,
        limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
    ) -> None:
        """Recent job runs, newest first (one JSON object per line)."""
        from fastinsight.storage.mongo import connect, get_database
        from fastinsight.storage.mongo.jobs import JobStore

        settings = get_settings()
        client = connect(settings)
        try:
            for doc in JobStore(get_database(client, settings)).recent(name=name, limit=limit):
                doc.pop("output_tail", None)
                _emit(doc)
        finally:
            client.close()

    @jobs_app.command("log")
    def jobs_log(job_id: str) -> None:
        """Print the full output of a job run (from its log file on this host)."""
        from fastinsight.storage.mongo import connect, get_database
        from fastinsight.storage.mongo.jobs import JobStore

        settings = get_settings()
        client = connect(settings)
        try:
            doc = JobStore(get_database(client, settings)).get(job_id)
        finally:
            client.close()
        if doc is None:
            console.print(f"no job {job_id}")
            raise typer.Exit(EXIT_FAILED)
        path = Path(str(doc.get("log_path", "")))
        if not path.is_file():
            console.print(f"log {path} is not on this host; output tail:")
            sys.stdout.write(str(doc.get("output_tail", "")))
            return
        sys.stdout.write(path.read_text(errors="replace"))
