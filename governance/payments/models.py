from datetime import date
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, Numeric, String, exists
from sqlalchemy.orm import Mapped, column_property, mapped_column, relationship

from ..extensions import db
from ..interactions.models import Interaction
from ..records import Record, vocab_enum
from ..vocabulary import PAYEE_KINDS, PAYMENT_SERVICES


class IndividualPayment(Record, db.Model):
    """A fee and expenses paid to one member of the public, known only by a pseudonym."""

    __tablename__ = "individual_payments"

    # The paying organisation (as Interaction.organisation_id): its users see the payment.
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    interaction_id: Mapped[int | None] = mapped_column(ForeignKey("interactions.id"), index=True)
    # A pseudonym or an internal reference: never a name (services.py refuses what looks like one).
    payee_reference: Mapped[str] = mapped_column(String(60), index=True)
    payee_kind: Mapped[str] = mapped_column(vocab_enum(PAYEE_KINDS, "payee_kind"))
    service: Mapped[str] = mapped_column(vocab_enum(PAYMENT_SERVICES, "payment_service"))
    hours: Mapped[Decimal | None] = mapped_column(Numeric(6, 2))
    fee: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    expenses: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal("0.00"))
    currency: Mapped[str] = mapped_column(String(3))
    paid_on: Mapped[date]
    agreement_id: Mapped[int | None] = mapped_column(ForeignKey("agreements.id"), index=True)
    external_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    organisation = relationship("Organisation")
    interaction = relationship("Interaction")
    agreement = relationship("Agreement")

    __table_args__ = (
        CheckConstraint("fee >= 0", name="fee_not_negative"),
        CheckConstraint("expenses >= 0", name="expenses_not_negative"),
        CheckConstraint("hours IS NULL OR hours > 0", name="hours_positive"),
        # The year's aggregate of a paying organisation (the transparency report).
        Index("ix_individual_payments_organisation_id_paid_on", "organisation_id", "paid_on"),
    )

    def __str__(self) -> str:
        return (f"{PAYMENT_SERVICES.get(self.service, self.service)} fee of {self.currency} "
                f"{self.fee:,.2f} to {self.payee_reference} on {self.paid_on}")


# Whether an interaction had fees or expenses paid to individuals: such an interaction needs
# approval before it is held, whatever its format (the rule fact has_individual_payments).
Interaction.has_individual_payments = column_property(
    exists().where(IndividualPayment.interaction_id == Interaction.id,
                   IndividualPayment.voided_at.is_(None)).correlate_except(IndividualPayment),
    deferred=True)
