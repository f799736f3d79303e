"""Transparency reports: ask for one, gather the year's facts, sign and publish, find them.

A report's content is gathered once, into a plain snapshot (the JSON file), and everything a
reader sees — the PDF, the CSV, the HTML preview — is drawn from that snapshot, never from the
live records. Publishing signs the reviewed snapshot; later edits of the data cannot reach it.
"""

import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from marshmallow import fields
from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError

from .. import audit, tasks
from .. import jobs as background
from ..database import utcnow
from ..errors import Conflict, NotAllowed, NotFound, ValidationFailed
from ..extensions import db
from ..organisations.models import Organisation
from ..organisations.services import METHODOLOGY_MAX
from ..permissions import (
    can_make_reports,
    can_write_methodology,
    organisation_scope,
    report_scope,
    require,
    visible_record,
)
from ..quality.measures import year_measures
from ..review.adherence import adherence
from ..validation import Input, load, required, text
from ..validation import country as country_code
from ..validation import currency as currency_code
from ..vocabulary import (
    INTERACTION_FORMATS,
    REPORT_SIGNATURE_MEANINGS,
    SUPPORT_KINDS,
)
from . import exceptions
from .models import ALL_COUNTRIES, Report, side_of
from .public import SECTIONS, sections

SCHEMA = "governance.transparency-report/1"


# --- the methodology note -------------------------------------------------------------------------

METHODOLOGY_TOPICS = (
    ("currency", re.compile(r"currenc", re.I), "which currency the amounts are in (mention "
                                               "“currency”)"),
    ("vat", re.compile(r"\bVAT\b|value[- ]added tax", re.I), "how VAT is treated (mention "
                                                             "“VAT”)"),
    ("identification", re.compile(r"identif", re.I), "how the support was identified (mention "
                                                     "“identified”)"),
)

DEFAULT_METHODOLOGY = """\
Currency: each amount is shown in the currency in which it was paid, without conversion; totals \
are given per currency.

VAT treatment: amounts are shown excluding VAT.

How support was identified: every grant, donation, sponsorship, in-kind contribution, contracted \
service and reimbursed expense recorded for a partnership in the partnership governance system, \
with a payment date in the calendar year, checked against the finance ledger before publication.

In-kind support: goods or services given free of charge (such as meeting rooms, printing or \
staff time) are valued at cost where a value can be set; otherwise the benefit is described.

Payments to individual patient representatives are reported against the organisation they \
represent."""


def missing_methodology_topics(note: str | None) -> list[str]:
    """Return what the note fails to say, as phrases a person can act on."""
    note = note or ""
    return [phrase for _key, pattern, phrase in METHODOLOGY_TOPICS if not pattern.search(note)]


def check_methodology_note(note: str | None, field: str = "methodology_note") -> str:
    note = (note or "").strip()
    if not note:
        raise ValidationFailed({field: ["Write the methodology note: the currency, the VAT "
                                        "treatment and how support was identified."]})
    if len(note) > METHODOLOGY_MAX:
        raise ValidationFailed({field: [f"Keep the note under {METHODOLOGY_MAX:,} characters."]})
    missing = missing_methodology_topics(note)
    if missing:
        raise ValidationFailed({field: ["The note must also say " + "; ".join(missing) + "."]})
    return note


def checked_methodology_note(organisation: Organisation, note: str | None, actor) -> str:
    """The note as it may be written: only by a compliance officer of the organisation, and
    complete. Whoever writes the note (this page, the organisation's form or the import) asks
    here first."""
    require(can_write_methodology, actor, organisation)
    if organisation.is_void:
        raise Conflict("This organisation has been voided.")
    return check_methodology_note(note)


def update_methodology_note(organisation: Organisation, note: str | None, actor) -> Organisation:
    """Set the organisation's methodology note; the next report generated will carry it."""
    clean = checked_methodology_note(organisation, note, actor)
    if clean != organisation.methodology_note:
        audit.set_reason("Methodology note of the transparency reports edited")
        organisation.methodology_note = clean
        db.session.flush()
    return organisation


# --- asking for a report --------------------------------------------------------------------------


class ReportRequest(Input):
    organisation_id = required(fields.Integer, strict=True)
    year = required(fields.Integer, strict=True)
    reason = text(2000, allow_none=True, load_default=None)
    country = country_code(allow_none=True, load_default=None, metadata={
        "description": "Only recipients of this country (ISO 3166 alpha-2): a national "
                       "disclosure. Empty: all countries."})
    reporting_currency = currency_code(allow_none=True, load_default=None, metadata={
        "description": "Also give every total in this currency, at `exchange_rates`."})
    exchange_rates = fields.Dict(
        keys=currency_code(), values=fields.Decimal(places=6, as_string=True),
        allow_none=True, load_default=None, metadata={
            "description": "The rates compliance uses, never fetched: {\"USD\": \"0.79\"} "
                           "means 1 USD = 0.79 of the reporting currency."})


RATE_MAXIMUM = Decimal("1000000")


