"""The demo's payments to individuals: fees within and above the rate card, one without an
agreement, one in a currency the card has no rate for."""

from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select

from ..extensions import db


def seed_demo_payments(partnership, advocate, today: date) -> int:
    """Record fees to three patients of an advisory board of the partnership, and a few more;
    return how many payments were made."""
    from ..agreements.models import Agreement
    from ..interactions.models import Interaction
    from .services import record_payment

    board = db.session.scalars(
        select(Interaction).where(Interaction.partnership_id == partnership.id,
                                  Interaction.voided_at.is_(None),
                                  Interaction.occurred_on <= today)
        .order_by((Interaction.format != "advisory_board"), Interaction.occurred_on.desc())
    ).first()
    if board is None:
        return 0
    agreement = Agreement(
        partnership_id=partnership.id, kind="contracted_service",
        objective="Fees and expenses of patient advisory board members, at the rate card's "
                  "rates", parties_and_roles="Sponsor contracts and pays patient advisers; "
                  "the patient group nominates them.",
        starts_on=board.occurred_on - timedelta(days=60),
        ends_on=board.occurred_on + timedelta(days=300),
        amount=Decimal("15000.00"), currency="GBP",
        signed_on=board.occurred_on - timedelta(days=45),
        signatories="Head of patient engagement (sponsor); chair (patient group)")
    db.session.add(agreement)
    db.session.flush()
    paid_on = board.occurred_on + timedelta(days=7)
    payments = [
        # payee, kind, service, hours, fee, expenses, currency, agreement
        ("RLA-P-001", "patient", "advisory_board", "4", "600.00", "86.40", "GBP", agreement.id),
        ("RLA-P-002", "patient", "advisory_board", "4", "600.00", "42.10", "GBP", agreement.id),
        ("RLA-C-003", "caregiver", "advisory_board", "4", "750.00", "0.00", "GBP", agreement.id),
        ("RLA-P-001", "patient", "review", "3", "300.00", "0.00", "GBP", None),
        ("RLA-P-004", "patient", "speaking", "2", "500.00", "120.00", "CHF", agreement.id),
    ]
    for reference, kind, service, hours, fee, expenses, currency, agreement_id in payments:
        record_payment({"interaction_id": board.id, "payee_reference": reference,
                        "payee_kind": kind, "service": service, "hours": hours, "fee": fee,
                        "expenses": expenses, "currency": currency, "paid_on": paid_on,
                        "agreement_id": agreement_id}, advocate)
    return len(payments)
