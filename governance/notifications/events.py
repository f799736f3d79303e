"""What each event tells whom: the one place that words every notification.

Services call these in the transaction of their change; the daily run calls the reminders.
Nobody is told of what they did themselves.
"""

from datetime import date, datetime, timedelta

from flask import current_app, has_request_context, url_for
from sqlalchemy import func, select

from ..extensions import db
from .services import RECORDING_ROLES, notify, others, people_of


def _path(endpoint: str, **values) -> str:
    """The path of a page, in a request or in the task worker (which has none)."""
    if has_request_context():
        return url_for(endpoint, **values)
    return current_app.url_map.bind("localhost").build(endpoint, values)


def _plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def _what(record) -> tuple[str, str]:
    """The record's kind in words and its reference (support-N, interaction-N)."""
    from ..partnerships.models import Support

    if isinstance(record, Support):
        return "support line", f"support-{record.id}"
    return "interaction", f"interaction-{record.id}"


def _partner_organisation_ids(record) -> list[int]:
    """Who answers for a record: a support line's recipient; the other parties of an
    interaction's partnership."""
    from ..partnerships.models import Support

    if isinstance(record, Support):
        return [record.recipient_id]
    partnership = record.partnership
    if partnership is None:
        return []
    return [org_id for org_id in partnership.organisation_ids
            if org_id != record.organisation_id]


def _recording_organisation_id(record) -> int:
    from ..confirmations.services import reporting_organisation_id

    return reporting_organisation_id(record)


# --- confirmations and disputes ------------------------------------------------------------


def confirmation_requested(organisation_ids, today: date) -> int:
    """Partners have new records to confirm: one notification a day per partner user, however
    many records were put to them that day (an import of thousands sends one)."""
    users = others(people_of(organisation_ids, ("partner",)))
    return notify(users, "confirmation_requested", "New records for you to confirm",
                  "Your partner recorded support or interactions with your organisation. "
                  "Confirm each one if it is right, or dispute it with a note.",
                  _path("confirmations.confirmations"), key=f"confirm:{today.isoformat()}")


def confirmation_requested_for(record, today: date) -> int:
    return confirmation_requested(_partner_organisation_ids(record), today)


def confirmation_requested_by_import(interactions: list[dict], today: date) -> int:
    """Interactions imported at once: their partnerships' other parties are told."""
    from ..partnerships.models import Partnership

    recorders = {}
    for row in interactions:
        if row.get("partnership_id") is not None:
            recorders.setdefault(row["partnership_id"], set()).add(row["organisation_id"])
    if not recorders:
        return 0
    partners = set()
    for partnership in db.session.scalars(select(Partnership).where(
            Partnership.id.in_(recorders))):
        partners |= set(partnership.organisation_ids) - recorders[partnership.id]
    return confirmation_requested(partners, today)


def dispute_raised(record, note: str | None) -> int:
    noun, reference = _what(record)
    users = others(people_of([_recording_organisation_id(record)], RECORDING_ROLES))
    return notify(users, "dispute_raised", f"A partner disputed {reference}",
                  f"The partner disputed this {noun}: {note or '(no note)'} Correct it, or keep "
                  "it with your reason, from the disputes queue.",
                  _path("confirmations.disputes"))


def dispute_answered(record, how: str) -> int:
    """`how`: "upheld" (kept, with its reason) or "corrected" (changed; to confirm again)."""
    noun, reference = _what(record)
    if how == "upheld":
        subject = f"Your dispute of {reference} was answered: kept unchanged"
        body = (f"The recording side kept the {noun} unchanged: {record.dispute_answer} "
                "Confirm it, or dispute it again with a note.")
    else:
        subject = f"Your dispute of {reference} was answered: corrected"
        body = f"The recording side corrected the {noun}. Check it and confirm or dispute it."
    link = _path("confirmations.confirm_support", support_id=record.id) if noun == \
        "support line" else _path("confirmations.confirm_interaction",
                                    interaction_id=record.id)
    users = others(people_of(_partner_organisation_ids(record), ("partner",)))
    return notify(users, "dispute_answered", subject, body, link)


