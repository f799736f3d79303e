from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..auth.models import User
from ..database import utcnow
from ..extensions import db
from ..jobs import Job
from ..records import Record


class ImportUpload(db.Model):
    """A file uploaded for import, as one person uploaded it: only they preview and commit it
    (the same file uploaded by two people is two uploads, each answering to its own uploader)."""

    __tablename__ = "import_uploads"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    filename: Mapped[str] = mapped_column(String(200))
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)


class ImportRun(Record, Job, db.Model):
    """The import of a large uploaded file, run by the task worker (transfer/jobs.py): every
    row or none, as in a request, audited as the person who asked."""

    __tablename__ = "import_runs"
    # The import is one transaction: on SQLite it holds the write lock until it commits, so its
    # heartbeat may wait that long. A run is taken for dead after this long without one.
    STALL_SECONDS = 600

    kind: Mapped[str] = mapped_column(String(40))
    sha256: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(200))
    rows: Mapped[int] = mapped_column(default=0)
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    state: Mapped[str] = mapped_column(String(10), default="queued")
    created: Mapped[int] = mapped_column(default=0)
    updated: Mapped[int] = mapped_column(default=0)
    unchanged: Mapped[int] = mapped_column(default=0)
    summary: Mapped[str | None] = mapped_column(Text)

    requested_by: Mapped[User] = relationship()
