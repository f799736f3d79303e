"""Engine settings (SQLite pragmas, immediate write transactions) and the init-db command."""

import contextvars
import fcntl
import os
import sqlite3
import threading
from contextlib import contextmanager
from datetime import UTC, datetime

import click
from flask import Flask, current_app, g, request
from flask.cli import with_appcontext
from sqlalchemy import event, func, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError, OperationalError

from .extensions import db, load_migrations

# Requests that only read run in deferred transactions; everything else (POST, CLI, jobs) takes
# SQLite's write lock when the transaction begins, so a read-modify-write can never interleave.
write_intent: contextvars.ContextVar[bool] = contextvars.ContextVar("write_intent", default=True)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Failures that say the database cannot take writes: SQLite's result codes for a read-only
# file, an I/O error, a full disk and a file it cannot open; PostgreSQL's SQLSTATEs
# read_only_sql_transaction, disk_full and io_error (a lost connection SQLAlchemy knows itself).
_SQLITE_CANNOT_WRITE = frozenset({sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR,
                                  sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN})
_POSTGRES_CANNOT_WRITE = frozenset({"25006", "53100", "58030"})

# The execution option of the one statement whose read-only failure is expected, and answered
# by reading instead: BEGIN IMMEDIATE on a SQLite file opened read-only.
_READS_IF_READ_ONLY = {"reads_if_read_only": True}


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
    # Stored files (storage.py): in the database on PostgreSQL, where every application server
    # reaches them; in DATA_DIR on SQLite, whose database is one machine's anyway.
    on_postgres = url.get_backend_name() == "postgresql"
    store = config.get("FILE_STORE") or ("database" if on_postgres else "folder")
    if store not in ("database", "folder") or (store == "database" and not on_postgres):
        from .config import ConfigurationError

        raise ConfigurationError(f"FILE_STORE must be 'folder', or 'database' on PostgreSQL; "
                                 f"not {store!r} on {url.get_backend_name()}.")
    config["FILE_STORE"] = store


@contextmanager
def read_before_writing():
    """Run the block in a read transaction of its own when the request is about to write.

    A write transaction holds SQLite's single write lock from its first statement to its
    commit, so what a request only reads first is read without the lock and that transaction
    is ended; the records it loaded stay loaded, and what the session was told for the coming
    write (who acts, why) stays too. Only reads that the write cannot be misled by belong
    here: who is asking; the record to be edited (its version column refuses an UPDATE over a
    version saved in between: 409); the records a new or edited one refers to, as they were a
    moment before the write. A session already inside a transaction (a command, a page whose
    view already queried, a test's open context) is left as it is.
    """
    session = db.session()
    release = write_intent.get() and not session.in_transaction() and not _has_changes(session)
    with _intent(write=False):
        yield
    if release and session.in_transaction():
        end_read_transaction(session)


@contextmanager
def writing():
    """Let the block write in a transaction of its own, also within a request that only reads
    (on SQLite, transactions begun in the block take the write lock)."""
    with _intent(write=True):
        yield


@contextmanager
def _intent(write: bool):
    token = write_intent.set(write)
    try:
        yield
    finally:
        write_intent.reset(token)


def _has_changes(session) -> bool:
    return bool(session.new or session.dirty or session.deleted)


def end_read_transaction(session) -> None:
    """End a transaction that only read; its records stay loaded as they are, and what the
    session was told for the coming write (who acts, why) stays too."""
    if _has_changes(session):
        raise RuntimeError("records were changed in a read transaction: change them after it")
    info = dict(session.info)
    expire_on_commit = session.expire_on_commit
    session.expire_on_commit = False
    try:
        session.commit()  # writes nothing: it only ends the read
    finally:
        session.expire_on_commit = expire_on_commit
    session.info.update(info)


def insert_returning_ids(table, rows: list[dict]) -> list[int]:
    """Insert the rows with one statement; return their new ids in the rows' order."""
    session = db.session()
    if session.connection().dialect.name != "sqlite":
        return session.execute(
            insert(table).returning(table.c.id, sort_by_parameter_order=True), rows
        ).scalars().all()
    # SQLite numbers new rows after the highest id, one after the other, and this transaction
    # holds the write lock: a plain executemany (many times faster than RETURNING, which
    # SQLAlchemy runs one row per statement to keep the rows' order) then reading the new ids
    # back gives them in the rows' order.
    before = session.scalar(select(func.max(table.c.id))) or 0
    session.execute(insert(table), rows)
    ids = session.scalars(
        select(table.c.id).where(table.c.id > before).order_by(table.c.id)).all()
    if len(ids) != len(rows):
        raise RuntimeError(f"the rows inserted into {table.name} could not be numbered")
    return ids


