"""Two application servers and one task worker against one PostgreSQL and one Redis, on
loopback: the application spanning machines (`make multi-node-test`; the suite runs it on
PostgreSQL).

    .venv/bin/python bench/multinode/run.py [--database URL] [--json PATH]

Each server has a data folder of its own (as separate machines would), so whatever one server
serves of another's work came through the database or the queue:
  1. a user signs in on server A; server B knows the session (the same signed cookie);
  2. an attachment uploaded through A is downloaded byte for byte through B;
  3. a report asked for on A is run by the task worker (via Redis) and its status and PDF are
     read on B;
  4. 8 API clients write interactions through both servers while A is killed (SIGKILL, its
     master and workers): the clients carry on with B, and every write either server
     acknowledged is in the database and in the audit chain, which verifies.
Exits non-zero, saying why, when a step fails. --database: an empty PostgreSQL database to use
(default: a new one on the benchmarks' own cluster).
"""

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1]))

import server  # noqa: E402  (bench/server.py)

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"
WRITERS = 8
SECONDS_OF_LOAD = 12
PDF = (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
       b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise SystemExit(f"multi-node: {message}")


def start_redis(workdir: Path) -> tuple[subprocess.Popen, str]:
    expect(Path(REDIS).exists(), "redis-server is not installed (make redis installs it)")
    port = server.free_port()
    process = subprocess.Popen(
        [REDIS, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", str(workdir), "--protected-mode", "yes"],
        stdout=open(workdir / "redis.log", "w"), stderr=subprocess.STDOUT)
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if client.ping():
                return process, f"redis://127.0.0.1:{port}/0"
        except redis.ConnectionError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("multi-node: redis-server did not answer within 20 s")


def shared_env(queue: str) -> dict:
    """What every machine shares besides the database: the queue (the database holds the
    files)."""
    return {"GOVERNANCE_TASK_QUEUE_URL": queue, "GOVERNANCE_FILE_STORE": "database"}


def kill_now(process: subprocess.Popen) -> None:
    """SIGKILL the server's master and workers at once, as a machine that goes away."""
    with contextlib.suppress(ProcessLookupError):  # it is gone already
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def run(database: str | None) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="governance-multinode-"))
    url = database or server.postgres_database("governance_multinode")
    redis_process, queue = start_redis(workdir)
    processes = []
    try:
        setup = server.prepare_database(url, workdir, advocates=WRITERS, shared=1)
        machines = []
        for name in ("a", "b"):  # each with a data folder of its own (workdir/NAME/data)
            (workdir / name).mkdir()
            process, base = server.start_server(url, workdir / name, workers=2, threads=2,
                                                extra_env=shared_env(queue), task_worker=False)
            processes.append(process)
            machines.append((process, base))
        (a, base_a), (_b, base_b) = machines
        (workdir / "worker").mkdir()  # the task worker: a third machine
        processes.append(server.start_task_worker(
            server.machine_env(url, workdir / "worker", shared_env(queue)),
            workdir / "worker.log"))
        result = {"sessions": shared_session(base_a, base_b),
                  "attachment": attachment_across(base_a, base_b, setup),
                  "report": report_across(base_a, base_b, setup)}
        result["load"] = writes_while_a_dies(a, base_a, base_b, setup, url)
        return result
    finally:
        for process in processes:
            server.stop_server(process)
        redis_process.terminate()
        redis_process.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)


def shared_session(base_a: str, base_b: str) -> str:
    officer = server.Client(base_a)
    officer.log_in("compliance@bench.example")
    officer.base = base_b  # the same browser, its next request served by the other machine
    page = officer.request("GET", "/home")
    expect(page.status == 200 and "Bench Compliance" in page.text,
           f"server B did not know the session signed in on A ({page.status})")
    return "signed in on A, recognised on B"


