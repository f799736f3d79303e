"""The shape every business record shares: audited, voidable (never deleted), versioned."""

from datetime import datetime

from sqlalchemy import Enum, Text
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from .audit import Audited
from .database import utcnow


class Record(Audited):
    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    voided_at: Mapped[datetime | None] = mapped_column(default=None)
    void_reason: Mapped[str | None] = mapped_column(Text, default=None)
    # Optimistic locking: an UPDATE that finds another version raises StaleDataError.
    version: Mapped[int] = mapped_column(default=1)

    @declared_attr.directive
    def __mapper_args__(cls):
        return {"version_id_col": cls.version}

    @property
    def is_void(self) -> bool:
        return self.voided_at is not None


def vocab_enum(vocabulary: dict, name: str) -> Enum:
    """A column type holding one of a vocabulary's machine names, checked by the database."""
    return Enum(*vocabulary, name=name, native_enum=False, create_constraint=True)
