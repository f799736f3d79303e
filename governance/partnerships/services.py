"""Record, edit, void and find partnerships and their support entries (transfers of value).

The one place partnership and support input is validated: forms, the API and imports all load
values through PartnershipInput and SupportInput.
"""

from dataclasses import dataclass, field

from marshmallow import ValidationError as SchemaError
from marshmallow import fields, pre_load, validates_schema
from marshmallow.validate import Length
from sqlalchemy import extract, func, or_, select
from sqlalchemy.orm import joinedload, selectinload

from .. import audit
from ..agreements.models import Agreement
from ..confirmations.services import ask_partner_again
from ..database import column_defaults, insert_returning_ids, utcnow
from ..errors import Conflict, RowsInvalid, ValidationFailed
from ..extensions import db
from ..notifications import events
from ..organisations.models import Organisation
from ..pagination import Page
from ..permissions import (
    can_edit_partnership,
    can_edit_records,
    partnership_scope,
    require,
    sees_whole_installation,
    visible_record,
)
from ..records import refuse_stale
from ..validation import (
    LONG_TEXT_MAX,
    Input,
    choice,
    currency,
    load,
    money,
    required,
    required_text,
    text,
)
from ..vocabulary import PARTNERSHIP_KINDS, PARTNERSHIP_STATUSES, SUPPORT_KINDS
from .models import Partnership, Support, partnership_members

REQUIRED = {"required": "This field is required.", "null": "This field is required."}


def _organisation(organisation_id: int) -> Organisation | None:
    return db.session.get(Organisation, organisation_id)


class PartnershipInput(Input):
    title = required_text(200)
    sponsor_id = required(fields.Integer)
    patient_group_id = required(fields.Integer)
    kind = choice(PARTNERSHIP_KINDS, required=True, error_messages=REQUIRED)
    status = choice(PARTNERSHIP_STATUSES, load_default="proposed",
                    error_messages={"null": "Choose a status."})
    started_on = fields.Date(allow_none=True, load_default=None)
    ended_on = fields.Date(allow_none=True, load_default=None)
    agreement_signed_on = fields.Date(allow_none=True, load_default=None)
    ip_terms_agreed = fields.Boolean(load_default=False)
    data_sharing_terms = text(LONG_TEXT_MAX, allow_none=True, load_default=None)
    independence_measures = text(LONG_TEXT_MAX, allow_none=True, load_default=None)
    policy_reference = text(300, allow_none=True, load_default=None)
    evaluation = text(LONG_TEXT_MAX, allow_none=True, load_default=None)
    other_organisation_ids = fields.List(fields.Integer(), load_default=list,
                                         validate=Length(max=100, error="At most {max} items."))
    external_id = text(100, allow_none=True, load_default=None)

    @pre_load
    def none_means_no_others(self, data, **_kwargs):
        if isinstance(data, dict) and "other_organisation_ids" in data and \
                data["other_organisation_ids"] is None:
            data = dict(data, other_organisation_ids=[])
        return data

    @validates_schema(skip_on_field_errors=False)
    def check_dates(self, data, **_kwargs):
        started, ended = data.get("started_on"), data.get("ended_on")
        if started and ended and ended < started:
            raise SchemaError({"ended_on": ["Cannot be before the start date "
                                            f"({started.isoformat()})."]})

    @validates_schema(skip_on_field_errors=False)
    def check_parties(self, data, **_kwargs):
        """The sponsor is a sponsor, the patient group a patient group, the others exist."""
        errors: dict[str, list[str]] = {}
        for name, kind in (("sponsor_id", "sponsor"), ("patient_group_id", "patient_group")):
            if data.get(name) is None:
                continue
            problem = _party_problem(data[name], kind)
            if problem:
                errors[name] = [problem]
        sponsor_id, group_id = data.get("sponsor_id"), data.get("patient_group_id")
        if sponsor_id is not None and sponsor_id == group_id and "patient_group_id" not in errors:
            errors["patient_group_id"] = ["The patient group must be another organisation than "
                                          "the sponsor."]
        others = []
        for organisation_id in data.get("other_organisation_ids") or []:
            organisation = _organisation(organisation_id)
            if organisation is None or organisation.is_void:
                others.append(f"No organisation with id {organisation_id}.")
            elif organisation_id in (sponsor_id, group_id):
                others.append(f"{organisation.name} is already the sponsor or the patient group.")
        if others:
            errors["other_organisation_ids"] = others
        if errors:
            raise SchemaError(errors)


