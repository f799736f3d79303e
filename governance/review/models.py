from datetime import datetime

from sqlalchemy import ForeignKey, Text
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship


class SignOff:
    """Mixin: the compliance review's electronic signature of a record (21 CFR Part 11 §11.50),
    cleared when the record's content changes (services.py)."""

    signed_off_at: Mapped[datetime | None]
    signed_off_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    signature_meaning: Mapped[str | None] = mapped_column(Text)

    @declared_attr
    def signed_off_by(cls):
        return relationship("User", foreign_keys=[cls.signed_off_by_id])
