from datetime import datetime

from sqlalchemy import ForeignKey, Text
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship

from ..records import vocab_enum
from ..vocabulary import APPROVAL_DECISIONS


class SignOff:
    """Mixin: the compliance review's electronic signature of a record (21 CFR Part 11 §11.50),
    cleared when the record's content changes (services.py)."""

    signed_off_at: Mapped[datetime | None]
    signed_off_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    signature_meaning: Mapped[str | None] = mapped_column(Text)

    @declared_attr
    def signed_off_by(cls):
        return relationship("User", foreign_keys=[cls.signed_off_by_id])


class PlanApproval:
    """Mixin: the advocate's submission of a planned interaction and the compliance officer's
    decision on it (approved or rejected, with a note), kept when the plan is marked held."""

    submitted_at: Mapped[datetime | None]
    submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    approval_decision: Mapped[str | None] = mapped_column(
        vocab_enum(APPROVAL_DECISIONS, "approval_decision"))
    approval_note: Mapped[str | None] = mapped_column(Text)
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    approved_at: Mapped[datetime | None]

    @declared_attr
    def approved_by(cls):
        return relationship("User", foreign_keys=[cls.approved_by_id])

    @declared_attr
    def submitted_by(cls):
        return relationship("User", foreign_keys=[cls.submitted_by_id])
