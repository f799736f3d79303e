"""Generate a benchmark data set: organisations, partnerships, support and interactions.

Deterministic for a given size and seed. Sizes: small (1,000 interactions), medium (100,000),
large (1,000,000); organisations, partnerships and support lines grow with them. A few sponsors
hold most partnerships (sizes fall off as 1/rank), partnerships differ a lot in how busy they
are (some are merely transactional), and about a third of the interactions break one or two
good practices (bench/data.py). Five years of records, 2021 to 2025, as seen on 1 February 2026.

Written fast: organisations and partnerships through the session (a few thousand rows),
support lines and interactions with Core executemany inserts in batches, each batch audited as
the import audits its rows (audit.append_created: the same change sets, in the hash chain).
Then, on a copy, the policy rules raise their flags with the rules' bulk re-evaluation
(reevaluate_all) and compliance resolves part of the older ones (acknowledged or dismissed).

Two files per size, each with a manifest beside it (<file>.json: the counts, the time of each
step, the busiest organisation-year, the accounts, all with the password
granite-orchard-lantern-2026):
<size>-base.sqlite without flags, and <size>.sqlite with them.

    .venv/bin/python bench/generate.py --size medium [--seed 2026] [--dir instance/bench]
                                       [--no-flags] [--reuse]
"""

import argparse
import hashlib
import json
import random
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from datetime import time as clock
from decimal import Decimal
from itertools import accumulate
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import data  # noqa: E402  (bench/data.py)
from memory import peak_rss_mb  # noqa: E402  (bench/memory.py)

FIRST_DAY, LAST_DAY = date(2021, 1, 1), date(2025, 12, 31)
TODAY = date(2026, 2, 1)  # the data set is seen early in 2026, when the 2025 reports are due
PASSWORD = "granite-orchard-lantern-2026"
BATCH = 20_000
GENERATOR_VERSION = "1"  # change it whenever the generated data change


class Part(NamedTuple):
    """What the generator needs of a partnership."""

    id: int
    sponsor_id: int
    patient_group_id: int
    first: date  # the days its interactions and support fall in
    last: date
    others: tuple[int, ...]


@dataclass(frozen=True)
class Size:
    interactions: int
    sponsors: int
    patient_groups: int
    others: int
    partnerships: int
    supports: int


SIZES = {
    "small": Size(1_000, sponsors=4, patient_groups=30, others=3, partnerships=40, supports=300),
    "medium": Size(100_000, sponsors=25, patient_groups=400, others=20, partnerships=1_200,
                   supports=30_000),
    "large": Size(1_000_000, sponsors=120, patient_groups=2_500, others=100, partnerships=8_000,
                  supports=250_000),
}

SPONSOR_STEMS = ["Helix", "Northwind", "Aster", "Corvid", "Lumen", "Meridian", "Solace", "Veritas",
                 "Halcyon", "Orion", "Pellucid", "Quanta", "Sable", "Tamarind", "Umbra", "Zephyr"]
SPONSOR_SUFFIXES = ["Pharma", "Therapeutics", "Biosciences", "Medicines", "Bio"]
CONDITIONS = ["Rare Lung", "Cystic Fibrosis", "Sickle Cell", "Huntington's", "Myeloma",
              "Lupus", "Duchenne", "Narcolepsy", "Psoriasis", "Parkinson's", "ALS", "Crohn's",
              "Migraine", "Epilepsy", "Scleroderma", "Sarcoma", "Haemophilia", "Retinitis"]
GROUP_SUFFIXES = ["Alliance", "Foundation", "Society", "Network", "Trust", "Association"]
OTHER_NAMES = ["University", "Research Institute", "Clinical Research", "Facilitation"]
PARTNERSHIP_KINDS = ["experiential", "content_engagement", "research_investment", "advocacy",
                     "other"]
