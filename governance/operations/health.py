"""The health check's write probe: whether the database takes a write right now."""

from sqlalchemy import delete, insert

from ..database import end_read_transaction, utcnow, writing
from ..extensions import db
from .models import HealthCheck


def probe_writes() -> None:
    """Insert a row (and delete it again); raise the database's error when it cannot take that
    write (read-only, disk full, unreachable, too busy).

    SQLite commits it: a write that is rolled back may never reach the file, so it would not
    notice a read-only one. PostgreSQL refuses the statement itself in a read-only session, so
    the probe is rolled back there (a commit cost twice the time under concurrent checks)."""
    session = db.session()
    if session.in_transaction():
        end_read_transaction(session)
    with writing():
        if session.get_bind().dialect.name != "sqlite":
            session.execute(insert(HealthCheck).values(checked_at=utcnow()))
            session.rollback()
            return
        probe = session.execute(insert(HealthCheck).values(checked_at=utcnow())
                                .returning(HealthCheck.id)).scalar_one()
        session.execute(delete(HealthCheck).where(HealthCheck.id == probe))
        session.commit()