def column_defaults(table) -> dict:
    """Each column's value when an insert leaves it out (as the session would fill it in): the
    rows given to insert_returning_ids start from these."""
    values = {}
    for column in table.columns:
        if column.primary_key:
            continue
        default = column.default
        if default is not None and default.is_scalar:
            values[column.key] = default.arg
        elif default is not None and default.is_callable:
            values[column.key] = default.arg(None)
        else:
            values[column.key] = None
    return values


def writes_on_get(view):
    """Mark a GET view that writes (a dry run that it rolls back): the request hook gives it
    the write lock from its first statement, as it gives every POST."""
    view.writes_on_get = True
    return view


def init_app(app: Flask) -> None:
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine, app.config["SQLITE_BUSY_TIMEOUT_MS"])
    elif engine.dialect.name == "postgresql":
        event.listen(engine, "connect", _note_postgresql_read_only)
    _recover_when_writable_again(engine)

    @app.before_request
    def declare_write_intent():
        view = app.view_functions.get(request.endpoint)
        writes = request.method not in SAFE_METHODS or getattr(view, "writes_on_get", False)
        g.write_intent_token = write_intent.set(writes)

    @app.teardown_request
    def forget_write_intent(_error=None):
        # Work after the request in the same thread (CLI, jobs, tests) writes again by default.
        token = g.pop("write_intent_token", None)
        if token is not None:
            write_intent.reset(token)

    app.cli.add_command(init_db_command)


def _configure_sqlite(engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, record):
        # Let SQLAlchemy's "begin" event issue BEGIN itself instead of pysqlite.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys = ON")
        path = _file_of(dbapi_connection)
        if path:
            record.info["opened_read_only"] = file_read_only(path)
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            record.info["write_queue"] = WriteQueue(path + "-writers")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection):
        if not write_intent.get():
            connection.exec_driver_sql("BEGIN")
            return
        queue = connection.connection.info.get("write_queue")
        if queue is not None:
            queue.enter(busy_timeout_ms / 1000)
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE", execution_options=_READS_IF_READ_ONLY)
        except OperationalError as error:
            if queue is not None:
                queue.leave()
            if "readonly" not in str(error.orig):
                raise
            # A read-only database file: let the request read (who is logged in, the page it
            # shows); its first write then fails with the read-only error, shown as such.
            connection.exec_driver_sql("BEGIN")

    def leave_queue(_dbapi_connection, record, *_args):
        queue = record.info.get("write_queue") if record is not None else None
        if queue is not None:
            queue.leave()

    def give_up(dbapi_connection, record, *_args):
        # An invalidated connection is closed without the pool's rollback, and SQLite keeps a
        # connection whose failed statement is still referenced (by the error) open, with its
        # transaction and write lock, after close: end the transaction first.
        try:
            dbapi_connection.rollback()
        except sqlite3.Error:
            pass  # the connection is unusable anyway; closing it ends the transaction
        leave_queue(dbapi_connection, record)

    # The transaction has ended (committed or rolled back) once the connection goes back to
    # the pool; a closed or invalidated connection gives its place up too.
    event.listen(engine, "checkin", leave_queue)
    event.listen(engine, "invalidate", give_up)
    event.listen(engine, "close", lambda dbapi_connection, record: _close_queue(record))


def _note_postgresql_read_only(dbapi_connection, record) -> None:
    # Reported by the server at connect (PostgreSQL 14+): a session that starts read-only, on
    # a standby or in a database set read-only, stays so after the database is writable again.
    status = dbapi_connection.info.parameter_status
    record.info["opened_read_only"] = "on" in (status("default_transaction_read_only"),
                                               status("in_hot_standby"))


def _recover_when_writable_again(engine) -> None:
    """Let writes work again as soon as the database takes them, without a restart.

    A connection whose statement failed because the database cannot write (read-only, disk
    full, I/O error) counts as disconnected: SQLAlchemy discards it and every connection the
    pool opened before it, so the next transaction starts on a fresh one. A connection opened
    while the database was read-only stays read-only whatever happens to the file or server
    later, even if it only ever read: it serves one checkout, then the pool replaces it.
    """

    @event.listens_for(engine, "handle_error")
    def discard_if_cannot_write(context):
        error = context.original_exception
        if not cannot_write(error):
            return
        execution = context.execution_context
        if (execution is not None and execution.execution_options.get("reads_if_read_only")
                and _sqlite_code(error) == sqlite3.SQLITE_READONLY):
            return  # a connection just opened on a read-only file: the request reads on it
        context.is_disconnect = True

    @event.listens_for(engine, "checkout")
    def replace_if_opened_read_only(_dbapi_connection, record, _proxy):
        if not record.info.get("opened_read_only"):
            return
        if record.info.get("checked_out"):
            raise DisconnectionError("connection opened while the database was read-only")
        record.info["checked_out"] = True


