"""The gate before a report is signed: its exceptions, and their acknowledgement.

The draft job finds the year's exceptions (`find_exceptions`) and freezes them in the draft's
snapshot. Each is put right in the records (and the draft generated again) or acknowledged
with a reason by a compliance officer; the signature is refused while one is neither. The
acknowledgements are printed in the internal report as published.
"""

from collections import defaultdict
from datetime import date, datetime, timedelta

from sqlalchemy import ForeignKey, Index, String, Text, and_, or_, select, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .. import audit, storage
from ..database import utcnow
from ..errors import Conflict, ValidationFailed
from ..extensions import db
from ..organisations.models import Organisation
from ..permissions import can_make_reports, require
from ..records import Record
from ..validation import Input, required_text
from ..vocabulary import SUPPORT_KINDS
from .models import Report, side_of

REASON_MAX = 1000
# An in-kind line with no value must describe the benefit in at least this many characters.
BENEFIT_DESCRIPTION_MIN = 20

KINDS = {
    "support_pending": "Awaiting the partner's answer",
    "support_not_answered": "Not answered within the review window",
    "support_disputed": "Disputed by the partner",
    "support_upheld": "Kept after the partner's dispute",
    "no_agreement": "No written agreement",
    "outside_agreement_term": "Paid outside the agreement's term",
    "outside_partnership_dates": "Paid outside the partnership's dates",
    "likely_duplicate": "Likely duplicate",
    "in_kind_undescribed": "In-kind support neither valued nor described",
    "open_high_flag": "Open high-severity flag",
    "no_methodology_note": "Methodology note missing or incomplete",
}


class AcknowledgementRequest(Input):
    """Why the report may be published with the exception left as it is."""

    reason = required_text(REASON_MAX)


class ExceptionAcknowledgement(Record, db.Model):
    """A compliance officer's reason for publishing a report with one of its exceptions left
    as it is. Never deleted: withdrawing one voids it."""

    __tablename__ = "report_exception_acknowledgements"

    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id"), index=True)
    key: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    acknowledged_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    acknowledged_at: Mapped[datetime] = mapped_column(default=utcnow)

    report: Mapped[Report] = relationship()
    acknowledged_by = relationship("User")

    __table_args__ = (
        # One live acknowledgement per exception of a report.
        Index("uq_report_exception_acknowledgements_live", "report_id", "key", unique=True,
              sqlite_where=text("voided_at IS NULL"), postgresql_where=text("voided_at IS NULL")),
    )

    def __str__(self) -> str:
        return f"Acknowledgement of {self.key}"


# --- finding the exceptions -----------------------------------------------------------------------


def find_exceptions(organisation: Organisation, year: int, today: date) -> list[dict]:
    """The exceptions of an organisation's year, over the records its report covers: the
    support lines of its partnerships paid in the year and the year's interactions held by it
    or within its partnerships. A few set-based queries, whatever the number of lines."""
    from ..rules.evaluation import current_policy

    window = current_policy().reporting.review_window_days
    if side_of(organisation) == "received":
        found = _received_exceptions(organisation.id, year, today, window)
    else:
        found = _support_exceptions(organisation.id, year, today, window)
        found += _flag_exceptions(organisation.id, year)
    return found + _methodology_exceptions(organisation)


def _exception(kind: str, subject: str, message: str, fix) -> dict:
    key = f"{kind}:{subject}"
    return {"id": f"exception-{key}", "key": key, "kind": kind, "subject": subject,
            "message": message, "fix": fix}


def _partnership_ids(organisation_id: int):
    from ..partnerships.models import Partnership

    return select(Partnership.id).where(Partnership.sponsor_id == organisation_id,
                                        Partnership.voided_at.is_(None))


def _support_rows(organisation_id: int, year: int):
    from ..agreements.models import Agreement
    from ..partnerships.models import Partnership, Support

    return db.session.execute(
        select(Support.id, Support.recipient_id, Support.paid_on, Support.kind, Support.amount,
               Support.currency, Support.description, Support.confirmed_by_partner,
               Support.dispute_answer, Support.updated_at, Organisation.name.label("recipient"),
               Agreement.id.label("agreement_id"), Agreement.starts_on, Agreement.ends_on,
               Partnership.title.label("partnership"), Partnership.started_on,
               Partnership.ended_on)
        .join(Partnership, Partnership.id == Support.partnership_id)
        .join(Organisation, Organisation.id == Support.recipient_id)
        .outerjoin(Agreement, and_(Agreement.id == Support.agreement_id,
                                   Agreement.voided_at.is_(None)))
        .where(Support.partnership_id.in_(_partnership_ids(organisation_id)),
               Support.voided_at.is_(None),
               Support.paid_on >= date(year, 1, 1), Support.paid_on <= date(year, 12, 31))
        .order_by(Support.paid_on, Support.id)
    ).all()


