"""Benchmark: import a 100,000-row interaction (or support) CSV, the way the import page commits it.

The whole path runs: the file is decoded and its header checked, every row is validated by the
interactions service, saved in one transaction, evaluated against the policy rules (flags
raised) and audited (hash-chained events). Then the same file is imported again (every row
unchanged), and the same rows go into a bare sqlite3 table with executemany, for the ratio.

    .venv/bin/python bench/import_bench.py            # 100,000 rows
    .venv/bin/python bench/import_bench.py --rows 20000 --json bench/results/import.json

With --kind supports, 100,000 support lines that name their agreements (a few hundred across
the ten partnerships, --agreements) go through the same import path: each line is validated by
the partnerships service, its partnership's rules and its agreements' AGR-* rules are checked.
Some agreements are signed late (lines paid before signature), some have a low ceiling (lines
over the amount), some are uncertified, and a share of lines name no agreement.

    .venv/bin/python bench/import_bench.py --kind supports --json bench/results/supports.json

Targets (issue 6, issue 18): under 60 s and under 1 GB of memory for 100,000 rows. The CPU
seconds are printed too: on a machine shared with other work they say more than the wall clock.
"""

import argparse
import csv
import io
import json
import random
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import data as bench_data  # noqa: E402  (bench/data.py)
from memory import peak_rss_mb  # noqa: E402  (bench/memory.py)
from sqlalchemy import func, select  # noqa: E402

from governance import create_app  # noqa: E402
from governance.extensions import db  # noqa: E402


def make_world():
    """Two sponsors, five patient groups, ten partnerships, one compliance officer."""
    from governance.auth.services import create_user
    from governance.organisations.models import Organisation
    from governance.partnerships.models import Partnership

    sponsors = [Organisation(name=f"Sponsor {i}", kind="sponsor", country="GB") for i in range(2)]
    groups = [Organisation(name=f"Patient group {i}", kind="patient_group", country="GB")
              for i in range(5)]
    db.session.add_all(sponsors + groups)
    db.session.flush()
    partnerships = []
    for index in range(10):
        partnerships.append(Partnership(
            title=f"Partnership {index}", sponsor_id=sponsors[index % 2].id,
            patient_group_id=groups[index % 5].id, kind="content_engagement", status="active",
            started_on=date(2023, 1, 1), agreement_signed_on=date(2022, 12, 1)))
    db.session.add_all(partnerships)
    user = create_user("bench@example.org", "Bench Compliance", "compliance",
                       "granite-orchard-lantern-2026")
    db.session.commit()
    return user, [p.id for p in partnerships], [s.id for s in sponsors]


def write_csv(path: Path, rows: int, partnership_ids: list[int], sponsor_ids: list[int],
              columns: tuple[str, ...], poor_share: float) -> None:
    """Rows that meet every good practice, except a share with one or two defects each
    (bench/data.py, shared with the data-set generator)."""
    rng = random.Random(6)
    start = date(2024, 1, 1)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for index in range(rows):
            row = bench_data.interaction_values(
                rng, start + timedelta(days=index % 700), rng.choice(partnership_ids),
                rng.choice(sponsor_ids), poor_share)
            row["external_id"] = f"BENCH-{index:06d}"
            writer.writerow([bench_data.csv_cell(row.get(name)) for name in columns])


def make_agreements(user, partnership_ids: list[int], count: int) -> dict[int, list[int]]:
    """`count` agreements spread over the partnerships: one in eight signed late (lines paid
    before signature), one in ten with a low ceiling (lines over the amount), one in four not
    certified. Returns the agreement ids of each partnership."""
    from governance.agreements.models import Agreement

    agreements = []
    for index in range(count):
        partnership_id = partnership_ids[index % len(partnership_ids)]
        certified = index % 4 != 0
        agreements.append(Agreement(
            partnership_id=partnership_id, kind="grant",
            objective=f"Bench grant agreement {index:04d}", starts_on=date(2024, 1, 1),
            ends_on=date(2025, 12, 31),
            amount=Decimal("20000.00") if index % 10 == 0 else Decimal("2000000.00"),
            currency="GBP",
            signed_on=date(2024, 9, 1) if index % 8 == 0 else date(2023, 12, 15),
            signatories="Sponsor's CFO; the group's chair",
            certified_by_id=user.id if certified else None,
            certified_at=datetime(2023, 12, 20, tzinfo=UTC) if certified else None,
            certification_meaning="certified" if certified else None,
            external_id=f"BENCH-AGR-{index:04d}"))
    db.session.add_all(agreements)
    db.session.commit()
    by_partnership: dict[int, list[int]] = {}
    for agreement in agreements:
        by_partnership.setdefault(agreement.partnership_id, []).append(agreement.id)
    return by_partnership


