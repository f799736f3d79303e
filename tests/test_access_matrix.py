"""An access matrix that cannot drift.

Every route and method of `app.url_map` is called as every role and as a visitor, on records
of the user's own organisation, of a partner organisation and of an unrelated one. The answer
expected is derived, never written per route:

* from the permission the route declares (`permission_for(endpoint, method)`): a visitor is sent
  to the login page (pages) or answered 401 (API), a role the permission does not name is
  answered 403;
* from who may see the record (DOMAIN.md, "Every role acts within its organisation"): a record
  the user may not see answers 404, as an unknown id does; a record the user may see, with a
  role the permission names, never answers 403 (except a record-level refusal that explains
  itself, on a partner organisation's record), 404 or 500, and an empty (invalid) write changes
  nothing.

Which record a URL argument names is one table (`RECORD_ARGUMENTS`); an argument missing from
it fails the matrix, so a new route cannot escape it. The OpenAPI document's operations must all
be in it too. The data set is built by the services, as the application would build it: sponsor
A with its patient group PA (partnership A-PA), sponsor B with PB (B-PB), each with interactions,
support, flags, attachments, prioritisation exercises, a generated report, own activities, a
re-evaluation run and an uploaded import file.
"""

import csv
import io
import json
import re
import shutil
import sqlite3
from dataclasses import dataclass, field

import pytest
from sqlalchemy import func, select
from werkzeug.routing import AnyConverter

from governance import audit, create_app
from governance.audit import AuditEvent
from governance.auth.models import User
from governance.extensions import db
from governance.notifications.models import Notification
from governance.notifications.services import notify
from governance.permissions import (
    EVERYONE,
    PARTY_ROLES,
    can_make_reports,
    permission_for,
)
from governance.transfer.models import ImportRun

from .conftest import GOOD_INTERACTION, PASSWORD, login, make_config, postgres

# One worker builds the data set once and runs the whole matrix (pytest-xdist --dist loadgroup).
pytestmark = pytest.mark.xdist_group("access_matrix")

ROLES = ("advocate", "compliance", "auditor", "partner", "admin")
VISITOR = "visitor"
WRITES = ("POST", "PUT", "PATCH", "DELETE")
SKIP_ENDPOINTS = {"static", "bootstrap.static"}
GENERIC_REFUSAL = "You don't have the permission to access the requested resource"
YEAR = 2025
# Requests that are whole without a body: they act (and may change something) when allowed.
# They run last, and the "an invalid write changes nothing" check does not apply to them.
BODYLESS_ACTIONS = {"auth.logout", "auth.revoke_token", "auth.start_two_step",
                    "rules.reevaluate", "transfer.commit", "activities.complete",
                    "activities.reopen", "reports.retry",
                    # no ticked box is a choice too: every kind in the inbox only
                    "notifications.settings", "notifications.read_all",
                    "notifications.open_notification"}
# Words of B's records (B is unrelated to every user of the matrix): no list of A's may show
# them.
B_WORDS = ("northwind", "sickle cell collective")


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory, sqlite_template):
    """On SQLite the data set is built once per module and each test gets a copy of its
    database and files (generating two reports takes seconds); on PostgreSQL, once per test."""
    if postgres is not None:
        yield None
        return
    folder = tmp_path_factory.mktemp("matrix")
    config = make_config(folder, JOBS_INLINE=True)
    sqlite_template.copy_to(config["SQLALCHEMY_DATABASE_URI"])
    app = create_app(config)
    with app.app_context():
        built = build_world()
        db.session.remove()
        db.engine.dispose()
    with sqlite3.connect(folder / "test.sqlite") as connection:
        connection.execute("PRAGMA journal_mode = DELETE")
    connection.close()
    yield folder, built


@pytest.fixture
def app_config(tmp_path, snapshot):
    if snapshot is not None:
        folder, _built = snapshot
        shutil.copyfile(folder / "test.sqlite", tmp_path / "test.sqlite")
        shutil.copytree(folder / "data", tmp_path / "data")
    return {"JOBS_INLINE": True}  # reports and re-evaluations run in the request


@pytest.fixture
def world(app, snapshot):
    return build_world() if snapshot is None else snapshot[1]


# --- the data set ---------------------------------------------------------------------------


