"""The examples in clients/python/examples run against the real server, configured only
through FASTINSIGHT_URL / FASTINSIGHT_API_KEY / FASTINSIGHT_ADMIN_KEY."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.clients.conftest import CLIENT_SRC, Live
from tests.conftest import ADMIN_KEY, API_KEY, ROOT

EXAMPLES = ROOT / "clients" / "python" / "examples"


def _example(live: Live, name: str, *args: str, admin: bool = False) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTINSIGHT_")}
    env.update({"FASTINSIGHT_URL": live.url, "PYTHONPATH": str(CLIENT_SRC),
                "FASTINSIGHT_ADMIN_KEY" if admin else "FASTINSIGHT_API_KEY": ADMIN_KEY if admin else API_KEY})
    done = subprocess.run([sys.executable, str(EXAMPLES / name), *args], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_examples_run(live: Live, tmp_path: Path) -> None:
    out = _example(live, "recommend.py", "user-000005")
    assert "1. item-" in out and "recommendation_id" in out
    assert "1 stored, 0 already known" in _example(live, "track_purchase.py", "user-000005")
    csv = tmp_path / "items.csv"
    csv.write_text("item_id,title\nex-1,Example\n,no id\n")
    out = _example(live, "import_csv.py", "items", str(csv))
    assert "inserted 1" in out and "row 2: item_id" in out
    out = _example(live, "train_and_wait.py", "itemknn", "--no-activate", admin=True)
    assert "active=False" in out and "done in" in out
