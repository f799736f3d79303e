"""Log, edit, void and find interactions; the one place interaction input is validated."""

from dataclasses import dataclass
from datetime import date

from marshmallow import ValidationError as SchemaError
from marshmallow import fields, validates_schema
from sqlalchemy import and_, false, func, or_, select
from sqlalchemy.orm import joinedload, selectinload

from .. import audit
from ..confirmations.services import ask_partner_again
from ..database import column_defaults, insert_returning_ids, read_before_writing, utcnow
from ..errors import Conflict, RowsInvalid, ValidationFailed
from ..extensions import db
from ..notifications import events
from ..organisations.models import Organisation
from ..pagination import Page
from ..partnerships.models import Partnership
from ..permissions import (
    can_edit_records,
    interaction_scope,
    organisation_scope,
    partnership_scope,
    require,
    sees_whole_installation,
    visible_record,
)
from ..records import refuse_stale
from ..rules.evaluation import INTERACTION_FIELDS_READ_BY_PARTNERSHIPS
from ..validation import (
    LONG_TEXT_MAX,
    MINUTES_MAX,
    Input,
    choice,
    count,
    load,
    required,
    required_text,
    subset,
    text,
    texts,
)
from ..vocabulary import (
    ACCOMMODATIONS,
    DISEASE_STAGES,
    FACILITATORS,
    INTERACTION_FORMATS,
    INTERACTION_STATUSES,
    LIFECYCLE_STAGES,
    MODALITIES,
    PATIENT_NEEDS,
    SELECTION_METHODS,
    VENUE_TYPES,
)
from .models import Interaction


class InteractionInput(Input):
    title = required_text(200)
    occurred_on = required(fields.Date)
    format = choice(INTERACTION_FORMATS, required=True,
                    error_messages={"required": "This field is required.",
                                    "null": "This field is required."})
    partnership_id = fields.Integer(allow_none=True, load_default=None)
    organisation_id = fields.Integer(allow_none=True, load_default=None)
    activity_codes = texts(24, 100)
    patient_needs = subset(PATIENT_NEEDS)
    external_id = text(100, allow_none=True, load_default=None)
    publishable = fields.Boolean(load_default=False)

    purpose = text(LONG_TEXT_MAX, allow_none=True, load_default=None)
    purpose_shared_on = fields.Date(allow_none=True, load_default=None)
    product_specific = fields.Boolean(load_default=False)
    product = text(200, allow_none=True, load_default=None)

    lifecycle_stage = choice(LIFECYCLE_STAGES, allow_none=True, load_default=None)
    expected_approval_on = fields.Date(allow_none=True, load_default=None)
    approved_on = fields.Date(allow_none=True, load_default=None)

    patient_participants = count(load_default=0)
    caregiver_participants = count(load_default=0)
    sponsor_staff = count(load_default=0)
    selection_method = choice(SELECTION_METHODS, allow_none=True, load_default=None)
    stages_represented = subset(DISEASE_STAGES)
    stages_in_scope = subset(DISEASE_STAGES)
    preparation_offered = fields.Boolean(load_default=False, metadata={
        "description": "Preparation or training was offered to the patients taking part "
                       "(PFMD: capacity and capability)."})

    protocol_followed = fields.Boolean(load_default=False)
    materials_co_created = fields.Boolean(load_default=False)
    facilitator = choice(FACILITATORS, allow_none=True, load_default=None)
    modality = choice(MODALITIES, allow_none=True, load_default=None)
    roles_agreed = fields.Boolean(load_default=False, metadata={
        "description": "The roles and responsibilities of the patients and of the sponsor were "
                       "agreed beforehand (PFMD: roles and responsibilities)."})

    venue_type = choice(VENUE_TYPES, allow_none=True, load_default=None)
    venue_agreed_by_patients = fields.Boolean(load_default=False)
    accessibility_reviewed = fields.Boolean(load_default=False)
    accommodations = subset(ACCOMMODATIONS)

    summary = text(MINUTES_MAX, allow_none=True, load_default=None)
    summary_recorded_on = fields.Date(allow_none=True, load_default=None)
    outcomes_shared_on = fields.Date(allow_none=True, load_default=None)
    outcome_changes = text(LONG_TEXT_MAX, allow_none=True, load_default=None)

    # Approval before the event: planned, then held (or cancelled); logged after the fact: held.
    status = choice(INTERACTION_STATUSES, allow_none=True, load_default="held")

    @validates_schema
    def check_consistency(self, data, **_kwargs):
        errors = {}
        occurred = data.get("occurred_on")
        if data.get("product_specific") and not data.get("product"):
            errors["product"] = ["Name the product when the discussion is product-specific."]
        for name in ("summary_recorded_on", "outcomes_shared_on"):
            if occurred and data.get(name) and data[name] < occurred:
                errors[name] = ["Cannot be before the interaction took place."]
        if data.get("summary_recorded_on") and not data.get("summary"):
            errors["summary"] = ["Write the summary that was recorded on that date."]
        if errors:
            raise SchemaError(errors)