def _party_problem(organisation_id: int, kind: str) -> str | None:
    organisation = _organisation(organisation_id)
    if organisation is None:
        return f"No organisation with id {organisation_id}."
    if organisation.is_void:
        return f"Organisation “{organisation.name}” has been voided."
    if organisation.kind != kind:
        return f"Organisation “{organisation.name}” is a {organisation.kind}, not a {kind}."
    return None


class SupportInput(Input):
    partnership_id = required(fields.Integer)
    recipient_id = required(fields.Integer)
    paid_on = required(fields.Date)
    kind = choice(SUPPORT_KINDS, required=True, error_messages=REQUIRED)
    amount = money(allow_none=True, load_default=None)
    currency = currency(required=True, error_messages=REQUIRED)
    description = required_text(2000)
    external_id = text(100, allow_none=True, load_default=None)
    # The written agreement it is paid under (an agreement of the same partnership).
    agreement_id = fields.Integer(allow_none=True, load_default=None)

    # A bulk path's schema (SupportPreloaded.schema) has the records its rows refer to at hand:
    # the checks look there first, then in the session.
    preloaded: "SupportPreloaded | None" = None

    def _find(self, model, record_id: int):
        found = self.preloaded.find(model, record_id) if self.preloaded is not None else None
        return found if found is not None else db.session.get(model, record_id)

    @validates_schema(skip_on_field_errors=False)
    def check_agreement(self, data, **_kwargs):
        from ..agreements.services import agreement_problem

        if data.get("agreement_id") is None:
            return
        problem = agreement_problem(self._find(Agreement, data["agreement_id"]),
                                    data.get("partnership_id"))
        if problem:
            raise SchemaError({"agreement_id": [problem]})

    @validates_schema(skip_on_field_errors=False)
    def check_value(self, data, **_kwargs):
        if "amount" in data and data["amount"] is None and data.get("kind") not in (None,
                                                                                   "in_kind"):
            raise SchemaError({"amount": ["Enter the amount: only in-kind support may be left "
                                          "unvalued."]})

    @validates_schema(skip_on_field_errors=False)
    def check_recipient(self, data, **_kwargs):
        """The partnership is live and the recipient is one of its parties, not the sponsor."""
        if data.get("partnership_id") is None:
            return
        partnership = self._find(Partnership, data["partnership_id"])
        if partnership is None:
            raise SchemaError({"partnership_id": ["No partnership with this id."]})
        if partnership.is_void:
            raise SchemaError({"partnership_id": ["This partnership has been voided."]})
        recipient_id = data.get("recipient_id")
        if recipient_id is None:
            return
        recipient = self._find(Organisation, recipient_id)
        if recipient is None:
            raise SchemaError({"recipient_id": [f"No organisation with id {recipient_id}."]})
        if recipient_id == partnership.sponsor_id:
            raise SchemaError({"recipient_id": [
                f"{recipient.name} is the sponsor, who gives the support: choose the patient "
                "group or another party as the recipient."]})
        if recipient_id not in partnership.organisation_ids:
            raise SchemaError({"recipient_id": [
                f"{recipient.name} is not a party of the partnership “{partnership.title}”."]})


PARTNERSHIP_FIELDS = tuple(PartnershipInput().fields)
SUPPORT_FIELDS = tuple(SupportInput().fields)
_partnership_schema = PartnershipInput()
_support_schema = SupportInput()


