"""Benchmark of the transparency report (not a timed test).

Builds one sponsor's year — 500 partnerships, 5,000 interactions, 3,000 support lines, the flags
the rules raise on them (some resolved), and prioritisation exercises — in a temporary SQLite
database, then measures, each in a fresh process so that peak memory is the job's own:

1. the report job as the application runs it (gather the snapshot, render the HTML, lay out and
   write the PDF with WeasyPrint, write the CSV and JSON, store the files, record the result);
2. WeasyPrint alone, rendering the same final HTML to a PDF with the same URL fetcher.

It prints the time, peak memory (RSS), pages and pages per second of each, and the application's
own overhead over WeasyPrint alone. Targets: the job under 20 s and 1 GB; overhead under 25 %.

Run:  .venv/bin/python bench/report_bench.py [--partnerships 500] [--interactions 5000]
                                            [--supports 3000] [--repeat 2] [--keep]
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from memory import peak_rss_mb  # noqa: E402  (bench/memory.py)

YEAR = 2025
TODAY = date(2026, 2, 1)  # the report of 2025 is prepared early in 2026
SUPPORT_KINDS = ["grant", "grant", "donation", "sponsorship", "in_kind", "contracted_service",
                 "expenses"]
FORMATS = ["advisory_board", "focus_group", "listening_session", "interview", "survey",
           "workshop", "conference", "pfdd_meeting"]
TOPICS = ["the visit schedule and travel burden of the phase 2 protocol",
          "outcome measures that matter to people living with the condition",
          "eligibility criteria that exclude older patients",
          "the informed-consent form in plain language",
          "recruitment materials for under-represented communities",
          "the lay summary of the phase 1 results",
          "priorities for the natural-history registry",
          "retention support for participants in a long trial"]
DESCRIPTIONS = ["Grant towards the annual members' conference and travel bursaries",
                "Unrestricted donation to the helpline", "Sponsorship of the awareness week",
                "Meeting rooms, catering and printing for two workshops",
                "Patient advisers reviewing the consent form and visit schedule",
                "Reimbursed travel of patient representatives to the advisory board"]


def make_app(workdir: Path):
    from governance import create_app

    return create_app({
        "TESTING": False,
        "SECRET_KEY": "bench",
        "AUDIT_KEY": "bench-audit-key-0123456789abcdef",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{workdir / 'bench.sqlite'}",
        "DATA_DIR": str(workdir / "data"),
        "JOBS_INLINE": True,
    })


def seed(workdir: Path, partnerships: int, interactions: int, supports: int, seed_value=11):
    """Write the year with Core inserts (fast), then let the rules engine raise its flags."""
    from sqlalchemy import func, insert, select, update

    from governance.activities.services import seed_demo_exercises
    from governance.auth.services import create_user
    from governance.extensions import db
    from governance.interactions.models import Interaction
    from governance.organisations.models import Organisation
    from governance.partnerships.models import Partnership, Support
    from governance.reports.services import DEFAULT_METHODOLOGY
    from governance.rules.bulk import reevaluate_all
    from governance.rules.models import Flag

    rng = random.Random(seed_value)
    app = make_app(workdir)
    started = time.perf_counter()
    with app.app_context():
        db.create_all()
        sponsor = Organisation(name="Helix Pharma", kind="sponsor", country="GB",
                               methodology_note=DEFAULT_METHODOLOGY)
        other = Organisation(name="Northwind Therapeutics", kind="sponsor", country="US")
        db.session.add_all([sponsor, other])
        db.session.flush()
        groups = [{"name": f"Patient Group {n:03d}", "kind": "patient_group",
                   "country": rng.choice(["GB", "IE", "DE", "FR", "US"]),
                   "annual_income": Decimal(rng.randint(50, 5000) * 1000)
                   if rng.random() < 0.6 else None, "income_currency": "GBP",
                   "disease_areas": []} for n in range(partnerships)]
        db.session.execute(insert(Organisation), groups)
        group_ids = list(db.session.scalars(select(Organisation.id).where(
            Organisation.kind == "patient_group").order_by(Organisation.id)))
        kinds = ["experiential", "content_engagement", "research_investment", "advocacy"]
        db.session.execute(insert(Partnership), [
            {"title": f"Partnership {n:03d} on {TOPICS[n % len(TOPICS)].split(' of ')[0]}",
             "sponsor_id": sponsor.id, "patient_group_id": group_ids[n],
             "kind": kinds[n % len(kinds)], "status": "active",
             "started_on": date(2023, 1, 1) + timedelta(days=rng.randint(0, 700)),
             "agreement_signed_on": date(2023, 1, 1) if rng.random() < 0.9 else None,
             "ip_terms_agreed": rng.random() < 0.7}
            for n in range(partnerships)])
        db.session.execute(insert(Partnership), [{
            "title": "Northwind programme", "sponsor_id": other.id,
            "patient_group_id": group_ids[0], "kind": "advocacy", "status": "active"}])
        partnership_rows = db.session.execute(
            select(Partnership.id, Partnership.patient_group_id)
            .where(Partnership.sponsor_id == sponsor.id).order_by(Partnership.id)).all()

        def day_in(year: int) -> date:
            return date(year, 1, 1) + timedelta(days=rng.randint(0, 364))

        support_rows = []
        for n in range(supports + supports // 10):  # a tenth fall in the year before
            pid, gid = rng.choice(partnership_rows)
            kind = rng.choice(SUPPORT_KINDS)
            unvalued = kind == "in_kind" and rng.random() < 0.5
            support_rows.append({
                "partnership_id": pid, "recipient_id": gid,
                "paid_on": day_in(YEAR if n < supports else YEAR - 1), "kind": kind,
                "amount": None if unvalued else Decimal(rng.randint(200, 250_000)) / 10,
                "currency": "GBP" if rng.random() < 0.85 else "EUR",
                "description": rng.choice(DESCRIPTIONS),
                "confirmed_by_partner": rng.choice(["confirmed", "confirmed", "pending",
                                                    "disputed"]),
            })
        for row in support_rows:
            if row["confirmed_by_partner"] == "disputed":
                row["confirmation_note"] = "The amount we received differs from this line."
        db.session.execute(insert(Support), support_rows)

        interaction_rows = []
        for n in range(interactions + interactions // 10):
            pid, _gid = rng.choice(partnership_rows)
            occurred = day_in(YEAR if n < interactions else YEAR - 1)
            poor = rng.random() < 0.35
            topic = rng.choice(TOPICS)
            state = rng.choice(["confirmed", "confirmed", "pending", "disputed"])
            interaction_rows.append({
                "title": f"{rng.choice(['Advisory board', 'Focus group', 'Workshop'])} on "
                         f"{topic.split(' of ')[0]}",
                "occurred_on": occurred, "format": rng.choice(FORMATS),
                "organisation_id": sponsor.id,
                "partnership_id": None if rng.random() < 0.03 else pid,
                "activity_codes": [], "patient_needs": [],
                "purpose": f"Hear patients' views on {topic} before the protocol is final",
                "purpose_shared_on": None if poor and rng.random() < 0.5
                else occurred - timedelta(days=14),
                "product_specific": False, "lifecycle_stage": "phase_2",
                "patient_participants": rng.randint(1, 12),
                "caregiver_participants": rng.randint(0, 3), "sponsor_staff": rng.randint(1, 6),
                "selection_method": "ad_hoc" if poor and rng.random() < 0.4
                else "co_created_procedure",
                "stages_represented": ["early", "intermediate", "late"],
                "stages_in_scope": ["all"],
                "protocol_followed": not (poor and rng.random() < 0.3),
                "materials_co_created": not (poor and rng.random() < 0.4),
                "facilitator": "third_party", "modality": "in_person",
                "venue_type": "neutral_venue", "venue_agreed_by_patients": True,
                "accessibility_reviewed": not (poor and rng.random() < 0.3),
                "accommodations": ["step_free_access"],
                "summary": "Participants asked for fewer site visits.",
                "summary_recorded_on": occurred + timedelta(days=5),
                "outcomes_shared_on": occurred + timedelta(days=40),
                "confirmed_by_partner": state,
                "confirmation_note": "Fewer patients attended than recorded."
                if state == "disputed" else None,
            })
        db.session.execute(insert(Interaction), interaction_rows)
        db.session.commit()

        evaluation = reevaluate_all(today=TODAY)
        db.session.commit()
        resolver = create_user("compliance@bench.example", "Casey Compliance", "compliance",
                               "granite-orchard-lantern-2026")
        flag_ids = list(db.session.scalars(select(Flag.id).where(Flag.state == "open")))
        rng.shuffle(flag_ids)
        for state, share, note in (("acknowledged", 0.25, "Kept: the group chose this format."),
                                   ("dismissed", 0.1, "Not applicable to a survey.")):
            chosen = flag_ids[:int(len(flag_ids) * share)]
            flag_ids = flag_ids[len(chosen):]
            for start in range(0, len(chosen), 500):
                db.session.execute(
                    update(Flag).where(Flag.id.in_(chosen[start:start + 500]))
                    .values(state=state, note=note, resolved_by_id=resolver.id,
                            resolved_at=datetime(YEAR, 12, 15, 10, 0)))
        db.session.commit()

        for pid, _gid in partnership_rows[:100]:  # compliance may fill in either side
            seed_demo_exercises(db.session.get(Partnership, pid), resolver, resolver)
        db.session.commit()
        flags = db.session.scalar(select(func.count()).select_from(Flag))
    print(f"Seeded {partnerships} partnerships, {interactions} interactions and {supports} "
          f"support lines of {YEAR} (and a tenth more in {YEAR - 1}), {flags} flags "
          f"({evaluation.opened} raised), 100 prioritisation pairs in "
          f"{time.perf_counter() - started:.1f} s.", flush=True)


class Phases:
    """Wall and CPU seconds spent in the job's phases (wrapping the functions the job calls)."""

    def __init__(self):
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def wrap(self, module, name: str, label: str) -> None:
        original = getattr(module, name)

        def timed(*args, **kwargs):
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.wall[label] = self.wall.get(label, 0) + time.perf_counter() - wall
                self.cpu[label] = self.cpu.get(label, 0) + time.process_time() - cpu

        setattr(module, name, timed)


