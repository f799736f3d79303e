"""The shape every business record shares: audited, voidable (never deleted), versioned."""

from datetime import datetime

from sqlalchemy import Enum, Text
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from .audit import Audited
from .database import utcnow
from .errors import StaleVersion


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


def refuse_stale(record: Record, expected_version: int | None, noun: str) -> None:
    """Refuse a change made to another version of the record than the one it is at. (The
    pages and the API refuse a change without a version before they get here; imports and
    commands change records by what they are, not by a version read.)"""
    if expected_version is not None and expected_version != record.version:
        raise StaleVersion(f"This {noun} changed since you opened it; reload it to see the "
                           "other changes, then make yours again.", record)


def vocab_enum(vocabulary: dict, name: str) -> Enum:
    """A column type holding one of a vocabulary's machine names, checked by the database."""
    return Enum(*vocabulary, name=name, native_enum=False, create_constraint=True)