def partnership_values(partnership: Partnership) -> dict:
    """Return the record's current values under the names forms, API and imports use."""
    values = {name: getattr(partnership, name) for name in PARTNERSHIP_FIELDS
              if name != "other_organisation_ids"}
    values["other_organisation_ids"] = sorted(o.id for o in partnership.other_organisations)
    return values


def support_values(support: Support) -> dict:
    """Return the record's current values under the names forms, API and imports use."""
    return {name: getattr(support, name) for name in SUPPORT_FIELDS}


# --- partnerships ---------------------------------------------------------------------------


def validate_partnership(values: dict, actor, current: Partnership | None = None) -> dict:
    """Check values, the parties and the actor's right to record them; return clean values."""
    clean = load(_partnership_schema, values)
    errors: dict[str, list[str]] = {}
    parties = {clean["sponsor_id"], clean["patient_group_id"], *clean["other_organisation_ids"]}
    if not sees_whole_installation(actor) and actor.organisation_id not in parties:
        field = "patient_group_id" if actor.organisation and \
            actor.organisation.kind == "patient_group" else "sponsor_id"
        errors[field] = ["You can record only partnerships your own organisation is a party of."]
    if clean.get("external_id"):
        taken = db.session.scalar(
            select(Partnership.id).where(Partnership.external_id == clean["external_id"],
                                         Partnership.id != (current.id if current else -1)))
        if taken:
            errors["external_id"] = ["Another partnership already has this id."]
    if current is not None:
        errors.update(_stranded_recipients(current, parties))
    if errors:
        raise ValidationFailed(errors)
    return clean


def _stranded_recipients(partnership: Partnership, parties: set[int]) -> dict[str, list[str]]:
    """Support already paid to an organisation keeps that organisation in the partnership."""
    paid = select(Support.recipient_id).where(Support.partnership_id == partnership.id,
                                              Support.voided_at.is_(None))
    # IN, not DISTINCT: PostgreSQL cannot compare the JSON columns of whole organisation rows.
    recipients = db.session.scalars(select(Organisation).where(Organisation.id.in_(paid))).all()
    stranded = [o.name for o in recipients if o.id not in parties]
    if not stranded:
        return {}
    field = "patient_group_id" if partnership.patient_group.name in stranded \
        else "other_organisation_ids"
    return {field: [f"Support entries were paid to {', '.join(stranded)}: it must stay a party "
                    "(void those entries first)."]}


def create_partnership(values: dict, actor) -> Partnership:
    """Record a new partnership and check it against the policy rules."""
    _require_editor(actor)
    clean = validate_partnership(values, actor)
    others = clean.pop("other_organisation_ids")
    partnership = Partnership(**clean)
    partnership.other_organisations = _organisations(others)
    db.session.add(partnership)
    db.session.flush()
    after_change(partnership)
    return partnership


def update_partnership(partnership: Partnership, changes: dict, actor, reason: str | None = None,
                       expected_version: int | None = None) -> Partnership:
    """Apply changed fields; the record is re-validated whole and re-evaluated."""
    _require_editor(actor, partnership)
    if partnership.is_void:
        raise Conflict("This partnership has been voided and can no longer be edited.")
    refuse_stale(partnership, expected_version, "partnership")
    unknown = set(changes) - set(PARTNERSHIP_FIELDS)
    if unknown:
        raise ValidationFailed({name: ["Unknown field."] for name in sorted(unknown)})
    clean = validate_partnership(partnership_values(partnership) | changes, actor, partnership)
    others = clean.pop("other_organisation_ids")
    audit.set_reason(reason)
    for name, value in clean.items():
        if getattr(partnership, name) != value:
            setattr(partnership, name, value)
    if sorted(others) != sorted(o.id for o in partnership.other_organisations):
        partnership.other_organisations = _organisations(others)
    db.session.flush()
    after_change(partnership)
    return partnership


