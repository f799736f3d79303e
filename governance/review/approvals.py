"""Approval before the event: the advocate submits a plan, a compliance officer approves or
rejects it with a note, and the approvals queue.

The decision lives on the interaction (the `PlanApproval` columns), so it is audited with every
other change of the record (who, when, the note as the reason) and stays when the plan is marked
held; the rule PLAN-NOT-APPROVED reads it (rules/facts.py, `plan_facts`).
"""

from dataclasses import dataclass
from datetime import date, datetime, time

from sqlalchemy import func, or_, select, true
from sqlalchemy.orm import joinedload

from .. import audit
from ..database import utcnow
from ..errors import Conflict, NotAllowed, ValidationFailed
from ..extensions import db
from ..notifications import events
from ..pagination import Page
from ..permissions import can_approve_plans, can_submit_plans, interaction_scope, require
from ..validation import NOTE_MAX
from ..vocabulary import APPROVAL_DECISIONS

# The columns of the submission and decision: changing them is not a change of the record's
# content (a signed-off review stays signed).
APPROVAL_FIELDS = frozenset({"submitted_at", "submitted_by_id", "approval_decision",
                             "approval_note", "approved_by_id", "approved_at"})
NOTE_LIMIT = NOTE_MAX


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
    events.plan_submitted(interaction)
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
    events.plan_decided(interaction)
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
                           Interaction.format.in_(sorted(current_policy().approval_formats)),
                           Interaction.has_individual_payments)]
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


# --- demo data -----------------------------------------------------------------------------


def seed_demo_approvals(partnerships, users, today: date | None = None) -> None:
    """Plans awaiting approval, an approved and a rejected plan, and an advisory board held
    without approval (PLAN-NOT-APPROVED), in the demo advocate's organisation."""
    from datetime import timedelta

    from ..interactions.services import log_interaction

    today = today or utcnow().date()
    advocate, officer = users["advocate"], users["compliance"]
    partnership = next(p for p in partnerships if p.sponsor_id == advocate.organisation_id
                       and p.status == "active")

    def plan(title, format, days, **changes):
        occurred = today + timedelta(days=days)
        values = {
            "title": title, "occurred_on": occurred, "format": format, "status": "planned",
            "partnership_id": partnership.id, "organisation_id": advocate.organisation_id,
            "purpose": f"Hear patients' and caregivers' views for the {title.lower()} and agree "
                       "concrete changes to the study",
            "purpose_shared_on": min(today, occurred - timedelta(days=14)),
            "lifecycle_stage": "phase_2", "patient_participants": 8,
            "caregiver_participants": 2, "sponsor_staff": 3,
            "selection_method": "co_created_procedure",
            "stages_represented": ["early", "intermediate", "late"], "stages_in_scope": ["all"],
            "protocol_followed": True, "materials_co_created": True,
            "facilitator": "third_party", "modality": "hybrid", "venue_type": "neutral_venue",
            "venue_agreed_by_patients": True, "accessibility_reviewed": True,
            "accommodations": ["step_free_access", "remote_option"],
        } | changes
        return log_interaction(values, advocate)

    submit_plan(plan("Advisory board on the phase 3 visit schedule", "advisory_board", 21),
                advocate)
    plan("Focus group on the patient diary app", "focus_group", 35, protocol_followed=False,
         accessibility_reviewed=False)
    approved = plan("Advisory board on home nursing visits", "advisory_board", 14)
    submit_plan(approved, advocate)
    decide_plan(approved, "approved", "Agenda, participants and fees follow the SOP.", officer)
    rejected = plan("Focus group at the sponsor's research site", "focus_group", 28,
                    venue_type="sponsor_site", venue_agreed_by_patients=False)
    submit_plan(rejected, advocate)
    decide_plan(rejected, "rejected", "Patients did not agree to the venue: find a neutral one "
                "and submit again.", officer)
    held = plan("Advisory board on trial eligibility, held without approval", "advisory_board",
                -20, purpose_shared_on=today - timedelta(days=34),
                summary="Participants asked for wider eligibility criteria.",
                summary_recorded_on=today - timedelta(days=15))
    held.status = "held"  # marked held afterwards; nobody approved the plan before its date
    db.session.flush()
    _approve_demo_history(users, exclude={held.id})


def _approve_demo_history(users, exclude: set[int]) -> None:
    """Give most of the demo's past advisory boards and focus groups the approval their
    organisation's compliance officer gave before the event (four in five; the others show
    PLAN-NOT-APPROVED)."""
    from datetime import timedelta

    from ..interactions.models import Interaction
    from ..rules.evaluation import current_policy

    officers = {user.organisation_id: user for user in users.values()
                if user.role == "compliance"}
    past = db.session.scalars(
        select(Interaction).where(Interaction.status == "held",
                                  Interaction.approval_decision.is_(None),
                                  Interaction.format.in_(sorted(
                                      current_policy().approval_formats)))
        .order_by(Interaction.id)).all()
    for index, interaction in enumerate(past):
        officer = officers.get(interaction.organisation_id)
        if interaction.id in exclude or officer is None or index % 5 == 4:
            continue
        approved_on = interaction.occurred_on - timedelta(days=10)
        interaction.approval_decision = "approved"
        interaction.approval_note = "Plan reviewed against the engagement SOP before the event."
        interaction.approved_by_id = officer.id
        interaction.approved_at = datetime.combine(approved_on, time(10, 0))
    db.session.flush()
