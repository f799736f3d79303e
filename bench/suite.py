"""`make bench`: the benchmarks at one size, the figures in one JSON file and one table.

    .venv/bin/python bench/suite.py [--size small|medium|large] [--runs 3] [--seed 2026]
                                    [--load json|run] [--only list,rules,...]

Each measurement runs --runs times, each run in a fresh process (so no run warms the next), and
is reported as the median with the min and the max, together with the machine it ran on:

  list      interaction list page (filtered, sorted, paginated views of compliance, an advocate
            and a partner) through the Flask test client: p50 and p95 per run;
            on the medium set (100,000 interactions) and, with --size large, on the large set
            (1,000,000) too;
  rules     rule evaluation throughput: facts and every interaction rule, in memory, over the
            interactions of the set, as the application evaluates them;
  reeval    full re-evaluation of the set (reevaluate_all, with its writes and commit) on a copy
            without flags (every flag new), then again with nothing changed;
  import    CSV import of 100,000 rows (bench/import_bench.py) and its ratio to a bare sqlite3
            executemany of the same file; then 100,000 support lines naming a few hundred
            agreements (--kind supports: their partnerships' and agreements' rules checked);
  report    the annual report of the medium set's busiest organisation-year (bench/report_bench.py:
            the job as a worker runs it, then WeasyPrint alone on the same HTML): time, pages/s,
            peak memory, ratio;
  load      API write throughput under concurrency (bench/load/run.py, 50 clients, gunicorn):
            by default the load runner's latest JSON (bench/results/load-*.json); --load run
            runs it (SQLite, --runs times);
  tasks     the task queue (bench/tasks_bench.py): how soon an idle `flask worker` claims a
            queued report job (10 jobs, one after the other); the day's run (re-evaluation,
            reminders, digests) over the set; 10,000 notifications composed and handed to an
            SMTP server on loopback (aiosmtpd);
  startup   start-up, whole processes, beside a bare `python -c "import flask, sqlalchemy"`
            measured in the same run: `flask --help`, create_app() in a fresh process, and
            gunicorn (gunicorn.conf.py, one worker, SQLite after `flask init-db`) from its start
            to the first 200 from /health. Needs no data set: `--only startup` runs it alone.

The data sets come from bench/generate.py and are kept in instance/bench/ between runs (made
again when the generator or the tables change; indexes are brought in line with the models).
Results go to bench/results/bench.json (merged with earlier results of other sizes) and the
summary table at the top of BENCHMARKS.md (other sections are kept). Targets are printed as met
or missed; the exit status is 1 when one is missed.
"""

import argparse
import json
import os
import platform
import resource
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

import generate  # noqa: E402  (bench/generate.py)
from server import stop_server  # noqa: E402  (bench/server.py)

RESULTS = BENCH / "results"
RESULT_FILE = RESULTS / "bench.json"
DATA_DIR = ROOT / "instance" / "bench"
SECTION_START = "<!-- bench:start -->"
SECTION_END = "<!-- bench:end -->"
MEASUREMENTS = ("list", "rules", "reeval", "import", "report", "tasks", "load", "startup")
PASSWORD = generate.PASSWORD
LIST_REQUESTS = 8  # timed requests per view and run (after one untimed warm-up request)


# --- the machine -------------------------------------------------------------------------------


def proc_field(path: str, name: str) -> str | None:
    """The value of a `name: value` line of a /proc file, or None where there is none."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:  # not Linux: the machine line then names less
        return None
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith(name)),
                None)


def machine() -> dict:
    cpu = proc_field("/proc/cpuinfo", "model name") or platform.processor() or platform.machine()
    memory_kb = proc_field("/proc/meminfo", "MemTotal:")
    memory_gb = round(int(memory_kb.split()[0]) / 1024 / 1024, 1) if memory_kb else None
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": memory_gb,
            "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
            "system": f"{platform.system()} {platform.release()}"}


def machine_line(m: dict) -> str:
    return (f"{m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB RAM, Python {m['python']}, "
            f"SQLite {m['sqlite']}, {m['system']}")


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def spread(values: list[float], digits: int = 1) -> dict:
    """Median, min and max of the runs (and the runs themselves)."""
    return {"median": round(statistics.median(values), digits), "min": round(min(values), digits),
            "max": round(max(values), digits), "runs": [round(v, digits) for v in values]}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    rank = fraction * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def child(*args: str, timeout: int = 3600) -> dict:
    """Run this file in a fresh process for one measurement; return the JSON it prints last."""
    completed = subprocess.run([sys.executable, __file__, *args], capture_output=True,
                               text=True, timeout=timeout)
    if completed.returncode:
        raise RuntimeError(f"{' '.join(args)} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def run_script(command: list[str], timeout: int = 3600) -> str:
    completed = subprocess.run([sys.executable, *command], capture_output=True, text=True,
                               timeout=timeout, cwd=ROOT)
    if completed.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{completed.stderr[-3000:]}")
    return completed.stdout


# --- the interaction list page (child process) ---------------------------------------------


def list_views(path: Path, manifest: dict) -> list[tuple[str, str, str]]:
    """The views measured: (name, account, URL), drawn from the data set."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    users = manifest["users"]
    try:
        # The compliance officer's views stay within their organisation (the busiest sponsor).
        own = connection.execute("SELECT organisation_id FROM users WHERE email = ?",
                                 (users["compliance"],)).fetchone()[0]
        own_partnerships = ("SELECT i.partnership_id FROM interactions i JOIN partnerships p "
                            "ON p.id = i.partnership_id WHERE p.sponsor_id = ? "
                            "GROUP BY i.partnership_id ORDER BY count(*)")
        busiest_partnership = connection.execute(
            own_partnerships + " DESC LIMIT 1", (own,)).fetchone()[0]
        quiet_partnership = connection.execute(
            own_partnerships + ", i.partnership_id LIMIT 1", (own,)).fetchone()[0]
        common_rule = connection.execute(
            "SELECT rule_id FROM flags WHERE state = 'open' AND interaction_id IS NOT NULL "
            "GROUP BY rule_id ORDER BY count(*) DESC LIMIT 1").fetchone()[0]
    finally:
        connection.close()
    year = manifest["busiest"]["year"]
    return [
        ("newest first, page 1", users["compliance"], "/interactions/"),
        ("newest first, page 40", users["compliance"], "/interactions/?page=40"),
        ("one year and one format", users["compliance"],
         f"/interactions/?date_from={year}-01-01&date_to={year}-12-31&format=focus_group"),
        ("one quarter, page 3", users["compliance"],
         f"/interactions/?date_from={year}-04-01&date_to={year}-06-30&page=3"),
        ("busiest partnership", users["compliance"],
         f"/interactions/?partnership_id={busiest_partnership}"),
        ("quietest partnership", users["compliance"],
         f"/interactions/?partnership_id={quiet_partnership}"),
        ("own organisation's interactions", users["compliance"],
         f"/interactions/?organisation_id={own}"),
        ("open flags of the commonest rule", users["compliance"],
         f"/interactions/?rule={common_rule}&state=open"),
        ("search a word", users["compliance"], "/interactions/?q=consent"),
        ("sorted by title, page 3", users["compliance"], "/interactions/?sort=title&page=3"),
        ("advocate: own organisation", users["advocate"], "/interactions/"),
        ("advocate: one year, page 2", users["advocate"],
         f"/interactions/?date_from={year}-01-01&date_to={year}-12-31&page=2"),
        ("partner: own partnerships", users["partner"], "/interactions/"),
        ("auditor: own and granted sponsors", users["auditor"], "/interactions/"),
        ("auditor: one quarter, page 3", users["auditor"],
         f"/interactions/?date_from={year}-04-01&date_to={year}-06-30&page=3"),
    ]


