"""The load test: gunicorn on loopback, 50 API clients for 60 s, then a check for lost writes.

    .venv/bin/python bench/load/run.py [--database sqlite|postgresql|both] [--users 50]
                                       [--duration 60] [--workers 4] [--threads 4]

For each database: a fresh database, gunicorn with N workers on 127.0.0.1, locust (headless,
its own virtual environment .venv-load) for a bounded time; then every acknowledged write is
looked up in the database and in the audit trail, the audit chain is verified, and the numbers
go to bench/results/load-<database>.json and the load-test section of BENCHMARKS.md.
Exits non-zero when a request failed or an acknowledged write is missing.
"""

import argparse
import csv
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

LOCUST = ROOT / ".venv-load" / "bin" / "locust"
GUNICORN = Path(sys.executable).with_name("gunicorn")
RESULTS = ROOT / "bench" / "results"
ADVOCATES = 10
SHARED = 5
LOAD_PG_DIR = "/tmp/governance-load-postgres"
LOAD_PG_PORT = "54339"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the database ----------------------------------------------------------------------------


def postgres_url(name: str) -> str:
    """A fresh database on a durable throwaway cluster (scripts/local-postgres --durable)."""
    env = dict(os.environ, GOVERNANCE_PG_DIR=LOAD_PG_DIR, GOVERNANCE_PG_PORT=LOAD_PG_PORT)
    admin = subprocess.run([str(ROOT / "scripts" / "local-postgres"), "start", "--durable"],
                           env=env, check=True, capture_output=True, text=True).stdout.strip()
    import psycopg

    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    return admin.rsplit("/", 1)[0] + "/" + name


def prepare_database(url: str, workdir: Path) -> dict:
    """Schema, two organisations, a partnership, advocates with API tokens, shared records."""
    from governance import create_app
    from governance.auth import services as accounts
    from governance.extensions import db
    from governance.interactions import services as interactions
    from governance.organisations.models import Organisation
    from governance.partnerships.models import Partnership

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "load-test-setup",
                      "DATA_DIR": str(workdir / "data")})
    with app.app_context():
        if (ROOT / "migrations").is_dir():
            from governance.database import create_schema

            create_schema()
        else:
            db.create_all()
        sponsor = Organisation(name="Helix Pharma", kind="sponsor", country="GB")
        group = Organisation(name="Rare Lung Alliance", kind="patient_group", country="GB")
        db.session.add_all([sponsor, group])
        db.session.flush()
        partnership = Partnership(title="Lung research partnership", sponsor_id=sponsor.id,
                                  patient_group_id=group.id, kind="content_engagement",
                                  status="active", started_on=datetime(2024, 1, 1).date())
        db.session.add(partnership)
        db.session.commit()
        tokens, users = [], []
        for number in range(ADVOCATES):
            user = accounts.create_user(f"load{number}@example.org", f"Load Advocate {number}",
                                        "advocate", "load-test-password-2026", sponsor.name)
            db.session.commit()
            users.append(user)
            tokens.append(accounts.issue_token(user, "load test"))
        db.session.commit()
        shared_ids = []
        for number in range(SHARED):
            shared = interactions.log_interaction(
                {"title": f"Shared interaction {number}", "occurred_on": "2026-02-02",
                 "format": "workshop", "partnership_id": partnership.id}, users[0])
            db.session.commit()
            shared_ids.append(shared.id)
        setup = {"tokens": tokens, "partnership_id": partnership.id, "shared_ids": shared_ids}
        db.session.remove()
        db.engine.dispose()
    return setup