def _support_exceptions(organisation_id: int, year: int, today: date,
                        window_days: int) -> list[dict]:
    found = []
    seen: dict[tuple, int] = {}
    for row in _support_rows(organisation_id, year):
        subject = f"support-{row.id}"
        fix = {"endpoint": "partnerships.edit_support", "values": {"support_id": row.id}}
        name = _line_name(row, f"to {row.recipient}")
        for kind, message in _line_problems(row, name, today, window_days):
            found.append(_exception(kind, subject, message, fix))
        if row.amount is not None:
            same = (row.recipient_id, row.paid_on, row.currency, row.amount)
            if same in seen:
                found.append(_exception(
                    "likely_duplicate", subject,
                    f"{name} has the same recipient, date and amount as support-{seen[same]}: "
                    "it may have been recorded twice.", fix))
            else:
                seen[same] = row.id
    return found


def _received_exceptions(group_id: int, year: int, today: date,
                         window_days: int) -> list[dict]:
    """A patient group's report holds the lines it confirmed: each line of the year it has not
    confirmed is left out of it, and is an exception until answered or acknowledged."""
    from ..partnerships.models import Partnership, Support

    rows = db.session.execute(
        select(Support.id, Support.paid_on, Support.kind, Support.amount, Support.currency,
               Support.confirmed_by_partner, Support.dispute_answer, Support.updated_at,
               Organisation.name.label("company"))
        .join(Partnership, Partnership.id == Support.partnership_id)
        .join(Organisation, Organisation.id == Partnership.sponsor_id)
        .where(Support.recipient_id == group_id, Support.voided_at.is_(None),
               Support.confirmed_by_partner != "confirmed",
               Support.paid_on >= date(year, 1, 1), Support.paid_on <= date(year, 12, 31))
        .order_by(Support.paid_on, Support.id)
    ).all()
    found = []
    for row in rows:
        name = _line_name(row, f"from {row.company}")
        problems = _confirmation_problems(row, name, today, window_days, "you")
        fix = {"endpoint": "confirmations.confirm_support", "values": {"support_id": row.id}}
        found += [_exception(problem, f"support-{row.id}", message + " It is left out of "
                             "this report until it is confirmed.", fix)
                  for problem, message in problems]
    return found


def _confirmation_problems(row, name: str, today: date, window_days: int,
                           answerer: str = "the partner"):
    """The review window counts from the line's last change: when it was last put to the
    partner (recorded, corrected, or its dispute withdrawn)."""
    if row.confirmed_by_partner in ("pending", "withdrawn"):
        answer_by = row.updated_at.date() + timedelta(days=window_days)
        if today > answer_by:
            yield ("support_not_answered",
                   f"{name} has not been answered by {answerer} within the review window of "
                   f"{window_days} days (put to {answerer} on {_day(row.updated_at.date())}).")
        else:
            yield "support_pending", f"{name} is still awaiting an answer from {answerer}."
    elif row.confirmed_by_partner == "disputed":
        yield "support_disputed", f"{name} is disputed by {answerer}."
    elif row.confirmed_by_partner == "upheld":
        yield ("support_upheld", f"{name} was disputed by {answerer} and kept unchanged: "
                                 f"“{row.dispute_answer}”.")


def _line_problems(row, name: str, today: date, window_days: int):
    yield from _confirmation_problems(row, name, today, window_days)
    if row.agreement_id is None:
        yield "no_agreement", f"{name} is not linked to a written agreement."
    elif (row.starts_on and row.paid_on < row.starts_on) or \
            (row.ends_on and row.paid_on > row.ends_on):
        term = _term(row.starts_on, row.ends_on)
        yield ("outside_agreement_term",
               f"{name} falls outside the term of its agreement ({term}).")
    if (row.started_on and row.paid_on < row.started_on) or \
            (row.ended_on and row.paid_on > row.ended_on):
        yield ("outside_partnership_dates",
               f"{name} falls outside the dates of the partnership “{row.partnership}” "
               f"({_term(row.started_on, row.ended_on)}).")
    if row.kind == "in_kind" and row.amount is None and \
            len((row.description or "").strip()) < BENEFIT_DESCRIPTION_MIN:
        yield ("in_kind_undescribed",
               f"{name} has neither a value nor a description of the benefit "
               f"(“{row.description.strip()}”).")