def void_partnership(partnership: Partnership, actor, reason: str) -> Partnership:
    """Withdraw a partnership recorded in error; what hangs on it must be dealt with first."""
    from ..interactions.models import Interaction

    _require_editor(actor, partnership)
    if not (reason or "").strip():
        raise ValidationFailed({"reason": ["Say why this partnership is being voided."]})
    if partnership.is_void:
        raise Conflict("This partnership is already void.")
    supports = db.session.scalar(select(func.count()).select_from(Support).where(
        Support.partnership_id == partnership.id, Support.voided_at.is_(None)))
    interactions = db.session.scalar(select(func.count()).select_from(Interaction).where(
        Interaction.partnership_id == partnership.id, Interaction.voided_at.is_(None)))
    if supports or interactions:
        raise Conflict(f"This partnership still has {interactions} interaction(s) and "
                       f"{supports} support entr{'y' if supports == 1 else 'ies'}; move or void "
                       "them first, so nothing points to a voided partnership.")
    audit.set_reason(reason)
    partnership.voided_at = utcnow()
    partnership.void_reason = reason.strip()
    db.session.flush()
    after_change(partnership)
    return partnership


def _organisations(ids: list[int]) -> list[Organisation]:
    if not ids:
        return []
    return list(db.session.scalars(select(Organisation).where(Organisation.id.in_(ids))))


def _require_editor(actor, partnership: Partnership | None = None) -> None:
    require(can_edit_records, actor)
    if partnership is not None:
        require(can_edit_partnership, actor, partnership)


def after_change(partnership: Partnership) -> None:
    """Re-check the partnership against the policy rules, and its agreements (a line paid
    under one may have been added, moved, changed or voided)."""
    from ..rules.evaluation import evaluate_agreements_of, evaluate_partnership

    evaluate_partnership(partnership)
    evaluate_agreements_of([partnership.id])


# --- support --------------------------------------------------------------------------------

# A change to any of these means the partner has not confirmed what the record now says.
CONFIRMED_FACTS = ("recipient_id", "paid_on", "kind", "amount", "currency", "description")


@dataclass
class SupportPreloaded:
    """What a batch of support lines refers to, loaded once, so checking a line needs no query:
    the partnerships open to the actor, their parties and agreements, and the external_ids
    already taken; `schema` is the support input that looks them up here."""

    partnerships: dict[int, Partnership]
    agreements: dict[int, Agreement]
    external_ids: dict[str, int]  # support line id by external_id
    organisations: dict[int, Organisation] = field(init=False)
    schema: SupportInput = field(init=False)

    def __post_init__(self):
        self.organisations = {organisation.id: organisation
                              for partnership in self.partnerships.values()
                              for organisation in (partnership.sponsor, partnership.patient_group,
                                                   *partnership.other_organisations)}
        self.schema = SupportInput()
        self.schema.preloaded = self

    def find(self, model, record_id: int):
        """The preloaded record, or None (the caller looks further)."""
        held = {Partnership: self.partnerships, Agreement: self.agreements,
                Organisation: self.organisations}[model]
        return held.get(record_id)

    @classmethod
    def for_actor(cls, actor) -> "SupportPreloaded":
        visible = select(Partnership.id).where(partnership_scope(actor))
        partnerships = db.session.scalars(
            select(Partnership).where(Partnership.id.in_(visible)).options(
                selectinload(Partnership.sponsor), selectinload(Partnership.patient_group),
                selectinload(Partnership.other_organisations))).all()
        agreements = db.session.scalars(
            select(Agreement).where(Agreement.partnership_id.in_(visible))).all()
        external_ids = db.session.execute(
            select(Support.external_id, Support.id).where(Support.external_id.is_not(None))).all()
        return cls({p.id: p for p in partnerships}, {a.id: a for a in agreements},
                   dict(external_ids))


