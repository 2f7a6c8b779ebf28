"""``fastinsight deploy``: blue/green restart of the API on one host behind the proxy.

1. start the new API process on the idle backend port (of two) and wait for its
   ``/health/ready``; if it never answers 200 (or exits), kill it and keep the old one
   (automatic roll-back, nothing was switched);
2. rewrite the proxy's state file and wait for the proxy to acknowledge the switch;
3. wait until the old backend has no request in flight through the proxy, then stop it
   gracefully (SIGTERM: uvicorn finishes what it is serving), SIGKILL after a timeout.

All processes run in their own session and are tracked by pid in ``run_dir``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from fastinsight.ops.jobs.process import pid_alive
from fastinsight.ops.proxy import STATUS_PATH, read_state

log = logging.getLogger(__name__)

DEFAULT_BACKEND_CMD = (
    "{python} -m uvicorn fastinsight.api.asgi:app --host 127.0.0.1 --port {port} "
    "--no-access-log --timeout-graceful-shutdown {drain}"
)


class DeployError(RuntimeError):
    """The deploy did not complete; ``rolled_back`` says the old version still serves."""

    def __init__(self, message: str, *, rolled_back: bool) -> None:
        super().__init__(message)
        self.rolled_back = rolled_back


@dataclass(frozen=True)
class DeployConfig:
    run_dir: Path
    listen_host: str = "127.0.0.1"
    listen_port: int = 8000
    backend_ports: tuple[int, int] = (8001, 8002)
    backend_cmd: str = DEFAULT_BACKEND_CMD
    ready_timeout: float = 60.0
    drain_timeout: float = 30.0
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None

    @property
    def state_path(self) -> Path:
        return self.run_dir / "deploy.json"

    @property
    def proxy_pidfile(self) -> Path:
        return self.run_dir / "proxy.pid"

    @property
    def proxy_url(self) -> str:
        return f"http://{self.listen_host}:{self.listen_port}"

    def argv(self, port: int) -> list[str]:
        text = self.backend_cmd.format(python=sys.executable, port=port, drain=int(self.drain_timeout))
        return shlex.split(text)


@dataclass
class DeployResult:
    previous_port: int | None
    active_port: int
    active_pid: int
    generation: int
    seconds: float


def _alive(pid: int | None) -> bool:
    if not pid or not pid_alive(pid):
        return False
    try:  # a zombie child of ours counts as gone
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def _spawn(argv: Sequence[str], log_path: Path, cfg: DeployConfig, extra_env: dict[str, str]) -> int:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **cfg.env, **extra_env}
    with log_path.open("ab") as out:
        proc = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
            cwd=cfg.cwd,
        )
    return proc.pid


def stop_process(pid: int | None, timeout: float) -> None:
    """SIGTERM the process group, wait up to ``timeout``, then SIGKILL it."""
    if not _alive(pid):
        return
    assert pid is not None
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.05)
    log.warning("process %d did not exit", pid)


def wait_ready(url: str, pid: int, timeout: float) -> bool:
    """Poll ``url`` until it answers 200; False on timeout or if ``pid`` exits."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if not _alive(pid):
                return False
            try:
                if client.get(url).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    return False


def _write_state(cfg: DeployConfig, state: dict[str, Any]) -> None:
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    tmp = cfg.state_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1))
    os.replace(tmp, cfg.state_path)


def proxy_status(cfg: DeployConfig) -> dict[str, Any] | None:
    try:
        response = httpx.get(f"{cfg.proxy_url}{STATUS_PATH}", timeout=2.0)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    data: dict[str, Any] = response.json()
    return data


def ensure_proxy(cfg: DeployConfig) -> int:
    """Start the proxy unless it already answers; returns its pid."""
    status = proxy_status(cfg)
    if status is not None:
        return int(status["pid"])
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "fastinsight.ops.proxy:create_proxy_from_env",
        "--host",
        cfg.listen_host,
        "--port",
        str(cfg.listen_port),
        "--no-access-log",
        "--timeout-graceful-shutdown",
        str(int(cfg.drain_timeout)),
    ]
    pid = _spawn(
        argv,
        cfg.run_dir / "proxy.log",
        cfg,
        {"FASTINSIGHT_PROXY_STATE": str(cfg.state_path.resolve())},
    )
    cfg.proxy_pidfile.write_text(str(pid))
    deadline = time.monotonic() + 15.0
    while time.monotonic() < deadline:
        if proxy_status(cfg) is not None:
            log.info("proxy started on %s (pid %d)", cfg.proxy_url, pid)
            return pid
        if not _alive(pid):
            break
        time.sleep(0.1)
    stop_process(pid, 2.0)
    raise DeployError(
        f"proxy did not start on {cfg.proxy_url} (see {cfg.run_dir}/proxy.log)", rolled_back=True
    )


