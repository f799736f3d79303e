"""Partner confirmation: the partner organisation confirms or disputes each support line and
each interaction recorded about it, with a note; disputes go to the compliance queue.

A dispute ends (DOMAIN.md, Support): the reporting side corrects the record, which goes back to
the partner as pending (`ask_partner_again`, called by the record's edit); or keeps it unchanged
with a reason the partner sees (`uphold`); or the partner takes the dispute back (`withdraw`).

Each answer is a change of the record, so the audit trail keeps who answered, when and what.
"""

import json
from dataclasses import dataclass
from datetime import datetime

from marshmallow import ValidationError as SchemaError
from marshmallow import fields, validate, validates_schema
from sqlalchemy import func, select

from .. import audit
from ..audit import AuditEvent
from ..database import utcnow
from ..errors import Conflict, NotAllowed, ValidationFailed
from ..extensions import db
from ..interactions.models import Interaction
from ..notifications import events
from ..pagination import Page
from ..partnerships.models import Support
from ..permissions import (
    can_answer_disputes,
    can_confirm_records,
    interaction_scope,
    require,
    sees_whole_installation,
    support_scope,
    visible_partnership_ids,
    visible_record,
)
from ..validation import Input, choice, load, required_text, text
from ..vocabulary import CONFIRMATION_STATES, PARTNER_ANSWERS

NOTE_MAX = 2000
KINDS = ("support", "interaction")
# The answers that still wait for the partner: none yet, a dispute withdrawn, or a dispute the
# recording side answered by keeping the record (the partner reads its reason).
AWAITING = ("pending", "withdrawn", "upheld")
# How many lines one "confirm the selected" may answer (a page shows 25).
CONFIRM_AT_ONCE_MAX = 500


class AnswerInput(Input):
    answer = choice(PARTNER_ANSWERS, required=True,
                    error_messages={"required": "Choose confirm or dispute.",
                                    "null": "Choose confirm or dispute."})
    note = text(NOTE_MAX, allow_none=True, load_default=None)

    @validates_schema
    def dispute_needs_note(self, data, **_kwargs):
        if data.get("answer") == "disputed" and not (data.get("note") or "").strip():
            raise SchemaError({"note": ["Say what is wrong, so the sponsor can correct it."]})


_schema = AnswerInput()


def answerable_supports(user):
    """SQL condition: the support lines the partner answers for (their organisation got them)."""
    return (Support.partnership_id.in_(visible_partnership_ids(user))
            & (Support.recipient_id == user.organisation_id) & Support.voided_at.is_(None))


def answerable_interactions(user):
    """SQL condition: the interactions of the partner's partnerships that another party held."""
    return (Interaction.partnership_id.in_(visible_partnership_ids(user))
            & (Interaction.organisation_id != user.organisation_id)
            & Interaction.voided_at.is_(None))


def visible_support(user, support_id: int) -> Support | None:
    """The support line if the user may see it (else None: a 404). A voided one, like any
    record, only compliance officers and auditors see, so a partner's link to it answers 404."""
    return visible_record(Support, support_id, support_scope, user)


def visible_interaction(user, interaction_id: int) -> Interaction | None:
    """The interaction if the user may see it (a partner: of their partnerships, not voided)."""
    return visible_record(Interaction, interaction_id, interaction_scope, user)


def _require_partner(actor) -> None:
    require(can_confirm_records, actor)
    if actor.organisation_id is None:
        raise NotAllowed(can_confirm_records.refusal)


def _apply(record, values: dict, what: str):
    clean = load(_schema, values)
    if record.is_void:
        raise Conflict(f"This {what} has been voided; there is nothing to confirm.")
    note = (clean["note"] or "").strip() or None
    label = "confirmed" if clean["answer"] == "confirmed" else "disputed"
    audit.set_reason(f"Partner {label} the {what}" + (f": {note}" if note else ""))
    record.confirmed_by_partner = clean["answer"]
    record.confirmation_note = note
    db.session.flush()
    if label == "disputed":
        events.dispute_raised(record, note)
    return record


def answer_support(support: Support, values: dict, actor) -> Support:
    """Confirm or dispute a support line received by the actor's organisation."""
    _require_partner(actor)
    if support.recipient_id != actor.organisation_id:
        raise NotAllowed("Only the organisation that received this support confirms or "
                         "disputes it; nothing was changed.")
    return _apply(support, values, "support line")


