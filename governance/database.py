"""Engine settings (SQLite pragmas, immediate write transactions) and the init-db command."""

import contextvars
import sqlite3
from datetime import UTC, datetime

import click
from flask import Flask, request
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from .extensions import db

# Requests that only read run in deferred transactions; everything else (POST, CLI, jobs) takes
# SQLite's write lock when the transaction begins, so a read-modify-write can never interleave.
write_intent: contextvars.ContextVar[bool] = contextvars.ContextVar("write_intent", default=True)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def utcnow() -> datetime:
    """Return the current UTC time as a naive datetime (the database stores UTC only)."""
    return datetime.now(UTC).replace(tzinfo=None)


def prepare_config(config) -> None:
    """Normalise the database URL and engine options before the engine is created.

    `postgresql://` and `postgres://` URLs (the libpq spelling most hosts hand out) are served
    by psycopg 3. PostgreSQL connections are checked before use, so a restarted server costs
    the requests in flight and no more.
    """
    url = make_url(config["SQLALCHEMY_DATABASE_URI"])
    if url.drivername in ("postgres", "postgresql"):
        url = url.set(drivername="postgresql+psycopg")
        config["SQLALCHEMY_DATABASE_URI"] = url.render_as_string(hide_password=False)
    if url.get_backend_name() == "postgresql":
        options = dict(config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
        options.setdefault("pool_pre_ping", True)
        connect_args = dict(options.get("connect_args") or {})
        connect_args.setdefault("connect_timeout", config.get("POSTGRES_CONNECT_TIMEOUT", 5))
        connect_args.setdefault("application_name", "governance")
        options["connect_args"] = connect_args
        config["SQLALCHEMY_ENGINE_OPTIONS"] = options


def init_app(app: Flask) -> None:
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine, app.config["SQLITE_BUSY_TIMEOUT_MS"])

    @app.before_request
    def declare_write_intent():
        write_intent.set(request.method not in SAFE_METHODS)

    app.cli.add_command(init_db_command)


def _configure_sqlite(engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):
        # Let SQLAlchemy's "begin" event issue BEGIN itself instead of pysqlite.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if _is_file_database(dbapi_connection):
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection):
        if not write_intent.get():
            connection.exec_driver_sql("BEGIN")
            return
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except OperationalError as error:
            if "readonly" not in str(error.orig):
                raise
            # A read-only database file: let the request read (who is logged in, the page it
            # shows); its first write then fails with the read-only error, shown as such.
            connection.exec_driver_sql("BEGIN")


def _is_file_database(dbapi_connection: sqlite3.Connection) -> bool:
    row = dbapi_connection.execute("PRAGMA database_list").fetchone()
    return bool(row and row[2])


def create_schema() -> None:
    """Bring the database to the newest migration."""
    from flask_migrate import upgrade

    upgrade()


@click.command("init-db")
def init_db_command():
    """Create the schema (no data) by running every migration."""
    create_schema()
    click.echo("Database schema is up to date.")
