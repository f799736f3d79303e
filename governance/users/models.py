from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..records import Record

if TYPE_CHECKING:
    from ..auth.models import User


class Invitation(Record, db.Model):
    """A link that lets a new user set their own password, once, before it expires; only the
    hash of its token is stored. Voided when a newer invitation or password replaces it."""

    __tablename__ = "invitations"
    __audit_redact__ = frozenset({"token_hash"})

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]

    user: Mapped["User"] = relationship()

    def is_open(self, now: datetime) -> bool:
        return self.accepted_at is None and not self.is_void and self.expires_at > now
