"""Benchmark of the good-practice rules (not a timed test).

1. Rule evaluation: facts + every interaction rule over 100,000 generated interactions, in memory.
   Reported three ways: as the application runs it (results remembered per combination of a
   rule's input facts), with rule-engine evaluating every rule every time, and facts alone.
2. Re-evaluation of 100,000 stored interactions in a temporary SQLite database, including the
   database writes (flags and their audit events), committed: the first run (every flag new),
   an unchanged re-run, and a re-run after a policy change.

Run:  .venv/bin/python bench/rules_bench.py [--count 100000] [--skip-db]
"""

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TODAY = date(2026, 6, 30)
FORMATS = ["advisory_board", "focus_group", "listening_session", "interview", "survey",
           "workshop", "conference", "pfdd_meeting", "other"]
STAGES = ["pre_discovery", "discovery", "preclinical", "phase_1", "phase_2", "phase_3",
          "regulatory_review", "post_approval"]
WORDS = ("hear patients views on the visit schedule travel burden outcome measures consent "
         "form recruitment materials retention support lay summary results").split()


def generate(count: int, partnership_ids: list[int], seed: int = 7) -> list[dict]:
    """Interactions mixing good and poor practice, about a third with one or more defects."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        occurred = TODAY - timedelta(days=rng.randint(0, 3 * 365))
        product = rng.random() < 0.2
        poor = rng.random() < 0.35
        summary_days = rng.randint(1, 45) if rng.random() < 0.9 else None
        outcomes_days = rng.randint(10, 150) if rng.random() < 0.8 else None
        in_scope = rng.choice([["all"], ["early"], ["late", "intermediate"], []])
        represented = rng.choice([["early", "intermediate", "late"], ["early"], ["all"], []])
        rows.append({
            "title": "Generated interaction",
            "occurred_on": occurred,
            "format": rng.choice(FORMATS),
            "organisation_id": 1,
            "partnership_id": None if rng.random() < 0.05 else rng.choice(partnership_ids),
            "activity_codes": [],
            "patient_needs": [],
            "purpose": " ".join(rng.choice(WORDS) for _ in range(rng.choice(
                [0, 3, 6, 9, 12, 15] if poor else [9, 12, 15, 20]))) or None,
            "purpose_shared_on": (occurred - timedelta(days=rng.randint(-3, 21))
                                  if not poor or rng.random() < 0.5 else None),
            "product_specific": product,
            "product": "HLX-101" if product else None,
            "lifecycle_stage": rng.choice(STAGES),
            "expected_approval_on": (occurred + timedelta(days=rng.randint(-400, 900))
                                     if rng.random() < 0.4 else None),
            "approved_on": None,
            "patient_participants": rng.randint(0, 12),
            "caregiver_participants": rng.randint(0, 4),
            "sponsor_staff": rng.randint(0, 6),
            "selection_method": rng.choice(["co_created_procedure", "standard_procedure",
                                            "ad_hoc" if poor else "standard_procedure", None]),
            "stages_represented": represented,
            "stages_in_scope": in_scope,
            "protocol_followed": not poor or rng.random() < 0.6,
            "materials_co_created": not poor or rng.random() < 0.6,
            "facilitator": rng.choice(["sponsor_staff", "patient_group", "third_party", None]),
            "modality": rng.choice(["in_person", "phone", "video", "hybrid", None]),
            "venue_type": rng.choice(["sponsor_site", "patient_group_site", "neutral_venue",
                                      "virtual", "other", None]),
            "venue_agreed_by_patients": not poor or rng.random() < 0.5,
            "accessibility_reviewed": not poor or rng.random() < 0.5,
            "accommodations": rng.choice([[], ["step_free_access"],
                                          ["step_free_access", "remote_option"]]),
            "summary": "Summary of the discussion." if summary_days else None,
            "summary_recorded_on": occurred + timedelta(days=summary_days) if summary_days
            else None,
            "outcomes_shared_on": occurred + timedelta(days=outcomes_days) if outcomes_days
            else None,
        })
    return rows


def bench_evaluation(count: int) -> None:
    from governance.rules.engine import load_policy
    from governance.rules.facts import interaction_facts

    policy = load_policy(ROOT / "policies")
    records = [SimpleNamespace(**row) for row in generate(count, list(range(1, 41)))]
    rules = policy.by_subject["interaction"]

    started = time.perf_counter()
    all_facts = [interaction_facts(record, TODAY) for record in records]
    facts_seconds = time.perf_counter() - started

    started, cpu = time.perf_counter(), time.process_time()
    flags = 0
    for record in records:
        flags += len(policy.applying("interaction", interaction_facts(record, TODAY)))
    app_seconds, app_cpu = time.perf_counter() - started, time.process_time() - cpu

    raw_count = min(count, 20_000)
    started = time.perf_counter()
    for facts in all_facts[:raw_count]:
        for rule in rules:
            rule.applies_uncached(facts)  # rule-engine every time, nothing remembered
    raw_seconds = (time.perf_counter() - started) * count / raw_count

    print(f"Rule evaluation, {count:,} generated interactions × {len(rules)} interaction rules "
          f"(policy v{policy.version}):")
    print(f"  as the application runs it: {app_seconds:6.2f} s  = "
          f"{count / app_seconds:>9,.0f} interactions/s  ({flags:,} flags; "
          f"{app_cpu:.2f} s CPU = {count / app_cpu:,.0f}/s)")
    print(f"  rule-engine on every rule:  {raw_seconds:6.2f} s  = "
          f"{count / raw_seconds:>9,.0f} interactions/s  (measured on {raw_count:,})")
    print(f"  facts alone:                {facts_seconds:6.2f} s  = "
          f"{count / facts_seconds:>9,.0f} interactions/s")


def bench_database(count: int) -> None:
    from sqlalchemy import func, insert, select

    from governance import create_app
    from governance.audit import AuditEvent, verify_chain
    from governance.extensions import db
    from governance.interactions.models import Interaction
    from governance.organisations.models import Organisation
    from governance.partnerships.models import Partnership, Support
    from governance.rules.bulk import gc_paused, reevaluate_all
    from governance.rules.models import Flag

    workdir = Path(tempfile.mkdtemp(prefix="rules-bench-"))
    policies = workdir / "policies"
    shutil.copytree(ROOT / "policies", policies)
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{workdir / 'bench.sqlite'}",
                      "SECRET_KEY": "bench", "AUDIT_KEY": "bench-audit-key-0123456789abcdef",
                      "POLICIES_DIR": str(policies)})
    try:
        with app.app_context():
            db.create_all()
            sponsors = [Organisation(name=f"Sponsor {n}", kind="sponsor") for n in range(5)]
            groups = [Organisation(name=f"Group {n}", kind="patient_group",
                                   annual_income=Decimal(200_000), income_currency="GBP")
                      for n in range(20)]
            db.session.add_all(sponsors + groups)
            db.session.flush()
            rng = random.Random(3)
            partnerships = []
            for n in range(40):
                partnerships.append(Partnership(
                    title=f"Partnership {n}", sponsor_id=sponsors[n % 5].id,
                    patient_group_id=groups[n % 20].id,
                    kind=rng.choice(["experiential", "research_investment", "advocacy"]),
                    status=rng.choice(["active", "active", "closed", "proposed"]),
                    started_on=TODAY - timedelta(days=rng.randint(30, 1500)),
                    agreement_signed_on=TODAY if rng.random() < 0.7 else None,
                    ip_terms_agreed=rng.random() < 0.5))
            db.session.add_all(partnerships)
            db.session.flush()
            for partnership in partnerships:
                for _ in range(5):
                    db.session.add(Support(
                        partnership_id=partnership.id, recipient_id=partnership.patient_group_id,
                        paid_on=TODAY - timedelta(days=rng.randint(1, 900)), kind="grant",
                        amount=Decimal(rng.randrange(1000, 40000, 500)), currency="GBP",
                        description="Grant"))
            db.session.commit()
            rows = generate(count, [p.id for p in partnerships])
            for start in range(0, count, 10_000):
                db.session.execute(insert(Interaction), rows[start:start + 10_000])
            db.session.commit()
            print(f"\nRe-evaluation of {count:,} stored interactions and {len(partnerships)} "
                  "partnerships (SQLite file, WAL), including writes and commit:")

            def run(label: str) -> None:
                started, cpu = time.perf_counter(), time.process_time()
                with gc_paused():  # as the job and the command run it
                    result = reevaluate_all(today=TODAY)
                db.session.commit()
                seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
                print(f"  {label:30} {seconds:6.2f} s wall ({cpu:6.2f} s CPU) = "
                      f"{count / seconds:>7,.0f} interactions/s  ({result.opened:,} opened, "
                      f"{result.closed:,} closed, {result.restated:,} reworded)")

            run("first run (every flag new):")
            run("again, nothing changed:")
            rules = policies / "rules.toml"
            text = rules.read_text(encoding="utf-8")
            rules.write_text(text.replace('version = "2025.1"', 'version = "bench.2"')
                             .replace("min_words = { value = 8,", "min_words = { value = 10,")
                             .replace("max_days = { value = 30,", "max_days = { value = 20,"),
                             encoding="utf-8")
            run("after a policy change:")
            flags = db.session.scalar(select(func.count()).select_from(Flag))
            events = db.session.scalar(select(func.count()).select_from(AuditEvent))
            started = time.perf_counter()
            intact = verify_chain().intact
            print(f"  {flags:,} flags, {events:,} audit events; chain intact: {intact} "
                  f"(verified in {time.perf_counter() - started:.1f} s)")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    print(f"Load average before the run: {', '.join(f'{v:.1f}' for v in os.getloadavg())} "
          f"on {os.cpu_count()} cores (wall times stretch when other processes share them).")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--skip-db", action="store_true", help="only the in-memory benchmark")
    args = parser.parse_args()
    bench_evaluation(args.count)
    if not args.skip_db:
        bench_database(args.count)


if __name__ == "__main__":
    main()
