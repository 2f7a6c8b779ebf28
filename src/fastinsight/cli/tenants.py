"""``fastinsight tenants ...``: the operator's tenant management, straight on the database.

The same service as the operator API (:class:`TenantAdmin`), so the same checks apply;
API processes see the changes within ``FASTINSIGHT_TENANT_CACHE_SECONDS``. Results go
to stdout (JSON, tables, or a new key alone), messages to stderr; an error exits 1.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fastinsight.config import get_settings
from fastinsight.ops.settings import get_ops_settings

if TYPE_CHECKING:
    from fastinsight.services.tenancy.admin import TenantAdmin

console = Console(stderr=True)
EXIT_FAILED = 1


class KeyScope(StrEnum):
    tracking = "tracking"
    api = "api"
    admin = "admin"


def _idle(_tenant_id: str) -> dict[str, Any]:
    """This process serves no tenant: nothing loaded, no requests."""
    return {"loaded": False, "model_bytes": 0, "requests": 0, "rate_limited": 0}


@contextmanager
def _admin() -> Iterator[TenantAdmin]:
    """The tenant service over the configured database; its errors exit 1 with the reason."""
    from fastinsight.errors import FastInsightError
    from fastinsight.services.tenancy.admin import TenantAdmin
    from fastinsight.services.tenancy.directory import TenantDirectory
    from fastinsight.storage.mongo import connect
    from fastinsight.storage.mongo.tenants import TenantRepository

    settings = get_settings()
    client = connect(settings)
    repo = TenantRepository(client, settings.control_database)
    admin = TenantAdmin(settings, repo, TenantDirectory(settings, repo),
                        get_ops_settings().backup_path(settings).resolve(), _idle,
                        lambda _tenant_id: None)
    try:
        yield admin
    except FastInsightError as exc:
        raise _fail(exc.message) from exc
    except ValidationError as exc:
        raise _fail(_invalid(exc)) from exc
    finally:
        client.close()


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    return typer.Exit(EXIT_FAILED)


def _invalid(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}"
                     for e in exc.errors())


def _emit(model: BaseModel) -> None:
    sys.stdout.write(model.model_dump_json(indent=2) + "\n")


def _say(text: str) -> None:
    """A message on stderr, as written (commands and paths are not reflowed)."""
    sys.stderr.write(text + "\n")


def _table(*columns: str) -> Table:
    table = Table(*columns, show_edge=False, header_style="bold")
    for column in table.columns:
        column.overflow = "fold"
    return table


def _size(n: int | None) -> str:
    return "–" if n is None else f"{n / 2**20:.1f} MiB"


def register(app: typer.Typer) -> None:
    tenants = typer.Typer(help="Tenants and their keys (the operator's commands).",
                          no_args_is_help=True)
    keys = typer.Typer(help="A tenant's keys.", no_args_is_help=True)
    app.add_typer(tenants, name="tenants")
    tenants.add_typer(keys, name="keys")

    @tenants.command("create")
    def create(
        tenant_id: Annotated[str, typer.Argument(metavar="ID", help="a-z, 0-9 and '-'")],
        name: Annotated[str, typer.Option(help="What the tenant is")] = "",
        quota_users: Annotated[int | None, typer.Option(min=0)] = None,
        quota_items: Annotated[int | None, typer.Option(min=0)] = None,
        quota_interactions: Annotated[int | None, typer.Option(min=0)] = None,
        rate_limit: Annotated[float | None, typer.Option(help="Requests/s per API process")] = None,
        burst: Annotated[int | None, typer.Option(min=1)] = None,
        settings_json: Annotated[str | None, typer.Option(
            help='Its own settings, e.g. \'{"max_per_category": 3}\'')] = None,
    ) -> None:
        """Create a tenant with its own database (create its keys next)."""
        from fastinsight.schemas.tenants import TenantIn, TenantLimits, TenantQuotas, TenantSettings

        with _admin() as admin:
            try:
                own = TenantSettings.model_validate_json(settings_json or "{}")
            except ValidationError as exc:
                raise _fail(f"--settings-json: {_invalid(exc)}") from exc
            spec = TenantIn(id=tenant_id, name=name, settings=own,
                            quotas=TenantQuotas(users=quota_users, items=quota_items,
                                                interactions=quota_interactions),
                            limits=TenantLimits(requests_per_second=rate_limit, burst=burst))
            created = admin.create(spec)
        _say(f"tenant {created.id} created (database {created.database}); "
             f"next: fastinsight tenants keys create {created.id} --scope api")
        _emit(created)

    @tenants.command("list")
    def list_(
        databases: Annotated[bool, typer.Option(
            "--databases", help="Print only the databases of the deployment, one per line (the "
            "default tenant's, each tenant's, then the control database): for whole backups")] = False,
    ) -> None:
        """Every tenant, the default one first, with its rows and storage."""
        with _admin() as admin:
            found = admin.all(usage=not databases)
            control = admin.repo.db.name
        if databases:
            sys.stdout.write("".join(f"{t.database}\n" for t in found) + f"{control}\n")
            return
        table = _table("id", "status", "database", "users", "items", "interactions", "storage",
                       "name")
        for t in found:
            u = t.usage
            counts = [f"{u.users:,}", f"{u.items:,}", f"{u.interactions:,}", _size(u.storage_bytes)] \
                if u is not None else ["–"] * 4
            table.add_row(t.id, t.status, t.database, *counts, t.name)
        Console().print(table)

    @tenants.command("show")
    def show(tenant_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
        """One tenant as JSON: settings, quotas, limits and usage."""
        with _admin() as admin:
            _emit(admin.get(tenant_id))

    @tenants.command("suspend")
    def suspend(tenant_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
        """Its keys answer 403 until it is resumed; its data stays."""
        with _admin() as admin:
            _emit(admin.set_status(tenant_id, "suspended"))

    @tenants.command("resume")
    def resume(tenant_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
        """Serve a suspended tenant again."""
        with _admin() as admin:
            _emit(admin.set_status(tenant_id, "active"))

    @tenants.command("delete")
    def delete(
        tenant_id: Annotated[str, typer.Argument(metavar="ID")],
        yes: Annotated[bool, typer.Option("--yes", help="Really erase it")] = False,
    ) -> None:
        """Erase a tenant: its database, keys, record and this host's files of it."""
        if not yes:
            raise _fail(f"deleting {tenant_id!r} drops its database and cannot be undone; "
                        "export and back it up first, then repeat with --yes")
        with _admin() as admin:
            _emit(admin.delete(tenant_id))

    @keys.command("create")
    def key_create(
        tenant_id: Annotated[str, typer.Argument(metavar="ID")],
        scope: Annotated[KeyScope, typer.Option(help="tracking: pages; api: data; admin: all")],
        name: Annotated[str, typer.Option(help="What the key is for")] = "",
    ) -> None:
        """Print a new key, alone on stdout: it is shown this once (only its hash is kept)."""
        from fastinsight.schemas.tenants import KeyIn

        with _admin() as admin:
            created = admin.create_key(tenant_id, KeyIn(scope=scope.value, name=name))
        _say(f"key {created.key_id} ({created.scope}) of tenant {created.tenant}; store it now")
        sys.stdout.write(created.key + "\n")

    @keys.command("list")
    def key_list(tenant_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
        """Its keys, revoked ones included (key ids and scopes; keys are never shown)."""
        with _admin() as admin:
            found = admin.keys(tenant_id)
        table = _table("key_id", "scope", "name", "created", "revoked")
        for k in found:
            table.add_row(k.key_id, k.scope, k.name, f"{k.created_at:%Y-%m-%d %H:%M}",
                          f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "")
        Console().print(table)

    @keys.command("revoke")
    def key_revoke(tenant_id: Annotated[str, typer.Argument(metavar="ID")],
                   key_id: Annotated[str, typer.Argument(metavar="KEY_ID")]) -> None:
        """Revoke a key: refused from then on (by API processes within seconds)."""
        with _admin() as admin:
            _emit(admin.revoke_key(tenant_id, key_id))

    @tenants.command("export")
    def export(tenant_id: Annotated[str, typer.Argument(metavar="ID")],
               file: Annotated[Path, typer.Argument(dir_okay=False)]) -> None:
        """Write its record and live key hashes to FILE; print how to back up its data."""
        from fastinsight.services.tenancy.transfer import export_tenant

        with _admin() as admin:
            exported = export_tenant(admin, tenant_id)
        try:
            file.write_text(exported.model_dump_json(indent=2) + "\n")
        except OSError as exc:
            raise _fail(f"cannot write {file}: {exc.strerror}") from exc
        folder = file.resolve().parent
        _say(f"tenant {exported.id}: record and {len(exported.keys)} key hash(es) written to {file}; "
             f"back up its data (database {exported.database}) next to it:\n"
             f"  FASTINSIGHT_MONGODB_DB={exported.database} scripts/backup.sh "
             f"--out {shlex.quote(str(folder))} --no-retention --pause-writes")

    @tenants.command("import")
    def import_(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]) -> None:
        """Create a tenant and its keys from an export; print how to restore its data."""
        from fastinsight.ops.dump import list_archives
        from fastinsight.schemas.tenants import TenantExport
        from fastinsight.services.tenancy.transfer import import_tenant

        try:
            exported = TenantExport.model_validate_json(file.read_text())
        except ValidationError as exc:
            raise _fail(f"{file} is not a tenant export: {_invalid(exc)}") from exc
        with _admin() as admin:
            created = import_tenant(admin, exported)
        archives = list_archives(file.resolve().parent, exported.database)
        archive = shlex.quote(str(archives[0])) if archives else \
            f"<the fastinsight-{exported.database}-*.tar.gz archive>"
        _say(f"tenant {created.id} imported with {len(exported.keys)} key(s) (database "
             f"{created.database}); restore its data:\n"
             f"  FASTINSIGHT_MONGODB_DB={created.database} scripts/restore.sh {archive} "
             f"--target-db {created.database}\n"
             f"(its keys work already: to keep clients out until then, 'fastinsight tenants "
             f"suspend {created.id}' first and 'resume' after)")
        _emit(created)
