"""Demo agreements: a framework agreement for each partnership that recorded its signature date
(as the migration makes them), and on Helix's trial design programme a certified grant, a
sponsorship paid beyond its amount and after its term, and a contract paid before it was
signed."""

from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select

from ..audit import Actor, acting_as
from ..database import utcnow
from ..extensions import db
from ..partnerships.models import Support
from .models import Agreement
from .services import CERTIFICATION_MEANINGS

FRAMEWORK_OBJECTIVE = "Framework agreement recorded before agreements were kept one by one"


def seed_demo_agreements(partnerships, users, today: date | None = None) -> int:
    """Add the demo agreements and point the support lines at them; return how many."""
    today = today or date.today()
    made = []
    advocate = users["advocate"]
    with acting_as(Actor(advocate.id, advocate.email), reason="Demo data"):
        for partnership in partnerships:
            if partnership.agreement_signed_on is None:
                continue
            framework = Agreement(partnership_id=partnership.id, kind="framework",
                                  objective=FRAMEWORK_OBJECTIVE,
                                  signed_on=partnership.agreement_signed_on,
                                  starts_on=partnership.started_on)
            db.session.add(framework)
            db.session.flush()
            made.append(framework)
            for line in _lines(partnership):
                line.agreement_id = framework.id
        made += _helix_agreements(partnerships[0], users["compliance"], today)
    db.session.flush()
    return len(made)


def _lines(partnership) -> list[Support]:
    return list(db.session.scalars(select(Support).where(
        Support.partnership_id == partnership.id, Support.voided_at.is_(None),
        Support.agreement_id.is_(None)).order_by(Support.paid_on, Support.id)))


def _helix_agreements(partnership, certifier, today: date) -> list[Agreement]:
    year_ago = today - timedelta(days=365)
    certified = Agreement(
        partnership_id=partnership.id, kind="grant",
        objective="Grant towards the patient helpline for the year",
        parties_and_roles="Helix Pharma funds; Rare Lung Alliance runs the helpline",
        starts_on=year_ago, ends_on=today + timedelta(days=30), amount=Decimal("40000.00"),
        currency="GBP", signed_on=year_ago,
        signatories="Helix Pharma: finance director; Rare Lung Alliance: chair",
        certified_by_id=certifier.id, certified_at=utcnow().replace(microsecond=0),
        certification_meaning=CERTIFICATION_MEANINGS["certified"])
    over = Agreement(
        partnership_id=partnership.id, kind="sponsorship",
        objective="Sponsorship of the annual patient conference",
        parties_and_roles="Helix Pharma sponsors; Rare Lung Alliance organises",
        # Its term ended before the bursaries were paid: over its amount and outside its term.
        starts_on=year_ago, ends_on=today - timedelta(days=110), amount=Decimal("5000.00"),
        currency="GBP",
        signed_on=year_ago, signatories="Helix Pharma: head of patient engagement")
    late = Agreement(
        partnership_id=partnership.id, kind="contracted_service",
        objective="Patient advisers' fees for the protocol review panel",
        parties_and_roles="Rare Lung Alliance provides advisers; Helix Pharma pays fees",
        starts_on=today - timedelta(days=90), ends_on=today + timedelta(days=270),
        amount=Decimal("8000.00"), currency="GBP", signed_on=today - timedelta(days=20),
        signatories="Helix Pharma: medical director; Rare Lung Alliance: chair")
    agreements = [certified, over, late]
    db.session.add_all(agreements)
    db.session.flush()
    lines = [
        (certified, today - timedelta(days=200), "grant", "12000.00",
         "Grant towards the group's patient helpline"),
        (over, today - timedelta(days=120), "sponsorship", "3500.00",
         "Sponsorship of the annual patient conference: venue"),
        (over, today - timedelta(days=100), "sponsorship", "2750.00",
         "Sponsorship of the annual patient conference: travel bursaries"),
        (late, today - timedelta(days=45), "contracted_service", "1800.00",
         "Fees for patient advisers on the protocol review panel"),
    ]
    for agreement, paid_on, kind, amount, description in lines:
        db.session.add(Support(partnership_id=partnership.id,
                               recipient_id=partnership.patient_group_id, paid_on=paid_on,
                               kind=kind, amount=Decimal(amount), currency="GBP",
                               description=description, agreement_id=agreement.id))
    return agreements
