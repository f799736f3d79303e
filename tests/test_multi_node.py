"""The application on several machines: two application servers and a task worker sharing one
PostgreSQL and one Redis (bench/multinode/run.py, also `make multi-node-test`). It needs
PostgreSQL, so it runs in the suite's PostgreSQL half; `make test` installs redis-server."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import postgres

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    postgres is None, reason="several machines share a PostgreSQL database: this runs in the "
                             "suite's PostgreSQL half")


def test_two_servers_and_a_worker_share_sessions_files_reports_and_lose_no_write(tmp_path):
    assert shutil.which("redis-server"), "redis-server is missing: `make redis` installs it"
    database = postgres.fresh(empty=True)
    result_file = tmp_path / "multinode.json"
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "multinode" / "run.py"),
                          "--database", database, "--json", str(result_file)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    result = json.loads(result_file.read_text())

    assert result["sessions"] == "signed in on A, recognised on B"
    assert result["attachment"]["downloaded_via"] == "B"
    assert result["report"]["read_on"] == "B" and result["report"]["pdf_bytes"] > 1000
    load = result["load"]
    assert load["before_kill"] > 0 and load["after_kill"] > 0 and load["lost"] == 0
