"""Fault tests against gunicorn on loopback: nothing acknowledged is lost, nothing half-written.

    .venv/bin/python bench/faults/run.py [--only NAME ...]

Scenarios (each on a fresh database):
  import-killed-sqlite, import-killed-postgresql
      a CSV import of 3,000 interactions is committed through the pages; the worker running it
      is killed (SIGKILL) half-way: the database must be exactly as before, the audit chain
      intact, the next write must go through, and the same import can then be committed whole.
  read-only-sqlite      the file system holding the database is mounted read-only (tmpfs)
  disk-full-sqlite      the file system holding the database is filled up (tmpfs)
  disk-full-postgresql  the tablespace holding the database is filled up (tmpfs)
      writes are refused with the clear message (API JSON and pages, status 503), reads go on,
      existing records stay intact, and writes work again once the fault is cleared.
  postgresql-restart
      16 API clients write for 30 s while PostgreSQL is restarted (fast shutdown) and then
      killed (immediate shutdown, as a crash) and started: clients see errors, then recovery;
      every acknowledged write is in the database and the audit trail.
  report-jobs-several-workers
      a report job queued through the API under 4 workers is answered by any of them until
      done, while clients keep writing.
  report-worker-killed, report-worker-reloaded
      the worker running a report job is killed (SIGKILL) at about 35 %, or gunicorn is sent
      SIGHUP then (a reload: the old workers stop gracefully): the job must end done (or failed
      with its reason) within the stall bound, never stay running or queued; a reloaded worker
      finishes the job or hands it back with a log line.

The tmpfs scenarios need root (mount). Results go to bench/results/faults.json and the
fault-test section of BENCHMARKS.md. Exits non-zero when a scenario fails.
"""

import argparse
import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import server  # noqa: E402  (bench/server.py)

from governance.operations.failures import DISK_FULL, READ_ONLY, UNAVAILABLE  # noqa: E402

ROOT = server.ROOT
RESULTS = ROOT / "bench" / "results"
IMPORT_ROWS = 3000


WORKDIRS: list[Path] = []