@dataclass
class Rec:
    """A record a URL can name: who owns it and who may see it (DOMAIN.md)."""

    kind: str
    label: str
    values: dict  # the URL arguments that name it
    owners: frozenset  # organisations ("A", "PA", "B", "PB") whose record it is
    seen_by: frozenset = frozenset()  # organisations whose advocates, compliance, auditors see it
    not_for_partners: bool = False  # an interaction logged outside any partnership
    user: str | None = None  # personal records (API tokens, uploads): only their user sees them
    obj: object = None  # while the data set is built; then model and id
    model: type | None = None
    id: int | None = None

    def load(self):
        return db.session.get(self.model, self.id)


@dataclass
class Answer:
    """What a request answered (a crash the application let through is a 500)."""

    status: int
    location: str
    body: bytes
    crash: str | None = None


@dataclass
class World:
    orgs: dict  # key -> organisation id
    users: dict  # key -> user id
    org_of_user: dict  # key -> "A", "PA", "B", "PB" or None
    tokens: dict = field(default_factory=dict)  # key -> API token
    records: dict = field(default_factory=dict)  # kind -> [Rec]
    b_ids: dict = field(default_factory=dict)  # audit entity -> {ids of B's records}


PARTNER_OF = {"A": "PA", "PA": "A", "B": "PB", "PB": "B"}
VIEWERS = {  # role -> the user key of the matrix's user with that role
    "advocate": "advocate_a", "compliance": "compliance_a", "auditor": "auditor_a",
    "partner": "partner_pa", "admin": "admin",
}


def _upload_csv(name: str) -> bytes:
    from governance.transfer.csvfile import template_csv
    from governance.transfer.imports import IMPORTERS

    importer = IMPORTERS["organisations"]
    example = {"name": name, "kind": "other", "country": "GB", "disease_areas": [],
               "external_id": "IMP-" + re.sub(r"\W+", "-", name)}
    return template_csv(importer.columns(), example).encode()


def _pdf(marker: str) -> bytes:
    return (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
            b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n"
            + f"% {marker}\n".encode() + b"%%EOF\n")


