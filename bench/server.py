"""What the load and fault runners share: a database, gunicorn on loopback, an HTTP client.

Everything listens on and talks to 127.0.0.1 only.
"""

import http.cookiejar
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import defaultdict
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GUNICORN = Path(sys.executable).with_name("gunicorn")
LOCAL_POSTGRES = ROOT / "scripts" / "local-postgres"
BENCH_PG_DIR = "/tmp/governance-bench-postgres"
BENCH_PG_PORT = "54339"
PASSWORD = "granite-orchard-lantern-2026"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- PostgreSQL ------------------------------------------------------------------------------


def postgres(command: str, *args: str) -> str:
    """Run scripts/local-postgres on the benchmarks' own durable cluster."""
    env = dict(os.environ, GOVERNANCE_PG_DIR=BENCH_PG_DIR, GOVERNANCE_PG_PORT=BENCH_PG_PORT)
    return subprocess.run([str(LOCAL_POSTGRES), command, *args], env=env, check=True,
                          capture_output=True, text=True).stdout.strip()


def postgres_database(name: str, tablespace: str | None = None) -> str:
    """A new, empty database on the benchmarks' cluster (started durable if need be)."""
    import psycopg

    admin = postgres("start", "--durable")
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        where = f' TABLESPACE "{tablespace}"' if tablespace else ""
        connection.execute(f'CREATE DATABASE "{name}"{where}')
    return admin.rsplit("/", 1)[0] + "/" + name


def postgres_admin_url() -> str:
    return postgres("start", "--durable")


# --- the application -------------------------------------------------------------------------


def app_for(url: str, workdir: Path):
    from governance import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench-setup",
                       "AUDIT_KEY": "bench-audit-key-0123456789abcdef",
                       "DATA_DIR": str(workdir / "data")})


def prepare_database(url: str, workdir: Path, advocates: int = 10, shared: int = 5) -> dict:
    """Schema, two organisations, a partnership, advocates with API tokens, shared records."""
    from governance.auth import services as accounts
    from governance.extensions import db
    from governance.interactions import services as interactions
    from governance.organisations.models import Organisation
    from governance.partnerships.models import Partnership

    app = app_for(url, workdir)
    with app.app_context():
        if (ROOT / "migrations" / "versions").is_dir() and any(
                (ROOT / "migrations" / "versions").glob("*.py")):
            from governance.database import create_schema

            create_schema()
        else:
            db.create_all()
        from governance.reports.services import DEFAULT_METHODOLOGY

        sponsor = Organisation(name="Helix Pharma", kind="sponsor", country="GB",
                               methodology_note=DEFAULT_METHODOLOGY)
        group = Organisation(name="Rare Lung Alliance", kind="patient_group", country="GB")
        db.session.add_all([sponsor, group])
        db.session.flush()
        partnership = Partnership(title="Lung research partnership", sponsor_id=sponsor.id,
                                  patient_group_id=group.id, kind="content_engagement",
                                  status="active", started_on=date(2024, 1, 1))
        db.session.add(partnership)
        db.session.commit()
        tokens, users = [], []
        for number in range(advocates):
            user = accounts.create_user(f"advocate{number}@bench.example",
                                        f"Bench Advocate {number}", "advocate", PASSWORD,
                                        sponsor.name)
            db.session.commit()
            users.append(user)
            tokens.append(accounts.issue_token(user, "bench"))
        db.session.commit()
        shared_ids = []
        for number in range(shared):
            record = interactions.log_interaction(
                {"title": f"Shared interaction {number}", "occurred_on": "2026-02-02",
                 "format": "workshop", "partnership_id": partnership.id}, users[0])
            db.session.commit()
            shared_ids.append(record.id)
        officer = accounts.create_user("compliance@bench.example", "Bench Compliance",
                                       "compliance", PASSWORD, sponsor.name)
        db.session.commit()
        compliance_token = accounts.issue_token(officer, "bench")
        db.session.commit()
        setup = {"tokens": tokens, "emails": [u.email for u in users],
                 "compliance_token": compliance_token,
                 "partnership_id": partnership.id, "sponsor_id": sponsor.id,
                 "shared_ids": shared_ids}
        db.session.remove()
        db.engine.dispose()
    return setup