def dispute_withdrawn(record) -> int:
    noun, reference = _what(record)
    users = others(people_of([_recording_organisation_id(record)], RECORDING_ROLES))
    return notify(users, "dispute_withdrawn", f"The partner withdrew its dispute of {reference}",
                  f"The partner took back its dispute of this {noun}; it waits for their "
                  "confirmation again.", _path("confirmations.disputes"))


# --- plans ---------------------------------------------------------------------------------


def plan_submitted(interaction) -> int:
    users = others(people_of([interaction.organisation_id], ("compliance",)))
    return notify(users, "plan_submitted", f"A plan awaits your approval: {interaction.title}",
                  f"{interaction.title} on {interaction.occurred_on:%-d %B %Y} was submitted "
                  "for approval before it takes place.",
                  _path("review.approval", interaction_id=interaction.id))


def plan_decided(interaction) -> int:
    decision = interaction.approval_decision
    note = f" {interaction.approval_note}" if interaction.approval_note else ""
    users = others({interaction.submitted_by_id, interaction.created_by_id} - {None})
    return notify(users, "plan_decided", f"Your plan was {decision}: {interaction.title}",
                  f"A compliance officer {decision} the plan of {interaction.title} on "
                  f"{interaction.occurred_on:%-d %B %Y}.{note}",
                  _path("interactions.view", interaction_id=interaction.id))


# --- flags ---------------------------------------------------------------------------------


def flags_raised_on(interaction, count: int) -> int:
    """Flags were raised on an interaction by someone other than the advocate who logged it
    (a re-check, another person's edit)."""
    if not count or interaction.created_by_id is None:
        return 0
    return notify(others([interaction.created_by_id]), "flags_raised",
                  f"{_plural(count, 'flag')} raised on {interaction.title}",
                  "The policy's rules flagged the interaction you logged. Open it to see why, "
                  "and put it right or explain it to compliance.",
                  _path("interactions.view", interaction_id=interaction.id))


def flags_raised_since(since: datetime, day: date) -> int:
    """Tell each advocate of the flags the day's re-evaluation raised on their interactions
    (one notification per advocate and day); return how many advocates were told."""
    from ..interactions.models import Interaction
    from ..rules.models import Flag

    rows = db.session.execute(
        select(Interaction.created_by_id, func.count(Flag.id),
               func.count(func.distinct(Flag.interaction_id)))
        .join(Interaction, Interaction.id == Flag.interaction_id)
        .where(Flag.raised_at >= since, Flag.state == "open", Flag.voided_at.is_(None),
               Interaction.created_by_id.is_not(None))
        .group_by(Interaction.created_by_id)).all()
    told = 0
    for user_id, flags, interactions in rows:
        told += notify([user_id], "flags_raised",
                       f"{_plural(flags, 'new flag')} on {_plural(interactions, 'interaction')} "
                       "you logged",
                       "Today's check against the policy's rules (deadlines count days) raised "
                       "new flags on interactions you logged. Open your interactions to see "
                       "them.", _path("interactions.index"), key=f"flags:{day.isoformat()}")
    return told


# --- reminders of the daily run ------------------------------------------------------------