def build_world() -> World:
    """Sponsors A and B, patient groups PA and PB, partnerships A-PA and B-PB with their
    records; users of every role in A (the partner in PA), an admin, and B's own people."""
    from governance.activities.services import (
        add_custom_activity,
        exercises_of,
        seed_demo_exercises,
        seed_demo_own_exercise,
    )
    from governance.agreements.services import record_agreement
    from governance.attachments.services import attach_file
    from governance.auth import services as accounts
    from governance.auth.models import ApiToken
    from governance.interactions.services import log_interaction
    from governance.organisations.models import Organisation
    from governance.partnerships.services import create_partnership, record_support
    from governance.payments.services import record_payment
    from governance.reports import jobs as report_jobs
    from governance.reports.services import DEFAULT_METHODOLOGY, request_report
    from governance.rules import jobs as rule_jobs
    from governance.rules.models import Flag
    from governance.transfer import csvfile

    orgs = {
        "A": Organisation(name="Helix Pharma", kind="sponsor", country="GB"),
        "PA": Organisation(name="Rare Lung Alliance", kind="patient_group", country="GB"),
        "B": Organisation(name="Northwind Therapeutics", kind="sponsor", country="US"),
        "PB": Organisation(name="Sickle Cell Collective", kind="patient_group", country="US"),
    }
    db.session.add_all(orgs.values())
    db.session.flush()
    # each sponsor recorded its patient group (so it may name it in a partnership)
    orgs["PA"].added_by_organisation_id = orgs["A"].id
    orgs["PB"].added_by_organisation_id = orgs["B"].id
    orgs["A"].methodology_note = orgs["B"].methodology_note = DEFAULT_METHODOLOGY
    db.session.commit()
    people = {  # key: role, organisation, email
        "advocate_a": ("advocate", "A", "advocate@helix.example"),
        "compliance_a": ("compliance", "A", "compliance@helix.example"),
        "auditor_a": ("auditor", "A", "auditor@helix.example"),
        "partner_pa": ("partner", "PA", "partner@rarelung.example"),
        "advocate_pa": ("advocate", "PA", "advocate@rarelung.example"),
        "admin": ("admin", None, "admin@platform.example"),
        "compliance_b": ("compliance", "B", "compliance@northwind.example"),
        "partner_pb": ("partner", "PB", "partner@northwind-partner.example"),
    }
    users = {key: accounts.create_user(email, f"{role.title()} {key}", role, PASSWORD,
                                       orgs[org].name if org else None)
             for key, (role, org, email) in people.items()}
    db.session.commit()
    w = World(orgs={k: o.id for k, o in orgs.items()}, users={k: u.id for k, u in users.items()},
              org_of_user={k: v[1] for k, v in people.items()})

    def as_user(key):
        return audit.acting_as(audit.Actor(users[key].id, users[key].email))

    def add(rec):
        w.records.setdefault(rec.kind, []).append(rec)
        return rec

    both_a, both_b = frozenset({"A", "PA"}), frozenset({"B", "PB"})
    for key, org in orgs.items():
        add(Rec("organisation", f"organisation {key}", {"organisation_id": org.id},
                frozenset({key}), frozenset({key, PARTNER_OF[key]}), obj=org))

    # partnerships, support, interactions (flags come from the rules), attachments
    made = {}
    for side, (sponsor, group, editor, words) in {
        "A": ("A", "PA", "compliance_a", "Helix lung trial design programme"),
        "B": ("B", "PB", "compliance_b", "Northwind sickle-cell access programme"),
    }.items():
        parties = both_a if side == "A" else both_b
        with as_user(editor):
            partnership = create_partnership({
                "title": words, "sponsor_id": orgs[sponsor].id,
                "patient_group_id": orgs[group].id, "kind": "content_engagement",
                "status": "active", "started_on": "2024-01-01"}, users[editor])
            support = record_support({
                "partnership_id": partnership.id, "recipient_id": orgs[group].id,
                "paid_on": "2025-02-03", "kind": "grant", "amount": "12500.00",
                "currency": "GBP", "description": f"{words.split()[0]} grant to the helpline"},
                users[editor])
            interaction = log_interaction(dict(
                GOOD_INTERACTION, title=f"{words.split()[0]} advisory board on dosing",
                organisation_id=orgs[sponsor].id, partnership_id=partnership.id,
                selection_method="ad_hoc"), users[editor])
            adhoc = log_interaction(dict(
                GOOD_INTERACTION, title=f"{words.split()[0]} ad hoc listening session",
                format="listening_session", organisation_id=orgs[sponsor].id),
                users[editor])
            db.session.flush()
            attachments = {
                "interaction": attach_file(interaction, "minutes", f"{side}-minutes.pdf",
                                           _pdf(f"{side} interaction"), users[editor]),
                "partnership": attach_file(partnership, "agreement", f"{side}-agreement.pdf",
                                           _pdf(f"{side} partnership"), users[editor]),
                "adhoc": attach_file(adhoc, "agenda", f"{side}-agenda.pdf",
                                     _pdf(f"{side} ad hoc"), users[editor]),
            }
            db.session.commit()
        with as_user(editor):
            agreement = record_agreement({
                "partnership_id": partnership.id, "kind": "grant",
                "objective": f"{words.split()[0]} helpline grant", "starts_on": "2025-01-01",
                "ends_on": "2025-12-31", "amount": "20000.00", "currency": "GBP",
                "signed_on": "2025-01-15"}, users[editor])
            db.session.commit()
        add(Rec("agreement", f"agreement of {sponsor}-{group}",
                {"agreement_id": agreement.id}, parties, parties, obj=agreement))
        with as_user(editor):
            payment = record_payment({
                "organisation_id": orgs[sponsor].id, "interaction_id": interaction.id,
                "payee_reference": f"{side}-ADV-001", "payee_kind": "patient",
                "service": "advisory_board", "hours": "3", "fee": "150.00",
                "expenses": "20.00", "currency": "GBP", "paid_on": "2025-03-01"},
                users[editor])
            db.session.commit()
        add(Rec("payment", f"payment for the interaction of {sponsor}-{group}",
                {"payment_id": payment.id}, frozenset({sponsor}), frozenset({sponsor}),
                not_for_partners=True, obj=payment))
        made[side] = (partnership, support, interaction, adhoc)
        add(Rec("partnership", f"partnership {sponsor}-{group}",
                {"partnership_id": partnership.id}, parties, parties, obj=partnership))
        add(Rec("support", f"support of {sponsor}-{group}", {"support_id": support.id},
                parties, parties, obj=support))
        add(Rec("interaction", f"interaction of {sponsor}-{group}",
                {"interaction_id": interaction.id}, parties, parties, obj=interaction))
        add(Rec("interaction", f"{sponsor}'s interaction outside any partnership",
                {"interaction_id": adhoc.id}, frozenset({sponsor}), frozenset({sponsor}),
                not_for_partners=True, obj=adhoc))
        for where, attachment in attachments.items():
            owner = adhoc if where == "adhoc" else None
            add(Rec("attachment", f"attachment of {sponsor}'s {where}",
                    {"attachment_id": attachment.id},
                    frozenset({sponsor}) if owner else parties,
                    frozenset({sponsor}) if owner else parties, not_for_partners=bool(owner),
                    obj=attachment))

    # each patient group's declared figures of the report year (their PATCH names the year)
    from governance.organisations.services import record_yearly_figures

    for group, editor in (("PA", "partner_pa"), ("PB", "partner_pb")):
        with as_user(editor):
            record_yearly_figures(orgs[group], {
                "year": YEAR, "industry_support": "50000.00", "income": "250000.00",
                "currency": "GBP", "source": f"published accounts {YEAR}"}, users[editor])
            db.session.commit()

    # the patient group PA logs an interaction of its own, outside any partnership
    with as_user("advocate_pa"):
        pa_adhoc = log_interaction(dict(
            GOOD_INTERACTION, title="Rare Lung members' survey", format="survey",
            organisation_id=orgs["PA"].id), users["advocate_pa"])
        db.session.commit()
    add(Rec("interaction", "PA's interaction outside any partnership",
            {"interaction_id": pa_adhoc.id}, frozenset({"PA"}), frozenset({"PA"}),
            not_for_partners=True, obj=pa_adhoc))

    # one flag of each subject (interactions and partnerships)
    for rec in list(w.records["interaction"]) + list(w.records["partnership"]):
        column = Flag.interaction_id if rec.kind == "interaction" else Flag.partnership_id
        flag = db.session.scalar(select(Flag).where(column == rec.obj.id, Flag.voided_at.is_(None))
                                 .order_by(Flag.id).limit(1))
        assert flag is not None, f"no flag raised on the {rec.label}"
        add(Rec("flag", f"flag of the {rec.label}", {"flag_id": flag.id}, rec.owners,
                rec.seen_by, rec.not_for_partners, obj=flag))

    # prioritisation exercises, completed on both sides of both partnerships
    seed_demo_exercises(made["A"][0], users["advocate_a"], users["partner_pa"])
    seed_demo_exercises(made["B"][0], users["compliance_b"], users["partner_pb"])
    db.session.commit()
    for side, (sponsor, group) in {"A": ("A", "PA"), "B": ("B", "PB")}.items():
        partnership = made[side][0]
        for exercise_side, owner in (("sponsor", sponsor), ("patient_group", group)):
            add(Rec("exercise", f"{owner}'s side of the {sponsor}-{group} exercise",
                    {"partnership_id": partnership.id, "side": exercise_side},
                    frozenset({owner}), frozenset({sponsor, group}), obj=partnership))
            for exercise in exercises_of(partnership, exercise_side):
                add(Rec("named exercise", f"{owner}'s exercise “{exercise.name}” of "
                        f"{sponsor}-{group}", {"exercise_id": exercise.id},
                        frozenset({owner}), frozenset({sponsor, group}), obj=exercise))
    # each sponsor's own exercise, part of no partnership: its own people alone see it
    for key, editor in (("A", "advocate_a"), ("B", "compliance_b")):
        own = seed_demo_own_exercise(orgs[key].id, users[editor])
        db.session.commit()
        add(Rec("named exercise", f"{key}'s own exercise", {"exercise_id": own.id},
                frozenset({key}), frozenset({key}), not_for_partners=True, obj=own))

    # the organisations' own activities
    for key, editor in (("A", "advocate_a"), ("PA", "advocate_pa"), ("B", "compliance_b")):
        with as_user(editor):
            row = add_custom_activity(orgs[key].id, {
                "stage": _first_stage(),
                "name": f"{orgs[key].name} community panel",
                "description": "A standing panel of members consulted each quarter."},
                users[editor])
            db.session.commit()
        add(Rec("activity", f"{key}'s own activity", {"activity_id": row.id},
                frozenset({key}), frozenset({key}), obj=row))

    # a generated report of each sponsor
    for key, editor in (("A", "compliance_a"), ("B", "compliance_b")):
        with as_user(editor):
            report = request_report({"organisation_id": orgs[key].id, "year": YEAR},
                                    users[editor])
            db.session.commit()
        report_jobs.start(report.id)
        db.session.expire_all()
        report = db.session.get(type(report), report.id)
        assert report.has_files, report.error
        add(Rec("report", f"{key}'s report", {"report_id": report.id},
                frozenset({key}), frozenset({key}), obj=report))

    # a re-evaluation run asked for by each sponsor's compliance officer
    for key, editor in (("A", "compliance_a"), ("B", "compliance_b")):
        with as_user(editor):
            run = rule_jobs.request_reevaluation(users[editor])
            db.session.commit()
        rule_jobs.start(run.id)
        add(Rec("run", f"re-evaluation run asked for by {key}", {"run_id": run.id},
                frozenset({key}), frozenset({key}), obj=run))

    # API tokens: one to call the API with, a spare to revoke; and each user's uploaded file
    for key, user in users.items():
        w.tokens[key] = accounts.issue_token(user, "matrix")
        accounts.issue_token(user, "spare")
        db.session.commit()
        spare = db.session.scalar(select(ApiToken).where(ApiToken.user_id == user.id)
                                  .order_by(ApiToken.id.desc()).limit(1))
        org = w.org_of_user[key]
        add(Rec("user", f"{key}'s account", {"user_id": user.id},
                frozenset({org}) if org else frozenset(), obj=user))
        add(Rec("token", f"{key}'s API token", {"token_id": spare.id},
                frozenset({org}) if org else frozenset(), user=key, obj=spare))
        notify([user.id], "report_due", f"A reminder for {key}", "A reminder.", "/",
               key=f"matrix:{key}")
        db.session.commit()
        notification = db.session.scalar(select(Notification).where(
            Notification.user_id == user.id).order_by(Notification.id.desc()).limit(1))
        add(Rec("notification", f"{key}'s notification", {"notification_id": notification.id},
                frozenset({org}) if org else frozenset(), user=key, obj=notification))
        if user.role in ("advocate", "compliance"):
            digest = csvfile.store(_upload_csv(f"Imported by {key}"), f"{key}.csv", user)
            add(Rec("upload", f"{key}'s uploaded import file",
                    {"kind": "organisations", "digest": digest},
                    frozenset({org}), user=key))
            run = ImportRun(kind="organisations", sha256=digest, filename=f"{key}.csv",
                            rows=1, requested_by_id=user.id, state="done", progress=100)
            db.session.add(run)
            db.session.commit()
            add(Rec("import", f"{key}'s import run", {"import_id": run.id}, frozenset({org}),
                    user=key, obj=run))

    # the history of each record (the audit trail's page of one record)
    for kind in ("organisation", "partnership", "support", "interaction", "flag", "attachment",
                 "report", "activity"):
        for rec in w.records[kind]:
            entity = type(rec.obj).audit_entity()
            add(Rec("history", f"history of the {rec.label}",
                    {"entity": entity, "entity_id": rec.obj.id}, rec.owners, rec.seen_by,
                    rec.not_for_partners, obj=rec.obj))
            if rec.owners <= {"B", "PB"}:
                w.b_ids.setdefault(entity, set()).add(rec.obj.id)
    db.session.commit()
    for recs in w.records.values():
        for rec in recs:
            if rec.obj is not None:
                rec.model, rec.id, rec.obj = type(rec.obj), rec.obj.id, None
    db.session.expire_all()
    return w