def validate_support(values: dict, actor, current: Support | None = None,
                     preloaded: SupportPreloaded | None = None) -> dict:
    """Check values, the partnership, its parties and agreement, and the actor's right to
    record support on it; return clean values or raise."""
    clean = load(_support_schema if preloaded is None else preloaded.schema, values)
    if preloaded is not None:
        partnership = preloaded.partnerships.get(clean["partnership_id"])
    else:
        partnership = visible_record(Partnership, clean["partnership_id"], partnership_scope,
                                     actor)
    errors: dict[str, list[str]] = {}
    if partnership is None:
        errors["partnership_id"] = ["No partnership with this id."]
    elif not can_edit_partnership(actor, partnership):
        errors["partnership_id"] = ["You can record support only on partnerships your "
                                    "organisation is a party of."]
    if clean.get("external_id") and _external_id_taken(clean["external_id"], current, preloaded):
        errors["external_id"] = [DUPLICATE_EXTERNAL_ID]
    if errors:
        raise ValidationFailed(errors)
    return clean


DUPLICATE_EXTERNAL_ID = "Another support entry already has this id."


def _external_id_taken(external_id: str, current: Support | None,
                       preloaded: SupportPreloaded | None) -> bool:
    own = current.id if current else None
    if preloaded is not None:
        return preloaded.external_ids.get(external_id, own) != own
    return db.session.scalar(select(Support.id).where(
        Support.external_id == external_id, Support.id != (own or -1))) is not None


def record_support(values: dict, actor) -> Support:
    """Record a transfer of value within a partnership; the partner is asked to confirm it."""
    _require_editor(actor)
    clean = validate_support(values, actor)
    support = Support(**clean, confirmed_by_partner="pending")
    db.session.add(support)
    db.session.flush()
    after_change(support.partnership)
    events.confirmation_requested([support.recipient_id], utcnow().date())
    return support


def validate_supports(rows: list[dict], actor, preloaded: SupportPreloaded
                      ) -> tuple[list[dict], dict[int, dict[str, list[str]]]]:
    """Validate many new support lines as record_support validates one; return the clean values
    and each bad row's errors by index."""
    cleaned, errors, seen = [], {}, set()
    for index, values in enumerate(rows):
        try:
            clean = validate_support(values, actor, preloaded=preloaded)
        except ValidationFailed as failure:
            errors[index] = failure.fields
            continue
        external_id = clean.get("external_id")
        if external_id and external_id in seen:
            errors[index] = {"external_id": [DUPLICATE_EXTERNAL_ID]}
            continue
        seen.add(external_id)
        cleaned.append(clean)
    return cleaned, errors


def record_supports(rows: list[dict], actor, preloaded: SupportPreloaded,
                    recorded: set[int] | None = None) -> list[int]:
    """Record many support lines at once (the CSV import); return their ids.

    Every row is validated exactly as record_support validates one; if any is not valid,
    RowsInvalid names them and nothing is written. The rows go in with one statement, are
    audited as the session audits one line (the same change sets, in the same chain), and their
    partnerships and agreements are re-checked once for all of them (after_lines_recorded). Given
    `recorded`, the partnerships are added to it instead: the caller re-checks them once after
    its last batch (each check reads every line of the partnerships' patient groups).
    """
    _require_editor(actor)
    cleaned, errors = validate_supports(rows, actor, preloaded)
    if errors:
        raise RowsInvalid(errors)
    db.session.flush()  # anything pending is written (and audited) first
    table = Support.__table__
    defaults = column_defaults(table)
    values = [defaults | clean | {"confirmed_by_partner": "pending"} for clean in cleaned]
    ids = insert_returning_ids(table, values)
    for row, new_id in zip(values, ids, strict=True):
        row["id"] = new_id
        if row["external_id"]:
            preloaded.external_ids[row["external_id"]] = new_id
    audit.append_created(Support, values)
    events.confirmation_requested({row["recipient_id"] for row in values}, utcnow().date())
    partnership_ids = {row["partnership_id"] for row in values}
    if recorded is None:
        after_lines_recorded(partnership_ids)
    else:
        recorded.update(partnership_ids)
    return ids


