"""The JS client's own tests (node's test runner) against the real server; the server's
URL and key reach them through the environment, never the command line."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.clients.conftest import NODE, Live
from tests.conftest import API_KEY


def test_node_tests_pass_against_the_real_server(live: Live, js_build: Path) -> None:
    tests = sorted(str(p.relative_to(js_build)) for p in (js_build / "test").glob("*.test.mjs"))
    assert len(tests) >= 2
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTINSIGHT_")}
    env.update({"FASTINSIGHT_URL": live.url, "FASTINSIGHT_API_KEY": API_KEY})
    done = subprocess.run([NODE, "--test", "--test-reporter=tap", *tests], cwd=js_build, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert "# fail 0" in done.stdout and "# pass 0" not in done.stdout