FIELDS = tuple(InteractionInput().fields)
_schema = InteractionInput()


def interaction_values(interaction: Interaction) -> dict:
    """Return the record's current values under the names forms, API and imports use."""
    return {name: getattr(interaction, name) for name in FIELDS}


@dataclass
class Preloaded:
    """What a batch of rows refers to, loaded once, so validating a row needs no query."""

    partnerships: dict[int, Partnership]  # those open to the actor
    organisations: dict[int, Organisation]
    external_ids: dict[str, int]  # interaction id by external_id
    activity_codes: frozenset[str] = frozenset()  # the catalogue's (custom ones are looked up)

    @classmethod
    def for_actor(cls, actor) -> "Preloaded":
        partnerships = db.session.scalars(
            select(Partnership).options(selectinload(Partnership.other_organisations))
            .where(partnership_scope(actor))
        ).all()
        organisations = db.session.scalars(
            select(Organisation).where(organisation_scope(actor))).all()
        external_ids = db.session.execute(
            select(Interaction.external_id, Interaction.id)
            .where(Interaction.external_id.is_not(None))
        ).all()
        from ..activities.catalogue import current_catalogue

        return cls({p.id: p for p in partnerships}, {o.id: o for o in organisations},
                   dict(external_ids),
                   frozenset(activity.code for activity in current_catalogue().activities))

    def organisation(self, organisation_id: int) -> Organisation | None:
        return self.organisations.get(organisation_id)


def validate_interaction(values: dict, actor, preloaded: Preloaded | None = None) -> dict:
    """Check values and the records they point to; return clean values or raise."""
    clean = load(_schema, values)
    clean["status"] = clean["status"] or "held"  # a blank status (an empty CSV cell): held
    errors: dict[str, list[str]] = {}
    partnership = None
    if clean["partnership_id"] is not None:
        if preloaded is not None:
            partnership = preloaded.partnerships.get(clean["partnership_id"])
        else:
            partnership = visible_record(Partnership, clean["partnership_id"],
                                         partnership_scope, actor)
        if partnership is None:
            errors["partnership_id"] = ["No partnership with this id is open to you."]
        elif partnership.is_void:
            errors["partnership_id"] = ["This partnership has been voided."]
    if clean["organisation_id"] is None:
        clean["organisation_id"] = actor.organisation_id or (
            partnership.sponsor_id if partnership else None)
    if clean["organisation_id"] is None:
        errors["organisation_id"] = ["Choose the organisation that held the interaction."]
    elif not _organisation_exists(clean["organisation_id"], actor, partnership, preloaded):
        errors["organisation_id"] = ["No organisation with this id."]
    elif not sees_whole_installation(actor) \
            and clean["organisation_id"] != actor.organisation_id and (
                partnership is None
                or clean["organisation_id"] not in partnership.organisation_ids):
        errors["organisation_id"] = ["You can log interactions only for your organisation "
                                     "or a party of the partnership."]
    codes = clean["activity_codes"]
    if codes and not (preloaded is not None and preloaded.activity_codes.issuperset(codes)):
        errors.update(_check_activity_codes(codes))
    if errors:
        raise ValidationFailed(errors)
    return clean