def after_lines_recorded(partnership_ids) -> None:
    """What after_change does for each partnership, once for all of them: re-check these
    partnerships, the other partnerships of their patient groups, and their agreements."""
    from ..rules.evaluation import (
        current_policy,
        evaluate_agreements_of,
        evaluate_partnership_ids,
        today_utc,
    )

    ids = set(partnership_ids)
    if not ids:
        return
    groups = select(Partnership.patient_group_id).where(Partnership.id.in_(ids))
    siblings = set(db.session.scalars(
        select(Partnership.id).where(Partnership.patient_group_id.in_(groups))))
    evaluate_partnership_ids(siblings | ids, current_policy(), today_utc())
    evaluate_agreements_of(sorted(ids))


def update_support(support: Support, changes: dict, actor, reason: str | None = None,
                   expected_version: int | None = None) -> Support:
    """Apply changed fields; a changed fact goes back to the partner for confirmation."""
    _require_editor(actor, support.partnership)
    if support.is_void:
        raise Conflict("This support entry has been voided and can no longer be edited.")
    refuse_stale(support, expected_version, "support entry")
    unknown = set(changes) - set(SUPPORT_FIELDS)
    if unknown:
        raise ValidationFailed({name: ["Unknown field."] for name in sorted(unknown)})
    if "partnership_id" in changes and str(changes["partnership_id"]) != str(
            support.partnership_id):
        raise ValidationFailed({"partnership_id": ["A support entry stays with its partnership: "
                                                   "void it and record it on the other one."]})
    clean = validate_support(support_values(support) | changes, actor, support)
    audit.set_reason(reason)
    changed = [name for name, value in clean.items() if getattr(support, name) != value]
    for name in changed:
        setattr(support, name, clean[name])
    if set(changed) & set(CONFIRMED_FACTS):
        ask_partner_again(support)
    db.session.flush()
    after_change(support.partnership)
    return support


def void_support(support: Support, actor, reason: str) -> Support:
    """Withdraw a support entry recorded in error; it leaves totals and reports."""
    _require_editor(actor, support.partnership)
    if not (reason or "").strip():
        raise ValidationFailed({"reason": ["Say why this support entry is being voided."]})
    if support.is_void:
        raise Conflict("This support entry is already void.")
    audit.set_reason(reason)
    support.voided_at = utcnow()
    support.void_reason = reason.strip()
    db.session.flush()
    after_change(support.partnership)
    return support


# --- finding ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartnershipFilter:
    status: str | None = None
    kind: str | None = None
    organisation_id: int | None = None
    q: str | None = None
    include_void: bool = False
    sort: str = "title"
    page: int = 1
    per_page: int = 25


PARTNERSHIP_SORTS = {
    "title": Partnership.title,
    "kind": Partnership.kind,
    "status": Partnership.status,
    "started_on": Partnership.started_on,
}


def find_partnerships(actor, criteria: PartnershipFilter) -> Page:
    """Return one page of the partnerships the actor may see that match the criteria."""
    conditions = [partnership_scope(actor)]
    if not criteria.include_void:
        conditions.append(Partnership.voided_at.is_(None))
    if criteria.status:
        conditions.append(Partnership.status == criteria.status)
    if criteria.kind:
        conditions.append(Partnership.kind == criteria.kind)
    if criteria.organisation_id:
        member_of = select(partnership_members.c.partnership_id).where(
            partnership_members.c.organisation_id == criteria.organisation_id)
        conditions.append(or_(Partnership.sponsor_id == criteria.organisation_id,
                              Partnership.patient_group_id == criteria.organisation_id,
                              Partnership.id.in_(member_of)))
    if criteria.q:
        pattern = f"%{criteria.q.strip()}%"
        conditions.append(or_(Partnership.title.ilike(pattern),
                              Partnership.policy_reference.ilike(pattern)))
    total = db.session.scalar(select(func.count()).select_from(Partnership).where(*conditions))
    column = PARTNERSHIP_SORTS.get(criteria.sort.lstrip("-"), Partnership.title)
    order = column.desc() if criteria.sort.startswith("-") else column.asc()
    items = db.session.scalars(
        select(Partnership)
        .options(joinedload(Partnership.sponsor), joinedload(Partnership.patient_group))
        .where(*conditions).order_by(order, Partnership.id)
        .limit(criteria.per_page).offset((criteria.page - 1) * criteria.per_page)
    ).all()
    return Page(items, total, criteria.page, criteria.per_page)


