"""The health check's write probe: whether the database takes a write right now."""

from sqlalchemy import delete, insert, text

from ..database import end_read_transaction, utcnow, writing
from ..extensions import db
from .models import HealthCheck


def probe_writes() -> None:
    """Insert a row and delete it in one committed transaction; raise the database's error when
    it cannot take that write (read-only, disk full, unreachable, too busy)."""
    session = db.session()
    if session.in_transaction():
        end_read_transaction(session)
    with writing():
        if session.get_bind().dialect.name == "postgresql":
            # Nothing is lost if the server crashes before the commit reaches its disk.
            session.execute(text("SET LOCAL synchronous_commit = off"))
        probe = session.execute(insert(HealthCheck).values(checked_at=utcnow())
                                .returning(HealthCheck.id)).scalar_one()
        session.execute(delete(HealthCheck).where(HealthCheck.id == probe))
        session.commit()
