"""Record, edit, certify, void and find written agreements, and what is paid under each.

The one place agreement input is validated: the form, the API and the CSV import all load values
through AgreementInput. A change re-checks the agreement against the AGR-* rules.
"""

from dataclasses import dataclass
from decimal import Decimal

from marshmallow import ValidationError as SchemaError
from marshmallow import fields, validates_schema
from sqlalchemy import func, select

from .. import audit
from ..database import utcnow
from ..errors import Conflict, ValidationFailed
from ..extensions import db
from ..partnerships.models import Partnership, Support
from ..permissions import (
    agreement_scope,
    can_certify_agreements,
    can_edit_partnership,
    can_edit_records,
    partnership_scope,
    require,
    visible_record,
)
from ..records import refuse_stale
from ..validation import Input, choice, currency, load, money, required, required_text, text
from ..vocabulary import AGREEMENT_KINDS
from .models import Agreement

REQUIRED = {"required": "This field is required.", "null": "This field is required."}

# The meaning a certifier states with their signature (an e-signature, as the review sign-off).
CERTIFICATION_MEANINGS = {
    "certified": "Certified: I am the sponsor's nominated signatory and I certify that this "
    "agreement is in its final form and meets the code's requirements for written "
    "agreements with patient organisations.",
    "responsibility": "Responsibility: I take responsibility, for the sponsor, that this "
    "agreement was examined and approved before support is given under it.",
}

# A change to any of these undoes a certification: what was certified is no longer what it says.
CERTIFIED_TERMS = ("kind", "objective", "parties_and_roles", "starts_on", "ends_on", "amount",
                   "currency", "signed_on", "signatories")


class AgreementInput(Input):
    partnership_id = required(fields.Integer)
    kind = choice(AGREEMENT_KINDS, required=True, error_messages=REQUIRED)
    objective = required_text(4000)
    parties_and_roles = text(4000, allow_none=True, load_default=None)
    starts_on = fields.Date(allow_none=True, load_default=None)
    ends_on = fields.Date(allow_none=True, load_default=None)
    amount = money(allow_none=True, load_default=None)
    currency = currency(allow_none=True, load_default=None)
    signed_on = fields.Date(allow_none=True, load_default=None)
    signatories = text(2000, allow_none=True, load_default=None)
    external_id = text(100, allow_none=True, load_default=None)

    @validates_schema(skip_on_field_errors=False)
    def check_term(self, data, **_kwargs):
        starts, ends = data.get("starts_on"), data.get("ends_on")
        if starts and ends and ends < starts:
            raise SchemaError({"ends_on": ["The agreement cannot end before it starts "
                                           f"({starts.isoformat()})."]})

    @validates_schema(skip_on_field_errors=False)
    def check_amount(self, data, **_kwargs):
        if data.get("amount") is not None and "currency" in data and not data.get("currency"):
            raise SchemaError({"currency": ["Give the currency of the amount (ISO 4217, such "
                                            "as EUR)."]})


AGREEMENT_FIELDS = tuple(AgreementInput().fields)
_schema = AgreementInput()


def agreement_values(agreement: Agreement) -> dict:
    """Return the record's current values under the names forms, API and imports use."""
    return {name: getattr(agreement, name) for name in AGREEMENT_FIELDS}


def validate_agreement(values: dict, actor, current: Agreement | None = None) -> dict:
    """Check values and the actor's right to record them on the partnership; return clean
    values."""
    clean = load(_schema, values)
    errors: dict[str, list[str]] = {}
    partnership = visible_record(Partnership, clean["partnership_id"], partnership_scope, actor)
    if partnership is None:
        errors["partnership_id"] = ["No partnership with this id."]
    elif partnership.is_void:
        errors["partnership_id"] = ["This partnership has been voided."]
    elif not can_edit_partnership(actor, partnership):
        errors["partnership_id"] = ["You can record agreements only on partnerships your "
                                    "organisation is a party of."]
    if current is not None and clean["partnership_id"] != current.partnership_id:
        errors["partnership_id"] = ["An agreement stays with its partnership: void it and "
                                    "record it on the other one."]
    if clean.get("external_id"):
        taken = db.session.scalar(
            select(Agreement.id).where(Agreement.external_id == clean["external_id"],
                                       Agreement.id != (current.id if current else -1)))
        if taken:
            errors["external_id"] = ["Another agreement already has this id."]
    if errors:
        raise ValidationFailed(errors)
    return clean


