"""The task queue's figures, each in a process of its own (bench/suite.py runs them):

    python bench/tasks_bench.py --start-latency WORKDIR
        an idle `flask worker` (SQLite queue): the time from putting a report job on the queue
        to the worker claiming it, for 10 jobs one after the other
    python bench/tasks_bench.py --daily-run WORKDIR
        the day's run (re-evaluation, reminders, digests) over WORKDIR/bench.sqlite
    python bench/tasks_bench.py --mail WORKDIR [--count 10000]
        COUNT notifications (to 100 users, waiting for mail) composed and handed to an SMTP
        server on loopback (aiosmtpd), on one connection per batch

Each prints one line of JSON.
"""

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE.parent))

import generate  # noqa: E402  (bench/generate.py)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fresh_app(workdir: Path, **config):
    from governance import create_app
    from governance.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{workdir / 'tasks.sqlite'}",
                      "SECRET_KEY": "bench", "AUDIT_KEY": "bench-audit-key-0123456789abcdef",
                      "DATA_DIR": str(workdir / "data"), **config})
    with app.app_context():
        db.create_all()
    return app


def start_latency(workdir: Path, jobs_count: int = 10) -> dict:
    from governance.auth import services as accounts
    from governance.database import utcnow
    from governance.extensions import db
    from governance.organisations.models import Organisation
    from governance.reports import jobs, services
    from governance.reports.models import Report
    from governance.reports.services import DEFAULT_METHODOLOGY

    app = fresh_app(workdir)
    env = dict(os.environ, FLASK_APP="governance", DATABASE_URL=app.config[
        "SQLALCHEMY_DATABASE_URI"], GOVERNANCE_SECRET_KEY='"bench"',
        GOVERNANCE_AUDIT_KEY='"bench-audit-key-0123456789abcdef"',
        GOVERNANCE_DATA_DIR=json.dumps(app.config["DATA_DIR"]))
    with app.app_context():
        sponsor = Organisation(name="Helix Pharma", kind="sponsor", country="GB",
                               methodology_note=DEFAULT_METHODOLOGY)
        db.session.add(sponsor)
        db.session.commit()
        officer = accounts.create_user("compliance@bench.example", "Bench Compliance",
                                       "compliance", generate.PASSWORD, sponsor.name)
        db.session.commit()
        worker = subprocess.Popen([sys.executable, "-m", "flask", "worker", "--threads", "1"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(5)  # idle: the consumer polls at its slowest
            waits = []
            for number in range(jobs_count):
                report = services.request_report(
                    {"organisation_id": sponsor.id, "year": 2010 + number}, officer)
                db.session.commit()
                queued_at = utcnow()
                jobs.start(report.id)
                report_id = report.id
                started = None
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    db.session.rollback()
                    found = db.session.get(Report, report_id, populate_existing=True)
                    if found.status in ("done", "failed"):
                        started = found.started_at
                        break
                    time.sleep(0.02)
                if started is None:
                    raise SystemExit(f"report job {report_id} did not end within 30 s")
                waits.append((started - queued_at) / timedelta(seconds=1))
                time.sleep(3)  # idle again before the next
        finally:
            worker.terminate()
            worker.wait(timeout=60)
    return {"jobs": jobs_count, "start_seconds": waits}


def daily_run(workdir: Path) -> dict:
    from governance import daily
    from governance.extensions import db

    app = generate.make_app(workdir / "bench.sqlite")
    with app.app_context():
        started, cpu = time.perf_counter(), time.process_time()
        run_id = daily.the_days_run(generate.TODAY)
        assert daily.run_job(run_id), "the day was already done"
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        run = db.session.get(daily.DailyRun, run_id, populate_existing=True)
        from sqlalchemy import func, select

        from governance.interactions.models import Interaction

        interactions = db.session.scalar(select(func.count(Interaction.id)))
        return {"seconds": seconds, "cpu": cpu, "state": run.state, "summary": run.summary,
                "error": run.error, "interactions": interactions,
                "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def mail(workdir: Path, count: int) -> dict:
    from aiosmtpd.controller import Controller

    from governance.auth import services as accounts
    from governance.extensions import db
    from governance.notifications import mail as mailing
    from governance.notifications.services import notify

    class Counting:
        received = 0

        async def handle_DATA(self, server, session, envelope):
            Counting.received += 1
            return "250 OK"

    port = free_port()
    controller = Controller(Counting(), hostname="127.0.0.1", port=port)
    controller.start()
    app = fresh_app(workdir, MAIL_BACKEND="smtp", MAIL_SERVER="127.0.0.1", MAIL_PORT=port,
                    JOBS_INLINE=False, TASK_QUEUE_URL=f"sqlite:///{workdir / 'queue.db'}")
    try:
        with app.app_context():
            from governance.organisations.models import Organisation

            db.session.add(Organisation(name="Helix Pharma", kind="sponsor", country="GB"))
            db.session.commit()
            users = [accounts.create_user(f"advocate{n}@bench.example", f"Advocate {n}",
                                          "advocate", generate.PASSWORD, "Helix Pharma").id
                     for n in range(100)]
            db.session.commit()
            started, cpu = time.perf_counter(), time.process_time()
            for number in range(count // len(users)):
                notify(users, "flags_raised", f"3 flags raised on Interaction {number}",
                       "The policy's rules flagged the interaction you logged. Open it to see "
                       "why.", f"/interactions/{number + 1}")
            db.session.commit()
            composed = time.perf_counter() - started
            sent = mailing.deliver_waiting()
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        controller.stop()
    return {"notifications": count, "mails_sent": sent, "received": Counting.received,
            "seconds": seconds, "cpu": cpu, "notify_seconds": composed}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--start-latency")
    parser.add_argument("--daily-run")
    parser.add_argument("--mail")
    parser.add_argument("--count", type=int, default=10_000)
    args = parser.parse_args()
    if args.start_latency:
        result = start_latency(Path(args.start_latency))
    elif args.daily_run:
        result = daily_run(Path(args.daily_run))
    else:
        result = mail(Path(args.mail), args.count)
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