def _organisation_exists(organisation_id: int, actor, partnership: Partnership | None,
                         preloaded: Preloaded | None) -> bool:
    """Whether the organisation exists: without a query when the actor's own organisation or a
    party of the partnership at hand is meant (their foreign keys vouch for them)."""
    if preloaded is not None:
        return preloaded.organisation(organisation_id) is not None
    if organisation_id == actor.organisation_id or (
            partnership is not None
            and organisation_id in (partnership.sponsor_id, partnership.patient_group_id)):
        return True
    return visible_record(Organisation, organisation_id, organisation_scope, actor) is not None


def _check_activity_codes(codes: list[str]) -> dict[str, list[str]]:
    from ..activities.services import unknown_activity_codes

    unknown = unknown_activity_codes(codes)
    if unknown:
        return {"activity_codes": [f"Unknown activity code: {code}." for code in unknown]}
    return {}


def loaded_for_editing() -> tuple:
    """Loader options for an interaction about to be edited: its partnership (validation checks
    that it is still open to the editor) comes with it, in the same statement."""
    return (joinedload(Interaction.partnership),)


def log_interaction(values: dict, actor) -> Interaction:
    """Record a new interaction for the actor and evaluate it."""
    _require_editor(actor)
    with read_before_writing():
        clean = validate_interaction(values, actor)
    _refuse_cancelled_on_creation(clean)
    _refuse_duplicate_external_id(clean.get("external_id"))
    interaction = Interaction(**clean, created_by_id=actor.id)
    db.session.add(interaction)
    db.session.flush()
    after_change(interaction, created=True)
    events.confirmation_requested_for(interaction, utcnow().date())
    return interaction


def validate_interactions(rows: list[dict], actor, preloaded: Preloaded
                          ) -> tuple[list[dict], dict[int, dict[str, list[str]]]]:
    """Validate many new interactions as log_interaction validates one; return the clean
    values and each bad row's errors by index."""
    cleaned, errors, seen = [], {}, set()
    for index, values in enumerate(rows):
        try:
            clean = validate_interaction(values, actor, preloaded)
            _refuse_cancelled_on_creation(clean)
        except ValidationFailed as failure:
            errors[index] = failure.fields
            continue
        external_id = clean.get("external_id")
        if external_id and (external_id in preloaded.external_ids or external_id in seen):
            errors[index] = {"external_id": [DUPLICATE_EXTERNAL_ID]}
            continue
        seen.add(external_id)
        cleaned.append(clean)
    return cleaned, errors


def log_interactions(rows: list[dict], actor, preloaded: Preloaded) -> list[int]:
    """Record many new interactions at once and evaluate them in bulk (the CSV import); return
    their ids.

    Every row is validated exactly as log_interaction validates one; if any is not valid,
    RowsInvalid names them and nothing is written. The rows go in with one statement and are
    audited as the session audits one interaction (the same change sets, in the same chain).
    """
    _require_editor(actor)
    cleaned, errors = validate_interactions(rows, actor, preloaded)
    if errors:
        raise RowsInvalid(errors)
    db.session.flush()  # anything pending is written (and audited) first
    table = Interaction.__table__
    defaults = column_defaults(table)
    values = [defaults | clean | {"created_by_id": actor.id} for clean in cleaned]
    ids = insert_returning_ids(table, values)
    for row, new_id in zip(values, ids, strict=True):
        row["id"] = new_id
        if row["external_id"]:
            preloaded.external_ids[row["external_id"]] = new_id
    audit.append_created(Interaction, values)
    from ..rules.bulk import evaluate_interactions_in_bulk

    evaluate_interactions_in_bulk(ids)
    events.confirmation_requested_by_import(values, utcnow().date())
    return ids


