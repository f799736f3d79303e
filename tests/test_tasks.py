"""The task queue: background work waits on huey's queue (a SQLite file here) for a real
`flask worker`, so a web server's restart loses none of it; a queue that is down is said
clearly and nothing is half saved; the sweep restarts a job whose worker died."""

import json
import os
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from governance import create_app, jobs
from governance.database import utcnow
from governance.extensions import db
from governance.reports import jobs as report_jobs
from governance.reports.models import Report
from governance.tasks import queue_of

from .conftest import login
from .test_reports import YEAR, queued
from .test_reports import year as year  # noqa: F401  (the fixture)


@pytest.fixture
def app_config():
    return {"JOBS_INLINE": False}


def worker_environment(app) -> dict:
    """The test application's configuration, as GOVERNANCE_* variables for a `flask worker`
    process of its own."""
    env = dict(os.environ)
    for key in ("SECRET_KEY", "AUDIT_KEY", "DATA_DIR", "TASK_QUEUE_URL"):
        if app.config.get(key) is not None:
            env[f"GOVERNANCE_{key}"] = json.dumps(app.config[key])
    env["DATABASE_URL"] = app.config["SQLALCHEMY_DATABASE_URI"]
    env["FLASK_APP"] = "governance"
    return env


def wait_for(report_id: int, states=("done", "failed"), timeout: float = 120) -> Report:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.rollback()
        report = db.session.get(Report, report_id, populate_existing=True)
        if report.status in states:
            return report
        time.sleep(0.2)
    raise AssertionError(f"report {report_id} still {report.status} after {timeout} s")


def test_a_report_queued_before_a_restart_is_run_by_the_worker(year, compliance_user, client,  # noqa: F811
                                                               app):
    login(client, compliance_user)
    response = client.post("/reports/", data={"organisation_id": year["sponsor"].id,
                                              "year": YEAR})
    assert response.status_code == 303
    report_id = db.session.scalar(select(Report.id))
    assert db.session.get(Report, report_id).status == "queued"
    assert queue_of(app).pending_count() == 1  # on the queue, not in a thread of this process

    # The web server restarts: a new application, and nothing of the old one's memory.
    app.extensions.pop("tasks")
    create_app(dict(app.config))

    worker = subprocess.Popen([sys.executable, "-m", "flask", "worker", "--threads", "1"],
                              env=worker_environment(app), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        report = wait_for(report_id)
    finally:
        worker.terminate()
        output = worker.communicate(timeout=60)[0]
    assert report.status == "done", (report.error, output[-2000:])
    assert report.has_files
    assert "Task worker: 1 thread(s) on sqlite:///" in output


def test_a_queue_that_is_down_is_said_and_nothing_is_saved(year, compliance_user, client,  # noqa: F811
                                                          bearer, app):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app.config["TASK_QUEUE_URL"] = f"redis://127.0.0.1:{port}/0"

    answer = client.post("/api/v1/reports", json={"organisation_id": year["sponsor"].id,
                                                  "year": YEAR},
                         headers=bearer(compliance_user))
    assert answer.status_code == 503
    message = answer.get_json()["error"]["message"]
    assert "task queue cannot be reached" in message and "nothing was saved" in message

    login(client, compliance_user)
    page = client.post("/reports/", data={"organisation_id": year["sponsor"].id,
                                          "year": YEAR})
    assert "task queue cannot be reached" in page.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Report.id))) == 0


def test_the_sweep_starts_again_a_job_whose_worker_died(year, compliance_user, app,  # noqa: F811
                                                        task_worker):
    report_id = queued(compliance_user, year["sponsor"]).id
    assert report_jobs.claim(report_id) is not None  # a worker took it, then was killed
    report = db.session.get(Report, report_id, populate_existing=True)
    report.heartbeat_at = utcnow() - timedelta(seconds=app.config["JOB_STALL_SECONDS"] + 1)
    db.session.commit()

    assert jobs.sweep() == 1
    report = wait_for(report_id)
    assert report.status == "done" and report.attempts == 2


def test_a_queued_job_whose_task_was_lost_is_put_on_the_queue_again(year, compliance_user,  # noqa: F811
                                                                    app, task_worker):
    report_id = queued(compliance_user, year["sponsor"]).id  # queued, but never on the queue
    assert jobs.sweep() == 0  # it has not waited long yet
    report = db.session.get(Report, report_id)
    report.updated_at = utcnow() - timedelta(seconds=app.config["JOB_STALL_SECONDS"] + 1)
    db.session.commit()

    assert jobs.sweep() == 1
    assert wait_for(report_id).status == "done"


def test_the_default_queue_is_a_file_in_the_data_folder(app):
    queue_of(app).pending_count()
    assert (Path(app.config["DATA_DIR"]) / "tasks.db").exists()