def _wait_switch(cfg: DeployConfig, url: str, generation: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = proxy_status(cfg)
        if status and status.get("active_url") == url and status.get("generation") == generation:
            return True
        time.sleep(0.05)
    return False


def _wait_drained(cfg: DeployConfig, url: str) -> bool:
    deadline = time.monotonic() + cfg.drain_timeout
    while time.monotonic() < deadline:
        status = proxy_status(cfg)
        if status is not None and int(status.get("inflight", {}).get(url, 0)) <= 0:
            return True
        time.sleep(0.05)
    return False


def deploy(cfg: DeployConfig) -> DeployResult:
    """Replace the running API with a freshly started one; see the module docstring."""
    started = time.monotonic()
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    state = read_state(cfg.state_path)
    old_port = state.get("active_port")
    old_pid = state.get("active_pid")
    if not _alive(old_pid):
        old_port, old_pid = None, None
    new_port = cfg.backend_ports[1] if old_port == cfg.backend_ports[0] else cfg.backend_ports[0]
    new_url = f"http://127.0.0.1:{new_port}"
    new_pid = _spawn(cfg.argv(new_port), cfg.run_dir / f"api-{new_port}.log", cfg, {})
    log.info("deploy: started api on port %d (pid %d)", new_port, new_pid)
    if not wait_ready(f"{new_url}/health/ready", new_pid, cfg.ready_timeout):
        stop_process(new_pid, 5.0)
        raise DeployError(
            f"new api on port {new_port} never became ready within {cfg.ready_timeout:g}s; "
            f"rolled back (see {cfg.run_dir}/api-{new_port}.log)",
            rolled_back=True,
        )
    generation = int(state.get("generation", 0)) + 1
    _write_state(
        cfg,
        {
            "active_url": new_url,
            "active_port": new_port,
            "active_pid": new_pid,
            "generation": generation,
            "switched_at": time.time(),
        },
    )
    try:
        ensure_proxy(cfg)
    except DeployError:
        _write_state(cfg, state)
        stop_process(new_pid, 5.0)
        raise
    if not _wait_switch(cfg, new_url, generation):
        _write_state(cfg, {**state, "generation": generation + 1})
        stop_process(new_pid, cfg.drain_timeout)
        raise DeployError("the proxy did not acknowledge the switch; rolled back", rolled_back=True)
    if old_pid is not None:
        old_url = f"http://127.0.0.1:{old_port}"
        if not _wait_drained(cfg, old_url):
            log.warning("deploy: %s still had requests after %.0fs", old_url, cfg.drain_timeout)
        stop_process(old_pid, cfg.drain_timeout)
        log.info("deploy: stopped old api on port %s (pid %s)", old_port, old_pid)
    return DeployResult(
        previous_port=old_port,
        active_port=new_port,
        active_pid=new_pid,
        generation=generation,
        seconds=time.monotonic() - started,
    )


def status(cfg: DeployConfig) -> dict[str, Any]:
    state = read_state(cfg.state_path)
    return {
        "state": state,
        "api_alive": _alive(state.get("active_pid")),
        "proxy": proxy_status(cfg),
    }


def stop_all(cfg: DeployConfig) -> None:
    """Stop the active API and the proxy started by ``deploy``."""
    state = read_state(cfg.state_path)
    stop_process(state.get("active_pid"), cfg.drain_timeout)
    if cfg.proxy_pidfile.exists():
        with contextlib.suppress(ValueError):
            stop_process(int(cfg.proxy_pidfile.read_text().strip()), cfg.drain_timeout)
        cfg.proxy_pidfile.unlink(missing_ok=True)
    cfg.state_path.unlink(missing_ok=True)
