"""Record, edit, void and find individual payments; the one place their input is validated.

Forms, the API and the CSV import all load values through IndividualPaymentInput. A payee is
known only by a pseudonymous reference: what looks like a name or an email is refused.
"""

import re
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from marshmallow import ValidationError as SchemaError
from marshmallow import fields, validates
from sqlalchemy import exists, extract, func, select
from sqlalchemy.orm import joinedload

from .. import audit
from ..database import utcnow
from ..errors import Conflict, ValidationFailed
from ..extensions import db
from ..organisations.models import Organisation
from ..pagination import Page
from ..permissions import (
    can_edit_individual_payment,
    can_record_individual_payments,
    individual_payment_scope,
    interaction_scope,
    require,
    sees_whole_installation,
    visible_partnership_ids,
    visible_record,
)
from ..records import refuse_stale
from ..validation import Input, choice, currency, load, money, required, text
from ..vocabulary import PAYEE_KINDS, PAYMENT_SERVICES
from .models import IndividualPayment

REQUIRED = {"required": "This field is required.", "null": "This field is required."}
NO_SERVICE = {"required": "Say which service the fee paid for: a fee without a service cannot "
                          "be checked against the rate card.",
              "null": "Say which service the fee paid for: a fee without a service cannot be "
                      "checked against the rate card."}
REFERENCE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/#-]*$")
NO_NAMES = ("record a pseudonym or an internal reference (such as P-0042) instead: no names or "
            "contact details of payees are stored.")
MAX_HOURS = Decimal("1000")


class Hours(fields.Decimal):
    """Hours worked: more than 0, at most two decimals (floats are read as their text)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, float):
            value = repr(value)
        hours = super()._deserialize(value, attr, data, **kwargs)
        if hours is None:
            return None
        if not hours.is_finite() or hours <= 0:
            raise SchemaError("Enter the hours worked as a number above 0, or leave it empty.")
        if hours > MAX_HOURS:
            raise SchemaError(f"At most {MAX_HOURS} hours for one payment.")
        if hours != hours.quantize(Decimal("0.01")):
            raise SchemaError("Use at most 2 decimal places.")
        return hours.quantize(Decimal("0.01"))


class IndividualPaymentInput(Input):
    organisation_id = fields.Integer(allow_none=True, load_default=None, metadata={
        "description": "The paying organisation; by default yours (or the interaction's)."})
    interaction_id = fields.Integer(allow_none=True, load_default=None)
    payee_reference = text(60, required=True, error_messages=REQUIRED, metadata={
        "description": "A pseudonym or internal reference, never a name or an email."})
    payee_kind = choice(PAYEE_KINDS, required=True, error_messages=REQUIRED)
    service = choice(PAYMENT_SERVICES, required=True, error_messages=NO_SERVICE)
    hours = Hours(allow_none=True, load_default=None)
    fee = money(required=True, error_messages=REQUIRED)
    expenses = money(allow_none=True, load_default=Decimal("0.00"))
    currency = currency(required=True, error_messages=REQUIRED)
    paid_on = required(fields.Date)
    agreement_id = fields.Integer(allow_none=True, load_default=None)
    external_id = text(100, allow_none=True, load_default=None)

    @validates("payee_reference")
    def pseudonymous(self, value, **_kwargs):
        reference_problem(value)


def reference_problem(value: str) -> None:
    """Refuse a payee reference that looks like an email or a name, saying why."""
    value = value or ""
    if "@" in value:
        raise SchemaError(f"This looks like an email address: {NO_NAMES}")
    if any(character.isspace() for character in value.strip()):
        raise SchemaError(f"This looks like a name (it has spaces): {NO_NAMES}")
    if not REFERENCE_PATTERN.match(value.strip()):
        raise SchemaError("Use letters, digits and - _ . / # only, starting with a letter or a "
                          f"digit: {NO_NAMES}")


PAYMENT_FIELDS = tuple(IndividualPaymentInput().fields)
_schema = IndividualPaymentInput()


def payment_values(payment: IndividualPayment) -> dict:
    """Return the record's current values under the names forms, API and imports use."""
    return {name: getattr(payment, name) for name in PAYMENT_FIELDS}


