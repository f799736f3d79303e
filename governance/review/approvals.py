"""Approval before the event: the advocate submits a plan, a compliance officer approves or
rejects it with a note, and the approvals queue.

The decision lives on the interaction (the `PlanApproval` columns), so it is audited with every
other change of the record (who, when, the note as the reason) and stays when the plan is marked
held; the rule PLAN-NOT-APPROVED reads it (rules/facts.py, `plan_facts`).
"""

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, or_, select, true
from sqlalchemy.orm import joinedload

from .. import audit
from ..database import utcnow
from ..errors import Conflict, NotAllowed, ValidationFailed
from ..extensions import db
from ..pagination import Page
from ..permissions import can_approve_plans, can_submit_plans, interaction_scope, require
from ..vocabulary import APPROVAL_DECISIONS

# The columns of the submission and decision: changing them is not a change of the record's
# content (a signed-off review stays signed).
APPROVAL_FIELDS = frozenset({"submitted_at", "submitted_by_id", "approval_decision",
                             "approval_note", "approved_by_id", "approved_at"})
NOTE_LIMIT = 4000


def needs_approval(interaction) -> bool:
    """Whether the policy asks for this interaction to be approved before it is held."""
    from ..rules.evaluation import current_policy
    from ..rules.facts import has_individual_payments

    return interaction.format in current_policy().approval_formats \
        or has_individual_payments(interaction)


def plan_state(interaction) -> str:
    """Where the interaction stands on approval, in a few words a person reads."""
    decision = interaction.approval_decision
    if decision:
        return APPROVAL_DECISIONS[decision]
    if not needs_approval(interaction):
        return "No approval needed"
    if interaction.status != "planned":
        return "Not approved"
    return "Submitted, awaiting approval" if interaction.submitted_at else "Not yet submitted"


def approval_json(interaction) -> dict | None:
    """The decision on the plan as the API answers it, or None when none was made."""
    if not interaction.approval_decision:
        return None
    from ..api.schemas import utc_iso

    approver = interaction.approved_by
    return {"decision": interaction.approval_decision,
            "by": approver.name if approver else None,
            "at": utc_iso(interaction.approved_at),
            "note": interaction.approval_note}


def _check_open_plan(interaction) -> None:
    if interaction.is_void:
        raise Conflict("This interaction has been voided; there is no plan to decide on.")
    if interaction.status == "held":
        raise Conflict("This interaction has already been held: a plan is approved before it "
                       "takes place.")
    if interaction.status == "cancelled":
        raise Conflict("This interaction was cancelled; there is no plan to decide on.")


def submit_plan(interaction, actor):
    """Submit a planned interaction to compliance for approval (again, after a rejection)."""
    require(can_submit_plans, actor, interaction)
    _check_open_plan(interaction)
    if interaction.approval_decision == "approved":
        raise Conflict("This plan is already approved.")
    if interaction.submitted_at is not None and interaction.approval_decision is None:
        raise Conflict("This plan is already submitted and awaits a compliance officer's "
                       "decision.")
    audit.set_actor(actor)
    audit.set_reason(f"Plan submitted for approval by {actor.name}.")
    interaction.submitted_at = utcnow().replace(microsecond=0)
    interaction.submitted_by_id = actor.id
    # A plan submitted again after a rejection awaits a fresh decision (the trail keeps the old).
    interaction.approval_decision = None
    interaction.approval_note = None
    interaction.approved_by_id = None
    interaction.approved_at = None
    db.session.flush()
    return interaction


def decide_plan(interaction, decision, note, actor, today: date | None = None):
    """Approve or reject a plan, with a note (required to reject). Refused: a plan the actor
    logged or submitted, a plan already held or cancelled, an approval after the date."""
    require(can_approve_plans, actor, interaction)
    _check_open_plan(interaction)
    if actor.id is not None and actor.id in (interaction.created_by_id,
                                             interaction.submitted_by_id):
        message = ("You logged or submitted this plan: another compliance officer approves or "
                   "rejects it.")
        raise NotAllowed(message, {"decision": [message]})
    errors: dict[str, list[str]] = {}
    if decision not in APPROVAL_DECISIONS:
        errors["decision"] = ["Choose approved or rejected."]
    if note is not None and not isinstance(note, str):
        errors["note"] = ["Not a valid string."]
        note = None
    note = (note or "").strip()
    if len(note) > NOTE_LIMIT:
        errors["note"] = [f"Keep the note under {NOTE_LIMIT} characters."]
    elif decision == "rejected" and not note:
        errors["note"] = ["Say why the plan is rejected, so the advocate can change it."]
    today = today or utcnow().date()
    if decision == "approved" and interaction.occurred_on < today:
        errors["decision"] = [f"The interaction's date ({interaction.occurred_on.isoformat()}) "
                              "has passed: a plan is approved before it takes place."]
    if errors:
        raise ValidationFailed(errors)
    audit.set_actor(actor)
    audit.set_reason(f"Plan {decision} by {actor.name}" + (f": {note}" if note else "."))
    interaction.approval_decision = decision
    interaction.approval_note = note or None
    interaction.approved_by_id = actor.id
    interaction.approved_at = utcnow().replace(microsecond=0)
    db.session.flush()
    db.session.refresh(interaction, ["approved_by"])
    from ..interactions.services import after_change

    after_change(interaction, partnership=False)
    return interaction


# --- the approvals queue ---------------------------------------------------------------------


@dataclass(frozen=True)
class ApprovalFilter:
    state: str = "awaiting"  # awaiting | approved | rejected | all
    page: int = 1
    per_page: int = 25


APPROVAL_QUEUE_STATES = {"awaiting": "Awaiting a decision", "approved": "Approved",
                         "rejected": "Rejected", "all": "All plans"}


def approval_queue(viewer, criteria: ApprovalFilter) -> Page:
    """Return one page of the plans the viewer decides on: by default, those submitted and
    awaiting a decision, soonest first."""
    from ..interactions.models import Interaction
    from ..rules.evaluation import current_policy

    own = true() if viewer.organisation_id is None else \
        Interaction.organisation_id == viewer.organisation_id
    conditions = [interaction_scope(viewer), own, Interaction.voided_at.is_(None)]
    if criteria.state == "awaiting":
        conditions += [Interaction.status == "planned", Interaction.approval_decision.is_(None),
                       or_(Interaction.submitted_at.is_not(None),
                           Interaction.format.in_(sorted(current_policy().approval_formats)))]
    elif criteria.state in APPROVAL_DECISIONS:
        conditions.append(Interaction.approval_decision == criteria.state)
    else:
        conditions.append(or_(Interaction.submitted_at.is_not(None),
                              Interaction.approval_decision.is_not(None)))
    total = db.session.scalar(select(func.count()).select_from(Interaction).where(*conditions))
    items = list(db.session.scalars(
        select(Interaction)
        .options(joinedload(Interaction.partnership), joinedload(Interaction.approved_by),
                 joinedload(Interaction.submitted_by))
        .where(*conditions)
        .order_by(Interaction.occurred_on, Interaction.id)
        .limit(criteria.per_page).offset((criteria.page - 1) * criteria.per_page)))
    return Page(items, total, criteria.page, criteria.per_page)
