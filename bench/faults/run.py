"""Fault tests against gunicorn on loopback: nothing acknowledged is lost, nothing half-written.

    .venv/bin/python bench/faults/run.py [--only NAME ...]

Scenarios (each on a fresh database):
  import-killed-sqlite, import-killed-postgresql
      a CSV import of 3,000 interactions is committed through the pages; the worker running it
      is killed (SIGKILL) half-way: the database must be exactly as before, the audit chain
      intact, the next write must go through, and the same import can then be committed whole.
  read-only-sqlite      the file system holding the database is mounted read-only (tmpfs)
  read-only-recovery-sqlite
      8 API clients write while the database file is made immutable (chattr +i) and writable
      again, twice, gunicorn running on (a worker recycled in each fault): writes refused
      clearly and /health 503 during the fault, every write begun after the repair succeeds,
      /health 200 again, no restart.
  disk-full-sqlite      the file system holding the database is filled up (tmpfs)
  disk-full-postgresql  the tablespace holding the database is filled up (tmpfs)
      writes are refused with the clear message (API JSON and pages, status 503), reads go on,
      existing records stay intact, and writes work again once the fault is cleared.
  postgresql-restart
      16 API clients write for 30 s while PostgreSQL is restarted (fast shutdown) and then
      killed (immediate shutdown, as a crash) and started: clients see errors, then recovery;
      every acknowledged write is in the database and the audit trail.
  report-jobs-several-workers
      a report job queued through the API is run by the task worker and its status answered by
      any of 4 web workers until done, while clients keep writing.
  backup-restore-files-sqlite, backup-restore-files-postgresql
      an instance with two years' reports, attachments and an uploaded import is backed up
      while a client writes, restored into a fresh instance and served: every download answers
      200 with the same bytes, and the counts printed are the restored database's.
  report-worker-killed, report-worker-reloaded
      the task worker running a report job is killed (SIGKILL) at about 35 %, or stopped
      gracefully then (SIGINT), and a new one started: the job must end done (or failed with its
      reason) within the stall bound, never stay running or queued; a stopped worker finishes
      the job or hands it back with a log line.

The tmpfs and chattr scenarios need root. Results go to bench/results/faults.json and the
fault-test section of BENCHMARKS.md. Exits non-zero when a scenario fails.
"""

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
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
        if current.status != 200:  # the edit needs the version read: the read's answer stands
            return current
        changes = {"title": label, "version": current.json()["version"]}
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
    if fault == "read-only":
        # WAL needs its -shm file: on a read-only mount a worker's first connection cannot open
        # it and is discarded; a later one may read. Either answer is clear.
        expect(read.status == 200 or refused_clearly(read, READ_ONLY),
               f"reading answered {read.status}")
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


# --- scenario: the SQLite file read-only, then writable again, twice, without a restart ------