def documentation_due(day: date) -> int:
    """Remind each advocate of the summaries and feedback due within
    DOCUMENTATION_REMINDER_DAYS, by the deadlines of the documentation rules (DOC-NO-SUMMARY,
    DOC-NO-FEEDBACK); once per interaction and deadline. Return how many were written."""
    from ..interactions.models import Interaction
    from ..rules.evaluation import current_policy

    rules = current_policy().rules
    window = current_app.config["DOCUMENTATION_REMINDER_DAYS"]
    written = 0
    for rule_id, missing, what in (
            ("DOC-NO-SUMMARY", Interaction.summary_recorded_on, "summary"),
            ("DOC-NO-FEEDBACK", Interaction.outcomes_shared_on, "feedback to participants")):
        rule = rules.get(rule_id)
        if rule is None or getattr(rule.spec, "retired", False):
            continue
        max_days = int(rule.spec.thresholds["max_days"].value)
        # held between (max_days - window) and max_days days ago: the deadline is ahead
        earliest, latest = day - timedelta(days=max_days), day - timedelta(
            days=max(max_days - window, 0))
        conditions = [Interaction.status == "held", Interaction.voided_at.is_(None),
                      Interaction.created_by_id.is_not(None), missing.is_(None),
                      Interaction.occurred_on.between(earliest, latest)]
        if what == "summary":
            conditions.append(Interaction.summary.is_(None) | (Interaction.summary == ""))
        for interaction in db.session.scalars(select(Interaction).where(*conditions)):
            deadline = interaction.occurred_on + timedelta(days=max_days)
            left = (deadline - day).days
            when = "today" if left == 0 else f"in {_plural(left, 'day')}"
            written += notify(
                [interaction.created_by_id], "documentation_due",
                f"The {what} of {interaction.title} is due {when}",
                f"{interaction.title} was held on {interaction.occurred_on:%-d %B %Y}. Its "
                f"{what} is due by {deadline:%-d %B %Y} ({max_days} days after it), or the "
                f"{rule_id} rule flags it.",
                _path("interactions.edit", interaction_id=interaction.id),
                key=f"{rule_id}:{interaction.id}")
    return written


def reports_due(day: date) -> int:
    """Remind each organisation's compliance officers of its reports due soon or overdue (the
    reporting reminder period); once when due soon and once when overdue."""
    from ..organisations.models import Organisation
    from ..reports import due

    organisations = db.session.scalars(select(Organisation).where(
        Organisation.voided_at.is_(None))).all()
    written = 0
    for reminder in due.reminders(due.due_years(organisations, day), day):
        row = reminder.due_year
        stage = "overdue" if reminder.overdue else "soon"
        users = people_of([row.organisation.id], ("compliance",))
        written += notify(
            users, "report_due",
            f"The {row.year} transparency report of {row.organisation.name} is "
            + ("overdue" if reminder.overdue else "due soon"),
            reminder.message, _path("reports.index", organisation_id=row.organisation.id,
                                      year=row.year),
            key=f"report:{row.organisation.id}:{row.year}:{stage}")
    return written


def policy_review_due(day: date) -> int:
    """Tell compliance officers when the policy in force is past its review date; once per
    policy version."""
    from ..rules.versions import policy_in_force

    policy = policy_in_force(day).policy
    review_due = (policy.provenance or {}).get("review_due")
    if not isinstance(review_due, date) or review_due >= day:
        return 0
    return notify(_everyone_with_role("compliance"), "policy_review_due",
                  f"The policy v{policy.version} was due for review on "
                  f"{review_due:%-d %B %Y}",
                  f"The policy's review date ({review_due:%-d %B %Y}) has passed. Review it "
                  "with your patient partners and put a new version in force.",
                  _path("rules.policy"), key=f"policy-review:{policy.version}")


def policy_proposed(row, actor) -> int:
    """Ask the patient partners to sign off a proposed policy version."""
    return notify(others(_everyone_with_role("partner")), "policy_sign_off_requested",
                  f"Policy v{row.policy_version} awaits your sign-off",
                  f"{actor.name} proposed a new version of the good-practice policy: "
                  f"{row.summary} Read what changes and sign it off if you agree.",
                  _path("rules.version", version=row.policy_version),
                  key=f"policy-sign-off:{row.policy_version}")


def policy_signed_off(row, actor) -> int:
    """Tell compliance officers that a partner signed off a version."""
    organisation = actor.organisation.name if actor.organisation else "no organisation"
    return notify(others(_everyone_with_role("compliance")), "policy_signed_off",
                  f"{organisation} signed off policy v{row.policy_version}",
                  f"{actor.name} ({organisation}) signed off policy v{row.policy_version}. "
                  "A signed-off version can be put in force from a date.",
                  _path("rules.version", version=row.policy_version))


def _everyone_with_role(role: str) -> list[int]:
    from ..auth.models import User

    return list(db.session.scalars(select(User.id).where(
        User.role == role, User.active.is_(True), User.voided_at.is_(None))))