def update_interaction(interaction: Interaction, changes: dict, actor, reason: str | None = None,
                       expected_version: int | None = None) -> Interaction:
    """Apply changed fields; the record is re-validated whole and re-evaluated. A changed
    interaction the partner had confirmed or disputed goes back to them (pending)."""
    _require_editor(actor)
    if interaction.is_void:
        raise Conflict("This interaction has been voided and can no longer be edited.")
    refuse_stale(interaction, expected_version, "interaction")
    unknown = set(changes) - set(FIELDS)
    if unknown:
        raise ValidationFailed({name: ["Unknown field."] for name in sorted(unknown)})
    merged = interaction_values(interaction) | changes
    with read_before_writing():
        clean = validate_interaction(merged, actor)
    if clean.get("external_id") != interaction.external_id:
        _refuse_duplicate_external_id(clean.get("external_id"))
    _check_status_change(interaction.status, clean["status"])
    require_reason_if_signed(interaction, reason)
    audit.set_reason(reason)
    changed = {name for name, value in clean.items() if getattr(interaction, name) != value}
    counted_again = bool(changed & INTERACTION_FIELDS_READ_BY_PARTNERSHIPS)
    for name in changed:
        setattr(interaction, name, clean[name])
    if changed - NOT_CONFIRMED_BY_PARTNER:
        ask_partner_again(interaction)
    db.session.flush()
    after_change(interaction, partnership=counted_again)
    return interaction


# Our own reference for a record is not something the partner confirms; every other field is.
NOT_CONFIRMED_BY_PARTNER = frozenset({"external_id"})


def require_reason_if_signed(interaction: Interaction, reason: str | None) -> None:
    from ..review.services import is_signed_off

    if is_signed_off(interaction) and not (reason or "").strip():
        raise ValidationFailed({"reason": ["This interaction's review was signed off: say why "
                                           "you are changing it."]})


def void_interaction(interaction: Interaction, actor, reason: str) -> Interaction:
    """Withdraw an interaction from use; it stays visible to compliance and auditors."""
    _require_editor(actor)
    if not (reason or "").strip():
        raise ValidationFailed({"reason": ["Say why this interaction is being voided."]})
    if interaction.is_void:
        raise Conflict("This interaction is already void.")
    audit.set_reason(reason)
    interaction.voided_at = utcnow()
    interaction.void_reason = reason.strip()
    db.session.flush()
    after_change(interaction)
    return interaction


def after_change(interaction: Interaction, partnership: bool = True,
                 created: bool = False) -> None:
    """Re-check the interaction (and, unless told it cannot have changed, its partnership)
    against the policy rules."""
    from ..rules.evaluation import evaluate_interaction

    evaluate_interaction(interaction, partnership=partnership, created=created)


def _require_editor(actor) -> None:
    require(can_edit_records, actor)
    audit.set_actor(actor)


DUPLICATE_EXTERNAL_ID = "Another interaction already has this id."


def _refuse_duplicate_external_id(external_id: str | None) -> None:
    if external_id and db.session.scalar(
        select(Interaction.id).where(Interaction.external_id == external_id)
    ):
        raise ValidationFailed({"external_id": [DUPLICATE_EXTERNAL_ID]})


# --- planned, held, cancelled ---------------------------------------------------------------

# The moves an interaction's status may make: a plan is held or cancelled; a held interaction
# took place and a cancelled one did not, for good (a record logged by mistake is voided).
STATUS_CHANGES = {"planned": {"held", "cancelled"}, "held": set(), "cancelled": set()}
STATUS_REFUSALS = {
    "held": "This interaction was held: it cannot go back to planned or be cancelled (void it "
            "if it was logged by mistake).",
    "cancelled": "This interaction was cancelled: it cannot be planned or held again; log a new "
                 "one.",
}


def _check_status_change(old: str, new: str) -> None:
    if new != old and new not in STATUS_CHANGES[old]:
        raise ValidationFailed({"status": [STATUS_REFUSALS[old]]})


def _refuse_cancelled_on_creation(clean: dict) -> None:
    if clean.get("status") == "cancelled":
        raise ValidationFailed({"status": ["Log the interaction as planned or held; a plan is "
                                           "cancelled afterwards."]})


# --- finding ------------------------------------------------------------------------------


