"""What a person sees when the database cannot take a change: a clear message, never a traceback.

Writes fail whole (the transaction is rolled back), so the records already stored stay as they
were. Pages show the error page, the API answers JSON, both with status 503 (or 409 when another
person's save won a race for the same record). The message says whether retrying can help; the
failures that pass by themselves (a busy lock, a restarting server) carry Retry-After.
"""

import sqlite3

from flask import Flask, current_app, g, render_template
from markupsafe import escape
from sqlalchemy.exc import DBAPIError, InternalError, OperationalError
from sqlalchemy.orm.exc import StaleDataError

from ..database import file_read_only
from ..errors import is_api_request, json_error
from ..extensions import db

READ_ONLY = (
    "The database is read-only, so nothing was saved. The records already stored are intact. "
    "Retrying will not help until an administrator makes the database writable again; then "
    "repeat the change."
)
DISK_FULL = (
    "The database's disk is full, so nothing was saved. The records already stored are intact. "
    "Retrying will not help until an administrator frees some space; then repeat the change."
)
UNAVAILABLE = (
    "The database cannot be reached at the moment (it may be restarting), so nothing was saved. "
    "Retry in a few seconds; if it persists, tell the administrator."
)
BUSY = (
    "The database was too busy to take this change, so nothing was saved. Retry in a few "
    "seconds."
)
CHANGED = (
    "This record changed since you opened it, so your change was not saved. Reload it to see the "
    "other changes, then make yours again."
)
# The failures that pass by themselves, and the seconds after which a retry may succeed; the
# others last until someone repairs them.
RETRY_AFTER = {BUSY: 2, UNAVAILABLE: 5}

# PostgreSQL SQLSTATE codes
_PG_DISK_FULL = {"53100"}  # disk_full
_PG_READ_ONLY = {"25006"}  # read_only_sql_transaction


def explain(error: DBAPIError) -> str | None:
    """Return the message for a database failure a person can do something about, else None."""
    original = error.orig
    sqlstate = getattr(original, "sqlstate", None)
    text = str(original).lower()
    if sqlstate in _PG_DISK_FULL or "disk is full" in text or "no space left" in text:
        return DISK_FULL
    if sqlstate in _PG_READ_ONLY or "readonly database" in text or "read-only" in text:
        return READ_ONLY
    if isinstance(original, sqlite3.OperationalError):
        if "locked" in text:
            return BUSY
        if "unable to open" in text or "disk i/o" in text:
            # A WAL database on a read-only file system cannot even be opened for reading.
            return READ_ONLY if _sqlite_file_read_only() else UNAVAILABLE
        return None
    if isinstance(error, OperationalError):
        return UNAVAILABLE  # PostgreSQL: connection refused or lost, server shutting down
    return None


def _sqlite_file_read_only() -> bool:
    name = db.engine.url.database
    if not name or name == ":memory:" or name.startswith("file:"):
        return False
    return file_read_only(name)


def _answer(status: int, title: str, message: str):
    if is_api_request():
        response, status = json_error(status, message)
    else:
        try:
            response = current_app.make_response(
                render_template("errors/error.html", code=status, title=title, message=message)
            )
        except Exception:  # the page itself needs the database: answer plain HTML instead
            response = current_app.make_response(
                f"<!doctype html><title>{escape(title)}</title><h1>{escape(title)}</h1>"
                f"<p>{escape(message)}</p>"
            )
    response.status_code = status
    if message in RETRY_AFTER:
        response.headers["Retry-After"] = str(RETRY_AFTER[message])
    return response


def _rollback() -> None:
    try:
        db.session.rollback()
    except Exception:  # the connection is gone; the session is discarded at teardown anyway
        current_app.logger.debug("rollback after a database failure failed too", exc_info=True)
    if "_login_user" not in g:
        # Loading the user is what failed: answer as to a visitor, rather than let the page,
        # the after-request hooks or the error page try the database again.
        g._login_user = current_app.login_manager.anonymous_user()


def database_failed(error: DBAPIError):
    message = explain(error)
    _rollback()
    if message is None:
        raise error
    current_app.logger.error("database failure, change refused: %s", error.orig)
    return _answer(503, "Not saved", message)


def stale_record(error: StaleDataError):
    _rollback()
    current_app.logger.info("optimistic lock refused a stale write: %s", error)
    return _answer(409, "Not saved", CHANGED)


def init_app(app: Flask) -> None:
    app.register_error_handler(OperationalError, database_failed)
    app.register_error_handler(InternalError, database_failed)
    app.register_error_handler(StaleDataError, stale_record)
