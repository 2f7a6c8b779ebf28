"""Blue/green deploy on loopback: no request fails while the API is replaced twice under load."""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fastinsight.ops.deploy import DeployConfig, DeployError, deploy, proxy_status, stop_all
from tests.ops.conftest import ROOT

FAKE_CMD = (
    "{python} -m uvicorn tests.ops.fake_api:app --host 127.0.0.1 --port {port} "
    "--no-access-log --timeout-graceful-shutdown {drain}"
)
MAX_REQUESTS = 4000
MAX_SECONDS = 30.0


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.fixture()
def cfg(tmp_path: Path) -> Iterator[DeployConfig]:
    listen, a, b = _free_ports(3)
    config = DeployConfig(
        run_dir=tmp_path / "run",
        listen_port=listen,
        backend_ports=(a, b),
        backend_cmd=FAKE_CMD,
        ready_timeout=15.0,
        drain_timeout=5.0,
        cwd=ROOT,
    )
    try:
        yield config
    finally:
        stop_all(config)


class Load:
    """Bounded load through the proxy (keep-alive client, mixed GET/POST/slow requests)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ok = 0
        self.failures: list[str] = []
        self.pids: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(MAX_SECONDS + 10)

    def _run(self) -> None:
        deadline = time.monotonic() + MAX_SECONDS
        with httpx.Client(base_url=self.url, timeout=10.0) as client:
            for n in range(MAX_REQUESTS):
                if self._stop.is_set() or time.monotonic() > deadline:
                    return
                try:
                    if n % 10 == 0:
                        response = client.get("/slow")  # in flight across a switch
                    elif n % 2:
                        response = client.post("/whoami", content=b"x" * 2048)
                    else:
                        response = client.get("/whoami", params={"n": n})
                    if response.status_code != 200:
                        self.failures.append(f"{n}: HTTP {response.status_code}")
                        continue
                    body: dict[str, Any] = response.json()
                    if n % 10 and n % 2:
                        assert body["echo"] == 2048
                    self.ok += 1
                    if not self.pids or self.pids[-1] != body["pid"]:
                        self.pids.append(body["pid"])
                except Exception as exc:
                    self.failures.append(f"{n}: {exc!r}")


def _alive(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return " Z " not in Path(f"/proc/{pid}/stat").read_text()


def test_two_deploys_under_load_lose_no_request(cfg: DeployConfig) -> None:
    first = deploy(cfg)
    assert first.previous_port is None and first.active_port == cfg.backend_ports[0]
    with Load(cfg.proxy_url) as load:
        time.sleep(0.5)
        second = deploy(cfg)
        time.sleep(0.5)
        third = deploy(cfg)
        time.sleep(0.5)
    assert load.failures == []
    assert load.ok > 50
    assert (second.previous_port, second.active_port) == cfg.backend_ports
    assert third.active_port == cfg.backend_ports[0] and third.generation == 3
    assert load.pids == [first.active_pid, second.active_pid, third.active_pid]
    assert not _alive(first.active_pid) and not _alive(second.active_pid)
    status = proxy_status(cfg)
    assert status is not None and status["active_url"].endswith(f":{third.active_port}")


def test_new_version_that_never_gets_ready_is_rolled_back(cfg: DeployConfig) -> None:
    good = deploy(cfg)
    broken = dataclasses.replace(cfg, env={"FAKE_NEVER_READY": "1"}, ready_timeout=1.5)
    with Load(cfg.proxy_url) as load, pytest.raises(DeployError, match="never became ready") as err:
        deploy(broken)
    assert err.value.rolled_back
    assert load.failures == [] and load.ok > 0
    assert set(load.pids) == {good.active_pid}
    assert _alive(good.active_pid)
    body = httpx.get(f"{cfg.proxy_url}/whoami", timeout=5).json()
    assert body["pid"] == good.active_pid
    log = (cfg.run_dir / f"api-{cfg.backend_ports[1]}.log").read_text()
    assert "Started server process" in log  # it did start; it just never became ready