def record_agreement(values: dict, actor) -> Agreement:
    """Record a written agreement of a partnership."""
    require(can_edit_records, actor)
    clean = validate_agreement(values, actor)
    agreement = Agreement(**clean)
    db.session.add(agreement)
    db.session.flush()
    after_change(agreement)
    return agreement


def update_agreement(agreement: Agreement, changes: dict, actor, reason: str | None = None,
                     expected_version: int | None = None) -> Agreement:
    """Apply changed fields; changed terms withdraw the certification (it must be given
    again)."""
    _require_editor(actor, agreement)
    if agreement.is_void:
        raise Conflict("This agreement has been voided and can no longer be edited.")
    refuse_stale(agreement, expected_version, "agreement")
    unknown = set(changes) - set(AGREEMENT_FIELDS)
    if unknown:
        raise ValidationFailed({name: ["Unknown field."] for name in sorted(unknown)})
    clean = validate_agreement(agreement_values(agreement) | changes, actor, agreement)
    audit.set_reason(reason)
    changed = [name for name, value in clean.items() if getattr(agreement, name) != value]
    for name in changed:
        setattr(agreement, name, clean[name])
    if set(changed) & set(CERTIFIED_TERMS) and agreement.certified_at is not None:
        agreement.certified_at = None
        agreement.certified_by_id = None
        agreement.certification_meaning = None
    db.session.flush()
    after_change(agreement)
    return agreement


def certify_agreement(agreement: Agreement, actor, password: str | None,
                      meaning: str | None, code: str | None = None) -> Agreement:
    """Certify the agreement as the sponsor's nominated signatory: the signer re-enters their
    password (and their code, with two-step sign-in on) and states the meaning of the
    signature."""
    from ..auth.services import check_signature

    require(can_certify_agreements, actor, agreement)
    if agreement.is_void:
        raise Conflict("This agreement has been voided; there is nothing to certify.")
    if agreement.certified_at is not None:
        raise Conflict("This agreement is already certified.")
    if agreement.signed_on is None:
        raise Conflict("Record the date the agreement was signed before certifying it.")
    statement = check_signature(actor, password, meaning, CERTIFICATION_MEANINGS,
                                "certification", f"agreement {agreement.id}", code)
    audit.set_actor(actor)
    audit.set_reason(f"Electronic signature by {actor.name}: {statement}")
    agreement.certified_at = utcnow().replace(microsecond=0)
    agreement.certified_by_id = actor.id
    agreement.certification_meaning = statement
    db.session.flush()
    after_change(agreement)
    return agreement


def certification_line(agreement: Agreement) -> str | None:
    """The printed certification: who, when (UTC) and the meaning of the signature."""
    if agreement.certified_at is None:
        return None
    signer = agreement.certified_by
    name = signer.name if signer else "unknown user"
    return (f"Certified by {name} on {agreement.certified_at:%Y-%m-%d %H:%M} UTC — "
            f"{agreement.certification_meaning}")


def void_agreement(agreement: Agreement, actor, reason: str) -> Agreement:
    """Withdraw an agreement recorded in error; lines paid under it must be moved first."""
    _require_editor(actor, agreement)
    if not (reason or "").strip():
        raise ValidationFailed({"reason": ["Say why this agreement is being voided."]})
    if agreement.is_void:
        raise Conflict("This agreement is already void.")
    lines = db.session.scalar(select(func.count()).select_from(Support).where(
        Support.agreement_id == agreement.id, Support.voided_at.is_(None)))
    if lines:
        raise Conflict(f"{lines} support line{'s are' if lines != 1 else ' is'} paid under this "
                       "agreement; move or void them first, so nothing points to a voided "
                       "agreement.")
    audit.set_reason(reason)
    agreement.voided_at = utcnow()
    agreement.void_reason = reason.strip()
    db.session.flush()
    after_change(agreement)
    return agreement


def _require_editor(actor, agreement: Agreement) -> None:
    require(can_edit_records, actor)
    require(can_edit_partnership, actor, agreement.partnership)


def after_change(agreement: Agreement) -> None:
    """Re-check the agreement against the agreement rules."""
    from ..rules.evaluation import evaluate_agreement_ids

    evaluate_agreement_ids([agreement.id])


# --- support lines name their agreement -------------------------------------------------------