@dataclass(frozen=True)
class InteractionFilter:
    partnership_id: int | None = None
    organisation_id: int | None = None
    date_from: date | None = None
    date_to: date | None = None
    format: str | None = None
    q: str | None = None
    rule: str | None = None
    state: str | None = None
    include_void: bool = False
    sort: str = "-occurred_on"
    page: int = 1
    per_page: int = 25
    # Count the matches only up to this many (the page then says "more than N"); None: exactly.
    count_limit: int | None = None


# The list page counts matches up to this many; beyond, it says "more than" and offers the exact
# count on request (counting a million rows for every page costs more than the page itself).
LIST_COUNT_LIMIT = 1_000

SORTS = {
    "occurred_on": Interaction.occurred_on,
    "title": Interaction.title,
    "format": Interaction.format,
}


def find_interactions(actor, criteria: InteractionFilter) -> Page:
    """Return one page of the interactions the actor may see that match the criteria."""
    # `narrowing` are the conditions SQLite answers from an index of their own (the actor's
    # scope, one organisation, flags); the others are checked row by row.
    narrowing = [interaction_scope(actor)]
    conditions = []
    if not criteria.include_void:
        conditions.append(Interaction.voided_at.is_(None))
    if criteria.partnership_id:
        conditions.append(Interaction.partnership_id == criteria.partnership_id)
    if criteria.organisation_id:
        involved = select(Partnership.id).where(or_(
            Partnership.sponsor_id == criteria.organisation_id,
            Partnership.patient_group_id == criteria.organisation_id))
        narrowing.append(or_(Interaction.organisation_id == criteria.organisation_id,
                             Interaction.partnership_id.in_(involved)))
    if criteria.date_from:
        conditions.append(Interaction.occurred_on >= criteria.date_from)
    if criteria.date_to:
        conditions.append(Interaction.occurred_on <= criteria.date_to)
    if criteria.format:
        conditions.append(Interaction.format == criteria.format)
    if criteria.q:
        pattern = f"%{criteria.q.strip()}%"
        conditions.append(or_(Interaction.title.ilike(pattern), Interaction.purpose.ilike(pattern)))
    narrowing.extend(_flag_conditions(criteria))
    total, more = _count(conditions + narrowing, criteria)
    column = SORTS.get(criteria.sort.lstrip("-"), Interaction.occurred_on)
    descending = criteria.sort.startswith("-")
    order = (column.desc(), Interaction.id.desc()) if descending else (column.asc(),
                                                                       Interaction.id.asc())
    if more and not criteria.include_void:
        # Many matches: walking the live interactions in the order shown (an index per sort)
        # finds a page within a few rows, where gathering every match from the narrowing
        # indexes and sorting them all (the plan SQLite picks, not knowing that one
        # organisation may hold a quarter of the rows) reads them all. Wrapped in coalesce, the
        # narrowing conditions stay off the plan and are checked on the walk.
        where = [*conditions, func.coalesce(and_(*narrowing), false())]
    else:
        where = conditions + narrowing
    items = db.session.scalars(
        select(Interaction)
        .options(joinedload(Interaction.partnership), joinedload(Interaction.organisation),
                 joinedload(Interaction.approved_by))
        .where(*where)
        .order_by(*order)
        .limit(criteria.per_page)
        .offset((criteria.page - 1) * criteria.per_page)
    ).all()
    return Page(items, total, criteria.page, criteria.per_page, more=more)


def _count(conditions: list, criteria: InteractionFilter) -> tuple[int, bool]:
    """The number of matches, exactly or (with a count limit) up to enough to show the page."""
    if criteria.count_limit is None:
        return db.session.scalar(select(func.count()).select_from(Interaction)
                                 .where(*conditions)), False
    bound = max(criteria.count_limit, criteria.page * criteria.per_page) + 1
    counted = db.session.scalar(select(func.count()).select_from(
        select(Interaction.id).where(*conditions).limit(bound).subquery()))
    return counted, counted >= bound


def _flag_conditions(criteria: InteractionFilter) -> list:
    if not (criteria.rule or criteria.state):
        return []
    from ..rules.flags import interactions_with_flags

    return [Interaction.id.in_(interactions_with_flags(rule=criteria.rule, state=criteria.state))]