def validate_payment(values: dict, actor, current: IndividualPayment | None = None) -> dict:
    """Check values and the records they point to; return clean values or raise."""
    from ..agreements.models import Agreement
    from ..interactions.models import Interaction

    clean = load(_schema, values)
    clean["payee_reference"] = clean["payee_reference"].strip()
    if clean["expenses"] is None:
        clean["expenses"] = Decimal("0.00")
    errors: dict[str, list[str]] = {}
    interaction = None
    if clean["interaction_id"] is not None:
        interaction = visible_record(Interaction, clean["interaction_id"], interaction_scope,
                                     actor)
        if interaction is None:
            errors["interaction_id"] = ["No interaction with this id is open to you."]
        elif interaction.is_void:
            errors["interaction_id"] = ["This interaction has been voided."]
            interaction = None
    if clean["organisation_id"] is None:
        clean["organisation_id"] = actor.organisation_id or (
            interaction.organisation_id if interaction else None)
    organisation_id = clean["organisation_id"]
    if organisation_id is None:
        errors["organisation_id"] = ["Choose the organisation that paid."]
    elif not sees_whole_installation(actor) and organisation_id != actor.organisation_id:
        errors["organisation_id"] = ["You can record payments only for your own organisation."]
    elif db.session.get(Organisation, organisation_id) is None:
        errors["organisation_id"] = ["No organisation with this id."]
    elif interaction is not None and organisation_id not in _parties_of(interaction):
        errors["organisation_id"] = ["The paying organisation took no part in this interaction."]
    if clean["agreement_id"] is not None:
        agreement = db.session.scalar(select(Agreement).where(
            Agreement.id == clean["agreement_id"],
            Agreement.partnership_id.in_(visible_partnership_ids(actor))))
        if agreement is None:
            errors["agreement_id"] = ["No agreement with this id is open to you."]
        elif agreement.is_void:
            errors["agreement_id"] = ["This agreement has been voided."]
        elif interaction is not None and interaction.partnership_id is not None:
            if agreement.partnership_id != interaction.partnership_id:
                errors["agreement_id"] = [
                    f"This agreement is of the partnership “{agreement.partnership.title}”, not "
                    f"of the interaction's partnership “{interaction.partnership.title}”: name "
                    "an agreement of the partnership the interaction belongs to."]
        elif organisation_id is not None and \
                organisation_id not in agreement.partnership.organisation_ids:
            errors["agreement_id"] = ["This agreement is of a partnership the paying "
                                      "organisation is not a party of."]
    if clean.get("external_id"):
        taken = db.session.scalar(select(IndividualPayment.id).where(
            IndividualPayment.external_id == clean["external_id"],
            IndividualPayment.id != (current.id if current else -1)))
        if taken:
            errors["external_id"] = ["Another payment already has this id."]
    if errors:
        raise ValidationFailed(errors)
    return clean


def _parties_of(interaction) -> set[int]:
    parties = {interaction.organisation_id}
    if interaction.partnership is not None:
        parties |= interaction.partnership.organisation_ids
    return parties


def record_payment(values: dict, actor) -> IndividualPayment:
    """Record a fee and expenses paid to a member of the public, and check them."""
    require(can_record_individual_payments, actor)
    clean = validate_payment(values, actor)
    payment = IndividualPayment(**clean, created_by_id=actor.id)
    db.session.add(payment)
    db.session.flush()
    after_change(payment, created=True)
    return payment


def update_payment(payment: IndividualPayment, changes: dict, actor, reason: str | None = None,
                   expected_version: int | None = None) -> IndividualPayment:
    """Apply changed fields; the payment is re-validated whole and re-checked."""
    require(can_record_individual_payments, actor)
    require(can_edit_individual_payment, actor, payment)
    if payment.is_void:
        raise Conflict("This payment has been voided and can no longer be edited.")
    refuse_stale(payment, expected_version, "payment")
    unknown = set(changes) - set(PAYMENT_FIELDS)
    if unknown:
        raise ValidationFailed({name: ["Unknown field."] for name in sorted(unknown)})
    clean = validate_payment(payment_values(payment) | changes, actor, payment)
    audit.set_reason(reason)
    previous_interaction = payment.interaction_id
    for name, value in clean.items():
        if getattr(payment, name) != value:
            setattr(payment, name, value)
    db.session.flush()
    after_change(payment, previous_interaction=previous_interaction)
    return payment


def void_payment(payment: IndividualPayment, actor, reason: str) -> IndividualPayment:
    """Withdraw a payment recorded in error; it leaves the report's aggregate."""
    require(can_record_individual_payments, actor)
    require(can_edit_individual_payment, actor, payment)
    if not (reason or "").strip():
        raise ValidationFailed({"reason": ["Say why this payment is being voided."]})
    if payment.is_void:
        raise Conflict("This payment is already void.")
    audit.set_reason(reason)
    payment.voided_at = utcnow()
    payment.void_reason = reason.strip()
    db.session.flush()
    after_change(payment)
    return payment


def after_change(payment: IndividualPayment, created: bool = False,
                 previous_interaction: int | None = None) -> None:
    """Re-check the payment, and the interactions it pays for (whether an interaction has
    individual payments is a fact of the interaction: `has_individual_payments`)."""
    from ..interactions.models import Interaction
    from ..rules.evaluation import evaluate_individual_payment, evaluate_interaction

    evaluate_individual_payment(payment, created=created)
    for interaction_id in sorted({payment.interaction_id, previous_interaction} - {None}):
        interaction = db.session.get(Interaction, interaction_id)
        if interaction is not None and not interaction.is_void:
            evaluate_interaction(interaction, partnership=False)