@dataclass(frozen=True)
class SupportFilter:
    partnership_id: int | None = None
    recipient_id: int | None = None
    year: int | None = None
    kind: str | None = None
    confirmation: str | None = None
    include_void: bool = False
    sort: str = "-paid_on"
    page: int = 1
    per_page: int = 25


SUPPORT_SORTS = {"paid_on": Support.paid_on, "amount": Support.amount, "kind": Support.kind}


def find_supports(actor, criteria: SupportFilter) -> Page:
    """Return one page of the support entries the actor may see, with totals per currency."""
    visible = select(Partnership.id).where(partnership_scope(actor))
    conditions = [Support.partnership_id.in_(visible)]
    if not criteria.include_void:
        conditions.append(Support.voided_at.is_(None))
    if criteria.partnership_id:
        conditions.append(Support.partnership_id == criteria.partnership_id)
    if criteria.recipient_id:
        conditions.append(Support.recipient_id == criteria.recipient_id)
    if criteria.year:
        conditions.append(extract("year", Support.paid_on) == criteria.year)
    if criteria.kind:
        conditions.append(Support.kind == criteria.kind)
    if criteria.confirmation:
        conditions.append(Support.confirmed_by_partner == criteria.confirmation)
    total = db.session.scalar(select(func.count()).select_from(Support).where(*conditions))
    column = SUPPORT_SORTS.get(criteria.sort.lstrip("-"), Support.paid_on)
    order = column.desc() if criteria.sort.startswith("-") else column.asc()
    items = db.session.scalars(
        select(Support)
        .options(joinedload(Support.partnership), joinedload(Support.recipient))
        .where(*conditions).order_by(order, Support.id.desc())
        .limit(criteria.per_page).offset((criteria.page - 1) * criteria.per_page)
    ).all()
    page = Page(items, total, criteria.page, criteria.per_page)
    page.extra["totals"] = totals_by_currency(conditions)
    return page


def totals_by_currency(conditions) -> list[tuple[str, object]]:
    """Sum the valued entries per currency (amounts stay Decimal; unvalued in-kind is left out)."""
    amounts = db.session.execute(
        select(Support.currency, Support.amount).where(*conditions, Support.amount.is_not(None))
    ).all()
    totals: dict[str, object] = {}
    for code, amount in amounts:
        totals[code] = totals.get(code, 0) + amount
    return sorted(totals.items())


def support_years(actor) -> list[int]:
    """The calendar years in which support the actor may see was paid, newest first."""
    visible = select(Partnership.id).where(partnership_scope(actor))
    years = db.session.scalars(
        select(extract("year", Support.paid_on)).where(Support.partnership_id.in_(visible))
        .distinct()
    ).all()
    return sorted({int(y) for y in years if y is not None}, reverse=True)


def recent_interactions(actor, partnership: Partnership, limit: int = 20):
    """The partnership's interactions the actor may see, latest first."""
    from ..interactions.models import Interaction
    from ..permissions import interaction_scope

    conditions = [Interaction.partnership_id == partnership.id, interaction_scope(actor),
                  Interaction.voided_at.is_(None)]
    total = db.session.scalar(select(func.count()).select_from(Interaction).where(*conditions))
    items = db.session.scalars(
        select(Interaction).where(*conditions)
        .order_by(Interaction.occurred_on.desc(), Interaction.id.desc()).limit(limit)
    ).all()
    return items, total


def partnership_supports(partnership: Partnership, include_void: bool = False) -> list[Support]:
    conditions = [Support.partnership_id == partnership.id]
    if not include_void:
        conditions.append(Support.voided_at.is_(None))
    return list(db.session.scalars(
        select(Support).options(selectinload(Support.recipient)).where(*conditions)
        .order_by(Support.paid_on.desc(), Support.id.desc())
    ))
