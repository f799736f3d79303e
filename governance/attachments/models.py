from sqlalchemy import CheckConstraint, Enum, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ..records import Record
from ..vocabulary import ATTACHMENT_LABELS

# An attachment belongs to one record: an interaction, a partnership or an agreement.
EXACTLY_ONE_OWNER = ("(CASE WHEN interaction_id IS NULL THEN 0 ELSE 1 END"
                     " + CASE WHEN partnership_id IS NULL THEN 0 ELSE 1 END"
                     " + CASE WHEN agreement_id IS NULL THEN 0 ELSE 1 END) = 1")


class Attachment(Record, db.Model):
    """A document kept by content hash under the data folder; the original name is kept as data."""

    __tablename__ = "attachments"

    interaction_id: Mapped[int | None] = mapped_column(ForeignKey("interactions.id"), index=True)
    partnership_id: Mapped[int | None] = mapped_column(ForeignKey("partnerships.id"), index=True)
    # The signed document of a written agreement (governance/agreements).
    agreement_id: Mapped[int | None] = mapped_column(ForeignKey("agreements.id"), index=True)
    label: Mapped[str] = mapped_column(
        Enum(*ATTACHMENT_LABELS, name="attachment_label", native_enum=False,
             create_constraint=True)
    )
    original_name: Mapped[str] = mapped_column(String(255))  # sanitised; never used as a path
    media_type: Mapped[str] = mapped_column(String(120))  # detected from the content
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    __table_args__ = (
        CheckConstraint(EXACTLY_ONE_OWNER, name="exactly_one_owner"),
        CheckConstraint("size > 0", name="not_empty"),
    )

    def __str__(self) -> str:
        return f"{ATTACHMENT_LABELS.get(self.label, self.label)}: {self.original_name}"
