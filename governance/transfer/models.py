from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from ..database import utcnow
from ..extensions import db


class ImportUpload(db.Model):
    """A file uploaded for import, as one person uploaded it: only they preview and commit it
    (the same file uploaded by two people is two uploads, each answering to its own uploader)."""

    __tablename__ = "import_uploads"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    filename: Mapped[str] = mapped_column(String(200))
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)