def attachment_across(base_a: str, base_b: str, setup: dict) -> dict:
    officer = server.Client(base_a)
    officer.log_in("compliance@bench.example")
    path = f"/attachments/partnerships/{setup['partnership_id']}/new"
    form = server.hidden_fields(officer.request("GET", path).text)
    answer = officer.upload(path, form | {"label": "minutes"}, "file", "minutes.pdf", PDF)
    expect(answer.status in (302, 303), f"uploading through A answered {answer.status}")
    page = officer.request("GET", f"/partnerships/{setup['partnership_id']}").text
    import re

    found = re.search(r'href="/attachments/(\d+)"', page)
    expect(found is not None, "the uploaded attachment is not listed on its partnership")
    officer.base = base_b
    download = officer.request("GET", f"/attachments/{found.group(1)}")
    expect(download.status == 200 and download.body == PDF,
           f"downloading through B answered {download.status}, {len(download.body)} bytes")
    return {"uploaded_via": "A", "downloaded_via": "B", "bytes": len(PDF)}


def report_across(base_a: str, base_b: str, setup: dict) -> dict:
    on_a = server.Client(base_a, setup["compliance_token"])
    on_b = server.Client(base_b, setup["compliance_token"])
    year = time.gmtime().tm_year - 1
    asked = on_a.json("POST", "/api/v1/reports",
                      {"organisation_id": setup["sponsor_id"], "year": year})
    expect(asked.status == 202, f"asking for the report on A answered {asked.status}: "
                                f"{asked.text[:300]}")
    report_id, started = asked.json()["id"], time.monotonic()
    status = {}
    while time.monotonic() - started < 180:
        status = on_b.json("GET", f"/api/v1/reports/{report_id}").json()
        if status["status"] not in ("queued", "running"):
            break
        time.sleep(0.3)
    expect(status.get("status") == "done", f"the report ended {status.get('status')}: "
                                           f"{status.get('error')}")
    pdf = on_b.request("GET", f"/api/v1/reports/{report_id}/files/pdf")
    expect(pdf.status == 200 and pdf.body.startswith(b"%PDF"),
           f"the report's PDF through B answered {pdf.status}")
    return {"asked_on": "A", "read_on": "B", "seconds_to_done":
            round(time.monotonic() - started, 1), "pdf_bytes": len(pdf.body)}


def writes_while_a_dies(a, base_a: str, base_b: str, setup: dict, url: str) -> dict:
    acks, failures, lock = [], [0], threading.Lock()
    stop = threading.Event()

    def write(number: int) -> None:
        clients = [server.Client(base, setup["tokens"][number], timeout=10)
                   for base in (base_a, base_b)]
        count = 0
        while not stop.is_set():
            count += 1
            title = f"Multi-node write {number}-{count}"
            client = clients[count % 2]
            try:
                answer = client.json("POST", "/api/v1/interactions", {
                    "title": title, "occurred_on": "2026-02-02", "format": "workshop",
                    "partnership_id": setup["partnership_id"]})
            except OSError:  # the server went away mid-request: the other one takes over
                answer = None
            if answer is not None and answer.status == 201:
                with lock:
                    acks.append({"kind": "create", "id": answer.json()["id"], "version": 1,
                                 "title": title})
            else:
                with lock:
                    failures[0] += 1
                clients[count % 2] = clients[(count + 1) % 2]  # carry on with the other

    threads = [threading.Thread(target=write, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    time.sleep(SECONDS_OF_LOAD / 2)
    with lock:
        before = len(acks)
    kill_now(a)
    time.sleep(SECONDS_OF_LOAD / 2)
    stop.set()
    for thread in threads:
        thread.join(60)
    check = server.check_acknowledged(url, acks, shared=0, failed_requests=failures[0])
    expect(before > 0 and len(acks) > before,
           f"writes acknowledged before the kill {before}, after {len(acks) - before}")
    expect(check["passed"], f"writes lost: {check['problems']}")
    return {"acknowledged": len(acks), "before_kill": before, "after_kill": len(acks) - before,
            "failed_requests": failures[0], "lost": 0, "audit_chain": "verified"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help="an empty PostgreSQL database to use")
    parser.add_argument("--json", help="write the result to this file")
    arguments = parser.parse_args()
    result = run(arguments.database)
    text = json.dumps(result, indent=1)
    print(text)
    if arguments.json:
        Path(arguments.json).write_text(text)


if __name__ == "__main__":
    main()