def measure_list_page(path: Path) -> dict:
    """One run: every view LIST_REQUESTS times through the test client, as its account."""
    from governance import create_app

    manifest = json.loads(generate.manifest_path(path).read_text())
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}", "SECRET_KEY": "bench",
                      "AUDIT_KEY": "bench-audit-key-0123456789abcdef",
                      "DATA_DIR": str(path.parent / f"{path.stem}-data"),
                      "WTF_CSRF_ENABLED": False, "SIGN_IN_THROTTLE": False,
                      "SESSION_COOKIE_SECURE": False, "REMEMBER_COOKIE_SECURE": False})
    clients = {}
    views = list_views(path, manifest)
    for _name, email, _url in views:
        if email not in clients:
            client = app.test_client()
            answer = client.post("/login", data={"email": email, "password": PASSWORD})
            if answer.status_code != 302:
                raise RuntimeError(f"cannot log in as {email}: {answer.status_code}")
            clients[email] = client
    for _name, email, url in views:  # warm-up: templates compiled, connections open
        clients[email].get(url)
    results, wall_all, cpu_all = {}, [], []
    for _round in range(LIST_REQUESTS):
        for name, email, url in views:
            started, cpu = time.perf_counter(), time.process_time()
            answer = clients[email].get(url)
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            if answer.status_code != 200 or b"<table" not in answer.data:
                raise RuntimeError(f"{url} as {email}: {answer.status_code}, no table")
            entry = results.setdefault(name, {"url": url, "account": email, "wall_ms": [],
                                              "cpu_ms": []})
            entry["wall_ms"].append(wall * 1000)
            entry["cpu_ms"].append(cpu * 1000)
            wall_all.append(wall * 1000)
            cpu_all.append(cpu * 1000)
    return {"p50_ms": statistics.median(wall_all), "p95_ms": percentile(wall_all, 0.95),
            "cpu_p50_ms": statistics.median(cpu_all), "cpu_p95_ms": percentile(cpu_all, 0.95),
            "views": results, "requests": len(wall_all)}


def bench_list_page(path: Path, manifest: dict, runs: int) -> dict:
    samples = []
    for run in range(runs):
        sample = child("--list-page", str(path))
        samples.append(sample)
        print(f"    run {run + 1}: p50 {sample['p50_ms']:.1f} ms, p95 {sample['p95_ms']:.1f} ms "
              f"(CPU p50 {sample['cpu_p50_ms']:.1f} ms, p95 {sample['cpu_p95_ms']:.1f} ms; "
              f"{sample['requests']} requests)", flush=True)
    views = {}
    for name, first in samples[0]["views"].items():
        wall = [ms for sample in samples for ms in sample["views"][name]["wall_ms"]]
        cpu = [ms for sample in samples for ms in sample["views"][name]["cpu_ms"]]
        views[name] = {"url": first["url"], "account": first["account"],
                       "p50_ms": round(statistics.median(wall), 1),
                       "p95_ms": round(percentile(wall, 0.95), 1),
                       "cpu_p50_ms": round(statistics.median(cpu), 1)}
    return {"interactions": manifest["counts"]["interactions"],
            "p50_ms": spread([s["p50_ms"] for s in samples]),
            "p95_ms": spread([s["p95_ms"] for s in samples]),
            "cpu_p50_ms": spread([s["cpu_p50_ms"] for s in samples]),
            "cpu_p95_ms": spread([s["cpu_p95_ms"] for s in samples]),
            "requests_per_run": samples[0]["requests"], "views": views}


# --- rule evaluation and re-evaluation (child processes) -----------------------------------


def measure_rules(path: Path) -> dict:
    """One run: facts and every interaction rule over the set's interactions, in memory."""
    from sqlalchemy import select

    from governance.extensions import db
    from governance.interactions.models import Interaction
    from governance.rules.engine import load_policy
    from governance.rules.facts import INTERACTION_COLUMNS, interaction_facts

    app = generate.make_app(path)
    with app.app_context():
        rows = db.session.execute(
            select(Interaction.id, *(getattr(Interaction, name) for name in INTERACTION_COLUMNS))
            .where(Interaction.voided_at.is_(None)).order_by(Interaction.id)).all()
        db.session.remove()
    policy = load_policy(ROOT / "policies")
    today = generate.TODAY
    applying = policy.applying
    started, cpu = time.perf_counter(), time.process_time()
    flags = 0
    for row in rows:
        flags += len(applying("interaction", interaction_facts(row, today)))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"interactions": len(rows), "rules": len(policy.by_subject["interaction"]),
            "seconds": seconds, "cpu_seconds": cpu, "flags": flags,
            "per_second": len(rows) / seconds, "cpu_per_second": len(rows) / cpu}


def bench_rules(path: Path, runs: int) -> dict:
    samples = []
    for run in range(runs):
        sample = child("--rules", str(path))
        samples.append(sample)
        print(f"    run {run + 1}: {sample['per_second']:,.0f} interactions/s "
              f"({sample['interactions']:,} in {sample['seconds']:.2f} s; CPU "
              f"{sample['cpu_per_second']:,.0f}/s; {sample['flags']:,} rules applying)",
              flush=True)
    return {"interactions": samples[0]["interactions"], "rules": samples[0]["rules"],
            "per_second": spread([s["per_second"] for s in samples], 0),
            "cpu_per_second": spread([s["cpu_per_second"] for s in samples], 0),
            "seconds": spread([s["seconds"] for s in samples], 2)}