def _line_name(row, counterpart: str) -> str:
    """"The grant of GBP 5,000.00 to Rare Lung Alliance paid on 3 Mar 2025" (counterpart: "to
    …" or "from …")."""
    kind = SUPPORT_KINDS.get(row.kind, row.kind)
    value = f" of {row.currency} {row.amount:,.2f}" if row.amount is not None else ""
    return f"The {kind[0].lower() + kind[1:]}{value} {counterpart} paid on {_day(row.paid_on)}"


def _day(value: date) -> str:
    return f"{value.day} {value:%b %Y}"


def _term(starts_on: date | None, ends_on: date | None) -> str:
    if starts_on and ends_on:
        return f"{_day(starts_on)} to {_day(ends_on)}"
    return f"from {_day(starts_on)}" if starts_on else f"until {_day(ends_on)}"


def _flag_exceptions(organisation_id: int, year: int) -> list[dict]:
    from ..interactions.models import Interaction
    from ..rules.models import Flag

    rows = db.session.execute(
        select(Flag.id, Flag.interaction_id, Flag.message, Interaction.title,
               Interaction.occurred_on)
        .join(Interaction, Interaction.id == Flag.interaction_id)
        .where(Flag.voided_at.is_(None), Flag.state == "open", Flag.severity == "high",
               Interaction.voided_at.is_(None),
               Interaction.occurred_on >= date(year, 1, 1),
               Interaction.occurred_on <= date(year, 12, 31),
               or_(Interaction.organisation_id == organisation_id,
                   Interaction.partnership_id.in_(_partnership_ids(organisation_id))))
        .order_by(Interaction.occurred_on, Interaction.id, Flag.id)
    ).all()
    flags = defaultdict(list)
    for row in rows:
        flags[row.interaction_id].append(row)
    found = []
    for interaction_id, open_flags in flags.items():
        first = open_flags[0]
        count = len(open_flags)
        found.append(_exception(
            "open_high_flag", f"interaction-{interaction_id}",
            f"The interaction “{first.title}” of {_day(first.occurred_on)} has "
            + (f"an open high-severity flag: {first.message}" if count == 1 else
               f"{count} open high-severity flags, the first: {first.message}"),
            {"endpoint": "review.flag", "values": {"flag_id": first.id}}))
    return found


def _methodology_exceptions(organisation: Organisation) -> list[dict]:
    from .services import missing_methodology_topics

    note = (organisation.methodology_note or "").strip()
    missing = missing_methodology_topics(note)
    if note and not missing:
        return []
    message = (f"{organisation.name} has no methodology note." if not note else
               f"The methodology note of {organisation.name} does not say "
               + "; ".join(missing) + ".")
    return [_exception("no_methodology_note", f"organisation-{organisation.id}", message,
                       {"endpoint": "reports.methodology",
                        "values": {"organisation_id": organisation.id}})]


# --- the gate -------------------------------------------------------------------------------------


def draft_snapshot(report: Report) -> dict:
    """The snapshot of the report's generated files (the draft's, or as published)."""
    from .artefacts import snapshot_from_json

    return snapshot_from_json(storage.REPORTS.read(report.snapshot_sha256))


def exceptions_of(snapshot: dict) -> list[dict]:
    """The exceptions frozen in a snapshot (none in one generated before the gate existed)."""
    return snapshot.get("exceptions") or []


def acknowledgements(report: Report) -> dict[str, dict]:
    """The report's live acknowledgements by exception key: reason, by (name) and at (UTC)."""
    from ..auth.models import User

    rows = db.session.execute(
        select(ExceptionAcknowledgement.key, ExceptionAcknowledgement.reason,
               ExceptionAcknowledgement.acknowledged_at, User.name)
        .join(User, User.id == ExceptionAcknowledgement.acknowledged_by_id)
        .where(ExceptionAcknowledgement.report_id == report.id,
               ExceptionAcknowledgement.voided_at.is_(None))
    ).all()
    return {row.key: {"reason": row.reason, "by": row.name,
                      "at": row.acknowledged_at.isoformat(timespec="seconds") + "Z"}
            for row in rows}


def gate(report: Report, snapshot: dict) -> list[dict]:
    """Each exception of the snapshot with its acknowledgement (or None). Acknowledgements of
    exceptions that regenerating the draft put right are left out."""
    given = acknowledgements(report)
    return [dict(exception, acknowledgement=given.get(exception["key"]))
            for exception in exceptions_of(snapshot)]


def check_gate(report: Report, snapshot: dict) -> None:
    """Refuse the signature while an exception is neither fixed nor acknowledged."""
    left = [item for item in gate(report, snapshot) if item["acknowledgement"] is None]
    if not left:
        return
    listed = "; ".join(item["message"] for item in left[:3])
    more = f"; and {len(left) - 3} more" if len(left) > 3 else ""
    noun = "exception is" if len(left) == 1 else "exceptions are"
    raise ValidationFailed({"exceptions": [
        f"{len(left)} {noun} neither fixed nor acknowledged: {listed}{more}. Put each right "
        "and generate the draft again, or acknowledge it with a reason."]},
        "The report has exceptions left to fix or acknowledge.")


