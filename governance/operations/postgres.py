"""PostgreSQL's two roles: an owner that runs migrations, and the application's login role.

The owner creates and alters the tables (`flask db upgrade` runs as the owner). The application
connects as a role that may read and write the records but may not UPDATE, DELETE or TRUNCATE
audit events or the audit chain's checkpoints: together with the append-only triggers (which
hold even for the owner), the audit trail cannot be rewritten through the application's
connection.
"""

from sqlalchemy import inspect, text

from ..audit import AuditCheckpoint, AuditEvent
from ..extensions import db


class RoleError(Exception):
    """The grants could not be made; the message says why."""


def application_grants(role: str, schema: str, tables: set[str]) -> list[str]:
    """The statements that give the application role exactly what it needs."""
    quote = db.engine.dialect.identifier_preparer.quote
    who, where = quote(role), quote(schema)
    statements = [
        f"GRANT USAGE ON SCHEMA {where} TO {who}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {where} TO {who}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {where} TO {who}",
    ]
    statements += [f"REVOKE UPDATE, DELETE, TRUNCATE ON {where}.{quote(model.__tablename__)} "
                   f"FROM {who}" for model in (AuditEvent, AuditCheckpoint)
                   if model.__tablename__ in tables]
    if "alembic_version" in tables:
        statements.append(
            f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {where}.alembic_version FROM {who}")
    return statements


def grant_application_role(role: str) -> list[str]:
    """Grant ROLE the application's privileges on every table; return what was run."""
    if db.engine.dialect.name != "postgresql":
        raise RoleError("Roles and grants apply to PostgreSQL only; this database is "
                        f"{db.engine.dialect.name}.")
    connection = db.session.connection()
    if not connection.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"),
                              {"r": role}).first():
        raise RoleError(f"There is no PostgreSQL role {role!r}: create it first "
                        f"(CREATE ROLE {role} LOGIN PASSWORD '...').")
    schema = connection.execute(text("SELECT current_schema()")).scalar()
    tables = set(inspect(connection).get_table_names(schema=schema))
    if AuditEvent.__tablename__ not in tables:
        raise RoleError("The schema has no audit_events table yet: run `flask db upgrade` first.")
    owner = connection.execute(
        text("SELECT tableowner FROM pg_tables WHERE schemaname = :s AND tablename = :t"),
        {"s": schema, "t": AuditEvent.__tablename__},
    ).scalar()
    if owner == role:
        raise RoleError(f"{role!r} owns the tables, and an owner can always change its own "
                        "tables: connect the application as a separate role.")
    statements = application_grants(role, schema, tables)
    for statement in statements:
        connection.execute(text(statement))
    db.session.commit()
    return statements
