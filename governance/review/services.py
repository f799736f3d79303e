"""The compliance review: the flag queue, resolving flags, and signing off interactions."""

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import event, func, or_, select
from sqlalchemy.orm import Session, joinedload

from .. import audit
from ..database import utcnow
from ..errors import Conflict, ValidationFailed
from ..extensions import db
from ..interactions.models import Interaction
from ..pagination import Page
from ..permissions import can_resolve_flags, can_sign_off, flag_scope, require
from ..rules.evaluation import current_policy
from ..rules.flags import still_applies
from ..rules.models import Flag
from ..validation import NOTE_MAX, TOO_LONG
from ..vocabulary import FLAG_STATES, SIGNATURE_MEANINGS
from .approvals import APPROVAL_FIELDS

RESOLUTIONS = {
    "acknowledged": "Give the justification for keeping this practice.",
    "remediated": None,
    "dismissed": "Say why this flag does not apply.",
}


# --- the queue -------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueFilter:
    dimension: str | None = None
    severity: str | None = None
    partnership_id: int | None = None
    rule: str | None = None
    state: str = "open"
    min_age_days: int | None = None
    page: int = 1
    per_page: int = 25


def flag_queue(criteria: QueueFilter, viewer) -> Page:
    """Return one page of the flags the viewer may see (open ones by default), oldest first."""
    conditions = [Flag.voided_at.is_(None), flag_scope(viewer)]
    if criteria.state:
        conditions.append(Flag.state == criteria.state)
    if criteria.dimension:
        conditions.append(Flag.dimension == criteria.dimension)
    if criteria.severity:
        conditions.append(Flag.severity == criteria.severity)
    if criteria.rule:
        conditions.append(Flag.rule_id == criteria.rule)
    if criteria.partnership_id:
        in_partnership = select(Interaction.id).where(
            Interaction.partnership_id == criteria.partnership_id)
        conditions.append(or_(Flag.partnership_id == criteria.partnership_id,
                              Flag.interaction_id.in_(in_partnership)))
    if criteria.min_age_days:
        conditions.append(Flag.raised_at <= utcnow() - timedelta(days=criteria.min_age_days))
    total = db.session.scalar(select(func.count()).select_from(Flag).where(*conditions))
    items = list(db.session.scalars(
        select(Flag)
        .options(joinedload(Flag.interaction).joinedload(Interaction.partnership),
                 joinedload(Flag.partnership), joinedload(Flag.resolved_by),
                 joinedload(Flag.individual_payment), joinedload(Flag.agreement))
        .where(*conditions)
        .order_by(Flag.raised_at, Flag.id)
        .limit(criteria.per_page).offset((criteria.page - 1) * criteria.per_page)
    ))
    return Page(items, total, criteria.page, criteria.per_page)


# --- resolving flags -------------------------------------------------------------------------


def transition_flag(flag: Flag, state: str, note: str | None, actor) -> Flag:
    """Acknowledge (with a justification), mark remediated, or dismiss (with a reason) an open
    flag; only compliance officers may."""
    require(can_resolve_flags, actor, flag)
    if state not in RESOLUTIONS:
        raise ValidationFailed({"state": ["Choose acknowledged, remediated or dismissed."]})
    if flag.is_void:
        raise Conflict("This flag was withdrawn with its record and cannot change.")
    if flag.state != "open":
        raise Conflict(f"This flag is already {FLAG_STATES[flag.state].lower()}; a closed flag "
                       "cannot change state.")
    note = (note or "").strip()
    if RESOLUTIONS[state] and not note:
        raise ValidationFailed({"note": [RESOLUTIONS[state]]})
    if len(note) > NOTE_MAX:
        raise ValidationFailed({"note": [TOO_LONG.format(max=NOTE_MAX)]})
    if state == "remediated" and still_applies(flag):
        raise Conflict(f"The record still breaks rule {flag.rule_id}. Edit the record first "
                       "(re-evaluation then closes the flag), or acknowledge the flag with a "
                       "justification.")
    audit.set_actor(actor)
    audit.set_reason(note or "Marked remediated after the record was fixed.")
    flag.state = state
    flag.note = note or None
    flag.resolved_by_id = actor.id
    flag.resolved_at = utcnow()
    flag.resolved_policy_version = current_policy().version
    db.session.flush()
    return flag


# --- the sign-off (electronic signature) -----------------------------------------------------


def is_signed_off(interaction: Interaction) -> bool:
    return interaction.signed_off_at is not None


def open_flag_count(interaction_id: int) -> int:
    return db.session.scalar(
        select(func.count()).select_from(Flag).where(
            Flag.interaction_id == interaction_id, Flag.state == "open", Flag.voided_at.is_(None))
    )


def sign_off_review(interaction: Interaction, actor, password: str, meaning: str,
                    code: str | None = None) -> Interaction:
    """Sign the interaction's compliance review: the signer re-enters their password (and their
    code, with two-step sign-in on) and states the meaning of the signature."""
    from ..auth.services import check_signature

    require(can_sign_off, actor, interaction)
    if interaction.is_void:
        raise Conflict("This interaction has been voided; there is nothing to sign off.")
    if is_signed_off(interaction):
        raise Conflict("This review is already signed off.")
    statement = check_signature(actor, password, meaning, SIGNATURE_MEANINGS, "review",
                                f"interaction {interaction.id}", code)
    pending = open_flag_count(interaction.id)
    if pending:
        raise Conflict(f"Resolve the {pending} open flag{'s' if pending != 1 else ''} of this "
                       "interaction before signing off its review.")
    audit.set_actor(actor)
    audit.set_reason(f"Electronic signature by {actor.name}: {statement}")
    interaction.signed_off_at = utcnow().replace(microsecond=0)
    interaction.signed_off_by_id = actor.id
    interaction.signature_meaning = statement
    db.session.flush()
    return interaction


def signature_line(interaction: Interaction) -> str | None:
    """Return the printed form of the review signature: name, UTC date-time and meaning."""
    if not is_signed_off(interaction):
        return None
    signer = interaction.signed_off_by
    name = signer.name if signer else "unknown user"
    return (f"Signed by {name} on {interaction.signed_off_at:%Y-%m-%d %H:%M} UTC — "
            f"{interaction.signature_meaning}")


# The sign-off's own columns and those that change without the content changing: an edit of
# any other column returns a signed interaction to review.
SIGNATURE_FIELDS = frozenset({"signed_off_at", "signed_off_by_id", "signature_meaning"})
NOT_CONTENT = SIGNATURE_FIELDS | {"version", "updated_at", "created_at", "confirmed_by_partner",
                                  "confirmation_note"} | APPROVAL_FIELDS


def _return_edited_to_review(session: Session, _context, _instances) -> None:
    """Clear the sign-off of a signed interaction whose content is edited."""
    for obj in list(session.dirty):
        if not isinstance(obj, Interaction) or obj.signed_off_at is None:
            continue
        changed = set(audit.changed_columns(db.inspect(obj)))
        if changed - NOT_CONTENT and not changed & SIGNATURE_FIELDS:
            obj.signed_off_at = None
            obj.signed_off_by_id = None
            obj.signature_meaning = None


def install_listeners() -> None:
    if not event.contains(Session, "before_flush", _return_edited_to_review):
        # insert=True: run before the audit listener collects the changes, so the audit event
        # of the edit also records that the sign-off was cleared.
        event.listen(Session, "before_flush", _return_edited_to_review, insert=True)