def measure_reevaluation(base: Path, workdir: Path) -> dict:
    """One run: a copy of the set without flags, re-evaluated whole twice (writes, commit)."""
    from governance import audit
    from governance.auth.models import User
    from governance.extensions import db
    from governance.rules.bulk import gc_paused, reevaluate_all

    copy = workdir / "reevaluation.sqlite"
    shutil.copyfile(base, copy)
    app = generate.make_app(copy)
    result = {}
    with app.app_context():
        admin = db.session.scalar(db.select(User).where(User.role == "admin"))
        for label in ("first", "unchanged"):
            audit.set_actor(admin)
            started, cpu = time.perf_counter(), time.process_time()
            with gc_paused():  # as the job and the command run it
                outcome = reevaluate_all(today=generate.TODAY)
            db.session.commit()
            result[label] = {"seconds": time.perf_counter() - started,
                             "cpu_seconds": time.process_time() - cpu,
                             "opened": outcome.opened, "closed": outcome.closed,
                             "interactions": outcome.interactions,
                             "partnerships": outcome.partnerships}
        db.session.remove()
        db.engine.dispose()
    copy.unlink()
    return result


def bench_reevaluation(base: Path, runs: int) -> dict:
    samples = []
    with tempfile.TemporaryDirectory(prefix="bench-reeval-", dir=DATA_DIR) as tmp:
        for run in range(runs):
            sample = child("--reevaluation", str(base), tmp)
            samples.append(sample)
            first, again = sample["first"], sample["unchanged"]
            print(f"    run {run + 1}: every flag new {first['seconds']:.1f} s "
                  f"({first['cpu_seconds']:.1f} s CPU, {first['opened']:,} flags); nothing "
                  f"changed {again['seconds']:.1f} s ({again['cpu_seconds']:.1f} s CPU)",
                  flush=True)
    count = samples[0]["first"]["interactions"]
    return {"interactions": count, "partnerships": samples[0]["first"]["partnerships"],
            "flags_opened": samples[0]["first"]["opened"],
            "first_seconds": spread([s["first"]["seconds"] for s in samples]),
            "first_cpu_seconds": spread([s["first"]["cpu_seconds"] for s in samples]),
            "first_per_second": spread([count / s["first"]["seconds"] for s in samples], 0),
            "unchanged_seconds": spread([s["unchanged"]["seconds"] for s in samples]),
            "unchanged_cpu_seconds": spread([s["unchanged"]["cpu_seconds"] for s in samples]),
            "unchanged_per_second": spread([count / s["unchanged"]["seconds"]
                                            for s in samples], 0)}


# --- CSV import, report, load (the other helpers' scripts) ---------------------------------


def bench_import(rows: int, runs: int, kind: str = "interactions") -> dict:
    samples = []
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        for run in range(runs):
            out = Path(tmp) / f"import-{run}.json"
            run_script([str(BENCH / "import_bench.py"), "--rows", str(rows), "--skip-reimport",
                        "--kind", kind, "--json", str(out)])
            sample = json.loads(out.read_text())
            samples.append(sample)
            print(f"    run {run + 1}: {sample['import_seconds']} s = "
                  f"{sample['rows_per_second']:,} rows/s ({sample['import_cpu_seconds']} s CPU), "
                  f"{sample['ratio_to_bare_sqlite']}x a bare sqlite3 executemany, peak "
                  f"{sample['peak_rss_mb']} MB", flush=True)
    return {"rows": rows, "seconds": spread([s["import_seconds"] for s in samples]),
            "cpu_seconds": spread([s["import_cpu_seconds"] for s in samples]),
            "rows_per_second": spread([s["rows_per_second"] for s in samples], 0),
            "ratio_to_bare_sqlite": spread([s["ratio_to_bare_sqlite"] for s in samples]),
            "peak_rss_mb": spread([s["peak_rss_mb"] for s in samples], 0),
            "flags_per_row": samples[0]["flags_per_row"],
            **({"agreements": samples[0]["agreements"]} if "agreements" in samples[0] else {})}


def bench_report(flagged: Path, manifest: dict, runs: int) -> dict:
    busiest = manifest["busiest"]
    script = str(BENCH / "report_bench.py")
    jobs, alone = [], []
    with tempfile.TemporaryDirectory(prefix="bench-report-", dir=DATA_DIR) as tmp:
        shutil.copyfile(flagged, Path(tmp) / "bench.sqlite")  # report_bench's file name
        for run in range(runs):
            job = json.loads(run_script([script, "--measure-job", tmp, "--organisation",
                                         busiest["name"], "--year", str(busiest["year"])]
                                        ).strip().splitlines()[-1])
            bare = json.loads(run_script([script, "--measure-weasyprint", tmp,
                                          str(job["report_id"])]).strip().splitlines()[-1])
            jobs.append(job)
            alone.append(bare)
            print(f"    run {run + 1}: job {job['seconds']:.1f} s ({job['cpu']:.1f} s CPU), "
                  f"{job['pages']} pages, peak {job['peak_mb']:.0f} MB; WeasyPrint alone "
                  f"{bare['seconds']:.1f} s ({bare['cpu']:.1f} s CPU)", flush=True)
    return {"organisation": busiest["name"], "year": busiest["year"],
            "interactions": busiest["interactions"], "supports": busiest["supports"],
            "pages": jobs[0]["pages"], "pdf_mb": round(jobs[0]["pdf_bytes"] / 1e6, 2),
            "seconds": spread([j["seconds"] for j in jobs]),
            "cpu_seconds": spread([j["cpu"] for j in jobs]),
            "pages_per_second": spread([j["pages"] / j["seconds"] for j in jobs]),
            "peak_rss_mb": spread([j["peak_mb"] for j in jobs], 0),
            "weasyprint_seconds": spread([a["seconds"] for a in alone]),
            "weasyprint_cpu_seconds": spread([a["cpu"] for a in alone]),
            "cpu_ratio_to_weasyprint": spread([j["cpu"] / a["cpu"]
                                               for j, a in zip(jobs, alone, strict=True)], 2),
            "weasyprint_peak_rss_mb": spread([a["peak_mb"] for a in alone], 0),
            "ratio_to_weasyprint": spread([j["seconds"] / a["seconds"]
                                           for j, a in zip(jobs, alone, strict=True)], 2),
            "public_pages": jobs[0]["public_pages"], "internal_pages": jobs[0]["internal_pages"],
            "public_pdf_seconds": spread([j["public_pdf_seconds"] for j in jobs]),
            "public_weasyprint_seconds": spread([a["public_seconds"] for a in alone]),
            "public_ratio_to_weasyprint": spread([
                j["public_pdf_seconds"] / a["public_seconds"]
                for j, a in zip(jobs, alone, strict=True)], 2),
            "phases": {label: round(statistics.median(j["phases"][label][0] for j in jobs), 2)
                       for label in jobs[0]["phases"]}}


