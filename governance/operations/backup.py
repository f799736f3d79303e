"""Backups and restores of the whole database, with the audit chain verified after a restore.

SQLite: the online backup API copies a consistent snapshot while the application keeps running.
PostgreSQL: `pg_dump --format=custom` and `pg_restore --single-transaction`, so a restore lands
whole or not at all.
"""

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import inspect, select, text
from sqlalchemy.engine import URL

from ..audit import AuditEvent, ChainReport, verify_chain
from ..extensions import db


class BackupError(Exception):
    """A backup or restore could not be made; the message says why and what to do."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size: int
    audit_events: int


@dataclass(frozen=True)
class RestoreResult:
    audit_events: int
    chain: ChainReport


def _url() -> URL:
    return db.engine.url


def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        raise BackupError("Only a SQLite database stored in a file can be backed up or restored.")
    return Path(url.database)


def _libpq_url(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} is not installed: install PostgreSQL's client programs "
                          "(Debian: apt-get install postgresql-client).")
    return found


def _run(command: list[str]) -> None:
    env = dict(os.environ, PGCONNECT_TIMEOUT="10")
    finished = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if finished.returncode != 0:
        raise BackupError(f"{Path(command[0]).name} failed: {finished.stderr.strip()}")


def count_audit_events() -> int:
    return db.session.scalar(select(db.func.count(AuditEvent.id))) or 0


def backup(path: str | os.PathLike, overwrite: bool = False) -> BackupResult:
    """Write a consistent copy of the whole database to PATH."""
    target = Path(path)
    if target.exists() and not overwrite:
        raise BackupError(f"{target} already exists; choose a new file name (or --force).")
    target.parent.mkdir(parents=True, exist_ok=True)
    url = _url()
    events = count_audit_events()
    db.session.rollback()
    partial = target.with_name(target.name + ".partial")
    try:
        if url.get_backend_name() == "sqlite":
            source = sqlite3.connect(_sqlite_path(url))
            copy = sqlite3.connect(partial)
            try:
                with copy:
                    source.backup(copy)
                if copy.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                    raise BackupError("The copy failed SQLite's integrity check; nothing kept.")
            finally:
                copy.close()
                source.close()
        elif url.get_backend_name() == "postgresql":
            _run([_pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges",
                  f"--file={partial}", f"--dbname={_libpq_url(url)}"])
        else:
            raise BackupError(f"Backups of {url.get_backend_name()} databases are not supported.")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult(target, target.stat().st_size, events)


def has_data() -> bool:
    """Whether any application table holds a row (an empty schema counts as empty)."""
    existing = set(inspect(db.engine).get_table_names())
    for table in db.metadata.sorted_tables:
        if table.name in existing and db.session.execute(
            select(text("1")).select_from(table).limit(1)
        ).first():
            return True
    return False


def restore(path: str | os.PathLike, force: bool = False) -> RestoreResult:
    """Replace the whole database with the backup at PATH, then verify the audit chain."""
    source = Path(path)
    if not source.is_file():
        raise BackupError(f"No backup file at {source}.")
    if not force and has_data():
        raise BackupError("The database already holds records; restoring would replace them. "
                          "Add --force to replace them with the backup.")
    url = _url()
    db.session.remove()
    db.engine.dispose()
    if url.get_backend_name() == "sqlite":
        _restore_sqlite(source, _sqlite_path(url))
    elif url.get_backend_name() == "postgresql":
        _run([_pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--no-privileges",
              "--single-transaction", "--exit-on-error", f"--dbname={_libpq_url(url)}",
              str(source)])
    else:
        raise BackupError(f"Restores of {url.get_backend_name()} databases are not supported.")
    db.engine.dispose()
    return RestoreResult(count_audit_events(), verify_chain())


def _restore_sqlite(source: Path, target: Path) -> None:
    try:
        backup_db = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        check = backup_db.execute("PRAGMA integrity_check").fetchone()[0]
        tables = {row[0] for row in backup_db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as error:
        raise BackupError(f"{source} is not a SQLite backup: {error}.") from None
    if check != "ok" or AuditEvent.__tablename__ not in tables:
        backup_db.close()
        raise BackupError(f"{source} is not a usable backup of this application.")
    # The backup API writes the pages under the database's write lock, in one transaction:
    # running workers wait (busy timeout) rather than see half a restore.
    live = sqlite3.connect(target, timeout=60)
    try:
        with live:
            backup_db.backup(live)
    finally:
        live.close()
        backup_db.close()
