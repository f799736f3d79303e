from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, ForeignKey, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..records import Record, vocab_enum
from ..vocabulary import AGREEMENT_KINDS

if TYPE_CHECKING:
    from ..partnerships.models import Partnership


class Agreement(Record, db.Model):
    """The written agreement a support line or an individual payment is made under."""

    __tablename__ = "agreements"

    partnership_id: Mapped[int] = mapped_column(ForeignKey("partnerships.id"), index=True)
    kind: Mapped[str] = mapped_column(vocab_enum(AGREEMENT_KINDS, "agreement_kind"))
    objective: Mapped[str] = mapped_column(Text)
    parties_and_roles: Mapped[str | None] = mapped_column(Text)
    starts_on: Mapped[date | None]
    ends_on: Mapped[date | None]
    # The ceiling of what may be paid under it (empty for in-kind support that has no value).
    amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    currency: Mapped[str | None] = mapped_column(String(3))
    signed_on: Mapped[date | None]
    signatories: Mapped[str | None] = mapped_column(Text)
    # Certification by the sponsor's nominated signatory: an electronic signature.
    certified_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    certified_at: Mapped[datetime | None]
    certification_meaning: Mapped[str | None] = mapped_column(Text)
    external_id: Mapped[str | None] = mapped_column(String(100), unique=True)

    partnership: Mapped["Partnership"] = relationship()
    certified_by = relationship("User", foreign_keys=[certified_by_id])

    __table_args__ = (
        CheckConstraint("amount IS NULL OR amount >= 0", name="amount_not_negative"),
        CheckConstraint("ends_on IS NULL OR starts_on IS NULL OR ends_on >= starts_on",
                        name="ends_after_starts"),
    )

    def __str__(self) -> str:
        return f"{AGREEMENT_KINDS.get(self.kind, self.kind)} agreement: {self.objective[:60]}"


# Agreements belong to partnerships: loading either module loads both (whichever comes first).
from ..partnerships import models as _partnerships  # noqa: E402, F401