def bench_tasks(flagged: Path, runs: int) -> dict:
    script = str(BENCH / "tasks_bench.py")
    starts, days, mails = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-tasks-", dir=DATA_DIR) as tmp:
        for run in range(runs):
            folder = Path(tmp) / f"run{run}"
            for name in ("latency", "daily", "mail"):
                (folder / name).mkdir(parents=True)
            shutil.copyfile(flagged, folder / "daily" / "bench.sqlite")
            latency = json.loads(run_script([script, "--start-latency", str(folder / "latency")]
                                            ).strip().splitlines()[-1])
            day = json.loads(run_script([script, "--daily-run", str(folder / "daily")]
                                        ).strip().splitlines()[-1])
            sent = json.loads(run_script([script, "--mail", str(folder / "mail")]
                                         ).strip().splitlines()[-1])
            if day["state"] != "done" or sent["received"] != sent["notifications"]:
                raise SystemExit(f"the day's run ended {day['state']} ({day['error']}); "
                                 f"{sent['received']} of {sent['notifications']} mails arrived")
            starts += latency["start_seconds"]
            days.append(day)
            mails.append(sent)
            print(f"    run {run + 1}: a queued job claimed after "
                  f"{statistics.median(latency['start_seconds']):.2f} s (median of "
                  f"{latency['jobs']}, longest {max(latency['start_seconds']):.2f} s); the day's "
                  f"run {day['seconds']:.1f} s ({day['cpu']:.1f} s CPU); "
                  f"{sent['notifications']:,} mails {sent['seconds']:.1f} s", flush=True)
            shutil.rmtree(folder)
    return {"interactions": days[0]["interactions"], "summary": days[0]["summary"],
            "start_seconds": spread(starts, 2),
            "start_p95_seconds": spread([percentile(starts, 0.95)], 2),
            "daily_seconds": spread([d["seconds"] for d in days]),
            "daily_cpu_seconds": spread([d["cpu"] for d in days]),
            "daily_peak_rss_mb": spread([d["peak_mb"] for d in days], 0),
            "notifications": mails[0]["notifications"],
            "mail_seconds": spread([m["seconds"] for m in mails]),
            "mail_cpu_seconds": spread([m["cpu"] for m in mails]),
            "mail_per_second": spread([m["notifications"] / m["seconds"] for m in mails], 0)}


def bench_load(mode: str, runs: int) -> dict | None:
    """The load runner's figures: every run of its latest recording, or fresh runs (SQLite)."""
    saved = RESULTS / "load-sqlite.json"
    if mode == "run" or not saved.exists():
        if not (ROOT / ".venv-load" / "bin" / "locust").exists():
            print("    locust is not installed (make load-test installs it): not measured")
            return None
        run_script([str(BENCH / "load" / "run.py"), "--database", "sqlite", "--runs",
                    str(runs)], timeout=900 * runs)
        recorded = json.loads(saved.read_text())
        source = (f"{runs} run(s) of bench/load/run.py --database sqlite now "
                  f"({recorded['users']} clients, {recorded['duration_s']} s each)")
    else:
        recorded = json.loads(saved.read_text())
        source = (f"bench/results/load-sqlite.json: the load runner's latest recording "
                  f"(make load-test, {recorded['users']} clients for "
                  f"{recorded['duration_s']} s per run), measured {recorded['measured_at']}; "
                  f"not run again")
    samples = recorded.get("runs") or [recorded | {"lost_writes": recorded["check"]["lost_writes"]}]
    print(f"    {source}")
    for number, sample in enumerate(samples, 1):
        print(f"    run {number}: {sample['writes_per_s']} writes/s, write p95 "
              f"{sample['write_p95_ms']} ms", flush=True)
    result = {"source": source, "database": "sqlite", "users": recorded["users"],
              "workers": recorded["workers"], "threads": recorded["threads_per_worker"],
              "duration_s": recorded["duration_s"],
              "writes_per_s": spread([s["writes_per_s"] for s in samples]),
              "write_p95_ms": spread([s["write_p95_ms"] for s in samples]),
              "failed_requests": sum(s["failed_requests"] for s in samples),
              "lost_writes": sum(s["lost_writes"] for s in samples)}
    postgres = RESULTS / "load-postgresql.json"
    if postgres.exists():
        pg = json.loads(postgres.read_text())
        result["postgresql"] = {"writes_per_s": pg["writes_per_s"],
                                "write_p95_ms": pg["write_p95_ms"],
                                "measured_at": pg["measured_at"]}
    return result


# --- start-up (whole processes) --------------------------------------------------------------

STARTUP_CONFIG = ("{'SECRET_KEY': 'bench', 'AUDIT_KEY': 'bench-audit-key-0123456789abcdef', "
                  "'SQLALCHEMY_DATABASE_URI': 'sqlite://', "
                  "'DATA_DIR': %r}")
# Printed by the create_app process: the time from before its first import of the application to
# create_app's return, as the process itself measures it (the interpreter's own start excluded).
CREATE_APP_CODE = ("import time; started = time.perf_counter()\n"
                   "from governance import create_app\n"
                   "create_app(" + STARTUP_CONFIG + ")\n"
                   "print(time.perf_counter() - started)")
BASELINE_CODE = ("import time; started = time.perf_counter()\n"
                 "import flask, sqlalchemy\n"
                 "print(time.perf_counter() - started)")
GUNICORN_DEADLINE = 60  # seconds


def startup_env(workdir: Path, **extra: str) -> dict:
    """The environment of the start-up processes: this checkout's code, a throwaway database."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("GOVERNANCE_") and key not in ("DATABASE_URL", "FLASK_APP")}
    # The checkout's own code first (an installed copy elsewhere would be measured otherwise),
    # and Python's bytecode cache allowed, as in an installation.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env | {"FLASK_APP": "governance", "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite'}",
                  "GOVERNANCE_SECRET_KEY": "bench-startup",
                  "GOVERNANCE_AUDIT_KEY": "bench-audit-key-0123456789abcdef",
                  "GOVERNANCE_DATA_DIR": str(workdir / "data")} | extra


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_process(command: list[str], env: dict) -> tuple[float, float, str]:
    """Run a whole process; return its wall time, its CPU time and what it printed."""
    cpu, started = children_cpu(), time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT,
                               timeout=300)
    seconds, cpu = time.perf_counter() - started, children_cpu() - cpu
    if completed.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{completed.stderr[-3000:]}")
    return seconds, cpu, completed.stdout


def gunicorn_first_answer(workdir: Path) -> float:
    """Seconds from starting gunicorn (one worker) to the first 200 from /health."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = startup_env(workdir, PORT=str(port), WEB_CONCURRENCY="1", GUNICORN_THREADS="1")
    url = f"http://127.0.0.1:{port}/health"
    with open(workdir / "gunicorn.log", "a") as log:
        started = time.perf_counter()
        server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
                                  cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        while (left := GUNICORN_DEADLINE - (time.perf_counter() - started)) > 0:
            if server.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {workdir / 'gunicorn.log'}")
            try:
                # Once the socket listens, a request waits there until the worker takes it.
                with urllib.request.urlopen(url, timeout=left) as answer:
                    if answer.status == 200:
                        return time.perf_counter() - started
            except OSError:  # not listening yet (or an error answer): ask again
                pass
            time.sleep(0.01)
        raise RuntimeError(f"gunicorn did not answer /health within {GUNICORN_DEADLINE} s")
    finally:
        stop_server(server)