def _open_draft(report: Report, actor) -> dict:
    require(can_make_reports, actor, report.organisation_id)
    if report.is_void:
        raise Conflict("This report has been voided.")
    if report.status != "done" or report.job != "generate" or not report.has_files:
        raise Conflict("Exceptions are acknowledged on a generated draft, before it is "
                       "signed.")
    return draft_snapshot(report)


def _exception_of(snapshot: dict, key) -> dict:
    for exception in exceptions_of(snapshot):
        if exception["key"] == key:
            return exception
    raise ValidationFailed({"key": ["This is not one of the draft's exceptions; generate the "
                                    "draft again if the records changed."]})


def _live_acknowledgement(report: Report, key: str) -> ExceptionAcknowledgement | None:
    return db.session.scalar(
        select(ExceptionAcknowledgement).where(
            ExceptionAcknowledgement.report_id == report.id,
            ExceptionAcknowledgement.key == key,
            ExceptionAcknowledgement.voided_at.is_(None)))


def _clean_reason(reason) -> str:
    if reason is not None and not isinstance(reason, str):
        raise ValidationFailed({"reason": ["Give the reason as text."]})
    clean = (reason or "").strip()
    if not clean:
        raise ValidationFailed({"reason": ["Say why the report may be published with this "
                                           "exception left as it is."]})
    if len(clean) > REASON_MAX:
        raise ValidationFailed({"reason": [f"Keep the reason under {REASON_MAX:,} "
                                           "characters."]})
    return clean


def acknowledge(report: Report, key, reason, actor) -> dict:
    """Acknowledge one of the draft's exceptions with a reason (replacing an earlier
    acknowledgement of it); return the exception with its acknowledgement."""
    snapshot = _open_draft(report, actor)
    exception = _exception_of(snapshot, key)
    clean = _clean_reason(reason)
    earlier = _live_acknowledgement(report, key)
    if earlier is not None:
        audit.set_reason("Acknowledgement replaced by a new one")
        earlier.voided_at = utcnow()
        earlier.void_reason = "Replaced by a new acknowledgement"
        db.session.flush()
    _add_acknowledgement(report, key, clean, actor)
    return dict(exception, acknowledgement=acknowledgements(report)[key])


def _add_acknowledgement(report: Report, key: str, reason: str, actor) -> None:
    audit.set_reason(f"Exception acknowledged before signature: {key}")
    db.session.add(ExceptionAcknowledgement(
        report_id=report.id, key=key, reason=reason, acknowledged_by_id=actor.id,
        acknowledged_at=utcnow().replace(microsecond=0)))
    db.session.flush()


def withdraw_acknowledgement(report: Report, key, actor) -> dict:
    """Withdraw the acknowledgement of an exception (it is voided, not deleted)."""
    snapshot = _open_draft(report, actor)
    exception = _exception_of(snapshot, key)
    earlier = _live_acknowledgement(report, key)
    if earlier is None:
        raise ValidationFailed({"key": ["This exception is not acknowledged."]})
    audit.set_reason(f"Acknowledgement withdrawn: {key}")
    earlier.voided_at = utcnow()
    earlier.void_reason = f"Withdrawn by {actor.name}"
    db.session.flush()
    return dict(exception, acknowledgement=None)


def acknowledge_all(report: Report, actor, reason: str = "Reviewed and accepted as it is.") \
        -> int:
    """Acknowledge every exception of the draft not yet acknowledged (the tests and the demo
    use it before publishing); return how many."""
    snapshot = _open_draft(report, actor)
    clean = _clean_reason(reason)
    left = [item["key"] for item in gate(report, snapshot) if item["acknowledgement"] is None]
    audit.set_reason("Exceptions acknowledged before signature, all at once")
    now = utcnow().replace(microsecond=0)
    db.session.add_all(ExceptionAcknowledgement(
        report_id=report.id, key=key, reason=clean, acknowledged_by_id=actor.id,
        acknowledged_at=now) for key in left)
    db.session.flush()
    return len(left)


def status_lines(report: Report) -> list[dict]:
    """The exceptions as the status endpoint and the API list them."""
    return [{"id": item["id"], "key": item["key"], "kind": item["kind"],
             "subject": item["subject"], "message": item["message"],
             "acknowledged": item["acknowledgement"] is not None}
            for item in gate(report, draft_snapshot(report))]