def agreement_problem(agreement: Agreement | None, partnership_id: int | None) -> str | None:
    """Why a support line may not be paid under this agreement, the one its agreement_id names
    (None: it may)."""
    if agreement is None:
        return "No agreement with this id."
    if partnership_id is not None and agreement.partnership_id != partnership_id:
        return ("This agreement belongs to another partnership: a line is paid under an "
                "agreement of its own partnership.")
    if agreement.is_void:
        return "This agreement has been voided."
    return None


# --- finding --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgreementStanding:
    """An agreement with what has been paid under it and what remains of its amount."""

    agreement: Agreement
    lines: int
    paid: list[tuple[str, Decimal]]  # per currency
    remaining: Decimal | None  # in the agreement's currency; None without a ceiling


def agreements_of(partnership_id: int, include_void: bool = False) -> list[AgreementStanding]:
    """The partnership's agreements with their totals (two statements, however many)."""
    conditions = [Agreement.partnership_id == partnership_id]
    if not include_void:
        conditions.append(Agreement.voided_at.is_(None))
    agreements = list(db.session.scalars(
        select(Agreement).where(*conditions)
        .order_by(Agreement.starts_on.is_(None), Agreement.starts_on, Agreement.id)))
    totals: dict[int, dict[str, Decimal]] = {}
    counts: dict[int, int] = {}
    if agreements:
        for row in db.session.execute(
            select(Support.agreement_id, Support.currency, func.count(), func.sum(Support.amount))
            .where(Support.agreement_id.in_([a.id for a in agreements]),
                   Support.voided_at.is_(None))
            .group_by(Support.agreement_id, Support.currency)
        ):
            counts[row[0]] = counts.get(row[0], 0) + row[2]
            if row[3] is not None:
                totals.setdefault(row[0], {})[row[1]] = Decimal(row[3])
    standings = []
    for agreement in agreements:
        paid = totals.get(agreement.id, {})
        remaining = None
        if agreement.amount is not None:
            remaining = agreement.amount - paid.get(agreement.currency, Decimal(0))
        standings.append(AgreementStanding(agreement, counts.get(agreement.id, 0),
                                           sorted(paid.items()), remaining))
    return standings


def agreement_choices(partnership_id: int) -> list[tuple[int, str]]:
    """The live agreements a line of this partnership may be paid under, for a select."""
    return [(agreement.id, f"#{agreement.id} {agreement}") for agreement in db.session.scalars(
        select(Agreement).where(Agreement.partnership_id == partnership_id,
                                Agreement.voided_at.is_(None)).order_by(Agreement.id))]


def lines_of(agreement: Agreement) -> list[Support]:
    """The live support lines paid under the agreement, oldest first."""
    return list(db.session.scalars(
        select(Support).where(Support.agreement_id == agreement.id, Support.voided_at.is_(None))
        .order_by(Support.paid_on, Support.id)))


class CertificationInput(Input):
    """The certifier's e-signature: their password (and, with two-step sign-in on, the code
    of their authenticator app or a recovery code) and the meaning they state."""

    password = required(fields.String)
    code = fields.String(allow_none=True, load_default=None)
    meaning = choice(CERTIFICATION_MEANINGS, required=True, error_messages=REQUIRED)


def certify_with(agreement: Agreement, values: dict, actor) -> Agreement:
    """Certify from the API's or the form's values (password, meaning and code)."""
    unknown = set(values) - {"password", "meaning", "code"}
    if unknown:
        raise ValidationFailed({name: ["Unknown field."] for name in sorted(unknown)})
    return certify_agreement(agreement, actor, values.get("password"), values.get("meaning"),
                             values.get("code"))


@dataclass(frozen=True)
class AgreementFilter:
    partnership_id: int | None = None
    include_void: bool = False
    page: int = 1
    per_page: int = 25


def find_agreements(actor, criteria: AgreementFilter):
    """Return one page of the agreements the actor may see, oldest first."""
    from sqlalchemy.orm import joinedload

    from ..pagination import Page

    conditions = [agreement_scope(actor)]
    if not criteria.include_void:
        conditions.append(Agreement.voided_at.is_(None))
    if criteria.partnership_id:
        conditions.append(Agreement.partnership_id == criteria.partnership_id)
    total = db.session.scalar(select(func.count()).select_from(Agreement).where(*conditions))
    items = db.session.scalars(
        select(Agreement).options(joinedload(Agreement.partnership),
                                  joinedload(Agreement.certified_by))
        .where(*conditions).order_by(Agreement.id)
        .limit(criteria.per_page).offset((criteria.page - 1) * criteria.per_page)).all()
    return Page(items, total, criteria.page, criteria.per_page)