def verify(url: str, outcome: dict, setup: dict) -> dict:
    """Every acknowledged write is in the database and in the audit trail; the chain holds."""
    from sqlalchemy import select

    from governance import create_app
    from governance.audit import AuditEvent, verify_chain
    from governance.extensions import db
    from governance.interactions.models import Interaction

    acks = outcome["acks"]
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "load-test-check"})
    problems: list[str] = []
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

    by_record = defaultdict(list)
    for ack in acks:
        by_record[ack["id"]].append(ack)
        if ack["id"] not in stored:
            problems.append(f"acknowledged interaction {ack['id']} is not in the database")
        elif ack["title"] not in titles_in_audit[ack["id"]]:
            problems.append(f"acknowledged write {ack['title']!r} of interaction {ack['id']} "
                            "has no audit event")
    for record_id, record_acks in by_record.items():
        versions = [a["version"] for a in record_acks]
        if len(versions) != len(set(versions)):
            problems.append(f"interaction {record_id}: two writes acknowledged with the same "
                            "version (a lost update)")
        last = max(record_acks, key=lambda a: a["version"])
        row = stored.get(record_id)
        if row is not None and (row.version, row.title) != (last["version"], last["title"]):
            problems.append(f"interaction {record_id}: database holds version {row.version} "
                            f"{row.title!r}, last acknowledged was version {last['version']} "
                            f"{last['title']!r}")
    creates = sum(1 for a in acks if a["kind"] == "create")
    updates = len(acks) - creates
    if actions["create"] != creates + SHARED or actions["update"] != updates:
        problems.append(f"audit trail holds {actions['create']} creates and {actions['update']} "
                        f"updates of interactions; acknowledged: {creates + SHARED} creates "
                        f"(with {SHARED} set up) and {updates} updates")
    if not chain.intact:
        problems.append(f"audit chain broken at event {chain.broken_at}: {chain.problem}")
    return {"acknowledged_writes": len(acks), "acknowledged_creates": creates,
            "acknowledged_updates": updates, "records_checked": len(by_record),
            "audit_events_checked": chain.events_checked, "audit_chain_intact": chain.intact,
            "lost_writes": len(problems), "problems": problems[:20]}


# --- the server and the load --------------------------------------------------------------


def start_server(url: str, port: int, workers: int, threads: int, workdir: Path):
    env = dict(os.environ, DATABASE_URL=url, PORT=str(port), WEB_CONCURRENCY=str(workers),
               GUNICORN_THREADS=str(threads), GOVERNANCE_SECRET_KEY="load-test-secret-key",
               GOVERNANCE_DATA_DIR=str(workdir / "data"))
    log = open(workdir / "gunicorn.log", "w")
    server = subprocess.Popen([str(GUNICORN), "-c", str(ROOT / "gunicorn.conf.py")], cwd=ROOT,
                              env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited; see {workdir / 'gunicorn.log'}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
                if answer.status == 200:
                    return server
        except OSError:
            time.sleep(0.3)
    stop_server(server)
    raise SystemExit("gunicorn did not answer /health within 60 s")


def stop_server(server) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def run_locust(port: int, users: int, duration: int, workdir: Path, setup: dict,
               think: float) -> dict:
    setup_file = workdir / "setup.json"
    setup_file.write_text(json.dumps(setup))
    acks_file = workdir / "acks.json"
    env = dict(os.environ, LOAD_SETUP_FILE=str(setup_file), LOAD_ACKS_FILE=str(acks_file),
               LOAD_THINK_SECONDS=str(think))
    command = [str(LOCUST), "-f", str(ROOT / "bench" / "load" / "locustfile.py"), "--headless",
               "--users", str(users), "--spawn-rate", str(users), "--run-time", f"{duration}s",
               "--host", f"http://127.0.0.1:{port}", "--csv", str(workdir / "locust"),
               "--only-summary", "--stop-timeout", "15", "--exit-code-on-error", "0",
               "--loglevel", "WARNING"]
    started = time.monotonic()
    subprocess.run(command, cwd=workdir, env=env, check=True, timeout=duration + 120)
    elapsed = time.monotonic() - started
    outcome = json.loads(acks_file.read_text())
    with open(workdir / "locust_stats.csv", newline="") as stats:
        outcome["stats"] = {row["Name"]: row for row in csv.DictReader(stats)}
    outcome["locust_seconds"] = elapsed
    return outcome


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def summarise(database: str, args, outcome: dict, check: dict) -> dict:
    stats = outcome["stats"]
    total = stats.get("Aggregated", {})
    acks = outcome["acks"]
    span = (max(a["at"] for a in acks) - min(a["at"] for a in acks)) if len(acks) > 1 else 0
    latencies = outcome["write_latencies_ms"]
    per_request = {
        name: {"requests": int(row["Request Count"]), "failures": int(row["Failure Count"]),
               "median_ms": float(row["Median Response Time"]),
               "p95_ms": float(row["95%"]), "p99_ms": float(row["99%"])}
        for name, row in stats.items() if name != "Aggregated"
    }
    return {
        "database": database,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores, {platform.python_implementation()} "
                   f"{platform.python_version()}",
        "workers": args.workers, "threads_per_worker": args.threads, "users": args.users,
        "duration_s": args.duration, "think_time_s": args.think,
        "requests": int(total.get("Request Count", 0)),
        "failed_requests": int(total.get("Failure Count", 0)),
        "writes_acknowledged": len(acks),
        "conflicts_409": outcome["conflicts"],
        "writes_per_s": round(len(acks) / span, 1) if span else 0.0,
        "requests_per_s": float(total.get("Requests/s", 0)),
        "write_p50_ms": round(statistics.median(latencies), 1) if latencies else 0.0,
        "write_p95_ms": round(percentile(latencies, 0.95), 1),
        "write_p99_ms": round(percentile(latencies, 0.99), 1),
        "per_request": per_request,
        "check": check,
    }


def run_one(database: str, args) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix=f"governance-load-{database}-"))
    if database == "sqlite":
        url = f"sqlite:///{workdir / 'governance.sqlite'}"
    else:
        url = postgres_url("governance_load")
    print(f"[{database}] preparing {url.rsplit('@', 1)[-1]} in {workdir}", flush=True)
    setup = prepare_database(url, workdir)
    port = free_port()
    server = start_server(url, port, args.workers, args.threads, workdir)
    print(f"[{database}] gunicorn: {args.workers} workers x {args.threads} threads on "
          f"127.0.0.1:{port}; locust: {args.users} clients for {args.duration} s", flush=True)
    try:
        outcome = run_locust(port, args.users, args.duration, workdir, setup, args.think)
    finally:
        stop_server(server)
    check = verify(url, outcome, setup)
    summary = summarise(database, args, outcome, check)
    summary["workdir"] = str(workdir)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"load-{database}.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"[{database}] {summary['writes_per_s']} writes/s, write p95 "
          f"{summary['write_p95_ms']} ms, {summary['failed_requests']} failed requests, "
          f"{check['lost_writes']} lost writes, {summary['conflicts_409']} conflicts (409)",
          flush=True)
    for problem in check["problems"]:
        print(f"[{database}]   {problem}", flush=True)
    return summary