def read_only_then_writable(switches: int = 2, clients: int = 8, fault_s: float = 6.0,
                            normal_s: float = 6.0) -> dict:
    """8 API clients write (and read) while the database file and its write-ahead log are made
    immutable (chattr +i: root cannot write them either; the -shm file stays, as SQLite maps
    it into memory) and writable again, twice, while gunicorn runs on (one worker recycled
    during each fault, so it connects to the read-only file): writes during the fault
    are refused with the read-only message and /health answers 503; every write begun after
    the repair succeeds, and /health answers 200 again, without restarting anything."""
    workdir = new_workdir("governance-fault-read-only-recovery-")
    db_file = workdir / "governance.sqlite"
    url = f"sqlite:///{db_file}"
    setup = server.prepare_database(url, workdir, advocates=clients, shared=1)
    process, base = server.start_server(url, workdir, workers=2, threads=4)
    outcomes: list[dict] = []  # {"start", "end", "what": write|read|health, "status", "clear"}
    acks: list[dict] = []
    lock = threading.Lock()
    stop = threading.Event()
    origin = time.monotonic()
    immutable: list[str] = []

    def note(what: str, started: float, answer: server.Answer | None, clear: bool) -> None:
        message = answer.text[:120] if answer is not None and answer.status >= 400 else ""
        with lock:
            outcomes.append({"start": started - origin, "end": time.monotonic() - origin,
                             "what": what, "status": answer.status if answer else "error",
                             "clear": clear, "message": message})

    def writer(number: int) -> None:
        api = server.Client(base, token=setup["tokens"][number], timeout=30)
        sequence = 0
        while not stop.is_set():
            sequence += 1
            title = f"Recovery client {number} write {sequence}"
            started = time.monotonic()
            try:
                answer = api.json("POST", "/api/v1/interactions", interaction_body(setup, title))
            except OSError:
                note("write", started, None, False)
                continue
            if answer.status == 201:
                data = answer.json()
                with lock:
                    acks.append({"kind": "create", "id": data["id"],
                                 "version": data["version"], "title": title})
            note("write", started, answer, refused_clearly(answer, READ_ONLY)
                 and "Retry-After" not in answer.headers)
            if sequence % 3 == 0:  # reads open connections of their own during the fault
                started = time.monotonic()
                read = api.json("GET", "/api/v1/interactions?per_page=5")
                note("read", started, read, read.status == 200)
            time.sleep(0.05)

    def health_poller() -> None:
        probe = server.Client(base, timeout=30)
        while not stop.is_set():
            started = time.monotonic()
            answer = probe.request("GET", "/health")
            clear = answer.status == 503 and answer.json().get("problem") == "read-only"
            note("health", started, answer, clear)
            time.sleep(0.25)

    def set_immutable(on: bool) -> None:
        if on:
            immutable[:] = [str(p) for p in (db_file, Path(f"{db_file}-wal")) if p.exists()]
        subprocess.run(["chattr", "+i" if on else "-i", *immutable], check=True)
        if not on:
            immutable.clear()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(clients)]
    threads.append(threading.Thread(target=health_poller))
    pages = Outage(base, setup)
    expect(pages.write("Voided during a fault").status == 201, "a write before the faults failed")
    page_answers = []
    windows = []  # (fault began, repaired)
    try:
        for thread in threads:
            thread.start()
        time.sleep(normal_s / 2)
        for _ in range(switches):
            began = time.monotonic() - origin
            set_immutable(True)
            # a worker recycled during the fault (as max_requests does) opens its connections
            # on the read-only file
            os.kill(server.worker_pids(process)[0], signal.SIGTERM)
            time.sleep(fault_s / 2)
            page_answers.append(pages.page_write(pages.acks[0]["id"]))
            time.sleep(fault_s / 2)
            repaired = time.monotonic() - origin
            set_immutable(False)
            windows.append((began, repaired))
            time.sleep(normal_s)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        if immutable:
            subprocess.run(["chattr", "-i", *immutable], check=False)
        server.stop_server(process)
    acks.extend(pages.acks)
    failed = sum(o["status"] not in (200, 201) for o in outcomes if o["what"] == "write")
    check = server.check_acknowledged(url, acks, shared=1, failed_requests=failed)
    integrity = sqlite_integrity(db_file)

    switches_seen = []
    for began, repaired in windows:
        during = [o for o in outcomes if o["start"] >= began + 0.2 and o["end"] <= repaired]
        after = [o for o in outcomes if repaired <= o["start"] < repaired + normal_s - 0.5]
        writes_during = [o for o in during if o["what"] == "write"]
        health_during = [o for o in during if o["what"] == "health"]
        writes_after = [o for o in after if o["what"] == "write"]
        health_after = [o for o in after if o["what"] == "health"]
        first_write = min((o["end"] for o in writes_after if o["status"] == 201),
                          default=None)
        switches_seen.append({
            "writes_during": len(writes_during),
            "writes_during_refused_clearly": sum(o["clear"] for o in writes_during),
            "reads_during_ok": sum(o["status"] == 200 for o in during if o["what"] == "read"),
            "reads_during": sum(o["what"] == "read" for o in during),
            "health_during": sorted({o["status"] for o in health_during}),
            "health_during_clear": all(o["clear"] for o in health_during),
            "writes_after": len(writes_after),
            "writes_after_failed": sum(o["status"] != 201 for o in writes_after),
            "failed_after": [(round(o["start"] - repaired, 3), o["status"], o["message"])
                             for o in writes_after if o["status"] != 201][:5],
            "first_write_after_s": (round(first_write - repaired, 2)
                                    if first_write is not None else None),
            "first_health_after": health_after[0]["status"] if health_after else None})
    for n, seen in enumerate(switches_seen, 1):
        expect(seen["writes_during"] > 0 and seen["health_during"] == [503],
               f"switch {n}: the fault did not reach the clients: {seen}")
        expect(seen["writes_during_refused_clearly"] == seen["writes_during"]
               and seen["health_during_clear"],
               f"switch {n}: writes or /health during the fault not refused clearly: {seen}")
        expect(seen["writes_after"] > 0 and seen["writes_after_failed"] == 0,
               f"switch {n}: writes begun after the repair failed: {seen}")
        expect(seen["first_health_after"] == 200,
               f"switch {n}: /health after the repair answered {seen['first_health_after']}")
    expect(all(refused_clearly(answer, READ_ONLY, page=True) for answer in page_answers),
           f"page writes during the faults answered {[a.status for a in page_answers]}")
    expect(check["passed"], f"acknowledged writes: {check['problems']}")
    expect(integrity == "ok", f"integrity check: {integrity}")
    return {"switches": switches_seen, "clients": clients, "fault_s": fault_s,
            "page_writes_during": [a.status for a in page_answers],
            "acknowledged_writes": check["acknowledged_writes"],
            "lost_writes": check["lost_writes"], "audit_chain_intact": check["audit_chain_intact"],
            "integrity_check": integrity, "restarts": 0}


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
    """A report job runs in the task worker while all four web workers answer its status, and
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


# --- backup and restore of the database and every stored file -------------------------------

COUNTS_PRINTED = re.compile(r"(\d+) records in (\d+) tables, (\d+) stored files, "
                            r"(\d+) audit events")


def flask_command(url: str, workdir: Path, *args: str) -> tuple[str, float]:
    """Run `flask --app governance ARGS` on an instance; return its output and seconds."""
    env = dict(os.environ, DATABASE_URL=url, GOVERNANCE_DATA_DIR=str(workdir / "data"),
               GOVERNANCE_SECRET_KEY="bench-secret-key",
               GOVERNANCE_AUDIT_KEY="bench-audit-key-0123456789abcdef")
    started = time.monotonic()
    finished = subprocess.run([sys.executable, "-m", "flask", "--app", "governance", *args],
                              cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    output = finished.stdout + finished.stderr
    expect(finished.returncode == 0, f"flask {args[0]} exited {finished.returncode}: "
                                     f"{output.strip()[-500:]}")
    return output, seconds


def printed_counts(output: str) -> dict:
    found = COUNTS_PRINTED.search(output)
    expect(found is not None, f"no counts in the output: {output.strip()[-300:]}")
    return dict(zip(("records", "tables", "files", "audit_events"), map(int, found.groups()),
                    strict=True))


def instance_counts(url: str, workdir: Path) -> dict:
    """Records, tables and audit events in the database; files under its DATA_DIR's stores."""
    from sqlalchemy import func, inspect, select

    from governance.extensions import db
    from governance.storage import STORES

    app = server.app_for(url, workdir)
    with app.app_context():
        existing = set(inspect(db.engine).get_table_names())
        tables = {table.name: db.session.scalar(select(func.count()).select_from(table))
                  for table in db.metadata.sorted_tables if table.name in existing}
        files = sum(1 for store in STORES for _ in store.kept_files())
        db.session.remove()
        db.engine.dispose()
    return {"records": sum(tables.values()), "tables": len(tables), "files": files,
            "audit_events": tables.get("audit_events", 0)}