def _first_stage() -> str:
    from governance.activities.services import stages

    return next(iter(stages()))


# --- who may see what (DOMAIN.md), and which record a URL argument names ----------------------


@dataclass
class Viewer:
    role: str
    key: str | None
    org: str | None
    user_id: int | None = None

    @property
    def partner_org(self):
        return PARTNER_OF.get(self.org)


def relation(viewer: Viewer, rec: Rec) -> str:
    if rec.user is not None and rec.user == viewer.key:
        return "own"
    if rec.user is not None and viewer.org is not None and viewer.org in rec.owners:
        return "colleague's"
    if viewer.org is not None and viewer.org in rec.owners:
        return "own"
    if viewer.partner_org is not None and viewer.partner_org in rec.owners:
        return "partner"
    return "unrelated"


def visible(viewer: Viewer, rec: Rec) -> bool:
    """DOMAIN.md: advocates, compliance officers and auditors see their organisation and the
    partnerships it is a party to, with their records, and what it logged outside any
    partnership; partners only the records of their partnerships; admins every organisation and
    no compliance record. Tokens and uploads are their user's alone."""
    if rec.user is not None:
        return rec.user == viewer.key
    if rec.kind == "user":  # accounts: administered by admins only
        return viewer.role == "admin"
    if rec.values.get("entity") == "report" and viewer.role not in ("compliance", "auditor"):
        return False  # a report's history is read by those who read reports
    if rec.kind in ("organisation", "history") and viewer.role == "admin":
        return rec.kind == "organisation"
    if viewer.role not in PARTY_ROLES or viewer.org is None:
        return False
    if viewer.role == "partner" and rec.not_for_partners:
        return False
    return viewer.org in rec.seen_by


