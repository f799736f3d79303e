"""The operations slice's one table: the health check's write probe."""

from datetime import datetime

from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db


class HealthCheck(db.Model):
    """A row the health check inserts and deletes again in one transaction (committed on SQLite).

    The commit reaches the database's files (a write that is rolled back may never touch them,
    so it would not notice a read-only file), and the table stays empty. Not a record: nothing
    reads it, nothing audits it."""

    __tablename__ = "health_checks"

    id: Mapped[int] = mapped_column(primary_key=True)
    checked_at: Mapped[datetime]
