"""A misspelt FASTINSIGHT_* variable is named at start-up, with the setting it resembles:
the settings ignore unknown names, so a typo would silently keep the default."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fastinsight.ops.settings import unknown_variables, warn_unknown_variables


def test_unknown_names_are_found_with_the_closest_setting() -> None:
    environ = {"FASTINSIGHT_MONGO_DB": "shop", "FASTINSIGHT_MONGODB_DB": "shop", "FASTINSIGHT_FOO": "1",
               "FASTINSIGHT_API_KEY": "k", "FASTINSIGHT_LOG_LEVEL": "INFO", "FASTINSIGHT_BACKUP_KEEP": "3",
               "FASTINSIGHT_MONITOR_MAX_CPU": "90", "fastinsight_admin_kye": "x", "PATH": "/bin"}
    assert unknown_variables(environ) == [
        ("FASTINSIGHT_FOO", None), ("FASTINSIGHT_MONGO_DB", "FASTINSIGHT_MONGODB_DB"),
        ("fastinsight_admin_kye", "FASTINSIGHT_ADMIN_KEY")]


def test_the_warning_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="fastinsight.ops.settings"):
        warn_unknown_variables({"FASTINSIGHT_MONGO_DB": "shop"})
    assert "FASTINSIGHT_MONGO_DB is not a FastInsight setting" in caplog.text
    assert "did you mean FASTINSIGHT_MONGODB_DB?" in caplog.text


def test_the_command_line_names_it_before_running() -> None:
    env = {**os.environ, "FASTINSIGHT_MONGO_DB": "shop"}
    done = subprocess.run([sys.executable, "-c", "from fastinsight.cli import main; main()", "--help"],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "FASTINSIGHT_MONGO_DB is not a FastInsight setting" in done.stdout + done.stderr