def make_stored_files(base: str, setup: dict, attachments: int) -> dict:
    """Two years' reports (PDF, CSV, JSON), ATTACHMENTS documents and an uploaded import, all
    through the running instance; returns the addresses to download and who may."""
    officer = server.Client(base, token=setup["compliance_token"], timeout=120)
    links = []
    for year in (2024, 2025):
        asked = officer.json("POST", "/api/v1/reports",
                             {"organisation_id": setup["sponsor_id"], "year": year})
        expect(asked.status == 202, f"asking for the {year} report answered {asked.status}")
        deadline, status = time.monotonic() + 180, asked.json()
        while status["status"] not in ("done", "failed") and time.monotonic() < deadline:
            time.sleep(0.3)
            status = officer.json("GET", f"/api/v1/reports/{status['id']}").json()
        expect(status["status"] == "done", f"the {year} report ended {status['status']}")
        links += [link.removeprefix(base) for link in status["links"].values()]
    pages = server.Client(base, timeout=60)
    pages.log_in(setup["emails"][0])
    interaction = setup["shared_ids"][0]
    form_path = f"/attachments/interactions/{interaction}/new"
    for number in range(attachments):
        form = pages.request("GET", form_path)
        content = (b"%PDF-1.4\n% minutes of meeting " + str(number).encode() + b"\n"
                   + b"1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
                   + b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
                   + b"trailer << /Root 1 0 R >>\n%%EOF\n")
        answer = pages.upload(form_path, server.hidden_fields(form.text) | {"label": "minutes"},
                              "file", f"minutes-{number}.pdf", content)
        expect(answer.status in (302, 303), f"attaching a file answered {answer.status}")
    record_page = pages.request("GET", f"/interactions/{interaction}").text
    attached = sorted(set(re.findall(r'href="(/attachments/\d+)"', record_page)))
    expect(len(attached) == attachments, f"the record lists {len(attached)} attachments")
    upload_page = pages.request("GET", "/imports/")
    rows = "title,occurred_on,format,partnership_id,external_id\n" + "".join(
        f"Uploaded interaction {n},2025-04-{1 + n:02d},survey,{setup['partnership_id']},"
        f"UPLOAD-{n:02d}\n" for n in range(20))
    preview = pages.upload("/imports/", server.hidden_fields(upload_page.text)
                           | {"kind": "interactions"}, "file", "interactions.csv", rows.encode())
    expect(preview.status == 200, f"the import preview answered {preview.status}")
    action = re.search(r'action="(/imports/interactions/[0-9a-f]{64})/commit"', preview.text)
    expect(action is not None, "the preview page has no commit form")
    return {"api": links, "pages": attached + [action.group(1)]}