SUPPORT_KINDS = ["grant", "donation", "sponsorship", "in_kind", "contracted_service", "expenses"]
SUPPORT_DESCRIPTIONS = {
    "grant": "Grant towards the annual members' conference and travel bursaries",
    "donation": "Unrestricted donation to the helpline",
    "sponsorship": "Sponsorship of the awareness week",
    "in_kind": "Meeting rooms, catering and printing for two workshops",
    "contracted_service": "Patient advisers reviewing the consent form and visit schedule",
    "expenses": "Reimbursed travel of patient representatives to the advisory board",
}


def make_app(path: Path):
    from governance import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}", "SECRET_KEY": "bench",
                       "AUDIT_KEY": "bench-audit-key-0123456789abcdef",
                       "DATA_DIR": str(path.parent / f"{path.stem}-data"),
                       "SIGN_IN_THROTTLE": False})


def fingerprint(flags: bool) -> str:
    """What a data set depends on: the generator's version, the tables' columns and constraints,
    and (with flags) the policy files. Indexes are left out: ensure_indexes brings an existing
    data set's indexes in line with the models."""
    from sqlalchemy.dialects import sqlite
    from sqlalchemy.schema import CreateTable

    from governance.extensions import db

    digest = hashlib.sha256(GENERATOR_VERSION.encode())
    dialect = sqlite.dialect()
    for table in db.metadata.sorted_tables:
        digest.update(str(CreateTable(table).compile(dialect=dialect)).encode())
    if flags:
        for path in sorted((ROOT / "policies").glob("*.toml")):
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def ensure_indexes() -> list[str]:
    """Create the models' indexes a data set lacks (or holds in another form) and drop those the
    models no longer declare, so a kept data set measures the current schema; return what
    changed."""
    from sqlalchemy import text
    from sqlalchemy.dialects import sqlite
    from sqlalchemy.schema import CreateIndex

    from governance.extensions import db

    dialect = sqlite.dialect()
    declared = {index.name: (index, str(CreateIndex(index).compile(dialect=dialect)).strip())
                for table in db.metadata.sorted_tables for index in table.indexes}
    present = dict(db.session.execute(text(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")).all())
    changes = []
    for name, sql in sorted(present.items()):
        if name not in declared or declared[name][1] != sql.strip():
            db.session.execute(text(f'DROP INDEX "{name}"'))
            changes.append(f"dropped {name}")
    for name, (index, sql) in sorted(declared.items()):
        if present.get(name, "").strip() != sql:
            index.create(db.session.connection())
            changes.append(f"created {name}")
    if changes:
        db.session.execute(text("ANALYZE"))
    db.session.commit()
    return changes


def manifest_path(out: Path) -> Path:
    return out.with_name(out.name + ".json")


def day(rng: random.Random, first: date, last: date) -> date:
    return first + timedelta(days=rng.randint(0, max(0, (last - first).days)))


class Generator:
    def __init__(self, size: Size, seed: int):
        self.size = size
        self.rng = random.Random(seed)
        self.seed = seed
        self.seconds: dict[str, float] = {}

    def timed(self, label: str, function, *args):
        started = time.perf_counter()
        result = function(*args)
        self.seconds[label] = round(time.perf_counter() - started, 2)
        print(f"  {label}: {self.seconds[label]:.1f} s", flush=True)
        return result

    # --- organisations, accounts, partnerships (through the session: audited on flush) -------

    def organisations(self) -> None:
        from governance.extensions import db
        from governance.organisations.models import Organisation
        from governance.reports.services import DEFAULT_METHODOLOGY

        rng, size = self.rng, self.size
        self.sponsors, self.groups, self.others = [], [], []
        for n in range(size.sponsors):
            stem = SPONSOR_STEMS[n % len(SPONSOR_STEMS)]
            suffix = SPONSOR_SUFFIXES[(n // len(SPONSOR_STEMS)) % len(SPONSOR_SUFFIXES)]
            round_ = n // (len(SPONSOR_STEMS) * len(SPONSOR_SUFFIXES))
            name = f"{stem} {suffix}" + (f" {round_ + 1}" if round_ else "")
            self.sponsors.append(Organisation(
                name=name, kind="sponsor", country=rng.choice(["GB", "US", "DE", "FR", "CH"]),
                website=f"https://{stem.lower()}{n}.example", methodology_note=DEFAULT_METHODOLOGY))
        for n in range(size.patient_groups):
            condition = CONDITIONS[n % len(CONDITIONS)]
            suffix = GROUP_SUFFIXES[(n // len(CONDITIONS)) % len(GROUP_SUFFIXES)]
            round_ = n // (len(CONDITIONS) * len(GROUP_SUFFIXES))
            self.groups.append(Organisation(
                name=f"{condition} {suffix}" + (f" {round_ + 1}" if round_ else ""),
                kind="patient_group", country=rng.choice(["GB", "IE", "DE", "FR", "US", "NL"]),
                disease_areas=[condition], income_currency="GBP",
                annual_income=Decimal(rng.randint(40, 6000) * 1000)
                if rng.random() < 0.6 else None))
        for n in range(size.others):
            self.others.append(Organisation(
                name=f"{OTHER_NAMES[n % len(OTHER_NAMES)]} {n + 1}", kind="other",
                country=rng.choice(["GB", "US", "DE"])))
        db.session.add_all(self.sponsors + self.groups + self.others)
        db.session.flush()
        # A few sponsors hold most of the partnerships (weights fall off as 1/rank).
        self.sponsor_weights = list(accumulate(1 / (rank + 1) for rank in range(size.sponsors)))

    def accounts(self) -> None:
        from governance import audit
        from governance.auth.models import AuditorGrant
        from governance.auth.services import create_user
        from governance.extensions import db

        # Every account acts within the busiest sponsor; the auditor is also granted the next
        # sponsor (an external auditor's grant), so the lists are measured with the scope on.
        busiest = self.sponsors[0]
        self.users = {
            "admin": create_user("admin@bench.example", "Ada Admin", "admin", PASSWORD),
            "compliance": create_user("compliance@bench.example", "Casey Compliance",
                                      "compliance", PASSWORD, busiest.name),
            "auditor": create_user("auditor@bench.example", "Avery Auditor", "auditor", PASSWORD,
                                   busiest.name),
            "advocate": create_user("advocate@bench.example", "Alex Advocate", "advocate",
                                    PASSWORD, busiest.name),
        }
        db.session.flush()
        db.session.add(AuditorGrant(user_id=self.users["auditor"].id,
                                    organisation_id=self.sponsors[1].id))
        db.session.flush()
        audit.set_actor(self.users["admin"])

    def partnerships(self) -> None:
        from governance.auth.services import create_user
        from governance.extensions import db
        from governance.partnerships.models import Partnership

        rng, size = self.rng, self.size
        self.partnership_list = []
        for n in range(size.partnerships):
            sponsor = rng.choices(self.sponsors, cum_weights=self.sponsor_weights)[0]
            group = rng.choice(self.groups)
            kind = rng.choices(PARTNERSHIP_KINDS, [30, 30, 20, 15, 5])[0]
            status = rng.choices(["active", "closed", "proposed"], [70, 18, 12])[0]
            started = day(rng, date(2018, 1, 1), date(2025, 6, 30))
            ended = None
            if status == "closed":
                ended = min(LAST_DAY, started + timedelta(days=rng.randint(365, 1500)))
            partnership = Partnership(
                title=f"{group.name} and {sponsor.name}: "
                      f"{data.TOPICS[n % len(data.TOPICS)].split(' of ')[0]}",
                sponsor_id=sponsor.id, patient_group_id=group.id, kind=kind, status=status,
                started_on=started, ended_on=ended,
                agreement_signed_on=started - timedelta(days=rng.randint(0, 60))
                if rng.random() < 0.88 else None,
                ip_terms_agreed=rng.random() < 0.75,
                policy_reference=f"SOP-PE-{n:04d}" if rng.random() < 0.7 else None,
                independence_measures="Several funders; no promotion of products."
                if rng.random() < 0.6 else None)
            if self.others and rng.random() < 0.06:
                partnership.other_organisations.append(rng.choice(self.others))
            self.partnership_list.append(partnership)
        db.session.add_all(self.partnership_list)
        db.session.flush()
        # How busy each partnership is: log-normal, so most are steady and a few are very busy;
        # proposed partnerships have barely started.
        weights = [rng.lognormvariate(0, 1) * (0.1 if p.status == "proposed" else 1)
                   for p in self.partnership_list]
        self.partnership_weights = list(accumulate(weights))
        # Plain values from here on: the objects expire at each commit.
        self.parts = []
        for p in self.partnership_list:
            first, last = max(FIRST_DAY, p.started_on), min(LAST_DAY, p.ended_on or LAST_DAY)
            window = (first, last) if first <= last else (FIRST_DAY, LAST_DAY)
            self.parts.append(Part(p.id, p.sponsor_id, p.patient_group_id, *window,
                                   tuple(o.id for o in p.other_organisations)))
        self.sponsor_ids = [o.id for o in self.sponsors]
        busiest = self.sponsors[0]
        own = [p for p in self.partnership_list if p.sponsor_id == busiest.id]
        group_name = next(o.name for o in self.groups if o.id == own[0].patient_group_id)
        self.users["partner"] = create_user("partner@bench.example", "Pat Partner", "partner",
                                            PASSWORD, group_name)
        db.session.commit()

    # --- support and interactions (Core executemany, audited in bulk) -----------------------

    def _insert(self, model, rows: list[dict]) -> None:
        from sqlalchemy import insert

        from governance import audit
        from governance.extensions import db

        audit.set_actor(self.users["admin"])
        audit.set_reason(f"Benchmark data set (bench/generate.py, seed {self.seed})")
        db.session.execute(insert(model.__table__), rows)
        audit.append_created(model, rows)
        db.session.commit()

    def supports(self) -> None:
        from governance.partnerships.models import Support

        rng, size = self.rng, self.size
        columns = [c.key for c in Support.__table__.columns]
        next_id, batch = 1, []
        chosen = rng.choices(self.parts, cum_weights=self.partnership_weights, k=size.supports)
        for partnership in chosen:
            paid = day(rng, partnership.first, partnership.last)
            kind = rng.choices(SUPPORT_KINDS, [35, 10, 15, 15, 15, 10])[0]
            unvalued = kind == "in_kind" and rng.random() < 0.4
            state = rng.choices(["confirmed", "pending", "disputed"], [65, 30, 5])[0]
            others = partnership.others
            stamp = datetime.combine(paid + timedelta(days=3), clock(10))
            row = dict.fromkeys(columns)
            row.update(
                id=next_id, partnership_id=partnership.id,
                recipient_id=others[0] if others and rng.random() < 0.3
                else partnership.patient_group_id,
                paid_on=paid, kind=kind,
                amount=None if unvalued else Decimal(rng.randint(200, 400_000)) / 10,
                currency=rng.choices(["GBP", "EUR", "USD"], [80, 15, 5])[0],
                description=SUPPORT_DESCRIPTIONS[kind], confirmed_by_partner=state,
                confirmation_note="The amount we received differs from this line."
                if state == "disputed" else None,
                created_at=stamp, updated_at=stamp, version=1)
            batch.append(row)
            next_id += 1
            if len(batch) == BATCH:
                self._insert(Support, batch)
                batch = []
        if batch:
            self._insert(Support, batch)

    def interactions(self) -> None:
        from governance.interactions.models import Interaction

        rng, size = self.rng, self.size
        columns = [c.key for c in Interaction.__table__.columns]
        creator = self.users["compliance"].id
        next_id = 1
        while next_id <= size.interactions:
            count = min(BATCH, size.interactions - next_id + 1)
            chosen = rng.choices(self.parts, cum_weights=self.partnership_weights, k=count)
            batch = []
            for partnership in chosen:
                if rng.random() < 0.03:  # outside any partnership
                    partnership_id = None
                    organisation_id = rng.choices(self.sponsor_ids,
                                                  cum_weights=self.sponsor_weights)[0]
                    occurred = day(rng, FIRST_DAY, LAST_DAY)
                else:
                    partnership_id = partnership.id
                    organisation_id = (partnership.sponsor_id if rng.random() < 0.85
                                       else partnership.patient_group_id)
                    occurred = day(rng, partnership.first, partnership.last)
                values = data.interaction_values(rng, occurred, partnership_id, organisation_id,
                                                 poor_share=0.35)
                state = rng.choices(["confirmed", "pending", "disputed"], [60, 35, 5])[0]
                stamp = datetime.combine(occurred + timedelta(days=1), clock(10))
                row = dict.fromkeys(columns)
                row.update(values)
                row.update(
                    id=next_id, created_by_id=creator, confirmed_by_partner=state,
                    confirmation_note="Fewer patients attended than recorded."
                    if state == "disputed" else None,
                    created_at=stamp, updated_at=stamp, version=1, status="held",
                    publishable=rng.random() < 0.3)
                if rng.random() < 0.005:
                    row["voided_at"] = stamp + timedelta(days=30)
                    row["void_reason"] = "Logged twice."
                batch.append(row)
                next_id += 1
            self._insert(Interaction, batch)


# --- flags -------------------------------------------------------------------------------------


def raise_flags() -> dict:
    """Let the policy rules raise their flags over the whole data set (bulk re-evaluation)."""
    from sqlalchemy import select

    from governance import audit
    from governance.auth.models import User
    from governance.extensions import db
    from governance.rules.bulk import reevaluate_all

    audit.set_actor(db.session.scalar(select(User).where(User.role == "admin")))
    result = reevaluate_all(today=TODAY)
    db.session.commit()
    return {"opened": result.opened, "still_open": result.still_open}


def resolve_flags(seed: int) -> dict:
    """Compliance has worked through part of the flags of interactions before 2025."""
    from sqlalchemy import bindparam, select, update

    from governance import audit
    from governance.auth.models import User
    from governance.extensions import db
    from governance.interactions.models import Interaction
    from governance.rules.models import Flag

    rng = random.Random(seed)
    resolver = db.session.scalar(select(User).where(User.role == "compliance"))
    resolver_id = resolver.id
    ids = list(db.session.scalars(
        select(Flag.id).join(Interaction, Flag.interaction_id == Interaction.id)
        .where(Flag.state == "open", Interaction.occurred_on < date(2025, 1, 1))
        .order_by(Flag.id)))
    notes = {"acknowledged": "Kept: the group chose this format.",
             "dismissed": "Not applicable to this interaction."}
    counts = {"acknowledged": 0, "dismissed": 0}
    table = Flag.__table__
    for start in range(0, len(ids), BATCH):
        rows, events = [], []
        for flag_id in ids[start:start + BATCH]:
            draw = rng.random()
            if draw >= 0.45:
                continue
            state = "acknowledged" if draw < 0.33 else "dismissed"
            at = datetime(2025, 1, 1, 9) + timedelta(minutes=rng.randint(0, 500_000))
            rows.append({"b_id": flag_id, "state": state, "note": notes[state],
                         "resolved_by_id": resolver_id, "resolved_at": at, "updated_at": at})
            events.append(("update", flag_id, {
                "state": ["open", state], "note": [None, notes[state]],
                "resolved_by_id": [None, resolver_id], "resolved_at": [None, at]}))
            counts[state] += 1
        if not rows:
            continue
        audit.set_actor(resolver)
        db.session.execute(
            update(table).where(table.c.id == bindparam("b_id")).values(
                state=bindparam("state"), note=bindparam("note"),
                resolved_by_id=bindparam("resolved_by_id"),
                resolved_at=bindparam("resolved_at"), updated_at=bindparam("updated_at"),
                version=table.c.version + 1).execution_options(synchronize_session=False),
            rows)
        audit.append_changed("flag", events, "Reviewed by compliance")
        db.session.commit()
    return counts


def busiest_organisation_year() -> dict:
    """The organisation and year with the most interactions in its report (its own and those of
    the partnerships it sponsors)."""
    from sqlalchemy import text

    from governance.extensions import db

    row = db.session.execute(text("""
        SELECT organisation_id, year, count(*) AS interactions FROM (
            SELECT i.id, i.organisation_id, strftime('%Y', i.occurred_on) AS year
            FROM interactions i WHERE i.voided_at IS NULL
            UNION
            SELECT i.id, p.sponsor_id, strftime('%Y', i.occurred_on)
            FROM interactions i JOIN partnerships p ON p.id = i.partnership_id
            WHERE i.voided_at IS NULL)
        GROUP BY organisation_id, year ORDER BY interactions DESC, organisation_id LIMIT 1
    """)).one()
    supports = db.session.execute(text("""
        SELECT count(*) FROM supports s JOIN partnerships p ON p.id = s.partnership_id
        WHERE p.sponsor_id = :org AND strftime('%Y', s.paid_on) = :year
          AND s.voided_at IS NULL"""), {"org": row.organisation_id, "year": row.year}).scalar()
    name = db.session.execute(text("SELECT name FROM organisations WHERE id = :id"),
                              {"id": row.organisation_id}).scalar()
    return {"organisation_id": row.organisation_id, "name": name, "year": int(row.year),
            "interactions": row.interactions, "supports": supports}


def counts_and_busiest() -> dict:
    from sqlalchemy import text

    from governance.extensions import db

    counts = {table: db.session.execute(text(f"SELECT count(*) FROM {table}")).scalar()
              for table in ("organisations", "partnerships", "supports", "interactions",
                            "flags", "audit_events")}
    return {"counts": counts, "busiest": busiest_organisation_year()}


def _fresh(out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in (out, out.with_name(out.name + "-wal"), out.with_name(out.name + "-shm"),
                  manifest_path(out)):
        stale.unlink(missing_ok=True)


def _finish(app, out: Path, manifest: dict) -> dict:
    from sqlalchemy import text

    from governance.extensions import db

    with app.app_context():
        db.session.execute(text("ANALYZE"))
        db.session.commit()
        manifest |= counts_and_busiest()
        manifest["peak_rss_mb"] = round(peak_rss_mb())
        db.session.remove()
        db.engine.dispose()  # the last connection closes: the WAL is checkpointed into the file
    manifest["database_mb"] = round(out.stat().st_size / 1024 / 1024)
    manifest_path(out).write_text(json.dumps(manifest, indent=2) + "\n")
    busiest = manifest["busiest"]
    print(f"Done in {manifest['seconds']['total']:.1f} s: {manifest['counts']}; database "
          f"{manifest['database_mb']:,} MB; peak memory {manifest['peak_rss_mb']} MB; busiest "
          f"organisation-year: {busiest['name']} {busiest['year']} "
          f"({busiest['interactions']:,} interactions, {busiest['supports']:,} support lines)",
          flush=True)
    return manifest


def generate(size_name: str, out: Path, seed: int = 2026) -> dict:
    """Write the data set (without flags) into a new SQLite file; return (and save) its
    manifest."""
    from sqlalchemy import text

    from governance.extensions import db

    size = SIZES[size_name]
    _fresh(out)
    app = make_app(out)
    generator = Generator(size, seed)
    print(f"Generating the {size_name} set ({size.interactions:,} interactions, seed {seed}) "
          f"into {out}", flush=True)
    started = time.perf_counter()
    with app.app_context():
        db.create_all()
        db.session.execute(text("PRAGMA cache_size = -262144"))  # 256 MB while loading
        generator.timed("organisations and accounts", lambda: (generator.organisations(),
                                                               generator.accounts()))
        generator.timed("partnerships", generator.partnerships)
        generator.timed("support lines", generator.supports)
        generator.timed("interactions", generator.interactions)
        users = {role: user.email for role, user in generator.users.items()}
        db.session.remove()
    manifest = {"size": size_name, "seed": seed, "flags": False, "shape": asdict(size),
                "today": TODAY.isoformat(), "users": users, "password": PASSWORD,
                "seconds": generator.seconds | {"total": round(time.perf_counter() - started, 1)}}
    with app.app_context():
        manifest["fingerprint"] = fingerprint(False)
    return _finish(app, out, manifest)


def add_flags(base: Path, out: Path) -> dict:
    """Copy a data set and let the rules raise their flags on the copy; resolve part of them."""
    manifest = json.loads(manifest_path(base).read_text())
    _fresh(out)
    started = time.perf_counter()
    shutil.copyfile(base, out)
    app = make_app(out)
    print(f"Raising the flags of {base.name} into {out.name}", flush=True)
    seconds = {"copy": round(time.perf_counter() - started, 2)}
    with app.app_context():
        step = time.perf_counter()
        flag_counts = raise_flags()
        seconds["flags (rules' bulk re-evaluation)"] = round(time.perf_counter() - step, 2)
        step = time.perf_counter()
        flag_counts["resolved"] = resolve_flags(manifest["seed"] + 1)
        seconds["part of the older flags resolved"] = round(time.perf_counter() - step, 2)
        manifest["fingerprint"] = fingerprint(True)
    for label, value in seconds.items():
        print(f"  {label}: {value:.1f} s", flush=True)
    manifest |= {"flags": True, "flag_counts": flag_counts, "base_seconds": manifest["seconds"],
                 "seconds": seconds | {"total": round(time.perf_counter() - started, 1)}}
    return _finish(app, out, manifest)


def cached(size_name: str, out: Path, seed: int, flags: bool) -> dict | None:
    """The manifest of an existing data set of this size, seed, generator and tables, with its
    indexes brought in line with the models; None when there is none."""
    from governance.extensions import db

    path = manifest_path(out)
    if not (out.exists() and path.exists()):
        return None
    manifest = json.loads(path.read_text())
    if (manifest.get("size"), manifest.get("seed"), manifest.get("flags")) != (
            size_name, seed, flags):
        return None
    app = make_app(out)
    with app.app_context():
        if manifest.get("fingerprint") != fingerprint(flags):
            return None
        changes = ensure_indexes()
        db.session.remove()
        db.engine.dispose()
    if changes:
        print(f"{out.name}: indexes brought in line with the models ({', '.join(changes)})",
              flush=True)
    manifest["reused"] = True
    return manifest


def build(size_name: str, directory: Path, seed: int = 2026, reuse: bool = True
          ) -> tuple[Path, dict, Path, dict]:
    """The data set of a size without flags (<size>-base.sqlite) and with them (<size>.sqlite),
    made anew unless an up-to-date one exists (and reuse is asked)."""
    base, flagged = directory / f"{size_name}-base.sqlite", directory / f"{size_name}.sqlite"
    base_manifest = reuse and cached(size_name, base, seed, False)
    if not base_manifest:
        base_manifest = generate(size_name, base, seed)
        reuse = False  # a new base: its flags must be raised again
    flagged_manifest = reuse and cached(size_name, flagged, seed, True)
    if not flagged_manifest:
        flagged_manifest = add_flags(base, flagged)
    return base, base_manifest, flagged, flagged_manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=SIZES, default="small")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--dir", type=Path, default=ROOT / "instance" / "bench",
                        help="where to write <size>-base.sqlite (no flags) and <size>.sqlite "
                             "(with flags); default instance/bench")
    parser.add_argument("--no-flags", action="store_true",
                        help="only the data set without flags")
    parser.add_argument("--reuse", action="store_true",
                        help="keep files already made with the same size, seed, generator and "
                             "tables")
    args = parser.parse_args()
    base = args.dir / f"{args.size}-base.sqlite"
    if args.no_flags:
        if not (args.reuse and cached(args.size, base, args.seed, False)):
            generate(args.size, base, args.seed)
        return
    build(args.size, args.dir, args.seed, reuse=args.reuse)


if __name__ == "__main__":
    main()