def bench_startup(runs: int) -> dict:
    """Each figure in fresh processes, the runs of the four interleaved so drift hits all."""
    python = sys.executable
    names = ("baseline", "baseline_cpu", "baseline_inside", "flask_help", "flask_help_cpu",
             "create_app", "create_app_cpu", "create_app_inside", "gunicorn")
    figures = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        workdir = Path(tmp)
        env = startup_env(workdir)
        create_app_code = CREATE_APP_CODE % str(workdir / "data")
        timed_process([python, "-m", "flask", "init-db"], env)
        # One untimed round first: bytecode caches written, files in the page cache.
        timed_process([python, "-m", "flask", "--help"], env)
        timed_process([python, "-c", create_app_code], env)
        for run in range(runs):
            wall, cpu, inside = timed_process([python, "-c", BASELINE_CODE], env)
            figures["baseline"].append(wall)
            figures["baseline_cpu"].append(cpu)
            figures["baseline_inside"].append(float(inside.strip()))
            wall, cpu, _help = timed_process([python, "-m", "flask", "--help"], env)
            figures["flask_help"].append(wall)
            figures["flask_help_cpu"].append(cpu)
            wall, cpu, inside = timed_process([python, "-c", create_app_code], env)
            figures["create_app"].append(wall)
            figures["create_app_cpu"].append(cpu)
            figures["create_app_inside"].append(float(inside.strip().splitlines()[-1]))
            figures["gunicorn"].append(gunicorn_first_answer(workdir))
            print(f"    run {run + 1}: flask --help {figures['flask_help'][-1]:.2f} s "
                  f"({figures['flask_help_cpu'][-1]:.2f} s CPU), create_app() "
                  f"{figures['create_app_inside'][-1]:.2f} s (its process "
                  f"{figures['create_app'][-1]:.2f} s, {figures['create_app_cpu'][-1]:.2f} s "
                  f"CPU), gunicorn to the first 200 {figures['gunicorn'][-1]:.2f} s; bare "
                  f"import of flask and sqlalchemy {figures['baseline'][-1]:.2f} s "
                  f"({figures['baseline_cpu'][-1]:.2f} s CPU, inside "
                  f"{figures['baseline_inside'][-1]:.2f} s)", flush=True)
    result = {name: spread(values, 3) for name, values in figures.items()}
    for name, base in (("flask_help", "baseline"), ("flask_help_cpu", "baseline_cpu"),
                       ("create_app_inside", "baseline_inside")):
        result[f"{name}_to_baseline"] = round(
            result[name]["median"] / result[base]["median"], 1)
    return result


# --- targets, results, the table -------------------------------------------------------------

PLANS = {  # size -> the data sets of the list page, the set of the other measurements, CSV rows
    "small": {"list": ["small"], "set": "small", "import_rows": 1_000, "report": "small"},
    "medium": {"list": ["medium"], "set": "medium", "import_rows": 100_000, "report": "medium"},
    "large": {"list": ["medium", "large"], "set": "large", "import_rows": 100_000,
              "report": "medium"},
}

TARGETS = [
    # (result key, figure, its CPU-time counterpart, label, check, wording)
    ("list_page@large", "p95_ms", "cpu_p95_ms",
     "interaction list page p95 at 1,000,000 interactions", lambda v: v < 100, "< 100 ms"),
    ("rules@", "per_second", "cpu_per_second", "rule evaluation throughput",
     lambda v: v >= 20_000, ">= 20,000 interactions/s"),  # more is better: the worst is min
    ("report@medium", "seconds", "cpu_seconds",
     "report of the medium set's busiest organisation-year, both documents", lambda v: v < 20,
     "< 20 s"),
    ("report@medium", "public_ratio_to_weasyprint", None,
     "the public PDF against bare WeasyPrint on the same HTML", lambda v: v <= 1.25,
     "<= 1.25x"),
    ("csv_import@100000", "seconds", "cpu_seconds", "CSV import of 100,000 rows",
     lambda v: v < 60, "< 60 s"),
    ("csv_import_supports@100000", "seconds", "cpu_seconds",
     "CSV import of 100,000 support lines with their agreements checked", lambda v: v < 60,
     "< 60 s"),
    ("tasks@medium", "start_p95_seconds", None,
     "a queued task claimed by an idle worker, p95", lambda v: v < 1, "< 1 s"),
    ("tasks@medium", "daily_seconds", "daily_cpu_seconds",
     "the day's run over the medium set (100,000 interactions)", lambda v: v < 60, "< 60 s"),
    ("tasks@medium", "mail_seconds", "mail_cpu_seconds",
     "10,000 notifications composed and handed to SMTP", lambda v: v < 60, "< 60 s"),
    ("startup", "flask_help", "flask_help_cpu", "`flask --help`, the whole process",
     lambda v: v < 1, "< 1 s"),
    ("startup", "create_app_inside", None, "create_app() in a fresh process (its imports and "
     "the call)", lambda v: v < 0.5, "< 0.5 s"),
    ("startup", "gunicorn", None, "gunicorn (one worker) from its start to the first 200 from "
     "/health", lambda v: v < 2, "< 2 s"),
]


def check_targets(results: dict) -> list[dict]:
    """Each target against the median of its runs (wall clock), with the CPU-time figure
    beside it: on a shared machine the wall clock also measures the other work."""
    verdicts = []
    for key, figure, cpu_figure, label, check, wording in TARGETS:
        if key.endswith("@"):  # the largest set measured
            found = [k for k in ("large", "medium", "small") if f"{key}{k}" in results]
            key = f"{key}{found[0]}" if found else key
        result = results.get(key)
        if not result:
            verdicts.append({"target": label, "wanted": wording, "status": "not measured",
                             "key": key, "figure": figure})
            continue
        value = result[figure]["median"]
        cpu = result.get(cpu_figure, {}).get("median") if cpu_figure else None
        worst = min if figure == "per_second" else max
        verdicts.append({"target": label, "wanted": wording, "key": key, "figure": figure,
                         "value": value,
                         "worst": worst(result[figure]["runs"]), "cpu": cpu,
                         "status": "met" if check(value) else "missed",
                         "cpu_status": None if cpu is None else
                         ("met" if check(cpu) else "missed"),
                         "load_average": result.get("load_average"),
                         "measured_at": result["measured_at"]})
    return verdicts