def answer_interaction(interaction: Interaction, values: dict, actor) -> Interaction:
    """Confirm or dispute an interaction that another party of the partnership recorded."""
    _require_partner(actor)
    partnership = interaction.partnership
    if partnership is None or actor.organisation_id not in partnership.organisation_ids:
        raise NotAllowed("Only a party of this interaction's partnership confirms or disputes "
                         "it; nothing was changed.")
    if interaction.organisation_id == actor.organisation_id:
        raise NotAllowed("Your organisation recorded this interaction; the other party of the "
                         "partnership confirms it.")
    return _apply(interaction, values, "interaction")


class ConfirmManyInput(Input):
    ids = fields.List(fields.Integer(strict=True), required=True,
                      validate=validate.Length(min=1, max=CONFIRM_AT_ONCE_MAX,
                                               error="Select from 1 to {max} lines."),
                      error_messages={"required": "Select the lines to confirm."})
    note = text(NOTE_MAX, allow_none=True, load_default=None)


_many_schema = ConfirmManyInput()


def confirm_many(kind: str, values: dict, actor) -> list:
    """Confirm many support lines (or interactions) at once, with one note; all or none: an
    id the partner does not answer for refuses the whole request."""
    _require_partner(actor)
    if kind not in KINDS:
        raise ValidationFailed({"kind": [f"Choose one of: {', '.join(KINDS)}."]})
    clean = load(_many_schema, values)
    model, condition = (Support, answerable_supports(actor)) if kind == "support" \
        else (Interaction, answerable_interactions(actor))
    wanted = set(clean["ids"])
    records = db.session.scalars(
        select(model).where(model.id.in_(wanted), condition).order_by(model.id)).all()
    missing = sorted(wanted - {record.id for record in records})
    if missing:
        raise ValidationFailed({"ids": [
            "Not among the records you answer for: "
            + ", ".join(f"{kind}-{record_id}" for record_id in missing)
            + ". Nothing was confirmed."]})
    note = (clean["note"] or "").strip() or None
    what = "support lines" if kind == "support" else "interactions"
    audit.set_reason(f"Partner confirmed {len(records)} {what} at once"
                     + (f": {note}" if note else ""))
    for record in records:
        record.confirmed_by_partner = "confirmed"
        record.confirmation_note = note
    db.session.flush()
    return records


# --- the end of a dispute ------------------------------------------------------------------------


def ask_partner_again(record) -> None:
    """The record changed after the partner answered: they answer again (a dispute so ended
    is "corrected"; the audit trail keeps the answer and the note it replaced)."""
    if record.confirmed_by_partner == "pending":
        return
    disputed = record.confirmed_by_partner in ("disputed", "upheld")
    if disputed and not audit.current_reason():
        audit.set_reason("Corrected after the partner's dispute")
    record.confirmed_by_partner = "pending"
    record.confirmation_note = None
    record.dispute_answer = None
    if disputed:
        events.dispute_answered(record, "corrected")
    else:
        events.confirmation_requested_for(record, utcnow().date())


class UpholdInput(Input):
    reason = required_text(NOTE_MAX)


_uphold_schema = UpholdInput()


def reporting_organisation_id(record) -> int:
    """Who answers a dispute: the sponsor of a support line's partnership, the organisation that
    held an interaction."""
    return record.partnership.sponsor_id if isinstance(record, Support) \
        else record.organisation_id


def _require_disputed(record, what: str) -> None:
    if record.is_void:
        raise Conflict(f"This {what} has been voided; there is no dispute to answer.")
    if record.confirmed_by_partner != "disputed":
        state = CONFIRMATION_STATES[record.confirmed_by_partner].lower()
        raise Conflict(f"This {what} is not disputed (it is {state}); nothing was changed.")


def uphold(record, values: dict, actor):
    """Keep a disputed record unchanged, with the reason the partner will read."""
    require(can_answer_disputes, actor)
    what = _what(record)
    if not (sees_whole_installation(actor)
            or actor.organisation_id == reporting_organisation_id(record)):
        raise NotAllowed(f"Only the organisation that recorded this {what} answers its "
                         "dispute; nothing was changed.")
    clean = load(_uphold_schema, values)
    _require_disputed(record, what)
    reason = clean["reason"].strip()
    audit.set_reason(f"Kept the {what} unchanged after the partner's dispute: {reason}")
    record.confirmed_by_partner = "upheld"
    record.dispute_answer = reason
    db.session.flush()
    events.dispute_answered(record, "upheld")
    return record