SECTION_START = "<!-- load-test:start -->"
SECTION_END = "<!-- load-test:end -->"


def write_benchmarks(summaries: list[dict]) -> None:
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    results = {s["database"]: s for s in summaries}
    for database in ("sqlite", "postgresql"):
        saved = RESULTS / f"load-{database}.json"
        if database not in results and saved.exists():
            results[database] = json.loads(saved.read_text())
    lines = [
        SECTION_START,
        "## Load test: 50 API clients logging and editing interactions",
        "",
        "`make load-test` (bench/load/run.py): a fresh database, gunicorn on 127.0.0.1, locust "
        "headless on the same machine for a bounded time; each client logs interactions "
        "(`POST /api/v1/interactions`) and edits them (`PATCH` with the `version` it last saw), "
        "and one edit in six goes to one of five interactions that all clients share (a stale "
        "version there is answered 409, which is correct, not a failure). Afterwards every "
        "acknowledged write is looked up in the database and in the audit trail, and the hash "
        "chain is verified. Target: at least 200 writes/s on SQLite with p95 under 250 ms, on "
        "this 2-core machine (locust shares the cores with the server).",
        "",
        "| database | workers × threads | clients | duration | writes/s | write p50 | write p95 "
        "| write p99 | failed requests | 409 conflicts | lost writes | audit chain | measured |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for database in ("sqlite", "postgresql"):
        s = results.get(database)
        if not s:
            continue
        lines.append(
            f"| {database} | {s['workers']} × {s['threads_per_worker']} | {s['users']} | "
            f"{s['duration_s']} s | {s['writes_per_s']} | {s['write_p50_ms']} ms | "
            f"{s['write_p95_ms']} ms | {s['write_p99_ms']} ms | {s['failed_requests']} | "
            f"{s['conflicts_409']} | {s['check']['lost_writes']} of "
            f"{s['check']['acknowledged_writes']} | "
            f"{'intact' if s['check']['audit_chain_intact'] else 'BROKEN'} "
            f"({s['check']['audit_events_checked']} events) | {s['measured_at'][:10]} |")
    lines += ["", "Raw numbers: `bench/results/load-<database>.json`.", SECTION_END]
    section = "\n".join(lines)
    if SECTION_START in text:
        before, rest = text.split(SECTION_START, 1)
        after = rest.split(SECTION_END, 1)[1] if SECTION_END in rest else ""
        text = before + section + after
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--duration", type=int, default=60)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("GUNICORN_THREADS",
                                                                          "4")))
    parser.add_argument("--think", type=float, default=0.0,
                        help="mean pause between a client's requests, in seconds")
    parser.add_argument("--no-record", action="store_true",
                        help="do not write BENCHMARKS.md (exploratory runs)")
    args = parser.parse_args()
    if not LOCUST.exists():
        raise SystemExit("locust is not installed: make load-test installs it into .venv-load")
    databases = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    summaries = [run_one(database, args) for database in databases]
    if not args.no_record:
        write_benchmarks(summaries)
    failed = [s for s in summaries if s["failed_requests"] or s["check"]["lost_writes"]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