def verdict_text(verdict: dict) -> str:
    if verdict["status"] == "not measured":
        hint = " (`make bench SIZE=large` measures it)" if verdict["key"].endswith("@large") \
            else ""
        return f"not measured yet{hint}"
    text = (f"**{verdict['status']}** (median {verdict['value']:,}, worst run "
            f"{verdict['worst']:,}")
    if verdict.get("cpu") is not None:
        text += f"; in CPU time {verdict['cpu']:,}: {verdict['cpu_status']}"
    return text + ")"


def set_label(name: str, results: dict) -> str:
    data_set = results.get(f"data_set@{name}", {})
    count = data_set.get("counts", {}).get("interactions")
    return f"{name} ({count:,} interactions)" if count else name


def fmt(value: float | None, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return ""
    text = f"{value:,.{digits}f}" if digits else f"{value:,.0f}"
    return f"{text}{unit}"


def row(measurement: str, data_set: str, figure: dict, unit: str, digits: int, target: str,
        measured_at: str, cpu: dict | None = None) -> str:
    return (f"| {measurement} | {data_set} | **{fmt(figure['median'], unit, digits)}** | "
            f"{fmt(figure['min'], unit, digits)} | {fmt(figure['max'], unit, digits)} | "
            f"{len(figure['runs'])} | {fmt(cpu['median'] if cpu else None, unit, digits)} | "
            f"{target} | {measured_at[:10]} |")


def table_lines(results: dict, verdicts: list[dict]) -> list[str]:
    status = {}
    for v in verdicts:  # by result, and by result and figure (start-up has three targets)
        status[f"{v['key']}:{v['figure']}"] = f"{v['wanted']}: **{v['status']}**"
        status.setdefault(v["key"], status[f"{v['key']}:{v['figure']}"])
    lines = ["| measurement | data set | median | min | max | runs | CPU time (median) | target "
             "| measured |", "|---|---|---|---|---|---|---|---|---|"]
    for name in ("small", "medium", "large"):
        result = results.get(f"list_page@{name}")
        if result:
            label = set_label(name, results)
            lines.append(row(f"Interaction list page, p50 ({len(result['views'])} filtered, "
                             "sorted, paginated views)", label, result["p50_ms"], " ms", 1, "",
                             result["measured_at"], result.get("cpu_p50_ms")))
            lines.append(row("Interaction list page, p95", label, result["p95_ms"], " ms", 1,
                             status.get(f"list_page@{name}", ""), result["measured_at"],
                             result.get("cpu_p95_ms")))
    for name in ("small", "medium", "large"):
        result = results.get(f"rules@{name}")
        if result:
            lines.append(row(f"Rule evaluation ({result['rules']} interaction rules, in memory)",
                             set_label(name, results), result["per_second"], " interactions/s",
                             0, status.get(f"rules@{name}", ""), result["measured_at"],
                             result.get("cpu_per_second")))
    for name in ("small", "medium", "large"):
        result = results.get(f"reevaluation@{name}")
        if result:
            label = set_label(name, results)
            lines.append(row("Full re-evaluation, every flag new (writes and commit included)",
                             label, result["first_seconds"], " s", 1,
                             f"{result['first_per_second']['median']:,.0f} interactions/s",
                             result["measured_at"], result.get("first_cpu_seconds")))
            lines.append(row("Full re-evaluation again, nothing changed", label,
                             result["unchanged_seconds"], " s", 1,
                             f"{result['unchanged_per_second']['median']:,.0f} interactions/s",
                             result["measured_at"], result.get("unchanged_cpu_seconds")))
    for key in sorted(k for k in results if k.startswith("csv_import@")):
        result = results[key]
        rows = f"{result['rows']:,} rows"
        lines.append(row(f"CSV import of {rows} (validated, flagged, audited)", "CSV file",
                         result["seconds"], " s", 1, status.get(key, ""), result["measured_at"],
                         result.get("cpu_seconds")))
        lines.append(row("CSV import rate", "CSV file", result["rows_per_second"], " rows/s", 0,
                         "", result["measured_at"]))
        lines.append(row("CSV import, ratio to a bare sqlite3 executemany", "CSV file",
                         result["ratio_to_bare_sqlite"], "x", 1, "", result["measured_at"]))
        lines.append(row("CSV import, peak memory", "CSV file", result["peak_rss_mb"], " MB", 0,
                         "", result["measured_at"]))
    for key in sorted(k for k in results if k.startswith("csv_import_supports@")):
        result = results[key]
        label = f"CSV file ({result.get('agreements', '?')} agreements)"
        lines.append(row(f"CSV import of {result['rows']:,} support lines (validated, "
                         "partnership and agreement rules checked, audited)", label,
                         result["seconds"], " s", 1, status.get(key, ""), result["measured_at"],
                         result.get("cpu_seconds")))
        lines.append(row("Support line import rate", label, result["rows_per_second"],
                         " rows/s", 0, "", result["measured_at"]))
        lines.append(row("Support line import, peak memory", label, result["peak_rss_mb"],
                         " MB", 0, "", result["measured_at"]))
    for name in ("small", "medium", "large"):
        result = results.get(f"report@{name}")
        if result:
            label = (f"{name}: {result['organisation']} {result['year']} "
                     f"({result['interactions']:,} interactions, {result['supports']:,} "
                     f"support lines, {result['pages']} pages)")
            lines.append(row("Annual report job (snapshot, HTML, PDF, CSV, JSON, stored)", label,
                             result["seconds"], " s", 1, status.get(f"report@{name}", ""),
                             result["measured_at"], result.get("cpu_seconds")))
            lines.append(row("Annual report, pages per second", label,
                             result["pages_per_second"], " pages/s", 1, "",
                             result["measured_at"]))
            lines.append(row("Annual report, peak memory of the job", label,
                             result["peak_rss_mb"], " MB", 0, "", result["measured_at"]))
            lines.append(row("Annual report, WeasyPrint alone on the same HTML", label,
                             result["weasyprint_seconds"], " s", 1, "", result["measured_at"],
                             result.get("weasyprint_cpu_seconds")))
            lines.append(row("Annual report, ratio of the job to bare WeasyPrint", label,
                             result["ratio_to_weasyprint"], "x", 2, "", result["measured_at"],
                             result.get("cpu_ratio_to_weasyprint")))
            if "public_pdf_seconds" in result:
                lines.append(row(
                    f"Annual report, the public PDF ({result['public_pages']} pages: its HTML "
                    "and WeasyPrint)", label, result["public_pdf_seconds"], " s", 1, "",
                    result["measured_at"]))
                lines.append(row("Annual report, the public PDF, WeasyPrint alone", label,
                                 result["public_weasyprint_seconds"], " s", 1, "",
                                 result["measured_at"]))
                lines.append(row("Annual report, ratio of the public PDF to bare WeasyPrint",
                                 label, result["public_ratio_to_weasyprint"], "x", 2,
                                 status.get("report@medium:public_ratio_to_weasyprint", ""),
                                 result["measured_at"]))
    for name in ("small", "medium", "large"):
        result = results.get(f"tasks@{name}")
        if result:
            label = set_label(name, results)
            lines.append(row("Task queue: a queued report job claimed by an idle `flask "
                             "worker`, each job", "SQLite queue", result["start_seconds"], " s",
                             2, "", result["measured_at"]))
            lines.append(row("Task queue: the same, p95", "SQLite queue",
                             result["start_p95_seconds"], " s", 2,
                             status.get(f"tasks@{name}:start_p95_seconds", ""),
                             result["measured_at"]))
            lines.append(row("The day's run (re-evaluation, reminders, digests)", label,
                             result["daily_seconds"], " s", 1,
                             status.get(f"tasks@{name}:daily_seconds", ""),
                             result["measured_at"], result.get("daily_cpu_seconds")))
            lines.append(row(f"{result['notifications']:,} notifications composed and handed "
                             "to SMTP (aiosmtpd, loopback)", "100 users", result["mail_seconds"],
                             " s", 1, status.get(f"tasks@{name}:mail_seconds", ""),
                             result["measured_at"], result.get("mail_cpu_seconds")))
    result = results.get("startup")
    if result:
        ratio = {"flask_help": f"{result['flask_help_to_baseline']}x the bare import "
                               f"({result['flask_help_cpu_to_baseline']}x in CPU time)",
                 "create_app_inside": f"{result['create_app_inside_to_baseline']}x the bare "
                                      "import (inside)"}
        cpu = {"baseline": result["baseline_cpu"], "flask_help": result["flask_help_cpu"],
               "create_app": result["create_app_cpu"]}
        for figure, label in (
                ("baseline", "Start-up baseline: `python -c \"import flask, sqlalchemy\"`"),
                ("baseline_inside", "Start-up baseline, its imports as the process measures"),
                ("flask_help", "Start-up: `flask --help`"),
                ("create_app", "Start-up: a process that runs create_app()"),
                ("create_app_inside", "Start-up: create_app() (its imports and the call)"),
                ("gunicorn", "Start-up: gunicorn, one worker, to the first 200 from /health")):
            target = "; ".join(filter(None, (status.get(f"startup:{figure}"),
                                             ratio.get(figure))))
            lines.append(row(label, "whole processes", result[figure], " s", 2, target,
                             result["measured_at"], cpu.get(figure)))
    result = results.get("api_load@sqlite")
    if result:
        label = (f"SQLite, {result['workers']} workers × {result['threads']} threads, "
                 f"{result['users']} clients, {result['duration_s']} s")
        lines.append(row("API writes under concurrency (POST and PATCH)", label,
                         result["writes_per_s"], " writes/s", 1, "", result["measured_at"]))
        lines.append(row("API write latency, p95", label, result["write_p95_ms"], " ms", 1, "",
                         result["measured_at"]))
    for name in ("small", "medium", "large"):
        result = results.get(f"data_set@{name}")
        if result:
            seconds = result["seconds"]
            lines.append(
                f"| Data set generation (bench/generate.py), then its flags | "
                f"{set_label(name, results)} | **{seconds['base']:,.0f} s + "
                f"{seconds['flags']:,.0f} s** | | | 1 | | database {result['database_mb']:,} MB, "
                f"peak memory {result['peak_rss_mb']:,} MB | {result['measured_at'][:10]} |")
    return lines


def write_benchmarks(document: dict) -> None:
    results, verdicts, latest = document["results"], document["targets"], document["latest_run"]
    m = latest["machine"]
    partial = ""
    if "only" in latest:
        partial = f", measuring only: {latest['only']}"
    lines = [SECTION_START, "## Summary (`make bench`)", "",
             f"Latest run: `make bench SIZE={latest['size']}` ({latest['runs']} runs per figure"
             f"{partial}) "
             f"on {latest['started_at'][:16].replace('T', ' ')} UTC, on {machine_line(m)}; load "
             f"average {latest['load_average_start'][0]} at the start and "
             f"{latest['load_average_end'][0]} at the end (the machine is shared: wall times "
             f"stretch when other work runs; CPU times are in bench/results/bench.json). "
             f"Figures of other sizes, or not measured then, are kept from their own latest "
             f"run (see the date).", "",
             "Targets:", ""]
    for verdict in verdicts:
        lines.append(f"- {verdict['target']} {verdict['wanted']}: {verdict_text(verdict)}")
    lines += ["", *table_lines(results, verdicts), ""]
    views_lines = []
    for name in ("medium", "large", "small"):
        result = results.get(f"list_page@{name}")
        if not result:
            continue
        views_lines += [f"List page views on the {set_label(name, results)} set "
                        f"({LIST_REQUESTS} requests per view and run, all runs pooled):", "",
                        "| view | account | p50 | p95 | CPU p50 |", "|---|---|---|---|---|"]
        for view, figures in result["views"].items():
            views_lines.append(f"| {view} (`{figures['url']}`) | {figures['account'].split('@')[0]}"
                               f" | {figures['p50_ms']} ms | {figures['p95_ms']} ms | "
                               f"{figures['cpu_p50_ms']} ms |")
        views_lines.append("")
    load = results.get("api_load@sqlite")
    notes = [
        "How each figure is taken: every run in a fresh process; the list page through the "
        "Flask test client (the whole request: session, access checks, the query, the "
        "template), logged in as the busiest sponsor's compliance officer and advocate, an "
        "auditor of that sponsor granted the next one, and a partner (each scoped to their "
        "organisations); rule evaluation is facts plus every interaction rule in "
        "memory, as the re-evaluation runs them; the re-evaluation, import and report include "
        "their database writes and commit (SQLite file, WAL). The CSV import and the report run "
        "the other benchmarks' own scripts (bench/import_bench.py, bench/report_bench.py).",
    ]
    if load:
        notes.append(f"API load figures: {load['source']}.")
    lines += views_lines + notes + ["", "Raw results: `bench/results/bench.json`; data sets: "
                                    "`bench/generate.py` (kept in `instance/bench/`).",
                                    SECTION_END]
    section = "\n".join(lines)
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if SECTION_START in text:
        before, rest = text.split(SECTION_START, 1)
        after = rest.split(SECTION_END, 1)[1] if SECTION_END in rest else ""
        text = before + section + after
    else:
        head, _, tail = text.partition("\n")
        if not head.startswith("# "):
            head, tail = "# Benchmarks", text
        text = f"{head}\n\n{section}\n\n{tail.lstrip()}"
    path.write_text(text.rstrip("\n") + "\n")


# --- the whole run -----------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=PLANS, default="medium")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--load", choices=["json", "run"], default="json")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(MEASUREMENTS)}")
    parser.add_argument("--no-record", action="store_true",
                        help="print only: leave bench.json and BENCHMARKS.md as they are")
    parser.add_argument("--rewrite", action="store_true",
                        help="only write BENCHMARKS.md again from bench/results/bench.json")
    parser.add_argument("--list-page", help=argparse.SUPPRESS)
    parser.add_argument("--rules", help=argparse.SUPPRESS)
    parser.add_argument("--reevaluation", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.list_page:
        print(json.dumps(measure_list_page(Path(args.list_page))))
        return 0
    if args.rules:
        print(json.dumps(measure_rules(Path(args.rules))))
        return 0
    if args.reevaluation:
        print(json.dumps(measure_reevaluation(Path(args.reevaluation[0]),
                                              Path(args.reevaluation[1]))))
        return 0

    if args.rewrite:
        document = json.loads(RESULT_FILE.read_text())
        document["targets"] = check_targets(document["results"])
        RESULT_FILE.write_text(json.dumps(document, indent=2) + "\n")
        write_benchmarks(document)
        return 0
    only = set(args.only.split(",")) if args.only else set(MEASUREMENTS)
    unknown = only - set(MEASUREMENTS)
    if unknown:
        parser.error(f"unknown measurement(s): {', '.join(sorted(unknown))}")
    plan = PLANS[args.size]
    m = machine()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    load_start = load_average()
    print(f"make bench SIZE={args.size}, {args.runs} runs per figure, on {machine_line(m)}; "
          f"load average {load_start}", flush=True)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    document = json.loads(RESULT_FILE.read_text()) if RESULT_FILE.exists() else {}
    results = document.get("results", {})
    fresh: dict[str, dict] = {}

    def record(key: str, value: dict | None) -> None:
        if value is None:
            return
        value["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        value["machine"] = machine_line(m)
        value["load_average"] = load_average()
        fresh[key] = value

    sets = {}
    needed = set()
    if only & {"list"}:
        needed.update(plan["list"])
    if only & {"rules", "reeval", "tasks"}:
        needed.add(plan["set"])
    if "report" in only:
        needed.add(plan["report"])
    for name in ("small", "medium", "large"):
        if name not in needed:
            continue
        print(f"== data set {name}", flush=True)
        base, base_manifest, flagged, manifest = generate.build(name, DATA_DIR, args.seed)
        sets[name] = (base, flagged, manifest)
        if not manifest.get("reused") or f"data_set@{name}" not in results:
            record(f"data_set@{name}", {
                "counts": manifest["counts"], "busiest": manifest["busiest"],
                "seconds": {"base": base_manifest["seconds"]["total"],
                            "flags": manifest["seconds"]["total"], **{
                                f"base: {k}": v for k, v in base_manifest["seconds"].items()},
                            **{f"flags: {k}": v for k, v in manifest["seconds"].items()}},
                "database_mb": manifest["database_mb"],
                "peak_rss_mb": max(base_manifest["peak_rss_mb"], manifest["peak_rss_mb"])})
        else:
            fresh[f"data_set@{name}"] = results[f"data_set@{name}"]
        print(f"   {name}: {manifest['counts']['interactions']:,} interactions, "
              f"{manifest['counts']['flags']:,} flags"
              f"{' (kept from an earlier run)' if manifest.get('reused') else ''}", flush=True)

    if "list" in only:
        for name in plan["list"]:
            print(f"== interaction list page, {name} set", flush=True)
            record(f"list_page@{name}", bench_list_page(sets[name][1], sets[name][2], args.runs))
    if "rules" in only:
        print(f"== rule evaluation, {plan['set']} set", flush=True)
        record(f"rules@{plan['set']}", bench_rules(sets[plan["set"]][1], args.runs))
    if "reeval" in only:
        print(f"== full re-evaluation, {plan['set']} set", flush=True)
        record(f"reevaluation@{plan['set']}", bench_reevaluation(sets[plan["set"]][0],
                                                                 args.runs))
    if "import" in only:
        print(f"== CSV import, {plan['import_rows']:,} rows", flush=True)
        record(f"csv_import@{plan['import_rows']}", bench_import(plan["import_rows"], args.runs))
        print(f"== CSV import, {plan['import_rows']:,} support lines with agreements", flush=True)
        record(f"csv_import_supports@{plan['import_rows']}",
               bench_import(plan["import_rows"], args.runs, kind="supports"))
    if "report" in only:
        name = plan["report"]
        print(f"== annual report, busiest organisation-year of the {name} set", flush=True)
        record(f"report@{name}", bench_report(sets[name][1], sets[name][2], args.runs))
    if "tasks" in only:
        name = plan["set"]
        print(f"== task queue, the day's run over the {name} set, mail", flush=True)
        record(f"tasks@{name}", bench_tasks(sets[name][1], args.runs))
    if "startup" in only:
        print("== start-up", flush=True)
        record("startup", bench_startup(max(args.runs, 5)))
    if "load" in only:
        print("== API writes under concurrency", flush=True)
        load = bench_load(args.load, args.runs)
        if load and args.load == "json":
            saved = json.loads((RESULTS / "load-sqlite.json").read_text())
            record("api_load@sqlite", load)
            fresh["api_load@sqlite"]["measured_at"] = saved["measured_at"]
            fresh["api_load@sqlite"]["machine"] = saved["machine"]
            fresh["api_load@sqlite"]["load_average"] = saved.get(
                "machine_load_average_before_after")
        else:
            record("api_load@sqlite", load)

    results.update(fresh)
    verdicts = check_targets(results)
    document = {
        "about": "make bench (bench/suite.py); each figure: median, min, max and the runs",
        "latest_run": {"size": args.size, "runs": args.runs, "seed": args.seed,
                       "measured": sorted(fresh), "machine": m, "started_at": started_at,
                       "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
                       "load_average_start": load_start, "load_average_end": load_average(),
                       "commit": git_commit()}
                      | ({"only": ", ".join(sorted(only))} if args.only else {}),
        "targets": verdicts,
        "results": dict(sorted(results.items())),
    }
    print("\nTargets:")
    for verdict in verdicts:
        print(f"  {verdict['target']} {verdict['wanted']}: "
              f"{verdict_text(verdict).replace('**', '').replace('`', '')}")
    if not args.no_record:
        RESULTS.mkdir(parents=True, exist_ok=True)
        RESULT_FILE.write_text(json.dumps(document, indent=2) + "\n")
        write_benchmarks(document)
        print(f"\nWrote {RESULT_FILE.relative_to(ROOT)} and the summary of BENCHMARKS.md.")
    return 1 if any(v["status"] == "missed" for v in verdicts) else 0


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


if __name__ == "__main__":
    sys.exit(main())