def measure_job(workdir: Path, organisation: str = "Helix Pharma", year: int = YEAR) -> dict:
    """Run the report job exactly as a worker does, inline; report time and peak memory."""
    from sqlalchemy import select

    from governance.auth.models import User
    from governance.extensions import db
    from governance.organisations.models import Organisation
    from governance.reports import artefacts, jobs, services
    from governance.reports.models import Report
    from governance.storage import FileStore

    phases = Phases()
    phases.wrap(jobs, "gather_snapshot", "gather the snapshot (SQL)")
    phases.wrap(artefacts, "public_html", "render the public HTML (Jinja)")
    phases.wrap(artefacts, "report_html", "render the internal HTML (Jinja)")
    pdf_seconds = wrap_pdf_calls(artefacts)
    phases.wrap(artefacts, "snapshot_csv", "write the CSV")
    phases.wrap(artefacts, "snapshot_json", "write the JSON")
    phases.wrap(FileStore, "store", "store the files")
    app = make_app(workdir)
    with app.app_context():
        actor = db.session.scalar(select(User).where(User.role == "compliance"))
        sponsor = db.session.scalar(select(Organisation).where(Organisation.name ==
                                                               organisation))
        started, cpu = time.perf_counter(), time.process_time()
        report = services.request_report({"organisation_id": sponsor.id, "year": year}, actor)
        db.session.commit()
        report_id = report.id
        jobs.run_job(report_id)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        db.session.expire_all()
        report = db.session.get(Report, report_id)
        if report.status != "done":
            raise SystemExit(f"the job failed: {report.error}")
        public_html = phases.wall["render the public HTML (Jinja)"]
        return {"seconds": seconds, "cpu": cpu,
                "pages": report.page_count + report.internal_page_count,
                "public_pages": report.page_count, "internal_pages": report.internal_page_count,
                # The public PDF as the job makes it: its HTML, then WeasyPrint (first call).
                "public_pdf_seconds": public_html + pdf_seconds[0],
                "internal_pdf_seconds": pdf_seconds[1],
                "pdf_bytes": report.pdf_size + report.internal_pdf_size,
                "csv_bytes": report.csv_size + report.internal_csv_size,
                "json_bytes": report.json_size + report.internal_json_size,
                "report_id": report_id,
                "phases": {label: [phases.wall[label], phases.cpu[label]]
                           for label in phases.wall},
                "peak_mb": peak_rss_mb()}


