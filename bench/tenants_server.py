"""bench/tenants.py's API process: start and stop it, read its metrics, memory and logged
errors, and wait until a tenant answers from its trained model."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from serve import free_port
from serve_workers import memory


@dataclass
class Tenant:
    id: str
    size: int
    database: str
    key: str
    admin_key: str = ""
    version: str = ""
    artefact_bytes: int = 0
    users: list[str] = field(default_factory=list)
    ingest_s: float = 0.0
    train_s: float = 0.0

    def path(self, n: int) -> str:
        return f"/v1/users/{self.users[n % len(self.users)]}/recommendations?k=10"

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.key}


class ServerProblem(RuntimeError):
    """The API answered what it should not have (the message says what and where)."""


class Server:
    """One uvicorn process (one worker) over ``env``; its log files under ``folder``."""

    def __init__(self, env: dict[str, str], folder: Path, operator_key: str) -> None:
        self.folder = folder
        self.operator = {"X-API-Key": operator_key}
        self.out = folder / "server.out"
        self.problems: list[dict[str, Any]] = []  # misbehaviour seen, kept for the report
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        with self.out.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "fastinsight.api.asgi:app", "--port", str(port),
                 "--log-level", "warning", "--no-access-log"],
                env=env, cwd=folder, stdout=out, stderr=subprocess.STDOUT)
        self.http = httpx.Client(base_url=self.url, timeout=60)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if self.http.get("/health/ready").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise ServerProblem(f"the API did not become ready; its output:\n{self.out.read_text()[-4000:]}")

    def stop(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)

    # ---- requests ----------------------------------------------------------------------
    def checked(self, response: httpx.Response, what: str) -> httpx.Response:
        if response.is_success:
            return response
        raise ServerProblem(f"{what}: HTTP {response.status_code} {response.text[:500]}")

    def operator_call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.request(method, f"/v1/operator/tenants{path}", json=body, headers=self.operator)
        return self.checked(response, f"{method} /v1/operator/tenants{path}").json()

    def until_model(self, tenant: Tenant, deadline_s: float, interval: float = 0.02,
                    user: int = 0) -> dict[str, Any]:
        """GET the tenant's recommendations until the answer comes from its trained version
        (the fallback answers give ``reason: popular`` for every item).
        Returns the first answer's latency and what it was, and the wait until the model."""
        path = tenant.path(user)
        started = time.perf_counter()
        first = self.http.get(path, headers=tenant.headers)
        first_ms = (time.perf_counter() - started) * 1000
        out: dict[str, Any] = {"first_ms": round(first_ms, 3), "first_status": first.status_code,
                               "first_answer": _kind(first, tenant.version)}
        if first.status_code == 200 and out["first_answer"] == "fallback":
            out["fallback_all_popular"] = all(i["reason"] == "popular" for i in first.json()["items"])
        answer, polls = first, 0
        while _kind(answer, tenant.version) != "model":
            if answer.status_code >= 500 or time.perf_counter() - started > deadline_s:
                self.problem(f"tenant {tenant.id} did not answer from its model {tenant.version}",
                             status=answer.status_code, answer=answer.text[:500], polls=polls,
                             seconds=round(time.perf_counter() - started, 1))
                out["model_after_ms"] = None
                return out
            time.sleep(interval)
            answer = self.http.get(path, headers=tenant.headers)
            polls += 1
        out["model_after_ms"] = round((time.perf_counter() - started) * 1000, 3)
        out["polls"] = polls
        return out

    # ---- what the process reports --------------------------------------------------------
    def metrics(self) -> list[tuple[str, dict[str, str], float]]:
        text = self.checked(self.http.get("/metrics"), "GET /metrics").text
        return [(s.name, dict(s.labels), float(s.value))
                for family in text_string_to_metric_families(text) for s in family.samples]

    def memory(self) -> dict[str, float]:
        """RSS, PSS (MiB) of the API process and the part mapped from model copies."""
        return memory(self.proc.pid, self.folder / "var" / "models")

    def problem(self, what: str, **details: Any) -> None:
        self.problems.append({"what": what, **details})
        print(f"PROBLEM: {what} {details}", file=sys.stderr)

    def logged_errors(self, limit: int = 20) -> list[dict[str, Any]]:
        """Error records of the API's log (and tracebacks in its output), newest last."""
        found: list[dict[str, Any]] = []
        log = self.folder / "log" / "api.log"
        for line in log.read_text().splitlines() if log.exists() else []:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("level") in ("ERROR", "CRITICAL") or "exc" in record:
                found.append({k: record.get(k) for k in ("ts", "level", "logger", "message", "exc")})
        # The output repeats the JSON log lines; uvicorn's own tracebacks are plain text.
        lines = self.out.read_text(errors="replace").splitlines() if self.out.exists() else []
        text = "\n".join(line for line in lines if not line.startswith("{"))
        for block in text.split("Traceback (most recent call last):")[1:]:
            found.append({"source": "server output", "exc": "Traceback (most recent call last):" + block[:4000]})
        return found[-limit:]


def gauge(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float | None:
    for sample, got, value in samples:
        if sample == name and all(got.get(k) == v for k, v in labels.items()):
            return value
    return None


def labelled(samples: list[tuple[str, dict[str, str], float]], name: str, label: str) -> dict[str, float]:
    return {got[label]: value for sample, got, value in samples if sample == name and label in got}


def _kind(response: httpx.Response, version: str) -> str:
    if response.status_code != 200:
        return f"http {response.status_code}"
    body = response.json()
    items = body.get("items") or []
    # The answer while loading names the version it comes from, with every reason "popular";
    # the model's answer to a user with history explains items by that history.
    if items and all(i.get("reason") == "popular" for i in items):
        return "fallback"
    if body.get("model_version") == version:
        return "model"
    return f"version {body.get('model_version')}"