def check_acknowledged(url: str, acks: list[dict], shared: int, failed_requests: int) -> dict:
    """Every acknowledged write is in the database and in the audit trail; the chain holds.

    `acks` are {"kind": "create" | "update" | "shared-update", "id", "version", "title"}: the
    answers a client received. A write whose answer was lost (the client saw an error) may still
    have been applied; that is counted as "applied without acknowledgement" and is allowed only
    when requests failed. A lost write is an acknowledged one that is missing.
    """
    from sqlalchemy import select

    from governance.audit import AuditEvent, verify_chain
    from governance.extensions import db
    from governance.interactions.models import Interaction

    app = app_for(url, Path("/nonexistent"))
    with app.app_context():
        stored = {row.id: row for row in db.session.execute(
            select(Interaction.id, Interaction.title, Interaction.version))}
        events = db.session.execute(
            select(AuditEvent.entity_id, AuditEvent.action, AuditEvent.changes)
            .where(AuditEvent.entity == "interaction")).all()
        chain = verify_chain()
        db.session.remove()
        db.engine.dispose()

    titles_in_audit = defaultdict(set)
    actions = defaultdict(int)
    for entity_id, action, changes in events:
        actions[action] += 1
        title = json.loads(changes).get("title")
        if title:
            titles_in_audit[entity_id].add(title[1])

    lost: list[str] = []
    by_record = defaultdict(list)
    for ack in acks:
        by_record[ack["id"]].append(ack)
        if ack["id"] not in stored:
            lost.append(f"acknowledged interaction {ack['id']} is not in the database")
        elif ack["title"] not in titles_in_audit[ack["id"]]:
            lost.append(f"acknowledged write {ack['title']!r} of interaction {ack['id']} has no "
                        "audit event")
    unacknowledged = 0
    for record_id, record_acks in by_record.items():
        versions = [a["version"] for a in record_acks]
        if len(versions) != len(set(versions)):
            lost.append(f"interaction {record_id}: two writes acknowledged with the same version "
                        "(one overwrote the other)")
        last = max(record_acks, key=lambda a: a["version"])
        row = stored.get(record_id)
        if row is None:
            continue
        if row.version < last["version"] or (
                row.version == last["version"] and row.title != last["title"]):
            lost.append(f"interaction {record_id}: the database holds version {row.version} "
                        f"{row.title!r}; the last acknowledged write was version "
                        f"{last['version']} {last['title']!r}")
        elif row.version > last["version"]:
            unacknowledged += row.version - last["version"]
    creates = sum(1 for a in acks if a["kind"] == "create")
    updates = len(acks) - creates
    extra_creates = actions["create"] - creates - shared
    extra_updates = actions["update"] + actions["void"] - updates
    problems = list(lost)
    if extra_creates < 0 or extra_updates < 0:
        problems.append(f"the audit trail holds fewer events than acknowledged writes: "
                        f"{actions['create']} creates, {actions['update']} updates")
    elif (extra_creates or extra_updates) and not failed_requests:
        problems.append(f"{extra_creates} creates and {extra_updates} updates were applied "
                        "although no request failed and none was acknowledged for them")
    if not chain.intact:
        problems.append(f"audit chain broken at event {chain.broken_at}: {chain.problem}")
    return {"acknowledged_writes": len(acks), "acknowledged_creates": creates,
            "acknowledged_updates": updates, "records_checked": len(by_record),
            "applied_without_acknowledgement": max(extra_creates, 0) + max(extra_updates, 0),
            "audit_events_checked": chain.events_checked, "audit_chain_intact": chain.intact,
            "lost_writes": len(lost), "problems": problems[:20], "passed": not problems}


def machine_env(url: str, workdir: Path, extra_env: dict | None = None) -> dict:
    """The environment of one machine's processes: the database, the instance's keys, its own
    data folder."""
    return dict(os.environ, DATABASE_URL=url, GOVERNANCE_SECRET_KEY="bench-secret-key",
                GOVERNANCE_AUDIT_KEY="bench-audit-key-0123456789abcdef",
                GOVERNANCE_DATA_DIR=str(workdir / "data"),
                # plain http on loopback: let the test client keep its session cookie
                GOVERNANCE_SESSION_COOKIE_SECURE="false",
                GOVERNANCE_REMEMBER_COOKIE_SECURE="false", **(extra_env or {}))


