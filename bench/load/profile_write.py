"""What one API write costs, in one process (no HTTP server, no other load): CPU time, SQL
statements, and how long SQLite's write lock is held, for POST and PATCH of an interaction.

    .venv/bin/python bench/load/profile_write.py [--writes 300]

SQLite lets one write transaction in at a time and a write request holds the lock from its
first write to its commit (what it only reads, it reads before), so 1000 / (lock held, ms)
bounds the writes per second of any number of workers. Used by bench/load/run.py for
BENCHMARKS.md.
"""

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import server  # noqa: E402  (bench/server.py)


def profile(writes: int = 300) -> dict:
    from sqlalchemy import event

    import governance.database as database
    from governance.extensions import db

    workdir = Path(tempfile.mkdtemp(prefix="governance-profile-"))
    url = f"sqlite:///{workdir / 'governance.sqlite'}"
    setup = server.prepare_database(url, workdir, advocates=1, shared=1)
    held: list[float] = []
    enter, leave = database.WriteQueue.enter, database.WriteQueue.leave

    def timed_enter(queue, timeout):
        enter(queue, timeout)
        queue.entered_at = time.perf_counter()

    def timed_leave(queue):
        if queue.held:
            held.append(time.perf_counter() - queue.entered_at)
        leave(queue)

    database.WriteQueue.enter, database.WriteQueue.leave = timed_enter, timed_leave
    try:
        app = server.app_for(url, workdir)
        client = app.test_client()
        headers = {"Authorization": f"Bearer {setup['tokens'][0]}"}
        body = {"title": "Profiled", "occurred_on": "2026-03-14", "format": "focus_group",
                "partnership_id": setup["partnership_id"], "patient_participants": 5,
                "sponsor_staff": 2}
        statements = []
        with app.app_context():
            engine = db.engine
        event.listen(engine, "before_cursor_execute",
                     lambda *args: statements.append(1))
        state = {"last": client.post("/api/v1/interactions", json=body, headers=headers)
                 .get_json()}

        def post():
            answer = client.post("/api/v1/interactions", json=body, headers=headers)
            assert answer.status_code == 201, answer.get_data(as_text=True)
            state["last"] = answer.get_json()

        def patch():
            last = state["last"]
            answer = client.patch(f"/api/v1/interactions/{last['id']}", headers=headers,
                                  json={"title": f"Edited {last['version']}",
                                        "version": last["version"]})
            assert answer.status_code == 200, answer.get_data(as_text=True)
            state["last"] = answer.get_json()

        result = {}
        for name, write in (("post", post), ("patch", patch)):
            for _ in range(20):
                write()
            held.clear()
            statements.clear()
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(writes):
                write()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            result[name] = {"cpu_ms": round(cpu * 1000 / writes, 2),
                            "wall_ms": round(wall * 1000 / writes, 2),
                            "lock_held_ms": round(sum(held) * 1000 / len(held), 2),
                            "sql_statements": round(len(statements) / writes, 1)}
        with app.app_context():
            db.engine.dispose()
    finally:
        database.WriteQueue.enter, database.WriteQueue.leave = enter, leave
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--writes", type=int, default=300)
    print(json.dumps(profile(parser.parse_args().writes), indent=2))


if __name__ == "__main__":
    main()
