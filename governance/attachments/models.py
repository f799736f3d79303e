from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ..records import Record


class Attachment(Record, db.Model):
    """A document kept by content hash under instance/; the original name is kept as data."""

    __tablename__ = "attachments"

    interaction_id: Mapped[int | None] = mapped_column(ForeignKey("interactions.id"), index=True)
    partnership_id: Mapped[int | None] = mapped_column(ForeignKey("partnerships.id"), index=True)
    label: Mapped[str] = mapped_column(String(40))  # agenda, minutes, agreement, other
    original_name: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(120))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    __table_args__ = (
        CheckConstraint(
            "(interaction_id IS NULL) <> (partnership_id IS NULL)", name="exactly_one_owner"
        ),
    )