def check_exchange_rates(reporting_currency: str | None, rates: dict | None,
                         currencies_paid: set[str]) -> dict[str, str] | None:
    """The rates as stored (six decimals, as text), or a 422 naming what is missing."""
    if not reporting_currency:
        if rates:
            raise ValidationFailed({"reporting_currency": [
                "Choose the reporting currency the rates convert into."]})
        return None
    rates = dict(rates or {})
    rates.pop(reporting_currency, None)
    bad = sorted(code for code, rate in rates.items() if not Decimal(0) < rate < RATE_MAXIMUM)
    if bad:
        raise ValidationFailed({"exchange_rates": [
            f"A rate must be more than 0 and less than {RATE_MAXIMUM:,}: check "
            f"{', '.join(bad)}."]})
    missing = sorted(currencies_paid - {reporting_currency} - set(rates))
    if missing:
        raise ValidationFailed({"exchange_rates": [
            f"Give the rate into {reporting_currency} of every currency paid in the year: "
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing."]})
    return {code: f"{rate:.6f}" for code, rate in sorted(rates.items())}


def currencies_paid(organisation: Organisation, year: int, country: str | None) -> set[str]:
    """The currencies of the valued lines a report of the year would cover."""
    from ..partnerships.models import Support

    side = side_of(organisation)
    scope = _support_scope(organisation.id, side, country, Period(year))
    return set(db.session.scalars(select(Support.currency).distinct()
                                  .where(*scope, Support.amount.is_not(None))))


_request_schema = ReportRequest()


def latest_report(organisation_id: int, year: int,
                  country_scope: str = ALL_COUNTRIES) -> Report | None:
    return db.session.scalar(
        select(Report)
        .where(Report.organisation_id == organisation_id, Report.year == year,
               Report.country_scope == country_scope, Report.voided_at.is_(None))
        .order_by(Report.revision.desc()).limit(1)
    )


def request_report(values: dict, actor) -> Report:
    """Queue the generation of a draft report for an organisation's calendar year.

    A year whose report is still a draft has its draft generated again; a year whose latest
    version is published gets a correction: a new version, which needs a reason.
    """
    require(can_make_reports, actor)
    clean = load(_request_schema, values)
    errors: dict[str, list[str]] = {}
    this_year = utcnow().year
    if not 2000 <= clean["year"] <= this_year:
        errors["year"] = [f"Choose a calendar year from 2000 to {this_year}."]
    organisation = visible_record(Organisation, clean["organisation_id"], organisation_scope,
                                  actor)
    if organisation is None or organisation.is_void:
        # Another organisation's id answers as an unknown one does.
        raise NotFound("No organisation with this id.",
                       {"organisation_id": ["No organisation with this id."]})
    if not can_make_reports(actor, organisation.id):
        raise NotAllowed(f"{can_make_reports.refusal} {organisation.name} is not yours.")
    if errors:
        raise ValidationFailed(errors)
    try:
        check_methodology_note(organisation.methodology_note, "organisation_id")
    except ValidationFailed as error:
        raise ValidationFailed({"organisation_id": [
            f"{organisation.name} has no complete methodology note yet. "
            + " ".join(error.fields["organisation_id"])]}) from None
    rates = check_exchange_rates(
        clean["reporting_currency"], clean["exchange_rates"],
        currencies_paid(organisation, clean["year"], clean["country"]))
    reason = (clean["reason"] or "").strip() or None
    scope = clean["country"] or ALL_COUNTRIES
    latest = latest_report(organisation.id, clean["year"], scope)
    if latest is not None and background.recover(latest):
        db.session.flush()
        return latest  # its worker died: it is started again in its place
    if latest is not None and latest.is_working:
        raise Conflict(f"{latest} is already being prepared; wait for it to finish.")
    tasks.check_reachable()
    if latest is not None and not latest.is_published:
        if reason and latest.corrects_id is not None:
            latest.correction_reason = reason
        latest.reporting_currency, latest.exchange_rates = clean["reporting_currency"], rates
        return _requeue(latest, actor)
    if latest is not None and reason is None:
        raise ValidationFailed({"reason": [
            f"Version {latest.revision} of this report is published. A correction is a new "
            "version: say what it corrects and why."]})
    report = Report(
        organisation_id=organisation.id, year=clean["year"], country_scope=scope,
        reporting_currency=clean["reporting_currency"], exchange_rates=rates,
        revision=latest.revision + 1 if latest else 1,
        corrects_id=latest.id if latest else None,
        correction_reason=reason if latest else None,
        job="generate", status="queued", progress=0, requested_by_id=actor.id,
    )
    if latest is not None:
        audit.set_reason(f"Correction of version {latest.revision}: {reason}")
    try:
        with db.session.begin_nested():
            db.session.add(report)
    except IntegrityError:
        # Another request made this version a moment ago (the unique organisation, year and
        # version caught it).
        raise Conflict(f"Version {report.revision} of this report was just requested by "
                       "someone else; open it from the list of reports.") from None
    return report


def _requeue(report: Report, actor) -> Report:
    audit.set_reason("Draft generated again")
    _clear_signature(report)  # of a publication that failed for good, if any
    _reset_job(report, "generate")
    report.requested_by_id = actor.id
    db.session.flush()
    return report


def _reset_job(report: Report, job: str) -> None:
    report.job = job
    report.status = "queued"
    report.progress = 0
    report.progress_note = None
    report.error = None
    report.started_at = None
    report.finished_at = None
    report.attempts = 0


def is_stalled(report: Report) -> bool:
    """Whether the report's job lost its worker (governance/jobs.py)."""
    return background.is_stalled(report)


def retry_report(report: Report, actor) -> Report:
    """Start a failed or stalled job again."""
    require(can_make_reports, actor, report.organisation_id)
    if report.is_void:
        raise Conflict("This report has been voided.")
    if report.status != "failed" and not is_stalled(report):
        raise Conflict("Only a failed or stalled report can be started again.")
    tasks.check_reachable()
    audit.set_reason("Report job started again after it " +
                     ("failed" if report.status == "failed" else "stalled"))
    if report.job == "publish" and report.signed_at is not None:
        _reset_job(report, "publish")
    else:
        _clear_signature(report)
        _reset_job(report, "generate")
    db.session.flush()
    return report


# --- publishing -----------------------------------------------------------------------------------


def publish_report(report: Report, actor, password: str | None, meaning: str | None,
                   code: str | None = None) -> Report:
    """Sign the reviewed draft (the password, and the code with two-step sign-in on) and queue
    its publication (the signature is printed in it)."""
    from ..auth.services import check_signature

    require(can_make_reports, actor, report.organisation_id)
    if report.is_void:
        raise Conflict("This report has been voided.")
    if report.status != "done" or report.job != "generate":
        raise Conflict("Only a generated draft can be published"
                       + (" — this version already is." if report.is_published else "."))
    newer = db.session.scalar(
        select(func.max(Report.revision)).where(
            Report.organisation_id == report.organisation_id, Report.year == report.year,
            Report.voided_at.is_(None))
    )
    if newer and newer > report.revision:
        raise Conflict(f"Version {newer} of this report exists; publish that one instead.")
    if utcnow().date() <= date(report.year, 12, 31):
        raise ValidationFailed({"year": [
            f"The year is not over: a report of {report.year} can be published from "
            f"1 January {report.year + 1}."]})
    exceptions.check_gate(report, exceptions.draft_snapshot(report))
    tasks.check_reachable()
    statement = check_signature(actor, password, meaning, REPORT_SIGNATURE_MEANINGS, "report",
                                f"report {report.id}", code)
    audit.set_actor(actor)
    audit.set_reason(f"Electronic signature by {actor.name}: {statement}")
    report.signed_by_id = actor.id
    report.signature_name = actor.name
    report.signature_meaning = statement
    report.signed_at = utcnow().replace(microsecond=0)
    _reset_job(report, "publish")
    db.session.flush()
    audit.write_checkpoint("report-signed")
    return report


def _clear_signature(report: Report) -> None:
    report.signed_by_id = None
    report.signature_name = None
    report.signature_meaning = None
    report.signed_at = None


def signature_line(report: Report) -> str | None:
    if report.signed_at is None:
        return None
    return (f"Signed by {report.signature_name} on {report.signed_at:%Y-%m-%d %H:%M} UTC — "
            f"{report.signature_meaning}")


# --- finding reports ------------------------------------------------------------------------------


def reports_for(user, organisation_id: int | None = None, year: int | None = None) -> list[Report]:
    """The reports of the organisations the user acts for, newest first."""
    query = select(Report).where(Report.voided_at.is_(None), report_scope(user))
    if organisation_id:
        query = query.where(Report.organisation_id == organisation_id)
    if year:
        query = query.where(Report.year == year)
    return list(db.session.scalars(
        query.order_by(Report.year.desc(), Report.organisation_id, Report.revision.desc())
    ))


def published_reports() -> list[Report]:
    return list(db.session.scalars(
        select(Report).join(Organisation, Organisation.id == Report.organisation_id)
        .where(Report.status == "published", Report.voided_at.is_(None))
        .order_by(Report.year.desc(), Organisation.name, Report.revision.desc())
    ))


def corrected_by(report: Report) -> Report | None:
    """The published version that corrects this one, if any."""
    return db.session.scalar(
        select(Report).where(Report.corrects_id == report.id, Report.status == "published",
                             Report.voided_at.is_(None))
    )


def status_json(report: Report, links: dict | None = None) -> dict:
    """The job's state as the status endpoint and the API show it."""
    body = {
        "id": report.id,
        "organisation_id": report.organisation_id,
        "year": report.year,
        "version": report.revision,
        "status": report.status,
        "job": report.job,
        "progress": report.progress,
        "progress_note": report.progress_note,
        "error": report.error,
        "stalled": is_stalled(report),
        "attempts": report.attempts,
        "pages": report.page_count,
        "generated_at": _iso(report.generated_at),
        "published_at": _iso(report.published_at),
        "corrects": report.corrects_id,
        "correction_reason": report.correction_reason,
        "signature": None if report.signed_at is None else {
            "name": report.signature_name, "signed_at": _iso(report.signed_at) + "Z",
            "meaning": report.signature_meaning},
        "sha256": {kind: report.sha256_of(kind) for kind in ("pdf", "csv", "json")}
        if report.has_files else None,
        "internal_sha256": {kind: report.sha256_of(kind, "internal")
                            for kind in ("pdf", "csv", "json")}
        if report.has_files and report.internal_json_sha256 else None,
        "internal_pages": report.internal_page_count,
        "country": None if not report.is_national else report.country_scope,
        "reporting_currency": report.reporting_currency,
        "exchange_rates": report.exchange_rates,
    }
    if report.has_files:
        body["exceptions"] = exceptions.status_lines(report)
    if links:
        body["links"] = links
    return body


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


# --- gathering the year's facts: the snapshot -----------------------------------------------------


@dataclass(frozen=True)
class Period:
    year: int

    @property
    def first_day(self) -> date:
        return date(self.year, 1, 1)

    @property
    def last_day(self) -> date:
        return date(self.year, 12, 31)

    @property
    def starts_at(self) -> datetime:
        return datetime(self.year, 1, 1)

    @property
    def ends_before(self) -> datetime:
        return datetime(self.year + 1, 1, 1)


def money_text(amount: Decimal | None) -> str | None:
    return None if amount is None else f"{amount:.2f}"


def _partnerships_of(organisation_id: int, side: str):
    from ..partnerships.models import Partnership

    party = Partnership.patient_group_id if side == "received" else Partnership.sponsor_id
    return select(Partnership.id).where(party == organisation_id,
                                        Partnership.voided_at.is_(None))


def _support_scope(organisation_id: int, side: str, country: str | None,
                   period: "Period") -> list:
    """The support lines a report covers: a sponsor's lines in its partnerships, or the lines
    a patient group received and confirmed; of recipients (or companies) of one country for a
    national disclosure."""
    from ..partnerships.models import Partnership, Support

    scope = [Support.voided_at.is_(None),
             Support.paid_on >= period.first_day, Support.paid_on <= period.last_day]
    if side == "received":
        scope += [Support.recipient_id == organisation_id,
                  Support.confirmed_by_partner == "confirmed"]
    else:
        scope.append(Support.partnership_id.in_(_partnerships_of(organisation_id, side)))
    if country:
        of_country = select(Organisation.id).where(Organisation.country == country)
        scope.append(Support.recipient_id.in_(of_country) if side == "given" else
                     Support.partnership_id.in_(select(Partnership.id).where(
                         Partnership.sponsor_id.in_(of_country))))
    return scope


def gather_snapshot(report: Report, generated_at: datetime, methodology_note: str | None,
                    progress=lambda percent, note=None: None) -> dict:
    """Read the year's facts for the report's organisation into plain, JSON-ready data."""
    from ..agreements.models import Agreement
    from ..interactions.models import Interaction
    from ..partnerships.models import Partnership, Support
    from ..rules.evaluation import current_policy

    organisation = report.organisation
    side = side_of(organisation)
    period = Period(report.year)
    window = current_policy().reporting.review_window_days
    asked_before = generated_at.date() - timedelta(days=window)
    progress(5, "Reading partnerships and support")
    partnership_ids = _partnerships_of(organisation.id, side)
    supports = db.session.execute(
        select(Support.id, Support.partnership_id, Support.recipient_id, Support.paid_on,
               Support.kind, Support.amount, Support.currency, Support.description,
               Support.confirmed_by_partner, Support.confirmation_note, Support.dispute_answer,
               Support.updated_at, Support.agreement_id,
               Agreement.external_id.label("agreement_reference"),
               Agreement.kind.label("agreement_kind"),
               Agreement.signed_on.label("agreement_signed_on"))
        .outerjoin(Agreement, Agreement.id == Support.agreement_id)
        .where(*_support_scope(organisation.id, side,
                               report.country_scope if report.is_national else None, period))
        .order_by(Support.paid_on, Support.id)
    ).all()
    # A group's lines may come from a partnership it is not the patient group of.
    wanted = Partnership.id.in_(partnership_ids) if side == "given" else or_(
        Partnership.id.in_(partnership_ids),
        Partnership.id.in_({row.partnership_id for row in supports}))
    partnerships = {
        row.id: row for row in db.session.execute(
            select(Partnership.id, Partnership.title, Partnership.kind, Partnership.status,
                   Partnership.sponsor_id, Partnership.patient_group_id).where(wanted)
        )
    }

    covered = or_(Interaction.organisation_id == organisation.id,
                  Interaction.partnership_id.in_(partnership_ids))
    in_year = and_(
        Interaction.voided_at.is_(None),
        Interaction.occurred_on >= period.first_day, Interaction.occurred_on <= period.last_day,
        covered,
    )
    progress(10, "Reading interactions")
    interactions = db.session.execute(
        select(Interaction.id, Interaction.title, Interaction.occurred_on, Interaction.format,
               Interaction.partnership_id, Interaction.organisation_id,
               Interaction.activity_codes, Interaction.confirmed_by_partner,
               Interaction.confirmation_note, Interaction.dispute_answer,
               Interaction.updated_at, Interaction.publishable)
        .where(in_year)
        .order_by(Interaction.occurred_on, Interaction.id)
    ).all()
    # Interactions in another sponsor's partnership that this organisation held.
    extra_ids = {row.partnership_id for row in interactions
                 if row.partnership_id and row.partnership_id not in partnerships}
    if extra_ids:
        for row in db.session.execute(
            select(Partnership.id, Partnership.title, Partnership.kind, Partnership.status,
                   Partnership.sponsor_id, Partnership.patient_group_id)
            .where(Partnership.id.in_(extra_ids))
        ):
            partnerships[row.id] = row

    progress(15, "Reading flags")
    flags = _gather_flags(in_year, partnership_ids, period)

    organisation_ids = {organisation.id} | {row.recipient_id for row in supports} | {
        p.patient_group_id for p in partnerships.values()} | {
        p.sponsor_id for p in partnerships.values()} | {
        row.organisation_id for row in interactions}
    organisations = {
        row.id: row for row in db.session.execute(
            select(Organisation.id, Organisation.name, Organisation.kind, Organisation.country,
                   Organisation.annual_income, Organisation.income_currency)
            .where(Organisation.id.in_(organisation_ids))
        )
    } if organisation_ids else {}

    progress(20, "Reading prioritised activities")
    priorities = _gather_priorities(partnerships, interactions, organisations)

    progress(25, "Putting the report together")
    snapshot = {
        "schema": SCHEMA,
        "report": {
            "id": report.stable_id,
            "organisation": {"id": f"organisation-{organisation.id}", "name": organisation.name,
                             "kind": organisation.kind, "country": organisation.country},
            "year": report.year,
            "period": {"from": period.first_day.isoformat(), "to": period.last_day.isoformat()},
            "version": report.revision,
            "status": "draft",
            "generated_at": _iso(generated_at) + "Z",
            "published_at": None,
            "corrects": None if report.corrects is None else {
                "id": report.corrects.stable_id, "version": report.corrects.revision,
                "reason": report.correction_reason},
            "scope": scope_of(report),
            "reporting_currency": report.reporting_currency,
            "side": side,
        },
        "branding": branding_of(organisation),
        "methodology": {"note": methodology_note, "rules": METHOD_RULES[side],
                        "exchange_rates": exchange_rate_list(report)},
        SECTIONS[side]: _sections(supports, partnerships, organisations, side,
                                  organisations[organisation.id], asked_before),
        "interactions": _interactions(interactions, partnerships, organisations, flags,
                                      adherence([in_year]), asked_before),
        "flags": [_flag_line(flag) for flag in flags],
        "priorities": priorities,
        "policy": policy_of_report(),
        "approval": None,
    }
    snapshot["totals"] = _totals(snapshot, report)
    snapshot["confirmation"] = _confirmation_summary(snapshot)
    snapshot["individual_payments"] = _individual_payments(organisation.id, report.year) \
        if side == "given" else None
    snapshot["exceptions"] = exceptions.find_exceptions(organisation, report.year,
                                                        generated_at.date())
    snapshot["quality"] = year_measures([covered], report.year)  # internal only
    return snapshot


def policy_of_report() -> dict:
    """The policy version in force as the report is made, and its co-creation as recorded
    (its partners' sign-offs, or plainly none)."""
    from ..rules import versions

    policy = versions.policy_in_force()
    return {"version": policy.version,
            "in_force_since": versions.in_force_since(policy).isoformat(),
            "sha256": policy.policy.digest,
            "co_creation": versions.co_creation_of(policy.version).internal_json()}


def _individual_payments(organisation_id: int, year: int) -> dict:
    """The year's fees and expenses paid to members of the public, in aggregate only (ABPI
    clause 30): by service and currency, the number of individuals and the totals. No payee
    reference leaves the database."""
    from ..payments.services import individuals_paid, yearly_aggregate

    by_service = yearly_aggregate(organisation_id, year)
    totals: dict[str, dict] = {}
    for row in by_service:
        total = totals.setdefault(row["currency"], {
            "currency": row["currency"], "payments": 0, "total_fees": Decimal("0"),
            "total_expenses": Decimal("0")})
        total["payments"] += row["payments"]
        total["total_fees"] += row["total_fees"]
        total["total_expenses"] += row["total_expenses"]
    return {
        "individuals": individuals_paid(organisation_id, year),
        "by_service": [{
            "id": f"individual-payments-{row['service']}-{row['currency']}",
            "service": row["service"], "currency": row["currency"],
            "individuals": row["individuals"], "payments": row["payments"],
            "total_fees": money_text(row["total_fees"]),
            "total_expenses": money_text(row["total_expenses"])} for row in by_service],
        "totals": [{
            "id": f"individual-payments-total-{code}", "currency": code,
            "payments": total["payments"], "total_fees": money_text(total["total_fees"]),
            "total_expenses": money_text(total["total_expenses"])}
            for code, total in sorted(totals.items())],
    }


_GIVEN_RULES = [
    "Support lines: every support entry recorded in a partnership of which the reporting "
    "organisation is the sponsor, with a payment date in the calendar year. Voided entries are "
    "left out. Each line keeps its stable id (support-N) across versions of the report.",
    "Amounts are shown as recorded, in their own currency; totals are per currency and never "
    "convert between currencies. In-kind support that cannot be valued is described instead.",
    "Contracted services are totalled per organisation and per currency.",
    "Share of income: the organisation's support to a group in the year, in the currency of the "
    "group's recorded annual income, divided by that income. It is left out when the income is "
    "not known or no support was paid in that currency.",
    "Interactions: every interaction of the year held by the reporting organisation or within "
    "one of its partnerships.",
    "Adherence: for each good-practice dimension, the share of the year's held interactions "
    "with no open or acknowledged flag of that dimension, on the interaction or its "
    "partnership, when the report is generated (a dismissed flag did not apply; a remediated "
    "one was put right). Open and acknowledged ones are counted separately.",
    "Flags: the flags raised on the year's interactions, and those raised on the "
    "organisation's partnerships that were open at some time during the year, with their "
    "state when the report was generated.",
    "Partner confirmation: each support line and each interaction within a partnership is "
    "confirmed or disputed by a representative of the partner organisation, or still awaits "
    "their answer. A line put to the partner longer ago than the review window and still "
    "unanswered is reported as not answered. A dispute the reporting side answered by keeping "
    "the record (upheld, with its reason) is counted as disputed; one the partner withdrew, "
    "and one not answered, as awaiting confirmation.",
    "Prioritised activities: the engagement activities that both sides of a partnership rated "
    "of high benefit (CTTI method), and how many of the year's interactions served each.",
    "Quality of engagement: over the year's held interactions, how many were held at each "
    "lifecycle stage; for each partnership with one, the stage of its earliest held interaction "
    "ever; how many served each patient need; those that recorded what changed because of the "
    "patients' input (“you said, we did”) and whether it was shared back; and the "
    "share whose roles and responsibilities were agreed beforehand and whose patients were "
    "offered preparation or training.",
    "Payments to individuals (ABPI clause 30): fees and expenses the reporting organisation "
    "paid in the year to patients, caregivers and other members of the public for a service, "
    "in aggregate by service and currency: the number of individuals (distinct pseudonymous "
    "payee references), total fees and total expenses. Voided payments are left out; no payee "
    "is identified.",
]
_RECEIVED_RULES = [
    "Funding received: every support line recorded by a company as paid to the reporting "
    "patient group in the calendar year and confirmed by the group's representatives. Lines "
    "still awaiting the group's answer, disputed or voided are left out. Each line keeps its "
    "stable id (support-N), the same as in the company's own disclosure.",
    "Amounts are shown as the company recorded and the group confirmed them, in their own "
    "currency; totals are per currency and never convert between currencies.",
    "Share of income: each company's funding in the year, in the currency of the group's "
    "recorded annual income, divided by that income. It is left out when the income is not "
    "known or no funding was received in that currency.",
    "Interactions: every interaction of the year within one of the group's partnerships.",
] + [rule for rule in _GIVEN_RULES if rule.startswith(("Adherence:", "Flags:",
                                                       "Partner confirmation:",
                                                       "Prioritised activities:",
                                                       "Quality of engagement:"))]
METHOD_RULES = {"given": _GIVEN_RULES, "received": _RECEIVED_RULES}


def _gather_flags(in_year, partnership_ids, period: Period) -> list:
    from ..auth.models import User
    from ..interactions.models import Interaction
    from ..rules.models import Flag

    year_interactions = select(Interaction.id).where(in_year)
    active_in_year = and_(
        Flag.raised_at < period.ends_before,
        or_(Flag.resolved_at.is_(None), Flag.resolved_at >= period.starts_at),
    )
    return db.session.execute(
        select(Flag.id, Flag.interaction_id, Flag.partnership_id, Flag.rule_id, Flag.dimension,
               Flag.severity, Flag.state, Flag.message, Flag.note, Flag.raised_at,
               Flag.resolved_at, User.name.label("resolved_by"))
        .outerjoin(User, User.id == Flag.resolved_by_id)
        .where(Flag.voided_at.is_(None),
               or_(Flag.interaction_id.in_(year_interactions),
                   and_(Flag.partnership_id.in_(partnership_ids), active_in_year)))
        .order_by(Flag.raised_at, Flag.id)
    ).all()


# The report counts a partner's answers in three: confirmed; disputed (a dispute kept, upheld
# or not, is still one); awaiting (a withdrawn dispute waits for the partner's confirmation).
ANSWER_COUNTS = {"confirmed": "confirmed", "disputed": "disputed", "upheld": "disputed",
                 "pending": "pending", "withdrawn": "pending", "not_answered": "pending"}


def _confirmation(row, asked_before: date) -> dict:
    """The partner's answer to a line; one still pending though it was put to them before the
    review window began is reported as "not answered", never as confirmed."""
    state = row.confirmed_by_partner
    if state == "pending" and row.updated_at.date() < asked_before:
        state = "not_answered"
    return {"state": state, "note": row.confirmation_note, "answer": row.dispute_answer}


def _sections(supports, partnerships, organisations, side: str, reporting,
              asked_before: date) -> list[dict]:
    """The report's lines by counterpart: by recipient for the support an organisation gave, by
    company (the partnership's sponsor) for the funding a patient group received. The share of
    income is the recipient's, or the reporting group's own."""
    by_counterpart: dict[int, list] = defaultdict(list)
    for row in supports:
        counterpart = row.recipient_id if side == "given" else \
            partnerships[row.partnership_id].sponsor_id
        by_counterpart[counterpart].append(row)
    recipients = []
    for recipient_id, rows in by_counterpart.items():
        organisation = organisations[recipient_id]
        income_of = organisation if side == "given" else reporting
        totals: dict[str, Decimal] = defaultdict(Decimal)
        contracted: dict[str, Decimal] = defaultdict(Decimal)
        contracted_descriptions: list[str] = []
        lines = []
        for row in rows:
            if row.amount is not None:
                totals[row.currency] += row.amount
                if row.kind == "contracted_service":
                    contracted[row.currency] += row.amount
            if row.kind == "contracted_service":
                contracted_descriptions.append(row.description)
            partnership = partnerships.get(row.partnership_id)
            lines.append({
                "id": f"support-{row.id}",
                "paid_on": row.paid_on.isoformat(),
                "kind": row.kind,
                "amount": money_text(row.amount),
                "currency": row.currency,
                "description": row.description,
                "partnership": {"id": f"partnership-{row.partnership_id}",
                                "title": partnership.title if partnership else None},
                "confirmation": _confirmation(row, asked_before),
                "agreement": None if row.agreement_id is None else {
                    "id": f"agreement-{row.agreement_id}",
                    "reference": row.agreement_reference, "kind": row.agreement_kind,
                    "signed_on": row.agreement_signed_on.isoformat()
                    if row.agreement_signed_on else None},
            })
        recipients.append({
            "id": f"organisation-{recipient_id}",
            "name": organisation.name,
            "kind": organisation.kind,
            "country": organisation.country,
            "annual_income": money_text(organisation.annual_income),
            "income_currency": organisation.income_currency,
            "totals": _currency_list(totals),
            "contracted_services": {
                "totals": _currency_list(contracted),
                "descriptions": contracted_descriptions,
            } if contracted_descriptions else None,
            "share_of_income": _share_of_income(income_of, totals),
            "lines": lines,
        })
    recipients.sort(key=lambda item: (item["name"].casefold(), item["id"]))
    return recipients


def _currency_list(amounts: dict[str, Decimal]) -> list[dict]:
    return [{"currency": currency, "amount": money_text(amount)}
            for currency, amount in sorted(amounts.items())]


def _share_of_income(organisation, totals: dict[str, Decimal]) -> dict | None:
    income, currency = organisation.annual_income, organisation.income_currency
    if not income or not currency or currency not in totals:
        return None
    percent = (totals[currency] * 100 / income).quantize(Decimal("0.1"))
    return {"percent": str(percent), "support": money_text(totals[currency]),
            "annual_income": money_text(income), "currency": currency,
            "other_currencies_left_out": sorted(set(totals) - {currency})}


def scope_of(report: Report) -> dict:
    if not report.is_national:
        return {"country": None, "label": "All countries"}
    import pycountry

    country = pycountry.countries.get(alpha_2=report.country_scope)
    name = country.name if country else report.country_scope
    return {"country": report.country_scope, "label": f"{name} ({report.country_scope})"}


def branding_of(organisation: Organisation) -> dict:
    return {"colour": organisation.brand_colour,
            "logo": None if not organisation.logo_sha256 else {
                "sha256": organisation.logo_sha256, "media_type": organisation.logo_media_type}}


def exchange_rate_list(report: Report) -> list[dict]:
    if not report.reporting_currency:
        return []
    return [{"currency": code, "rate": rate, "into": report.reporting_currency}
            for code, rate in sorted((report.exchange_rates or {}).items())]


def _converted(by_kind: dict[tuple[str, str], Decimal], report: Report) -> dict | None:
    """The totals in the reporting currency, at the report's rates (None without one)."""
    into = report.reporting_currency
    if not into:
        return None
    rates = {code: Decimal(rate) for code, rate in (report.exchange_rates or {}).items()}
    rates[into] = Decimal(1)
    missing = sorted({currency for _kind, currency in by_kind} - set(rates))
    if missing:
        raise ValidationFailed({"exchange_rates": [
            f"No rate into {into} for {', '.join(missing)}: ask for the report again with a "
            "rate for every currency paid in the year."]})
    kinds: dict[str, Decimal] = defaultdict(Decimal)
    for (kind, currency), amount in by_kind.items():
        kinds[kind] += (amount * rates[currency]).quantize(Decimal("0.01"))
    return {"currency": into, "total": money_text(sum(kinds.values(), Decimal(0))),
            "by_kind": [{"kind": kind, "amount": money_text(kinds[kind])}
                        for kind in SUPPORT_KINDS if kind in kinds]}


def _totals(snapshot: dict, report: Report) -> dict:
    recipients = sections(snapshot)
    totals: dict[str, Decimal] = defaultdict(Decimal)
    by_kind: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    unvalued = 0
    lines = 0
    for recipient in recipients:
        for line in recipient["lines"]:
            lines += 1
            if line["amount"] is None:
                unvalued += 1
                continue
            amount = Decimal(line["amount"])
            totals[line["currency"]] += amount
            by_kind[(line["kind"], line["currency"])] += amount
    return {
        SECTIONS[snapshot["report"]["side"]]: len(recipients),
        "lines": lines,
        "unvalued_lines": unvalued,
        "by_currency": _currency_list(totals),
        "by_kind": [{"kind": kind, "currency": currency, "amount": money_text(amount)}
                    for (kind, currency), amount in sorted(
                        by_kind.items(), key=lambda item: (list(SUPPORT_KINDS).index(
                            item[0][0]), item[0][1]))],
        "in_reporting_currency": _converted(by_kind, report),
    }


def _interactions(rows, partnerships, organisations, flags, adherence_rows,
                  asked_before: date) -> dict:
    """The year's interactions by partnership, with their flags, and adherence per dimension
    (review/adherence.py: over the held ones)."""
    flags_of: dict[int, list[str]] = defaultdict(list)
    for flag in flags:
        if flag.interaction_id is not None:
            flags_of[flag.interaction_id].append(f"flag-{flag.id}")
    total = len(rows)
    groups: dict[int | None, list[dict]] = defaultdict(list)
    for row in rows:
        groups[row.partnership_id].append({
            "id": f"interaction-{row.id}",
            "occurred_on": row.occurred_on.isoformat(),
            "title": row.title,
            "format": row.format,
            "organisation": organisations[row.organisation_id].name
            if row.organisation_id in organisations else None,
            "flags": flags_of.get(row.id, []),
            "publishable": bool(row.publishable),
            # Outside a partnership there is no partner to confirm or dispute.
            "confirmation": _confirmation(row, asked_before) if row.partnership_id else None,
        })
    by_partnership = []
    for partnership_id, lines in groups.items():
        partnership = partnerships.get(partnership_id)
        partner = organisations.get(partnership.patient_group_id) if partnership else None
        states = Counter(ANSWER_COUNTS[line["confirmation"]["state"]]
                         for line in lines if line["confirmation"])
        by_partnership.append({
            "id": f"partnership-{partnership_id}" if partnership_id else "no-partnership",
            "title": partnership.title if partnership else None,
            "partner": partner.name if partner else None,
            "confirmation": {state: states.get(state, 0)
                             for state in ("confirmed", "disputed", "pending")},
            "lines": lines,
        })
    by_partnership.sort(key=lambda group: (group["title"] is None,
                                           (group["title"] or "").casefold(), group["id"]))
    formats = Counter(row.format for row in rows)
    return {
        "count": total,
        "by_format": [{"format": key, "count": formats[key]}
                      for key in INTERACTION_FORMATS if formats.get(key)],
        "adherence": [row.as_report_row() for row in adherence_rows],
        "partnerships": by_partnership,
    }


def _flag_line(flag) -> dict:
    return {
        "id": f"flag-{flag.id}",
        "rule": flag.rule_id,
        "dimension": flag.dimension,
        "severity": flag.severity,
        "subject": f"interaction-{flag.interaction_id}" if flag.interaction_id is not None
        else f"partnership-{flag.partnership_id}",
        "message": flag.message,
        "raised_at": _iso(flag.raised_at) + "Z",
        "state": flag.state,
        "note": flag.note,
        "resolved_at": _iso(flag.resolved_at) + "Z" if flag.resolved_at else None,
        "resolved_by": flag.resolved_by,
    }


def _gather_priorities(partnerships, interactions, organisations) -> list[dict]:
    """Each partnership's priorities to pursue (CTTI: high benefit for a low investment to both
    sides, by its default pair of exercises) and the year's interactions that served them."""
    from ..activities.services import pursue_priorities_of

    priorities = pursue_priorities_of(partnerships)
    if not priorities:
        return []
    served: dict[tuple[int, str], list[date]] = defaultdict(list)
    for row in interactions:
        for code in row.activity_codes or []:
            served[(row.partnership_id, code)].append(row.occurred_on)
    lines = []
    for partnership_id, mutual in priorities.items():
        partnership = partnerships[partnership_id]
        partner = organisations.get(partnership.patient_group_id)
        for row in mutual:
            days = served.get((partnership_id, row.code), [])
            lines.append({
                "id": f"priority-{partnership_id}-{row.code}",
                "partnership": {"id": f"partnership-{partnership_id}",
                                "title": partnership.title,
                                "partner": partner.name if partner else None},
                "activity_code": row.code,
                "activity": row.name,
                "interactions_in_year": len(days),
                "last_worked_on": max(days).isoformat() if days else None,
            })
    lines.sort(key=lambda line: (line["partnership"]["title"].casefold(), line["id"]))
    return lines


def _confirmation_summary(snapshot: dict) -> dict:
    support: dict[str, dict] = {state: {"lines": 0, "amounts": defaultdict(Decimal)}
                                for state in ("confirmed", "disputed", "pending")}
    for recipient in sections(snapshot):
        for line in recipient["lines"]:
            entry = support[ANSWER_COUNTS[line["confirmation"]["state"]]]
            entry["lines"] += 1
            if line["amount"] is not None:
                entry["amounts"][line["currency"]] += Decimal(line["amount"])
    interactions = Counter()
    outside = 0
    for group in snapshot["interactions"]["partnerships"]:
        for line in group["lines"]:
            if line["confirmation"] is None:
                outside += 1
            else:
                interactions[ANSWER_COUNTS[line["confirmation"]["state"]]] += 1
    return {
        "support": {state: {"lines": entry["lines"],
                            "amounts": _currency_list(entry["amounts"])}
                    for state, entry in support.items()},
        "interactions": {state: interactions.get(state, 0)
                         for state in ("confirmed", "disputed", "pending")},
        "interactions_outside_partnerships": outside,
    }


def with_approval(snapshot: dict, report: Report, published_at: datetime,
                  audit_head: audit.Head) -> dict:
    """Return the snapshot as published: signed, with its publication time and the audit
    chain's head then (an anchor of the chain outside the database: `verify-audit --expect`)."""
    signed = dict(snapshot)
    signed["report"] = dict(snapshot["report"], status="published",
                            published_at=_iso(published_at) + "Z")
    signed["approval"] = {"name": report.signature_name,
                          "signed_at": _iso(report.signed_at) + "Z",
                          "meaning": report.signature_meaning,
                          "audit_head": audit_head.as_json()}
    signed["exceptions"] = exceptions.gate(report, snapshot)
    return signed