def download_all(base: str, setup: dict, addresses: dict) -> dict:
    """SHA-256 of every download, each of which must answer 200."""
    officer = server.Client(base, token=setup["compliance_token"], timeout=60)
    pages = server.Client(base, timeout=60)
    pages.log_in(setup["emails"][0])
    digests = {}
    for client, kind in ((officer, "api"), (pages, "pages")):
        for address in addresses[kind]:
            answer = client.request("GET", address)
            expect(answer.status == 200, f"{address} answered {answer.status}: "
                                         f"{answer.text[:200]}")
            body = answer.body
            if address.startswith("/imports/"):  # a page: what it shows of the stored upload
                body = b"|".join(re.findall(rb"Check the import of [^<]+|\d+ rows? read"
                                            rb"|Uploaded interaction \d+", body))
                expect(b"20 rows read" in body, f"the import preview shows {body[:200]!r}")
            digests[address] = hashlib.sha256(body).hexdigest()
    return digests


def backup_restore_files(database: str, attachments: int = 12) -> dict:
    """A running instance with reports, attachments and an upload is backed up while a client
    writes; the archive is restored into a fresh instance, which serves every file the same."""
    workdir = new_workdir(f"governance-fault-backup-{database}-")
    fresh = new_workdir(f"governance-fault-restored-{database}-")
    if database == "sqlite":
        url = f"sqlite:///{workdir / 'governance.sqlite'}"
        restored_url = f"sqlite:///{fresh / 'governance.sqlite'}"
    else:
        url = server.postgres_database("governance_fault_backup")
        restored_url = server.postgres_database("governance_fault_backup_restored")
    setup = server.prepare_database(url, workdir, advocates=2, shared=1)
    process, base = server.start_server(url, workdir, workers=2, threads=4)
    archive = workdir / "backups" / "governance.backup"
    try:
        addresses = make_stored_files(base, setup, attachments)
        original = download_all(base, setup, addresses)
        writer, writing = Outage(base, setup), [True]

        def keep_writing():
            while writing[0]:
                writer.write(f"Written during the backup {len(writer.acks)}")

        thread = threading.Thread(target=keep_writing)
        thread.start()
        try:
            time.sleep(1)
            backup_output, backup_seconds = flask_command(url, workdir, "backup", str(archive))
        finally:
            writing[0] = False
            thread.join()
    finally:
        server.stop_server(process)
    backed_up = printed_counts(backup_output)

    restore_output, restore_seconds = flask_command(restored_url, fresh, "restore",
                                                    str(archive))
    expect("Audit chain intact" in restore_output, f"restore: {restore_output.strip()[-300:]}")
    restored = printed_counts(restore_output)
    in_fresh = instance_counts(restored_url, fresh)
    expect(restored == backed_up == in_fresh,
           f"counts: backup printed {backed_up}, restore printed {restored}, the restored "
           f"instance holds {in_fresh}")
    process, base = server.start_server(restored_url, fresh, workers=2, threads=4)
    try:
        served = download_all(base, setup, addresses)
    finally:
        server.stop_server(process)
    different = [address for address in original if served.get(address) != original[address]]
    expect(not different, f"served differently after the restore: {different}")
    return {"report_files": len(addresses["api"]), "attachments": attachments,
            "import_uploads": 1, "writes_during_backup": len(writer.acks),
            "backup_s": round(backup_seconds, 1), "archive_bytes": archive.stat().st_size,
            "restore_s": round(restore_seconds, 1), **{f"restored_{k}": v
                                                        for k, v in restored.items()},
            "downloads_identical": len(original)}