# The URL arguments that name a record, by the kind of record they name. An argument that names
# no record (a file format, a report file's kind) has a fixed value instead.
RECORD_ARGUMENTS = {
    ("partnership_id", "side"): "exercise",
    ("exercise_id",): "named exercise",
    ("entity", "entity_id"): "history",
    ("kind", "digest"): "upload",
    ("organisation_id",): "organisation",
    ("partnership_id",): "partnership",
    ("interaction_id",): "interaction",
    ("support_id",): "support",
    ("flag_id",): "flag",
    ("attachment_id",): "attachment",
    ("report_id",): "report",
    ("activity_id",): "activity",
    ("run_id",): "run",
    ("token_id",): "token",
    ("user_id",): "user",
    ("payment_id",): "payment",
    ("agreement_id",): "agreement",
    ("notification_id",): "notification",
    ("import_id",): "import",
}
# A report file's kind or an importer's; a file format; an invitation's secret (public); a
# report's document (public or internal); a report exception's key; a policy version (one
# policy serves the installation: the shipped version); the year of a patient group's declared
# figures.
FIXED_ARGUMENTS = {"kind", "fmt", "token", "document", "key", "version", "year"}


def fixed_value(rule, name: str):
    converter = rule._converters[name]
    if isinstance(converter, AnyConverter):
        return sorted(converter.items)[0]
    if name == "token":
        return "no-such-invitation-0123456789abcdefghijklmnopq"
    if name == "key":
        return "no_agreement:support-1"
    if name == "version":
        return "2025.1"
    if name == "year":
        return YEAR  # PA and PB declared their figures of this year
    if rule.endpoint.startswith("transfer."):
        return "organisations"  # an importer's kind
    return "pdf"  # a report file's kind


