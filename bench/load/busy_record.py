"""Fair turns on a busy record: N API clients edit the same interaction for a bounded time.

    .venv/bin/python bench/load/busy_record.py [--database sqlite|postgresql|both]
                                               [--clients 50] [--duration 30] [--workers 4]
                                               [--threads 1] [--output FILE]

Each client reads the interaction once, then PATCHes it again and again with the version it
holds: after a 200 the version the answer carries, after a 409 the version the 409 carries
(`error.current_version`, else the `ETag` header; a server that gives neither is read again
with a GET), after waiting what `Retry-After` asks. The figure that matters is how many clients
got no edit through at all; the runner also checks that every acknowledged edit is in the audit
trail, once, and that the record's version counts them exactly.
"""

import argparse
import json
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import server  # noqa: E402  (bench/server.py)

ETAG_VERSION = re.compile(r'-v(\d+)"$')


def version_from_conflict(answer: server.Answer) -> int | None:
    """The version a 409 says the record is at now, if it says."""
    try:
        current = answer.json().get("error", {}).get("current_version")
    except ValueError:
        current = None
    if isinstance(current, int):
        return current
    match = ETAG_VERSION.search(answer.headers.get("ETag") or "")
    return int(match.group(1)) if match else None


class Editor(threading.Thread):
    def __init__(self, number: int, base: str, token: str, record_id: int, stop_at: float):
        super().__init__(daemon=True)
        self.number, self.record_id, self.stop_at = number, record_id, stop_at
        self.api = server.Client(base, token, timeout=60)
        self.url = f"/api/v1/interactions/{record_id}"
        self.edits: list[dict] = []  # acknowledged: version written and when
        self.conflicts = self.rereads = self.errors = 0
        self.first_success_s: float | None = None
        self.started = 0.0

    def read_version(self) -> int | None:
        self.rereads += 1
        answer = self.api.json("GET", self.url)
        return answer.json()["version"] if answer.status == 200 else None

    def run(self) -> None:
        self.started = time.monotonic()
        version = self.read_version()
        sequence = 0
        while time.monotonic() < self.stop_at:
            if version is None:
                version = self.read_version()
                continue
            sequence += 1
            title = f"Busy client {self.number} edit {sequence}"
            answer = self.api.json("PATCH", self.url, {"title": title, "version": version})
            if answer.status == 200:
                version = answer.json()["version"]
                self.edits.append({"version": version, "title": title})
                if self.first_success_s is None:
                    self.first_success_s = time.monotonic() - self.started
            elif answer.status == 409:
                self.conflicts += 1
                version = version_from_conflict(answer)
                wait = answer.headers.get("Retry-After")
                if wait and wait.isdigit() and int(wait):
                    time.sleep(min(int(wait), max(self.stop_at - time.monotonic(), 0)))
            else:
                self.errors += 1
                version = None


def check(url: str, workdir: Path, record_id: int, editors: list[Editor]) -> dict:
    """Every acknowledged edit is one audit event of the record, and its version counts them."""
    from sqlalchemy import select

    from governance.audit import AuditEvent, verify_chain
    from governance.extensions import db
    from governance.interactions.models import Interaction

    acknowledged = [edit for editor in editors for edit in editor.edits]
    app = server.app_for(url, workdir)
    with app.app_context():
        record = db.session.get(Interaction, record_id)
        updates = db.session.scalars(select(AuditEvent).where(
            AuditEvent.entity == "interaction", AuditEvent.entity_id == record_id,
            AuditEvent.action == "update")).all()
        titles = [json.loads(event.changes).get("title", [None, None])[1] for event in updates]
        chain = verify_chain()
        result = {
            "record_version": record.version,
            "acknowledged_edits": len(acknowledged),
            "audited_edits": len(updates),
            "versions_exact": record.version == 1 + len(acknowledged),
            "every_acknowledged_edit_audited_once": sorted(titles) == sorted(
                edit["title"] for edit in acknowledged),
            "audit_chain_intact": chain.intact,
        }
        db.session.remove()
        db.engine.dispose()
    return result


def run_one(database: str, args) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix=f"governance-busy-{database}-"))
    if database == "sqlite":
        url = f"sqlite:///{workdir / 'governance.sqlite'}"
    else:
        url = server.postgres_database("governance_busy")
    setup = server.prepare_database(url, workdir, shared=1)
    record_id = setup["shared_ids"][0]
    process, base = server.start_server(url, workdir, args.workers, args.threads)
    print(f"[{database}] {args.clients} clients editing interaction {record_id} for "
          f"{args.duration} s; gunicorn {args.workers} x {args.threads} on {base}", flush=True)
    try:
        stop_at = time.monotonic() + args.duration
        editors = [Editor(number, base, setup["tokens"][number % len(setup["tokens"])],
                          record_id, stop_at) for number in range(args.clients)]
        for editor in editors:
            editor.start()
        for editor in editors:
            editor.join(timeout=args.duration + 120)
    finally:
        server.stop_server(process)
    wins = sorted(len(editor.edits) for editor in editors)
    firsts = [e.first_success_s for e in editors if e.first_success_s is not None]
    total = sum(wins)
    fairness = (total ** 2 / (len(wins) * sum(w * w for w in wins))) if total else 0.0
    summary = {
        "database": database, "clients": args.clients, "duration_s": args.duration,
        "workers": args.workers, "threads_per_worker": args.threads,
        "clients_with_no_edit": sum(1 for w in wins if w == 0),
        "edits_acknowledged": total,
        "conflicts_409": sum(e.conflicts for e in editors),
        "rereads_get": sum(e.rereads for e in editors) - len(editors),
        "other_errors": sum(e.errors for e in editors),
        "edits_per_client_min_median_max": [wins[0], statistics.median(wins), wins[-1]],
        "jain_fairness": round(fairness, 3),
        "first_edit_s_median_max": [round(statistics.median(firsts), 2),
                                    round(max(firsts), 2)] if firsts else None,
        "check": check(url, workdir, record_id, editors),
        "workdir": str(workdir),
    }
    print(json.dumps(summary, indent=2), flush=True)
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=int, default=30)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    databases = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    results = [run_one(database, args) for database in databases]
    if args.output:
        args.output.write_text(json.dumps(results, indent=2) + "\n")
    broken = [r for r in results if r["other_errors"] or not (
        r["check"]["versions_exact"] and r["check"]["every_acknowledged_edit_audited_once"]
        and r["check"]["audit_chain_intact"])]
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