def start_server(url: str, workdir: Path, workers: int = 4, threads: int = 4,
                 extra_env: dict | None = None, port: int | None = None,
                 healthy: bool = True, task_worker: bool = True):
    """gunicorn with gunicorn.conf.py on a loopback port and, unless told otherwise, a task
    worker beside it as `make serve` starts one (`process.task_worker`); returns (process, base
    URL).

    Waits until /health answers 200 (or, with healthy=False, answers at all)."""
    port = port or free_port()
    env = dict(machine_env(url, workdir, extra_env), PORT=str(port),
               WEB_CONCURRENCY=str(workers), GUNICORN_THREADS=str(threads))
    log = open(workdir / "gunicorn.log", "a")
    server = subprocess.Popen([str(GUNICORN), "-c", str(ROOT / "gunicorn.conf.py")], cwd=ROOT,
                              env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    log.close()
    server.task_env, server.task_log = env, workdir / "worker.log"
    server.task_worker = start_task_worker(env, server.task_log) if task_worker else None
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited; see {workdir / 'gunicorn.log'}")
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as answer:
                if answer.status == 200:
                    return server, base
        except urllib.error.HTTPError:
            if not healthy:
                return server, base
            time.sleep(0.3)
        except OSError:
            time.sleep(0.3)
    stop_server(server)
    raise SystemExit("gunicorn did not answer /health within 90 s")


def start_task_worker(env: dict, log_path: Path, threads: int = 2) -> subprocess.Popen:
    """A `flask worker` process with this environment, logging to log_path."""
    with open(log_path, "a") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "flask", "worker", "--threads", str(threads)], cwd=ROOT,
            env=dict(env, FLASK_APP="governance"), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)


def stop_server(server) -> None:
    worker = getattr(server, "task_worker", None)
    if worker is not None and worker.poll() is None:
        worker.terminate()
        try:
            worker.wait(timeout=40)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def worker_pids(server) -> list[int]:
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children")
    return [int(pid) for pid in children.read_text().split()] if children.exists() else []


# --- HTTP --------------------------------------------------------------------------------------


class Answer:
    def __init__(self, status: int, body: bytes, headers):
        self.status = status
        self.body = body
        self.headers = headers

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)


class Client:
    """A small HTTP client with cookies (pages) or a bearer token (API)."""

    def __init__(self, base: str, token: str | None = None, timeout: float = 30):
        self.base = base
        self.token = token
        self.timeout = timeout
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
            _NoRedirect())

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None) -> Answer:
        sent = dict(headers or {})
        if self.token:
            sent["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.base + path, data=body, method=method,
                                         headers=sent)
        try:
            with self.opener.open(request, timeout=self.timeout) as answer:
                return Answer(answer.status, answer.read(), answer.headers)
        except urllib.error.HTTPError as error:
            return Answer(error.code, error.read(), error.headers)

    def json(self, method: str, path: str, data: dict | None = None) -> Answer:
        body = json.dumps(data).encode() if data is not None else None
        return self.request(method, path, body, {"Content-Type": "application/json"})

    def form(self, path: str, fields: dict) -> Answer:
        body = urllib.parse.urlencode(fields, doseq=True).encode()
        return self.request("POST", path, body,
                            {"Content-Type": "application/x-www-form-urlencoded"})

    def upload(self, path: str, fields: dict, name: str, filename: str, data: bytes) -> Answer:
        boundary = uuid.uuid4().hex
        parts = []
        for key, value in fields.items():
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n'
                         f"{value}\r\n".encode())
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                     f'filename="{filename}"\r\nContent-Type: text/csv\r\n\r\n'.encode()
                     + data + b"\r\n")
        parts.append(f"--{boundary}--\r\n".encode())
        return self.request("POST", path, b"".join(parts),
                            {"Content-Type": f"multipart/form-data; boundary={boundary}"})

    def log_in(self, email: str, password: str = PASSWORD) -> None:
        page = self.request("GET", "/login")
        answer = self.form("/login", hidden_fields(page.text) | {"email": email,
                                                                 "password": password})
        if answer.status not in (302, 303):
            raise SystemExit(f"could not log in as {email}: {answer.status}")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args, **_kwargs):
        return None


def hidden_fields(page: str, action: str | None = None) -> dict:
    """The hidden inputs (CSRF and one-time form tokens) of a page's form."""
    if action:
        match = re.search(rf'<form[^>]*action="{re.escape(action)}"[^>]*>(.*?)</form>', page,
                          re.S)
        page = match.group(1) if match else ""
    fields = {}
    for tag in re.findall(r"<input[^>]*>", page):
        if 'type="hidden"' in tag:
            name = re.search(r'name="([^"]+)"', tag)
            value = re.search(r'value="([^"]*)"', tag)
            if name:
                fields[name.group(1)] = value.group(1) if value else ""
    return fields