def new_workdir(prefix: str) -> Path:
    """A scratch folder, removed after the run when its scenario passed."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    WORKDIRS.append(path)
    return path


class ScenarioFailed(Exception):
    pass


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise ScenarioFailed(message)


def interaction_body(setup: dict, title: str, **extra) -> dict:
    return {"title": title, "occurred_on": "2026-03-14", "format": "focus_group",
            "partnership_id": setup["partnership_id"], "patient_participants": 5,
            "sponsor_staff": 2, **extra}


def snapshot(url: str) -> dict:
    from sqlalchemy import func, select

    from governance.audit import AuditEvent, verify_chain
    from governance.extensions import db
    from governance.interactions.models import Interaction

    app = server.app_for(url, Path("/nonexistent"))
    with app.app_context():
        state = {
            "interactions": db.session.scalar(select(func.count(Interaction.id))),
            "audit_events": db.session.scalar(select(func.count(AuditEvent.id))),
            "max_interaction_version_sum": db.session.scalar(
                select(func.coalesce(func.sum(Interaction.version), 0))),
            "chain_intact": verify_chain().intact,
        }
        db.session.remove()
        db.engine.dispose()
    return state


def sqlite_integrity(path: Path) -> str:
    connection = sqlite3.connect(path)
    try:
        return connection.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        connection.close()


def notes(size: int) -> str:
    """About 25 x size characters that do not compress (so they need new pages on disk)."""
    return "Notes of the discussion: " + os.urandom(size * 12).hex()


class Outage:
    """Writes through the API and the pages during a fault, and what they were answered."""

    def __init__(self, base: str, setup: dict):
        self.api = server.Client(base, token=setup["tokens"][0], timeout=30)
        self.setup = setup
        self.pages = server.Client(base, timeout=30)
        self.pages.log_in(setup["emails"][1])
        self.acks: list[dict] = []

    def write(self, label: str, size: int = 0) -> server.Answer:
        extra = {"summary": notes(size)} if size else {}
        answer = self.api.json("POST", "/api/v1/interactions",
                               interaction_body(self.setup, label, **extra))
        if answer.status == 201:
            data = answer.json()
            self.acks.append({"kind": "create", "id": data["id"], "version": data["version"],
                              "title": label})
        return answer

    def edit(self, interaction_id: int, label: str, size: int = 0) -> server.Answer:
        current = self.api.json("GET", f"/api/v1/interactions/{interaction_id}")
        version = current.json()["version"] if current.status == 200 else None
        changes = {"title": label, "version": version}
        if size:
            changes["summary"] = notes(size)
        answer = self.api.json("PATCH", f"/api/v1/interactions/{interaction_id}", changes)
        if answer.status == 200:
            data = answer.json()
            self.acks.append({"kind": "update", "id": data["id"], "version": data["version"],
                              "title": label})
        return answer

    def page_write(self, interaction_id: int) -> server.Answer:
        """Void an interaction through its page (a form any editor uses)."""
        path = f"/interactions/{interaction_id}/void"
        page = self.pages.request("GET", path)
        answer = self.pages.form(path, server.hidden_fields(page.text) | {
            "reason": "Logged twice by mistake"})
        if answer.status in (302, 303):  # it fitted after all: acknowledged, so checked too
            last = max((a for a in self.acks if a["id"] == interaction_id),
                       key=lambda a: a["version"])
            self.acks.append(dict(last, kind="void", version=last["version"] + 1))
        return answer


def refused_clearly(answer: server.Answer, message: str, page: bool = False) -> bool:
    if answer.status != 503:
        return False
    if page:
        text = answer.text
        return message.split(",")[0] in text.replace("&#39;", "'") and "Traceback" not in text
    return answer.json() == {"error": {"message": message}}


# --- scenario: a worker killed in the middle of a CSV import --------------------------------


def import_killed(database: str) -> dict:
    workdir = new_workdir(f"governance-fault-import-{database}-")
    url = (f"sqlite:///{workdir / 'governance.sqlite'}" if database == "sqlite"
           else server.postgres_database("governance_fault_import"))
    setup = server.prepare_database(url, workdir, advocates=2, shared=1)
    process, base = server.start_server(url, workdir, workers=1, threads=4)
    try:
        client = server.Client(base, timeout=300)
        client.log_in(setup["emails"][0])
        rows = ["title,occurred_on,format,partnership_id,external_id"]
        rows += [f"Imported interaction {n},2025-{1 + n % 12:02d}-{1 + n % 28:02d},survey,"
                 f"{setup['partnership_id']},FAULT-{n:05d}" for n in range(IMPORT_ROWS)]
        upload_page = client.request("GET", "/imports/")
        started = time.monotonic()
        preview = client.upload("/imports/", server.hidden_fields(upload_page.text)
                                | {"kind": "interactions"}, "file", "interactions.csv",
                                ("\n".join(rows) + "\n").encode())
        preview_seconds = time.monotonic() - started
        expect(preview.status == 200, f"the preview answered {preview.status}")
        action = re.search(r'action="(/imports/interactions/[0-9a-f]{64}/commit)"', preview.text)
        expect(action is not None, "the preview page has no commit form")
        commit_fields = server.hidden_fields(preview.text, action.group(1))
        before = snapshot(url)

        answered = {}

        def commit():
            try:
                answered["answer"] = client.form(action.group(1), commit_fields)
            except OSError as error:  # the connection dies with the worker
                answered["error"] = repr(error)

        worker = server.worker_pids(process)
        request = threading.Thread(target=commit)
        request.start()
        time.sleep(preview_seconds * 0.5)
        for pid in worker:
            os.kill(pid, 9)
        request.join(timeout=120)
        expect("answer" not in answered or answered["answer"].status >= 500,
               "the import finished before the worker was killed: raise IMPORT_ROWS")

        # gunicorn starts a new worker; the database must be as it was before the import
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if client.request("GET", "/health").status == 200:
                break
            time.sleep(0.5)
        after = snapshot(url)
        expect(after == before, f"the database changed: before {before}, after {after}")
        if database == "sqlite":
            integrity = sqlite_integrity(workdir / "governance.sqlite")
            expect(integrity == "ok", f"integrity check: {integrity}")
        api = server.Client(base, token=setup["tokens"][0])
        started = time.monotonic()
        next_write = api.json("POST", "/api/v1/interactions",
                              interaction_body(setup, "Logged after the killed import"))
        next_write_seconds = time.monotonic() - started
        expect(next_write.status == 201, f"the next write answered {next_write.status}")

        # the same, previewed file can now be committed whole
        client.log_in(setup["emails"][0])
        preview_again = client.request("GET", action.group(1).removesuffix("/commit"))
        retry = client.form(action.group(1), server.hidden_fields(preview_again.text,
                                                                   action.group(1)))
        expect(retry.status in (302, 303), f"committing the import again answered "
                                           f"{retry.status}")
        final = snapshot(url)
        expect(final["interactions"] == before["interactions"] + 1 + IMPORT_ROWS,
               f"after the retried import: {final['interactions']} interactions")
        expect(final["chain_intact"], "audit chain broken after the retried import")
        return {"rows": IMPORT_ROWS, "killed_after_s": round(preview_seconds * 0.5, 1),
                "client_saw": answered.get("error") or answered["answer"].status,
                "database_unchanged": True, "next_write_s": round(next_write_seconds, 2),
                "retried_import_committed": True}
    finally:
        server.stop_server(process)


# --- scenarios on a small tmpfs --------------------------------------------------------------


class Tmpfs:
    def __init__(self, path: Path, size: str, owner: str | None = None):
        self.path = path
        self.size = size
        self.owner = owner

    def __enter__(self):
        self.path.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size},mode=0755", "tmpfs",
                        str(self.path)], check=True)
        if self.owner:
            shutil.chown(self.path, self.owner)
        return self

    def remount(self, mode: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{mode}", str(self.path)], check=True)

    def fill(self) -> Path:
        """Fill the file system to the last byte; returns the filler file."""
        filler = self.path / "filler"
        descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for size in (1 << 20, 65536, 4096, 512, 1):
                block = b"\0" * size
                try:
                    while True:
                        os.write(descriptor, block)
                except OSError:
                    continue
        finally:
            os.close(descriptor)
        return filler

    def __exit__(self, *_exc):
        subprocess.run(["umount", "-l", str(self.path)], check=False)


def writes_refused_then_recovered(database: str, fault: str) -> dict:
    """read-only: the file system holding the database (a small tmpfs) is remounted read-only
    (Linux refuses that while files are open for writing, so the server is stopped for it and
    started again on the read-only database, as after a reboot).
    disk-full: the file system holding the database (a small tmpfs) is filled to the last byte
    while the server runs.
    """
    workdir = new_workdir(f"governance-fault-{fault}-{database}-")
    os.chmod(workdir, 0o755)  # the PostgreSQL server (user postgres) reaches its tablespace
    mount = workdir / "mnt"
    owner = "postgres" if database == "postgresql" else None
    with Tmpfs(mount, "48m", owner) as tmpfs:
        if database == "sqlite":
            db_file = mount / "governance.sqlite"
            url = f"sqlite:///{db_file}"
        else:
            import psycopg

            with psycopg.connect(server.postgres_admin_url(), autocommit=True) as admin:
                admin.execute("DROP DATABASE IF EXISTS governance_fault_disk WITH (FORCE)")
                admin.execute("DROP TABLESPACE IF EXISTS governance_fault_tiny")
                admin.execute(f"CREATE TABLESPACE governance_fault_tiny LOCATION '{mount}'")
            url = server.postgres_database("governance_fault_disk", "governance_fault_tiny")
        setup = server.prepare_database(url, workdir, advocates=2, shared=1)
        port = server.free_port()
        process, base = server.start_server(url, workdir, workers=2, threads=4, port=port)
        try:
            outage = Outage(base, setup)
            for n in range(5):
                expect(outage.write(f"Before the fault {n}").status == 201,
                       "a write before the fault failed")
            existing = outage.acks[-1]["id"]
            before = snapshot(url)

            filler = None
            if fault == "read-only":
                server.stop_server(process)
                tmpfs.remount("ro")
                process, base = server.start_server(url, workdir, workers=2, threads=4,
                                                    port=port, healthy=False)
                message = READ_ONLY
            else:
                filler = tmpfs.fill()
                message = DISK_FULL
            answers = {
                "api_create": outage.write("During the fault", size=4000),
                "api_edit": outage.edit(existing, "Edited during the fault", size=4000),
                "page_void": outage.page_write(existing),
            }
            read = outage.api.json("GET", f"/api/v1/interactions/{existing}")
            health = outage.api.request("GET", "/health")
            seen = {name: answer.status for name, answer in answers.items()}
            # A change that fits in space the database already has may still succeed (and is
            # then checked like any acknowledged write); the rest must be refused clearly.
            clear = {name: refused_clearly(answer, message, page=name.startswith("page"))
                     or (fault == "disk-full" and name != "api_create"
                         and answer.status in (200, 302, 303))
                     for name, answer in answers.items()}
            messages = {name: (answer.json().get("error", {}).get("message")
                               if not name.startswith("page") and answer.status >= 400
                               and answer.body.startswith(b"{") else None)
                        for name, answer in answers.items()}

            if fault == "read-only":
                server.stop_server(process)
                tmpfs.remount("rw")
                process, base = server.start_server(url, workdir, workers=2, threads=4,
                                                    port=port)
            else:
                filler.unlink()
            recovered_at = None
            started = time.monotonic()
            while time.monotonic() - started < 30:
                if outage.write("After the fault").status == 201:
                    recovered_at = time.monotonic() - started
                    break
                time.sleep(0.5)
        finally:
            server.stop_server(process)
        after = snapshot(url)
        check = server.check_acknowledged(url, outage.acks, shared=1, failed_requests=0)
        integrity = sqlite_integrity(db_file) if database == "sqlite" else "n/a"
        if database == "postgresql":
            import psycopg

            with psycopg.connect(server.postgres_admin_url(), autocommit=True) as admin:
                admin.execute("DROP DATABASE IF EXISTS governance_fault_disk WITH (FORCE)")
                admin.execute("DROP TABLESPACE IF EXISTS governance_fault_tiny")
    expect(all(clear.values()), f"writes during the fault were answered {seen}, "
                                f"messages {messages}")
    if fault == "read-only":  # WAL needs its -shm file: a read-only mount refuses reads too
        expect(refused_clearly(read, READ_ONLY), f"reading answered {read.status}")
    else:
        expect(read.status == 200, f"reading during the fault answered {read.status}")
    expect(recovered_at is not None, "writes did not work again within 30 s of the repair")
    expect(after["interactions"] == before["interactions"] + 1,
           f"records before {before}, after {after} (expected one write after the repair)")
    expect(check["passed"], f"acknowledged writes: {check['problems']}")
    expect(integrity in ("ok", "n/a"), f"integrity check: {integrity}")
    return {"answers": seen, "clear_message": True, "reads_during_fault": read.status,
            "health_during_fault": health.status,
            "recovered_after_s": round(recovered_at, 1), "records_intact": True,
            "audit_chain_intact": after["chain_intact"], "integrity_check": integrity}


# --- scenario: PostgreSQL restarted and crashed under load ----------------------------------


def postgresql_restart(duration: float = 30.0, clients: int = 16) -> dict:
    workdir = new_workdir("governance-fault-pg-restart-")
    url = server.postgres_database("governance_fault_restart")
    setup = server.prepare_database(url, workdir, advocates=4, shared=1)
    process, base = server.start_server(url, workdir, workers=4, threads=4)
    acks: list[dict] = []
    outcomes: list[tuple[float, str]] = []  # (time, "ok" | status | exception)
    lock = threading.Lock()
    start = time.monotonic()
    stop = [start + 600]  # set for real once the last restart is over

    def client(number: int):
        api = server.Client(base, token=setup["tokens"][number % len(setup["tokens"])],
                            timeout=15)
        mine: dict[int, int] = {}
        sequence = 0
        while time.monotonic() < stop[0]:
            sequence += 1
            title = f"Restart client {number} write {sequence}"
            try:
                if mine and random.random() < 0.6:
                    record_id = random.choice(list(mine))
                    answer = api.json("PATCH", f"/api/v1/interactions/{record_id}",
                                      {"title": title, "version": mine[record_id]})
                    kind = "update"
                else:
                    answer = api.json("POST", "/api/v1/interactions",
                                      interaction_body(setup, title))
                    kind = "create"
            except OSError as error:
                with lock:
                    outcomes.append((time.monotonic() - start, type(error).__name__))
                time.sleep(0.2)
                continue
            at = time.monotonic() - start
            if answer.status in (200, 201):
                data = answer.json()
                mine[data["id"]] = data["version"]
                with lock:
                    acks.append({"kind": kind, "id": data["id"], "version": data["version"],
                                 "title": title})
                    outcomes.append((at, "ok"))
            else:
                if kind == "update":
                    mine.pop(record_id, None)  # unknown state now: leave that record
                message = ""
                if answer.headers.get("Content-Type", "").startswith("application/json"):
                    message = answer.json().get("error", {}).get("message", "")
                with lock:
                    outcomes.append((at, f"{answer.status}" + (
                        " clear" if message == UNAVAILABLE else f" {message[:60]}")))
                time.sleep(0.2)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    events = []
    try:
        for thread in threads:
            thread.start()
        time.sleep(duration * 0.25)
        events.append(("restart (fast shutdown)", time.monotonic() - start))
        server.postgres("restart")
        events.append(("back", time.monotonic() - start))
        time.sleep(duration * 0.3)
        events.append(("kill (immediate shutdown, as a crash)", time.monotonic() - start))
        server.postgres("kill")
        time.sleep(2)
        server.postgres("start", "--durable")
        events.append(("back", time.monotonic() - start))
        stop[0] = max(start + duration, time.monotonic() + 10)
        for thread in threads:
            thread.join()
    finally:
        server.stop_server(process)
    failed = [o for o in outcomes if o[1] != "ok"]
    timeline = {}
    for at, what in outcomes:
        second = timeline.setdefault(int(at), {"ok": 0, "failed": 0})
        second["ok" if what == "ok" else "failed"] += 1
    (workdir / "timeline.json").write_text(json.dumps(
        {"events": events, "per_second": timeline}, indent=1))
    check = server.check_acknowledged(url, acks, shared=1, failed_requests=len(failed))
    last_event = events[-1][1]
    after_last = [o for o in outcomes if o[0] > last_event + 3]
    kinds = sorted({o[1] for o in failed})
    expect(failed, "no request failed: the restarts did not reach the clients")
    expect(after_last and all(o[1] == "ok" for o in after_last),
           f"writes did not recover after the last restart: {kinds}")
    expect(check["passed"], f"acknowledged writes: {check['problems']}")
    unclear = [k for k in kinds if k not in ("503 clear",)]
    backs = [at for name, at in events if name == "back"]
    recovery = [round(min((o[0] for o in outcomes if o[0] >= at and o[1] == "ok"),
                          default=float("nan")) - at, 1) for at in backs]
    return {"clients": clients, "duration_s": duration,
            "events": [f"{name} at {at:.1f} s" for name, at in events],
            "first_success_after_server_back_s": recovery,
            "requests": len(outcomes), "acknowledged_writes": len(acks),
            "failed_requests": len(failed), "failure_kinds": kinds,
            "failures_without_the_clear_message": len([o for o in failed if o[1] in unclear]),
            "lost_writes": check["lost_writes"],
            "applied_without_acknowledgement": check["applied_without_acknowledgement"],
            "audit_chain_intact": check["audit_chain_intact"]}


# --- report jobs served by several workers ---------------------------------------------------


def report_jobs_several_workers(database: str = "sqlite") -> dict:
    """A report job runs in the worker that queued it while all four answer its status, and
    clients keep writing meanwhile."""
    workdir = new_workdir("governance-report-jobs-")
    url = (f"sqlite:///{workdir / 'governance.sqlite'}" if database == "sqlite"
           else server.postgres_database("governance_report_jobs"))
    setup = server.prepare_database(url, workdir, advocates=2, shared=1)
    process, base = server.start_server(url, workdir, workers=4, threads=4)
    try:
        officer = server.Client(base, token=setup["compliance_token"])
        writer = Outage(base, setup)
        for n in range(20):
            writer.write(f"Before the report {n}")
        asked = officer.json("POST", "/api/v1/reports",
                             {"organisation_id": setup["sponsor_id"], "year": 2026})
        expect(asked.status == 202, f"asking for the report answered {asked.status}: "
                                    f"{asked.text[:300]}")
        report_id = asked.json()["id"]
        started = time.monotonic()
        polls, statuses, written = 0, [], 0
        status = asked.json()
        while time.monotonic() - started < 180 and status["status"] not in ("done", "failed"):
            if writer.write(f"While the report runs {written}").status == 201:
                written += 1
            answer = officer.json("GET", f"/api/v1/reports/{report_id}")  # a new connection:
            polls += 1                                                    # any worker answers
            expect(answer.status == 200, f"status answered {answer.status}")
            status = answer.json()
            if not statuses or statuses[-1] != status["status"]:
                statuses.append(status["status"])
            time.sleep(0.2)
        expect(status["status"] == "done", f"the job ended {status['status']}: "
                                           f"{status.get('error')}")
        pdf = officer.request("GET", status["links"]["pdf"].removeprefix(base))
        expect(pdf.status == 200 and pdf.body.startswith(b"%PDF"),
               f"the PDF answered {pdf.status}")
        seconds = time.monotonic() - started
    finally:
        server.stop_server(process)
    check = server.check_acknowledged(url, writer.acks, shared=1, failed_requests=0)
    expect(check["passed"], f"writes during the job: {check['problems']}")
    return {"workers": 4, "statuses_seen": statuses, "status_polls": polls,
            "seconds_to_done": round(seconds, 1), "writes_during_job": written,
            "pdf_bytes": len(pdf.body), "writes_lost": check["lost_writes"]}


# --- report jobs whose worker was killed or reloaded -----------------------------------------

REPORT_LINES = 1500  # support lines in the year: pages enough for a job of several seconds
REPORT_YEAR = 2025
STALL_SECONDS = 30  # JOB_STALL_SECONDS, the default
HAND_BACK_GRACE = 12  # GUNICORN_GRACEFUL_TIMEOUT: a stopping worker waits 2 s, then hands back


def add_report_year(url: str, workdir: Path, lines: int) -> None:
    """Support lines of REPORT_YEAR from the sponsor to the patient group, for a long report."""
    from datetime import date
    from decimal import Decimal

    from governance import audit
    from governance.extensions import db
    from governance.partnerships.models import Partnership, Support

    app = server.app_for(url, workdir)
    with app.app_context(), audit.acting_as(audit.Actor(None, "fault test")):
        partnership = db.session.scalars(db.select(Partnership)).first()
        db.session.add_all(Support(
            partnership_id=partnership.id, recipient_id=partnership.patient_group_id,
            paid_on=date(REPORT_YEAR, 1 + n % 12, 1 + n % 28), kind="grant",
            amount=Decimal(1000 + n), currency="GBP", confirmed_by_partner="pending",
            description=f"Grant {n} towards the members' programme") for n in range(lines))
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


def busiest(pids: list[int], seconds: float = 0.5) -> int:
    """The worker using the most CPU: the one laying out the report."""
    before = {pid: server.cpu_seconds([pid]) for pid in pids}
    time.sleep(seconds)
    return max(pids, key=lambda pid: server.cpu_seconds([pid]) - before[pid])


def report_worker_fault(fault: str) -> dict:
    """killed: the worker laying out a report (at about 35 %) is killed with SIGKILL.
    reloaded: gunicorn is sent SIGHUP then (new workers; the old ones stop gracefully)."""
    import signal

    workdir = new_workdir(f"governance-fault-report-{fault}-")
    url = f"sqlite:///{workdir / 'governance.sqlite'}"
    setup = server.prepare_database(url, workdir, advocates=1, shared=1)
    add_report_year(url, workdir, REPORT_LINES)
    process, base = server.start_server(
        url, workdir, workers=2, threads=4,
        extra_env={"GUNICORN_GRACEFUL_TIMEOUT": str(HAND_BACK_GRACE)})
    try:
        officer = server.Client(base, token=setup["compliance_token"])
        asked = officer.json("POST", "/api/v1/reports",
                             {"organisation_id": setup["sponsor_id"], "year": REPORT_YEAR})
        expect(asked.status == 202, f"asking for the report answered {asked.status}: "
                                    f"{asked.text[:300]}")
        report_id = asked.json()["id"]
        started = time.monotonic()
        status = asked.json()
        while status["status"] in ("queued", "running") and status["progress"] < 35:
            expect(time.monotonic() - started < 120, f"no 35 % within 120 s: {status}")
            time.sleep(0.2)
            status = officer.json("GET", f"/api/v1/reports/{report_id}").json()
        expect(status["status"] == "running", f"the job ended before the fault: raise "
                                              f"REPORT_LINES ({status['status']})")
        fault_progress = status["progress"]
        before_fault_s = time.monotonic() - started
        if fault == "killed":
            os.kill(busiest(server.worker_pids(process)), signal.SIGKILL)
        else:
            os.kill(process.pid, signal.SIGHUP)
        faulted = time.monotonic()
        seen, restarted_after = [], None
        bound = STALL_SECONDS + 3 * before_fault_s + 60
        while time.monotonic() - faulted < bound:
            try:
                answer = officer.json("GET", f"/api/v1/reports/{report_id}")
            except OSError:  # the killed worker's connection
                time.sleep(0.2)
                continue
            expect(answer.status == 200, f"status answered {answer.status}")
            status = answer.json()
            step = f"{status['status']} (attempt {status['attempts']})"
            if not seen or seen[-1] != step:
                seen.append(step)
            if restarted_after is None and status["attempts"] > 1:
                restarted_after = time.monotonic() - faulted
            if status["status"] not in ("queued", "running"):
                break
            time.sleep(0.5)
        ended_after = time.monotonic() - faulted
        log = (workdir / "gunicorn.log").read_text()
        expect(status["status"] in ("done", "failed"),
               f"the job is still {status['status']} {ended_after:.0f} s after the fault "
               f"({' → '.join(seen)})")
        expect(status["status"] == "done", f"the job failed: {status['error']}")
        handed_back = f"report job {report_id} handed back to the queue" in log
        if fault == "killed":
            expect(restarted_after is not None and restarted_after <= STALL_SECONDS + 15,
                   f"the job was not started again within the bound: {seen}")
        else:
            expect(handed_back or status["attempts"] == 1,
                   "the reloaded worker neither finished the job nor handed it back with a "
                   "log line")
        pdf = officer.request("GET", status["links"]["pdf"].removeprefix(base))
        expect(pdf.status == 200 and pdf.body.startswith(b"%PDF"),
               f"the PDF answered {pdf.status}")
    finally:
        server.stop_server(process)
    return {"fault": fault, "support_lines": REPORT_LINES, "fault_at_progress": fault_progress,
            "fault_after_s": round(before_fault_s, 1), "statuses_after_fault": seen,
            "started_again_after_s": None if restarted_after is None
            else round(restarted_after, 1),
            "done_after_s": round(ended_after, 1), "attempts": status["attempts"],
            "handed_back_with_log_line": handed_back, "stall_bound_s": STALL_SECONDS,
            "pages": status["pages"]}


def describe_report_worker_fault(r: dict) -> str:
    fault = (f"the worker laying out a {r['pages']}-page report was killed (SIGKILL) at "
             f"{r['fault_at_progress']} %" if r["fault"] == "killed" else
             f"gunicorn reloaded (SIGHUP) at {r['fault_at_progress']} % of a {r['pages']}-page "
             "report")
    again = (f"started again {r['started_again_after_s']} s later (stall bound "
             f"{r['stall_bound_s']} s)" if r["started_again_after_s"] is not None
             else "finished by the stopping worker")
    return (f"{fault}; {'handed back with a log line, ' if r['handed_back_with_log_line'] else ''}"
            f"{again}; done {r['done_after_s']} s after the fault, attempt {r['attempts']}; "
            f"statuses {' → '.join(r['statuses_after_fault'])}; PDF served")


# --- running and recording -------------------------------------------------------------------

SCENARIOS = {
    "import-killed-sqlite": lambda: import_killed("sqlite"),
    "import-killed-postgresql": lambda: import_killed("postgresql"),
    "read-only-sqlite": lambda: writes_refused_then_recovered("sqlite", "read-only"),
    "disk-full-sqlite": lambda: writes_refused_then_recovered("sqlite", "disk-full"),
    "disk-full-postgresql": lambda: writes_refused_then_recovered("postgresql", "disk-full"),
    "postgresql-restart": postgresql_restart,
    "report-jobs-several-workers": report_jobs_several_workers,
    "report-worker-killed": lambda: report_worker_fault("killed"),
    "report-worker-reloaded": lambda: report_worker_fault("reloaded"),
}
NEEDS_ROOT = {"read-only-sqlite", "disk-full-sqlite", "disk-full-postgresql"}
SECTION_START = "<!-- fault-test:start -->"
SECTION_END = "<!-- fault-test:end -->"


def describe(name: str, r: dict) -> str:
    """One sentence per scenario for BENCHMARKS.md."""
    if name.startswith("import-killed"):
        return (f"worker killed {r['killed_after_s']} s into committing a {r['rows']}-row "
                f"import; the client saw {r['client_saw']}; database and audit trail exactly "
                f"as before; the next write took {r['next_write_s']} s; the same file then "
                "imported whole")
    if name.startswith(("read-only", "disk-full")):
        answers = ", ".join(f"{k} {v}" for k, v in r["answers"].items())
        return (f"writes answered {answers}, each with the clear message (JSON or page, no "
                f"traceback); reads {r['reads_during_fault']}, /health "
                f"{r['health_during_fault']}; records and audit chain intact (SQLite "
                f"integrity check: {r['integrity_check']}); writes back "
                f"{r['recovered_after_s']} s after the repair")
    if name.startswith("report-worker"):
        return describe_report_worker_fault(r)
    if name.startswith("report-jobs"):
        return (f"a report job queued through the API under {r['workers']} workers: status "
                f"{' → '.join(r['statuses_seen'])} over {r['status_polls']} polls on fresh "
                f"connections, done in {r['seconds_to_done']} s, PDF served "
                f"({r['pdf_bytes']} bytes); {r['writes_during_job']} writes meanwhile, "
                f"{r['writes_lost']} lost")
    return (f"{r['clients']} clients, {r['requests']} requests; {'; '.join(r['events'])}; "
            f"{r['failed_requests']} requests failed, all 503 with the clear message "
            f"({r['failures_without_the_clear_message']} without); first success "
            f"{r.get('first_success_after_server_back_s')} s after the server was back; "
            f"{r['acknowledged_writes']} acknowledged writes, {r['lost_writes']} lost; "
            f"{r['applied_without_acknowledgement']} applied whose answer was lost in the crash; "
            f"audit chain {'intact' if r['audit_chain_intact'] else 'BROKEN'}")


def record(results: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "faults.json"
    saved = json.loads(path.read_text()) if path.exists() else {}
    saved.update(results)
    path.write_text(json.dumps(saved, indent=2) + "\n")
    lines = [SECTION_START, "## Fault tests", "",
             "`make fault-test` (bench/faults/run.py): gunicorn on 127.0.0.1, each fault on a "
             "fresh database. The cheap ones also run in the suite (tests/test_faults.py).", "",
             "| scenario | result | what happened | measured |", "|---|---|---|---|"]
    for name in SCENARIOS:
        if name not in saved:
            continue
        result = saved[name]
        text = describe(name, result) if result["passed"] else result["failure"]
        lines.append(f"| {name} | {'passed' if result['passed'] else '**FAILED**'} | "
                     f"{text.replace('|', '/')} | {result['measured_at'][:10]} |")
    lines += ["", "Raw results: `bench/results/faults.json`.", SECTION_END]
    section = "\n".join(lines)
    bench = ROOT / "BENCHMARKS.md"
    text = bench.read_text() if bench.exists() else "# Benchmarks\n"
    if SECTION_START in text:
        before, rest = text.split(SECTION_START, 1)
        text = before + section + rest.split(SECTION_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    bench.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", choices=list(SCENARIOS))
    args = parser.parse_args()
    chosen = args.only or list(SCENARIOS)
    results = {}
    for name in chosen:
        if name in NEEDS_ROOT and os.getuid() != 0:
            print(f"[{name}] not run: mounting a tmpfs needs root", flush=True)
            continue
        print(f"[{name}] running", flush=True)
        measured_at = datetime.now(UTC).isoformat(timespec="seconds")
        WORKDIRS.clear()
        try:
            details = SCENARIOS[name]()
            results[name] = {"passed": True, "measured_at": measured_at, **details}
            print(f"[{name}] passed: {json.dumps(details)}", flush=True)
            for path in WORKDIRS:
                shutil.rmtree(path, ignore_errors=True)
        except ScenarioFailed as failure:
            results[name] = {"passed": False, "measured_at": measured_at,
                             "failure": str(failure)}
            print(f"[{name}] FAILED: {failure}", flush=True)
    record(results)
    return 0 if all(r["passed"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