def wrap_pdf_calls(module) -> list[float]:
    """Time each call of the module's html_to_pdf: the job makes the public PDF, then the
    internal one."""
    original, seconds = module.html_to_pdf, []

    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            seconds.append(time.perf_counter() - started)

    module.html_to_pdf = timed
    return seconds


def measure_weasyprint(workdir: Path, report_id: int) -> dict:
    """WeasyPrint alone on the same final HTML of both documents, with the same fetcher and
    options."""
    from weasyprint import HTML

    from governance.extensions import db
    from governance.pdf import DEFAULT_OPTIONS, data_only_fetcher
    from governance.reports.artefacts import public_html, report_html, snapshot_from_json
    from governance.reports.models import Report
    from governance.reports.public import public_document
    from governance.storage import REPORTS

    app = make_app(workdir)
    with app.app_context():
        report = db.session.get(Report, report_id)
        snapshot = snapshot_from_json(REPORTS.read(report.internal_json_sha256))
        htmls = {"public": public_html(public_document(snapshot)),
                 "internal": report_html(snapshot)}
        db.session.remove()
        options = DEFAULT_OPTIONS.as_weasyprint()
        baseline = peak_rss_mb()
        result = {"seconds": 0.0, "cpu": 0.0, "pages": 0, "pdf_bytes": 0, "html_bytes": 0}
        for name, html in htmls.items():
            started, cpu = time.perf_counter(), time.process_time()
            document = HTML(string=html, url_fetcher=data_only_fetcher()).render(**options)
            content = document.write_pdf(**options)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            result[f"{name}_seconds"] = seconds
            result["seconds"] += seconds
            result["cpu"] += cpu
            result["pages"] += len(document.pages)
            result["pdf_bytes"] += len(content)
            result["html_bytes"] += len(html.encode())
        return result | {"baseline_mb": baseline, "peak_mb": peak_rss_mb()}


