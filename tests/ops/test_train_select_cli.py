"""``fastinsight train --select`` from the command line: progress per candidate, the
time-budgeted search, and where the time went (real CLI process, real database)."""

from __future__ import annotations

import json
import subprocess

from pymongo.database import Database

from fastinsight.config import Settings
from fastinsight.storage.mongo.models import ModelVersionRepository
from tests.api.test_recommend import seed
from tests.ops.conftest import CLI, cli_env


def test_select_with_a_budget_reports_each_candidate(
    db: Database[dict[str, object]], settings: Settings
) -> None:
    seed(db, settings)
    done = subprocess.run(
        [str(CLI), "train", "--select", "--candidates", "popularity,itemknn",
         "--select-search", "budget", "--select-budget", "2", "--no-evaluate"],
        env=cli_env(settings), capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    selection = out["selection"]
    assert set(selection["seconds"]) == {"popularity", "itemknn"}
    assert out["algorithm"] == selection["winner"]
    said = " ".join(done.stderr.split())
    for i, name in enumerate(("popularity", "itemknn"), start=1):
        assert f"select: {name} ({i}/2): holdout ndcg@10 " in said, said
    assert "search: budget" in " ".join(selection["reasons"])
    assert ModelVersionRepository(db).active_version() == out["version"]


def test_select_refuses_a_budget_below_a_second(
    db: Database[dict[str, object]], settings: Settings
) -> None:
    done = subprocess.run(
        [str(CLI), "train", "--select", "--select-search", "budget", "--select-budget", "0"],
        env=cli_env(settings), capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2 and "select-budget" in done.stderr