# --- the fact other features read ------------------------------------------------------------


def has_individual_payments(interaction_id: int) -> bool:
    """Whether live (not voided) individual payments were made for the interaction: an
    interaction with individual payments needs approval before it is held."""
    return bool(db.session.scalar(select(exists().where(
        IndividualPayment.interaction_id == interaction_id,
        IndividualPayment.voided_at.is_(None)))))


def interactions_with_individual_payments():
    """A SELECT of the ids of interactions with live individual payments (for bulk paths)."""
    return select(IndividualPayment.interaction_id).where(
        IndividualPayment.interaction_id.is_not(None), IndividualPayment.voided_at.is_(None)
    ).distinct()


# --- finding ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentFilter:
    year: int | None = None
    service: str | None = None
    interaction_id: int | None = None
    include_void: bool = False
    page: int = 1
    per_page: int = 25


def find_payments(actor, criteria: PaymentFilter) -> Page:
    """One page of the payments the actor may see, newest first, with totals per currency."""
    conditions = [individual_payment_scope(actor)]
    if not criteria.include_void:
        conditions.append(IndividualPayment.voided_at.is_(None))
    if criteria.year:
        conditions.append(extract("year", IndividualPayment.paid_on) == criteria.year)
    if criteria.service:
        conditions.append(IndividualPayment.service == criteria.service)
    if criteria.interaction_id:
        conditions.append(IndividualPayment.interaction_id == criteria.interaction_id)
    total = db.session.scalar(
        select(func.count()).select_from(IndividualPayment).where(*conditions))
    items = db.session.scalars(
        select(IndividualPayment)
        .options(joinedload(IndividualPayment.interaction),
                 joinedload(IndividualPayment.organisation))
        .where(*conditions)
        .order_by(IndividualPayment.paid_on.desc(), IndividualPayment.id.desc())
        .limit(criteria.per_page).offset((criteria.page - 1) * criteria.per_page)
    ).all()
    page = Page(items, total, criteria.page, criteria.per_page)
    totals: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal("0"), Decimal("0")])
    for code, fee, expenses in db.session.execute(
        select(IndividualPayment.currency, func.sum(IndividualPayment.fee),
               func.sum(IndividualPayment.expenses))
        .where(*conditions).group_by(IndividualPayment.currency)
    ):
        totals[code] = [Decimal(fee or 0).quantize(Decimal("0.01")),
                        Decimal(expenses or 0).quantize(Decimal("0.01"))]
    page.extra["totals"] = sorted(totals.items())
    return page


def payments_of_interaction(actor, interaction_id: int) -> list[IndividualPayment]:
    """The live payments made for an interaction that the actor may see."""
    return list(db.session.scalars(
        select(IndividualPayment).where(
            IndividualPayment.interaction_id == interaction_id,
            IndividualPayment.voided_at.is_(None), individual_payment_scope(actor))
        .order_by(IndividualPayment.paid_on, IndividualPayment.id)))


# --- the year's aggregate (the public report) ------------------------------------------------


def yearly_aggregate(organisation_id: int, year: int) -> list[dict]:
    """The year's payments of one paying organisation by service and currency: the number of
    distinct individuals, total fees and total expenses (never a payee reference)."""
    from datetime import date

    rows = db.session.execute(
        select(IndividualPayment.service, IndividualPayment.currency,
               func.count(func.distinct(IndividualPayment.payee_reference)),
               func.count(), func.sum(IndividualPayment.fee),
               func.sum(IndividualPayment.expenses))
        .where(IndividualPayment.organisation_id == organisation_id,
               IndividualPayment.voided_at.is_(None),
               IndividualPayment.paid_on >= date(year, 1, 1),
               IndividualPayment.paid_on <= date(year, 12, 31))
        .group_by(IndividualPayment.service, IndividualPayment.currency)
    ).all()
    order = list(PAYMENT_SERVICES)
    cent = Decimal("0.01")
    return [{"service": service, "service_label": PAYMENT_SERVICES[service],
             "currency": code, "individuals": int(people), "payments": int(count),
             "total_fees": Decimal(fees or 0).quantize(cent),
             "total_expenses": Decimal(expenses or 0).quantize(cent)}
            for service, code, people, count, fees, expenses
            in sorted(rows, key=lambda row: (order.index(row[0]), row[1]))]


def individuals_paid(organisation_id: int, year: int) -> int:
    """How many distinct individuals the organisation paid in the year (by payee reference)."""
    from datetime import date

    return int(db.session.scalar(
        select(func.count(func.distinct(IndividualPayment.payee_reference)))
        .where(IndividualPayment.organisation_id == organisation_id,
               IndividualPayment.voided_at.is_(None),
               IndividualPayment.paid_on >= date(year, 1, 1),
               IndividualPayment.paid_on <= date(year, 12, 31))) or 0)