def url_candidates(rule, world: World):
    """Each (record or None, URL values) the route is checked with; unknown arguments listed."""
    names = set(rule._converters) - {"filename"}
    records, unknown = None, []
    for arguments, kind in RECORD_ARGUMENTS.items():
        if set(arguments) <= names:
            records = world.records.get(kind, [])
            names -= set(arguments)
            break
    fixed = {}
    for name in sorted(names):
        if name in FIXED_ARGUMENTS:
            fixed[name] = fixed_value(rule, name)
        else:
            unknown.append(name)
    if records is None:
        return [(None, fixed)], unknown
    return [(rec, {**fixed, **rec.values}) for rec in records], unknown


# --- the routes --------------------------------------------------------------------------------


def matrix_routes(app):
    """(rule, method) for every route and method the application answers."""
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint in SKIP_ENDPOINTS:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule, method


def openapi_pattern(rule) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)


def documented_query(app) -> dict:
    """(path, method) -> names of the query parameters the OpenAPI document gives it."""
    client = app.test_client()
    spec = client.get("/api/v1/openapi.json").get_json()
    found = {}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method.upper() in ("GET", *WRITES):
                found[(path, method.upper())] = {
                    p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"}
    return found


def query_candidates(rule, method, query_names, world: World):
    """A documented query that names a record (the audit API's entity and entity_id) is checked
    like a URL argument."""
    for arguments, kind in RECORD_ARGUMENTS.items():
        if len(arguments) > 1 and set(arguments) <= query_names:
            return [(rec, rec.values) for rec in world.records.get(kind, [])]
    return None


# --- expectations --------------------------------------------------------------------------------


def expectation(app, viewer: Viewer, rule, method, rec):
    """What the answer must be, from the declared permission and who may see the record."""
    with app.test_request_context():
        perm = permission_for(rule.endpoint, method)
    api = rule.rule.startswith("/api/")
    if perm == EVERYONE:
        return "public"
    if viewer.role == VISITOR:
        if api:
            return "401"
        return "403" if perm is None else "login"
    if perm is None or viewer.role not in perm.roles:
        return "403"
    if rec is None:
        return "ok"
    if not visible(viewer, rec):
        return "404"
    if perm.record_check is not None:
        subject = rec.load()
        if perm is can_make_reports:
            subject = subject.organisation_id
        if rec.kind == "exercise":  # a side's permission reads the organisation of the side
            subject = subject.sponsor_id if rec.values["side"] == "sponsor" \
                else subject.patient_group_id
        if rec.kind == "named exercise":  # so does an exercise's: its organisation's
            subject = subject.organisation_id
        if not perm(db.session.get(User, viewer.user_id), subject):
            return "refused"
    if relation(viewer, rec) == "partner":
        return "ok or explained 403"
    return "ok"


def meets(expected: str, method: str, response: Answer, changed: bool) -> bool:
    status = response.status
    refused_generically = GENERIC_REFUSAL.encode() in response.body
    if expected == "public":
        return status not in (401, 403) and status < 500
    if expected == "401":
        return status == 401
    if expected == "403":
        return status == 403
    if expected == "404":
        return status == 404
    if expected == "login":
        return status == 302 and "/login" in response.location
    if expected == "refused":
        return status in (403, 404) and not changed
    if expected == "ok or explained 403" and status == 403:
        return not refused_generically and not changed
    # "ok": the record is the user's to see, and the role may
    if changed:
        return False
    if method == "GET":
        return status == 200 or (300 <= status < 400 and "/login" not in response.location)
    return status < 500 and status not in (401, 403, 404)


def describe(expected: str, method: str) -> str:
    if expected in ("ok", "ok or explained 403"):
        if method == "GET":
            return "200 or a redirect" + (" (or an explained 403)" if "403" in expected else "")
        return ("< 500, not 401/403/404, nothing changed"
                + (" (or an explained 403)" if "403" in expected else ""))
    return {"public": "not 401/403, < 500", "login": "302 to /login",
            "refused": "403 or 404 (record-level refusal)"}.get(expected, expected)


# --- calling ----------------------------------------------------------------------------------


def audit_count() -> int:
    count = db.session.scalar(select(func.count(AuditEvent.id)))
    db.session.rollback()
    return count


def call(client, world: World, viewer: Viewer, method: str, url: str) -> Answer:
    """One request; an exception the application let through is a 500 (TESTING propagates
    it)."""
    headers = {}
    if url.startswith("/api/") and viewer.key is not None:
        headers["Authorization"] = f"Bearer {world.tokens[viewer.key]}"
    body = {}
    if method != "GET":
        body = {"json": {}} if url.startswith("/api/") else {"data": {}}
    try:
        response = client.open(url, method=method, headers=headers, **body)
    except Exception as error:  # noqa: BLE001 - reported as the route's failure
        answer = Answer(500, "", b"", f"{type(error).__name__}: {error}")
    else:
        answer = Answer(response.status_code, response.headers.get("Location", ""),
                        response.get_data())
        response.close()
    db.session.rollback()
    db.session.expire_all()
    return answer


def run_matrix(app, world: World, role: str):
    """Walk every route and method as one role; return every mismatch and how many checks."""
    key = VIEWERS.get(role)
    viewer = Viewer(role, key, world.org_of_user.get(key), world.users.get(key))
    client = app.test_client()
    if key is not None:
        login(client, db.session.get(User, viewer.user_id))
    queries = documented_query(app)
    adapter = app.url_map.bind("localhost")
    plan, mismatches = [], []
    for rule, method in matrix_routes(app):
        candidates, unknown = url_candidates(rule, world)
        for name in unknown:
            mismatches.append((method, rule.rule, role, "-",
                               f"a record table entry for <{name}>", "none"))
        query_names = queries.get((openapi_pattern(rule), method), set())
        by_query = query_candidates(rule, method, query_names, world)
        if by_query is not None:
            candidates = [(rec, {**values, **query}) for rec, query in by_query
                          for _none, values in candidates]
        for rec, values in candidates:
            if viewer.key is None and rec is not None and rec.user is not None:
                continue  # a visitor has no personal records
            in_path = {k: v for k, v in values.items() if k in rule._converters}
            url = adapter.build(rule.endpoint, in_path, method=method)
            extra = {k: v for k, v in values.items() if k not in rule._converters}
            if extra:
                url += "?" + "&".join(f"{k}={v}" for k, v in sorted(extra.items()))
            order = 0 if method == "GET" else 2 if rule.endpoint in BODYLESS_ACTIONS else 1
            plan.append((order, rule, method, rec, url))
    checked = 0
    for order, rule, method, rec, url in sorted(plan, key=lambda item: item[0]):
        expected = expectation(app, viewer, rule, method, rec)
        before = audit_count() if method != "GET" and order == 1 else None
        response = call(client, world, viewer, method, url)
        changed = before is not None and audit_count() != before
        checked += 1
        if not meets(expected, method, response, changed):
            got = str(response.status)
            if response.crash:
                got += f" ({response.crash})"
            if 300 <= response.status < 400:
                got += f" to {response.location}"
            if response.status == 403 and GENERIC_REFUSAL.encode() in response.body:
                got += " (role refusal)"
            if changed:
                got += ", and it wrote audit events"
            where = f"{relation(viewer, rec)}: {rec.label}" if rec is not None else "-"
            mismatches.append((method, rule.rule, role, where, describe(expected, method), got))
        if order == 2 and key is not None:
            login(client, db.session.get(User, viewer.user_id))  # it may have signed out
    return mismatches, checked


def report(mismatches) -> str:
    return "\n".join(f"{method} {rule} as {role} on {where}: expected {expected}, got {got}"
                     for method, rule, role, where, expected, got in sorted(mismatches))


@pytest.mark.parametrize("role", (*ROLES, VISITOR))
def test_access_matrix(app, world, role):
    mismatches, checked = run_matrix(app, world, role)
    assert checked > 150
    assert not mismatches, f"{len(mismatches)} mismatches:\n{report(mismatches)}"


def test_every_documented_api_operation_is_in_the_matrix(app):
    in_matrix = {(openapi_pattern(rule), method) for rule, method in matrix_routes(app)}
    documented = set(documented_query(app))
    assert documented, "the OpenAPI document lists no operation"
    assert sorted(documented - in_matrix) == []


def test_every_url_argument_is_in_the_record_table(app):
    """A new route naming a record by an argument the matrix does not know fails here."""
    known = {name for arguments in RECORD_ARGUMENTS for name in arguments} \
        | set(FIXED_ARGUMENTS) | {"filename"}
    unknown = sorted({f"{rule.rule}: <{name}>" for rule, _method in matrix_routes(app)
                      for name in rule._converters if name not in known})
    assert unknown == []


# --- lists never leak --------------------------------------------------------------------------


LISTS = ("/interactions/", "/partnerships/", "/partnerships/supports", "/review/",
         "/review/?state=all", "/review/dashboard", "/audit/", "/reports/", "/reports/disputes",
         "/activities", "/prioritisation", "/home", "/organisations/", "/exports/interactions.csv",
         "/exports/partnerships.csv", "/exports/supports.csv", "/exports/audit.csv",
         "/api/v1/interactions?per_page=100", "/api/v1/audit", "/api/v1/organisations",
         "/api/v1/activities")
CSV_ENTITIES = {"interactions": "interaction", "partnerships": "partnership",
                "supports": "support"}


def test_lists_never_show_an_unrelated_organisations_records(app, world):
    """As compliance of A, no list, export or trail shows anything of B and PB: neither their
    words (titles, names, descriptions, B's people) nor their ids."""
    viewer = Viewer("compliance", "compliance_a", "A", world.users["compliance_a"])
    client = app.test_client()
    login(client, db.session.get(User, viewer.user_id))
    leaks = []

    def of_b(entity, entity_id) -> bool:
        return entity_id is not None and int(entity_id) in world.b_ids.get(entity, set())

    for url in LISTS:
        answer = call(client, world, viewer, "GET", url)
        if answer.status != 200:
            leaks.append(f"{url} answered {answer.status} {answer.crash or ''}")
            continue
        body = answer.body.decode("utf-8-sig")
        lowered = body.lower()
        for word in B_WORDS:
            for match in re.finditer(re.escape(word), lowered):
                context = " ".join(body[max(0, match.start() - 70):match.end() + 30].split())
                leaks.append(f"{url} shows {word!r}: …{context}…")
        if url.endswith(".csv"):
            entity = CSV_ENTITIES.get(url.rsplit("/", 1)[1].split(".")[0])
            for row in csv.DictReader(io.StringIO(body)):
                if entity and of_b(entity, row["id"]):
                    leaks.append(f"{url} lists B's {entity} {row['id']}")
                if "entity_id" in row and of_b(row["entity"], row["entity_id"]):
                    leaks.append(f"{url} lists an event of B's {row['entity']} "
                                 f"{row['entity_id']}")
        elif url.startswith("/api/v1/interactions"):
            for item in json.loads(body)["items"]:
                if of_b("interaction", item["id"]):
                    leaks.append(f"{url} lists B's interaction {item['id']}")
        elif url == "/api/v1/audit":
            for event in json.loads(body):
                if of_b(event["entity"], event["entity_id"]):
                    leaks.append(f"{url} lists an event of B's {event['entity']} "
                                 f"{event['entity_id']}")
    assert not leaks, f"{len(leaks)} leaks:\n" + "\n".join(leaks)


def test_the_data_set_holds_every_kind_of_record(world):
    assert {kind: len(recs) for kind, recs in world.records.items()} == {
        "organisation": 4, "partnership": 2, "support": 2, "interaction": 5, "attachment": 6,
        "flag": 7, "exercise": 4, "named exercise": 6, "activity": 3, "report": 2, "run": 2,
        "token": 8, "user": 8, "payment": 2, "agreement": 2, "upload": 4, "history": 31,
        "notification": 8, "import": 4}