def cannot_write(error: BaseException | None) -> bool:
    """Whether a driver's error says the database cannot take writes (read-only, disk full,
    I/O error), as opposed to a refused statement or a busy lock."""
    code = _sqlite_code(error)
    if code is not None:
        return code in _SQLITE_CANNOT_WRITE
    return getattr(error, "sqlstate", None) in _POSTGRES_CANNOT_WRITE


def _sqlite_code(error: BaseException | None) -> int | None:
    """SQLite's primary result code of the error (the low byte of an extended one)."""
    code = getattr(error, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


def file_read_only(path: str) -> bool:
    """Whether this process may not write the file (or, when it does not exist yet, the folder
    it would be in): a read-only mount, an immutable file, missing permissions."""
    target = path if os.path.exists(path) else os.path.dirname(path) or "."
    try:
        if os.statvfs(target).f_flag & os.ST_RDONLY:
            return True
    except OSError:
        return False
    return not os.access(target, os.W_OK)


class WriteQueue:
    """Lets one write transaction at a time into a SQLite file, across threads and processes.

    SQLite's own busy handler makes a waiting writer sleep (up to 100 ms at a time) and retry,
    so under many concurrent writers the lock often sits free while every waiter sleeps, and
    an unlucky one can wait for seconds. Writers therefore queue twice: the threads of one
    process on a lock of that process (with the busy timeout: past it the writer gets SQLite's
    "database is locked"), and the one thread each process lets through on an exclusive lock
    of a small companion file (fcntl.flock, one open file per connection, released by the
    kernel if the process dies). That thread sleeps in the kernel until the lock is free, so
    the next writer starts the moment the last one has committed, and waiting costs no CPU.
    BEGIN IMMEDIATE still takes SQLite's own lock, so programs that do not queue (the sqlite3
    shell) stay safe.
    """

    _process_locks: dict[str, threading.Lock] = {}
    _process_locks_guard = threading.Lock()

    def __init__(self, path: str):
        self.path = path
        self.descriptor: int | None = None
        self.held = False
        with self._process_locks_guard:
            self.process_lock = self._process_locks.setdefault(path, threading.Lock())

    def _open(self) -> int:
        if self.descriptor is None:
            self.descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        return self.descriptor

    def enter(self, timeout: float) -> None:
        if self.held:
            return
        try:
            descriptor = self._open()
        except OSError:
            return  # a read-only folder: SQLite's own locking (and its errors) take over
        if not self.process_lock.acquire(timeout=timeout):
            raise OperationalError("BEGIN IMMEDIATE", None,
                                   sqlite3.OperationalError("database is locked"))
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        except BaseException:
            self.process_lock.release()
            raise
        self.held = True

    def leave(self) -> None:
        if self.held:
            if self.descriptor is not None:
                fcntl.flock(self.descriptor, fcntl.LOCK_UN)
            self.held = False
            self.process_lock.release()

    def close(self) -> None:
        if self.descriptor is not None:
            os.close(self.descriptor)  # also releases the file lock
            self.descriptor = None
        if self.held:
            self.held = False
            self.process_lock.release()


def _forget_process_locks() -> None:
    # A forked child starts with no writer of its own: a lock a parent's thread held is not its.
    WriteQueue._process_locks = {}
    WriteQueue._process_locks_guard = threading.Lock()


os.register_at_fork(after_in_child=_forget_process_locks)


def _close_queue(record) -> None:
    queue = record.info.pop("write_queue", None) if record is not None else None
    if queue is not None:
        queue.close()


def _file_of(dbapi_connection: sqlite3.Connection) -> str | None:
    row = dbapi_connection.execute("PRAGMA database_list").fetchone()
    return row[2] if row and row[2] else None


def create_schema() -> None:
    """Bring the database to the newest migration."""
    from flask_migrate import upgrade

    load_migrations(current_app)
    upgrade()


@click.command("init-db")
@with_appcontext
def init_db_command():
    """Create the schema (no data) by running every migration."""
    create_schema()
    click.echo("Database schema is up to date.")