def in_subprocess(*args: str) -> dict:
    output = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True,
                           text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--partnerships", type=int, default=500)
    parser.add_argument("--interactions", type=int, default=5000)
    parser.add_argument("--supports", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--measure-job", metavar="DIR", help=argparse.SUPPRESS)
    parser.add_argument("--organisation", default="Helix Pharma", help=argparse.SUPPRESS)
    parser.add_argument("--year", type=int, default=YEAR, help=argparse.SUPPRESS)
    parser.add_argument("--measure-weasyprint", nargs=2, metavar=("DIR", "ID"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_job:
        print(json.dumps(measure_job(Path(args.measure_job), args.organisation, args.year)))
        return
    if args.measure_weasyprint:
        directory, report_id = args.measure_weasyprint
        print(json.dumps(measure_weasyprint(Path(directory), int(report_id))))
        return

    workdir = Path(tempfile.mkdtemp(prefix="report-bench-"))
    try:
        seed(workdir, args.partnerships, args.interactions, args.supports)
        job_runs, alone_runs = [], []
        for run in range(1, args.repeat + 1):
            job = in_subprocess("--measure-job", str(workdir))
            alone = in_subprocess("--measure-weasyprint", str(workdir), str(job["report_id"]))
            job_runs.append(job)
            alone_runs.append(alone)
            print(f"run {run}: job {job['seconds']:.2f} s ({job['cpu']:.2f} s CPU), peak "
                  f"{job['peak_mb']:.0f} MB; WeasyPrint alone {alone['seconds']:.2f} s "
                  f"({alone['cpu']:.2f} s CPU), peak {alone['peak_mb']:.0f} MB", flush=True)
            for label, (wall, cpu) in job["phases"].items():
                print(f"    {label:<30} {wall:6.2f} s  ({cpu:.2f} s CPU)")
        job = min(job_runs, key=lambda r: r["seconds"])
        alone = min(alone_runs, key=lambda r: r["seconds"])
        overhead = (job["seconds"] - alone["seconds"]) / alone["seconds"]
        cpu_overhead = (job["cpu"] - alone["cpu"]) / alone["cpu"]
        own_phases = {label: cpu for label, (_wall, cpu) in job["phases"].items()
                      if not label.startswith("WeasyPrint")}
        own = sum(own_phases.values()) + (job["cpu"] - sum(c for _w, c in job["phases"].values()))
        peak = max(r["peak_mb"] for r in job_runs)
        met = job["seconds"] < 20 and peak < 1024
        print()
        print(f"Report: {job['pages']} pages; PDF {job['pdf_bytes'] / 1e6:.2f} MB, CSV "
              f"{job['csv_bytes'] / 1e6:.2f} MB, JSON {job['json_bytes'] / 1e6:.2f} MB; "
              f"final HTML {alone['html_bytes'] / 1e6:.2f} MB.")
        print(f"Report job (best of {args.repeat}): {job['seconds']:.2f} s ({job['cpu']:.2f} s "
              f"CPU), {job['pages'] / job['seconds']:.1f} pages/s, peak memory {peak:.0f} MB "
              f"[target < 20 s, < 1024 MB: {'met' if met else 'MISSED'}]")
        print(f"WeasyPrint alone on the same HTML (best of {args.repeat}): "
              f"{alone['seconds']:.2f} s ({alone['cpu']:.2f} s CPU), "
              f"{alone['pages'] / alone['seconds']:.1f} pages/s, peak memory "
              f"{alone['peak_mb']:.0f} MB")
        print(f"Ratio job / WeasyPrint alone: {job['seconds'] / alone['seconds']:.2f} wall "
              f"(overhead {overhead * 100:.1f} %), {job['cpu'] / alone['cpu']:.2f} CPU "
              f"(overhead {cpu_overhead * 100:.1f} %) [target < 25 %: "
              f"{'met' if overhead < 0.25 else 'MISSED'}]")
        print(f"The application's own work outside WeasyPrint (SQL, Jinja, CSV, JSON, storing, "
              f"the job's bookkeeping): {own:.2f} s CPU = {own / alone['cpu'] * 100:.1f} % of "
              f"WeasyPrint alone.")
        load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() \
            else []
        if load:
            print(f"Machine load average while measuring: {' '.join(load)} on "
                  f"{os.cpu_count()} CPUs (on a shared machine CPU times are steadier than wall "
                  f"times).")
    finally:
        if args.keep:
            print(f"Kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