def withdraw(record, actor):
    """The partner takes its dispute back; the record waits for their confirmation again."""
    _require_partner(actor)
    what = _what(record)
    if not _answers_for(record, actor):
        raise NotAllowed(f"Only the partner that disputed this {what} withdraws the dispute; "
                         "nothing was changed.")
    _require_disputed(record, what)
    audit.set_reason(f"Partner withdrew the dispute of the {what}")
    record.confirmed_by_partner = "withdrawn"
    db.session.flush()
    events.dispute_withdrawn(record)
    return record


def _answers_for(record, actor) -> bool:
    """The partner's organisation is the one that answers for the record: the recipient of a
    support line, the other party of an interaction's partnership."""
    if isinstance(record, Support):
        return record.recipient_id == actor.organisation_id
    partnership = record.partnership
    return partnership is not None and record.organisation_id != actor.organisation_id \
        and actor.organisation_id in partnership.organisation_ids


def _what(record) -> str:
    return "support line" if isinstance(record, Support) else "interaction"


# --- the partner's list ---------------------------------------------------------------------------


def records_to_answer(user, kind: str, state: str | None, page: int, per_page: int = 25) -> Page:
    """One page of the support lines or interactions the partner answers for."""
    if kind == "support":
        model, condition = Support, answerable_supports(user)
        order = (Support.paid_on.desc(), Support.id.desc())
    else:
        model, condition = Interaction, answerable_interactions(user)
        order = (Interaction.occurred_on.desc(), Interaction.id.desc())
    conditions = [condition]
    if state == "pending":
        conditions.append(model.confirmed_by_partner.in_(AWAITING))
    elif state:
        conditions.append(model.confirmed_by_partner == state)
    total = db.session.scalar(select(func.count()).select_from(model).where(*conditions))
    items = db.session.scalars(
        select(model).where(*conditions).order_by(*order)
        .limit(per_page).offset((page - 1) * per_page)
    ).all()
    return Page(list(items), total, page, per_page)


def pending_counts(user) -> dict[str, int]:
    return {
        "support": db.session.scalar(select(func.count()).select_from(Support).where(
            answerable_supports(user), Support.confirmed_by_partner.in_(AWAITING))),
        "interaction": db.session.scalar(select(func.count()).select_from(Interaction).where(
            answerable_interactions(user), Interaction.confirmed_by_partner.in_(AWAITING))),
    }


# --- the compliance queue of disputes -------------------------------------------------------------


@dataclass(frozen=True)
class Dispute:
    kind: str
    record: object
    note: str | None
    disputed_by: str | None
    disputed_at: datetime | None

    @property
    def stable_id(self) -> str:
        return f"{self.kind}-{self.record.id}"


def disputes(viewer) -> list[Dispute]:
    """The disputed support lines and interactions the viewer may see, most recently disputed
    first."""
    supports = db.session.scalars(
        select(Support).where(Support.confirmed_by_partner == "disputed",
                              Support.voided_at.is_(None), support_scope(viewer))
    ).all()
    interactions = db.session.scalars(
        select(Interaction).where(Interaction.confirmed_by_partner == "disputed",
                                  Interaction.voided_at.is_(None), interaction_scope(viewer))
    ).all()
    found = []
    for kind, records in (("support", supports), ("interaction", interactions)):
        answered = _last_disputes(kind, [record.id for record in records])
        for record in records:
            who, when = answered.get(record.id, (None, None))
            found.append(Dispute(kind, record, record.confirmation_note, who, when))
    found.sort(key=lambda item: item.disputed_at or datetime.min, reverse=True)
    return found


def _last_disputes(entity: str, ids: list[int]) -> dict[int, tuple[str, datetime]]:
    """Who disputed each record last, and when, from the audit trail."""
    if not ids:
        return {}
    events = db.session.execute(
        select(AuditEvent.entity_id, AuditEvent.actor_label, AuditEvent.occurred_at,
               AuditEvent.changes)
        .where(AuditEvent.entity == entity, AuditEvent.entity_id.in_(ids),
               AuditEvent.changes.contains('"confirmed_by_partner"'))
        .order_by(AuditEvent.id)
    ).all()
    last = {}
    for entity_id, actor, occurred_at, changes in events:
        change = json.loads(changes).get("confirmed_by_partner")
        if change and change[1] == "disputed":
            last[entity_id] = (actor, occurred_at)
    return last
