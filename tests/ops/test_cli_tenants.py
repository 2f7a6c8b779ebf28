"""``fastinsight tenants ...`` on the real database: create, keys, revoke, export, delete,
import (with the printed backup and restore commands run as printed)."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from pymongo import MongoClient
from typer.testing import CliRunner, Result

from fastinsight.cli import tenants as tenants_cli
from fastinsight.config import Settings
from fastinsight.services.tenancy.directory import TenantDirectory
from fastinsight.services.tenancy.keys import Principal, Scope, digest
from fastinsight.storage.mongo.tenants import TenantRepository
from tests.ops.conftest import ROOT, cli_env

Client = MongoClient[dict[str, Any]]


@pytest.fixture()
def mongo(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    """The CLI on the test settings; the control and tenant databases dropped after."""
    monkeypatch.setattr(tenants_cli, "get_settings", lambda: settings)
    client: Client = MongoClient(settings.mongodb_uri, tz_aware=True)
    try:
        yield client
    finally:
        for name in client.list_database_names():
            if name.startswith(f"{settings.mongodb_db}_"):
                client.drop_database(name)
        client.close()


def run(*args: str) -> Result:
    app = typer.Typer()
    tenants_cli.register(app)
    return CliRunner().invoke(app, ["tenants", *args])


def ok(*args: str) -> Result:
    result = run(*args)
    assert result.exit_code == 0, result.output
    return result


def who(settings: Settings, client: Client, key: str) -> Principal | None:
    """What a freshly started API process makes of ``key``."""
    repo = TenantRepository(client, f"{settings.mongodb_db}_control")  # type: ignore[arg-type]
    return TenantDirectory(settings, repo).authenticate(key)


def follow_up(stderr: str, script: str) -> str:
    """The printed ``FASTINSIGHT_MONGODB_DB=... scripts/<script> ...`` command."""
    found = re.search(rf"^\s*(FASTINSIGHT_MONGODB_DB=\S+ scripts/{script} .+)$", stderr, re.M)
    assert found, stderr
    return found.group(1)


def shell(command: str, settings: Settings) -> dict[str, Any]:
    done = subprocess.run(["bash", "-c", command], cwd=ROOT, env=cli_env(settings),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    payload: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return payload


def test_tenant_lifecycle_through_the_cli(settings: Settings, mongo: Client, tmp_path: Path) -> None:
    tenant_db = f"{settings.mongodb_db}_t_acme"
    created = json.loads(ok("create", "acme", "--name", "Acme", "--quota-items", "500",
                            "--rate-limit", "20", "--burst", "40",
                            "--settings-json", '{"max_per_category": 3}').stdout)
    assert created["database"] == tenant_db
    assert created["quotas"]["items"] == 500 and created["limits"]["burst"] == 40
    assert created["settings"]["max_per_category"] == 3
    assert run("create", "acme").exit_code == 1
    bad = run("create", "acme2", "--settings-json", '{"max_per_category": 0}')
    assert bad.exit_code == 1 and "max_per_category" in bad.stderr

    # A key is printed alone on stdout and authenticates as the tenant.
    made = ok("keys", "create", "acme", "--scope", "api", "--name", "shop")
    key = made.stdout.strip()
    assert made.stdout == key + "\n" and key.startswith("fi_acme_")
    assert who(settings, mongo, key) == Principal("acme", Scope.READ_WRITE)
    old = ok("keys", "create", "acme", "--scope", "admin").stdout.strip()
    old_id = digest(old)[:16]
    assert old_id in ok("keys", "list", "acme").stdout
    assert json.loads(ok("keys", "revoke", "acme", old_id).stdout)["revoked_at"] is not None
    assert who(settings, mongo, old) is None
    assert run("keys", "revoke", "acme", old_id).exit_code == 1  # no live key of that id

    mongo[tenant_db].users.insert_many([{"_id": f"u{i}", "user_id": f"u{i}"} for i in range(3)])
    listed = ok("list").stdout
    assert "acme" in listed and "default" in listed
    assert json.loads(ok("show", "acme").stdout)["usage"]["users"] == 3
    assert json.loads(ok("suspend", "acme").stdout)["status"] == "suspended"
    assert json.loads(ok("resume", "acme").stdout)["status"] == "active"

    # Export: the record and the live key's hash, never a key; then back the data up as printed.
    export = tmp_path / "moves" / "acme.json"
    export.parent.mkdir()
    exported = ok("export", "acme", str(export))
    text = export.read_text()
    assert key not in text and old not in text
    assert [k["digest"] for k in json.loads(text)["keys"]] == [digest(key)]
    backup = shell(follow_up(exported.stderr, "backup.sh"), settings)
    assert Path(backup["archive"]).parent == export.parent
    assert backup["collections"]["users"] == 3

    refused = run("delete", "acme")
    assert refused.exit_code == 1 and "--yes" in refused.stderr
    assert tenant_db in mongo.list_database_names()
    deleted = json.loads(ok("delete", "acme", "--yes").stdout)
    assert deleted["databases_dropped"] == [tenant_db]
    assert tenant_db not in mongo.list_database_names()
    assert who(settings, mongo, key) is None
    assert run("show", "acme").exit_code == 1

    # Import: the tenant and its key are back; its data comes back with the printed restore.
    imported = ok("import", str(export))
    assert json.loads(imported.stdout)["quotas"]["items"] == 500
    assert who(settings, mongo, key) == Principal("acme", Scope.READ_WRITE)
    assert who(settings, mongo, old) is None  # revoked keys are not exported
    restore = follow_up(imported.stderr, "restore.sh")
    assert backup["archive"] in restore
    assert shell(restore, settings)["target_db"] == tenant_db
    assert mongo[tenant_db].users.count_documents({}) == 3
    again = run("import", str(export))
    assert again.exit_code == 1 and "exists already" in again.stderr


def test_errors_exit_1_with_the_reason(settings: Settings, mongo: Client, tmp_path: Path) -> None:
    missing = run("show", "nobody")
    assert missing.exit_code == 1 and "does not exist" in missing.stderr
    assert run("create", "default").exit_code == 1
    assert run("create", "Not_An_Id").exit_code == 1
    assert run("export", "default", str(tmp_path / "d.json")).exit_code == 1
    ok("create", "t1")
    unwritable = run("export", "t1", str(tmp_path / "missing" / "t1.json"))
    assert unwritable.exit_code == 1 and "cannot write" in unwritable.stderr
    junk = tmp_path / "junk.json"
    junk.write_text('{"id": "x"}')
    assert "not a tenant export" in run("import", str(junk)).stderr