def write_supports_csv(path: Path, rows: int, agreements: dict[int, list[int]],
                       recipients: dict[int, int], columns: tuple[str, ...]) -> None:
    """Support lines paid over 2024-2025 under an agreement of their partnership; one in
    twenty names none (AGR-MISSING), a few fall after the agreements' term."""
    rng = random.Random(18)
    start = date(2024, 1, 1)
    partnership_ids = sorted(agreements)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for index in range(rows):
            partnership_id = rng.choice(partnership_ids)
            paid_on = start + timedelta(days=index % 730)
            if index % 97 == 0:
                paid_on = date(2026, 1, 15)  # after the term
            row = {"partnership_id": partnership_id, "recipient_id": recipients[partnership_id],
                   "paid_on": paid_on.isoformat(), "kind": rng.choice(["grant", "sponsorship",
                                                                      "donation"]),
                   "amount": f"{rng.randint(100, 5000)}.00", "currency": "GBP",
                   "description": f"Bench support line {index:06d}",
                   "external_id": f"BENCH-SUP-{index:06d}",
                   "agreement_id": None if index % 20 == 0 else
                   rng.choice(agreements[partnership_id])}
            writer.writerow([bench_data.csv_cell(row.get(name)) for name in columns])


def bare_sqlite(path: Path, data: bytes) -> float:
    """Parse the same CSV and executemany its rows into a plain table: the floor."""
    started = time.perf_counter()
    reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
    header = next(reader)
    connection = sqlite3.connect(path)
    connection.execute(f"CREATE TABLE interactions (id INTEGER PRIMARY KEY, "
                       f"{', '.join(f'{name} TEXT' for name in header)})")
    placeholders = ", ".join("?" for _ in header)
    connection.executemany(f"INSERT INTO interactions ({', '.join(header)}) VALUES "
                           f"({placeholders})", reader)
    connection.commit()
    connection.close()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--kind", choices=("interactions", "supports"), default="interactions",
                        help="what the CSV holds (default interactions)")
    parser.add_argument("--agreements", type=int, default=300,
                        help="with --kind supports: agreements across the partnerships (300)")
    parser.add_argument("--profile", help="write a cProfile of the first import to this file")
    parser.add_argument("--poor-share", type=float, default=0.4,
                        help="share of rows with one or two poor practices (default 0.4)")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--skip-reimport", action="store_true",
                        help="do not import the same file a second time")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="import-bench-") as tmp:
        folder = Path(tmp)
        app = create_app({
            "TESTING": True, "SECRET_KEY": "bench",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'bench.sqlite'}",
            "DATA_DIR": str(folder / "data"),
        })
        with app.app_context():
            from governance.audit import AuditEvent
            from governance.interactions.models import Interaction
            from governance.partnerships.models import Partnership, Support
            from governance.rules.models import Flag
            from governance.transfer.imports import IMPORTERS, import_file

            db.create_all()
            user, partnership_ids, sponsor_ids = make_world()
            kind = args.kind
            model = Interaction if kind == "interactions" else Support
            csv_path = folder / f"{kind}.csv"
            if kind == "interactions":
                write_csv(csv_path, args.rows, partnership_ids, sponsor_ids,
                          IMPORTERS["interactions"].columns(), args.poor_share)
            else:
                agreements = make_agreements(user, partnership_ids, args.agreements)
                recipients = dict(db.session.execute(
                    select(Partnership.id, Partnership.patient_group_id)).all())
                write_supports_csv(csv_path, args.rows, agreements, recipients,
                                   IMPORTERS["supports"].columns())
            data = csv_path.read_bytes()
            rss_before = peak_rss_mb()

            profiler = None
            if args.profile:
                import cProfile

                profiler = cProfile.Profile()
                profiler.enable()
            started, cpu_started = time.perf_counter(), time.process_time()
            report = import_file(kind, data, user, filename=csv_path.name,
                                 digest="0" * 64, commit=True)
            first = time.perf_counter() - started
            first_cpu = time.process_time() - cpu_started
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(args.profile)
            if not report.committed:
                print("import refused:", report.problems[:5], file=sys.stderr)
                return 1
            counts = {
                kind: db.session.scalar(select(func.count(model.id))),
                "flags": db.session.scalar(select(func.count(Flag.id))),
                "audit_events": db.session.scalar(select(func.count(AuditEvent.id))),
            }
            peak_first = peak_rss_mb()

            again, second, unchanged_counts = None, None, None
            if not args.skip_reimport:
                started = time.perf_counter()
                again = import_file(kind, data, user, filename=csv_path.name,
                                    digest="0" * 64, commit=True)
                second = time.perf_counter() - started
                unchanged_counts = db.session.scalar(select(func.count(model.id)))

        bare = bare_sqlite(folder / "bare.sqlite", data)

    results = {
        "kind": args.kind,
        "rows": args.rows,
        "poor_share": args.poor_share,
        "file_mb": round(len(data) / 1024 / 1024, 1),
        "import_seconds": round(first, 1),
        "import_cpu_seconds": round(first_cpu, 1),
        "rows_per_second": round(args.rows / first),
        "created": report.created,
        **counts,
        "flags_per_row": round(counts["flags"] / args.rows, 2),
        "reimport_seconds": round(second, 1) if again else None,
        "reimport_unchanged": again.unchanged if again else None,
        f"{args.kind}_after_reimport": unchanged_counts,
        "bare_sqlite_executemany_seconds": round(bare, 2),
        "ratio_to_bare_sqlite": round(first / bare, 1),
        "peak_rss_mb_before_import": round(rss_before),
        "peak_rss_mb": round(max(peak_first, peak_rss_mb())),
    }
    if args.kind == "supports":
        results["agreements"] = args.agreements
    for key, value in results.items():
        print(f"{key:34} {value}")
    ok = first < 60 and results["peak_rss_mb"] < 1024
    print("target (< 60 s, < 1 GB):", "met" if ok else "NOT met")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