def describe_backup_restore(r: dict) -> str:
    return (f"backup of a running instance ({r['writes_during_backup']} writes meanwhile) in "
            f"{r['backup_s']} s, {r['archive_bytes']} bytes; restored into a fresh instance in "
            f"{r['restore_s']} s: {r['restored_records']} records, {r['restored_files']} files, "
            f"{r['restored_audit_events']} audit events, as the backup counted them; all "
            f"{r['downloads_identical']} downloads ({r['report_files']} report files, "
            f"{r['attachments']} attachments, the import preview) answered 200, the same bytes")
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


def report_worker_fault(fault: str) -> dict:
    """killed: the task worker laying out a report (at about 35 %) is killed with SIGKILL and
    a new one started (as a supervisor would). reloaded: it is stopped gracefully then
    (SIGINT: its tasks get 15 s, then it hands them back) and a new one started."""
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
        old = process.task_worker
        old.send_signal(signal.SIGKILL if fault == "killed" else signal.SIGINT)
        old.wait(timeout=60)
        process.task_worker = server.start_task_worker(process.task_env, process.task_log)
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
        log = (workdir / "worker.log").read_text()
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
    fault = (f"the task worker laying out a {r['pages']}-page report was killed (SIGKILL) at "
             f"{r['fault_at_progress']} % and a new one started" if r["fault"] == "killed" else
             f"the task worker stopped (SIGINT) at {r['fault_at_progress']} % of a "
             f"{r['pages']}-page report and a new one started")
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
    "read-only-recovery-sqlite": read_only_then_writable,
    "disk-full-sqlite": lambda: writes_refused_then_recovered("sqlite", "disk-full"),
    "disk-full-postgresql": lambda: writes_refused_then_recovered("postgresql", "disk-full"),
    "postgresql-restart": postgresql_restart,
    "report-jobs-several-workers": report_jobs_several_workers,
    "backup-restore-files-sqlite": lambda: backup_restore_files("sqlite"),
    "backup-restore-files-postgresql": lambda: backup_restore_files("postgresql"),
    "report-worker-killed": lambda: report_worker_fault("killed"),
    "report-worker-reloaded": lambda: report_worker_fault("reloaded"),
}
NEEDS_ROOT = {"read-only-sqlite", "read-only-recovery-sqlite", "disk-full-sqlite",
              "disk-full-postgresql"}
SECTION_START = "<!-- fault-test:start -->"
SECTION_END = "<!-- fault-test:end -->"


def describe(name: str, r: dict) -> str:
    """One sentence per scenario for BENCHMARKS.md."""
    if name == "read-only-recovery-sqlite":
        return "; ".join(
            f"switch {n}: {s['writes_during']} writes during the fault, all 503 with the "
            f"read-only message, /health {'/'.join(map(str, s['health_during']))}; after the "
            f"repair {s['writes_after_failed']} of {s['writes_after']} writes failed, the first "
            f"succeeded {s['first_write_after_s']} s after it, /health {s['first_health_after']}"
            for n, s in enumerate(r["switches"], 1)) + (
            f"; no restart; {r['acknowledged_writes']} acknowledged writes, "
            f"{r['lost_writes']} lost")
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
    if name.startswith("backup-restore"):
        return describe_backup_restore(r)
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
