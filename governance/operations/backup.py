"""Backups and restores of the whole instance: the database and every stored file, in one archive.

A backup is a zip archive: the database (SQLite: a copy made with the online backup API;
PostgreSQL: `pg_dump --format=custom`), every file of the file store (storage.py) under
`files/`, and `manifest.json`, which gives each file's SHA-256 and size and the counts of records
per table, files and audit events, taken from the copy itself. A restore checks every file
against the manifest before it replaces anything, puts the files in place, then replaces the
database (`pg_restore --single-transaction` on PostgreSQL, so it lands whole or not at all) and
verifies the audit chain. A backup of the older kind, the database alone, still restores.
"""

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from flask import current_app
from sqlalchemy import create_engine, func, inspect, select, text
from sqlalchemy.engine import URL, Connection

from .. import storage
from ..audit import AuditEvent, ChainReport, verify_chain
from ..extensions import db

ARCHIVE_FORMAT = "governance-backup"
ARCHIVE_VERSION = 1
MANIFEST = "manifest.json"
DATABASE_MEMBERS = {"sqlite": "database/governance.sqlite",
                    "postgresql": "database/governance.pgdump"}
FILES_FOLDER = "files"
ZIP_SIGNATURE = b"PK\x03\x04"
CHUNK = 1 << 20
PROBLEMS_SHOWN = 5


class BackupError(Exception):
    """A backup or restore could not be made; the message says why and what to do."""


@dataclass(frozen=True)
class Counts:
    tables: dict[str, int]
    files: int

    @property
    def records(self) -> int:
        return sum(self.tables.values())

    @property
    def audit_events(self) -> int:
        return self.tables.get(AuditEvent.__tablename__, 0)


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size: int
    counts: Counts


@dataclass(frozen=True)
class RestoreResult:
    counts: Counts
    chain: ChainReport
    holds_files: bool  # False for a backup of the older kind: the database alone
    expected: Counts | None  # what the backup's manifest says it holds


def _url() -> URL:
    return db.engine.url


def _backend(url: URL, doing: str) -> str:
    backend = url.get_backend_name()
    if backend not in DATABASE_MEMBERS:
        raise BackupError(f"{doing} of {backend} databases are not supported.")
    return backend


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


def _data_dir() -> Path:
    return Path(current_app.config["DATA_DIR"])


# Files kept in the database go into the archive as files, as those of a folder do (the same
# archive restores into either kind of store), not in the database's copy.
FILES_TABLE = storage.StoredFileRow.__tablename__


def table_counts(connection: Connection) -> dict[str, int]:
    """The rows of every application table the connected database holds (stored files are
    counted as files)."""
    existing = set(inspect(connection).get_table_names()) - {FILES_TABLE}
    return {table.name: connection.scalar(select(func.count()).select_from(table))
            for table in db.metadata.sorted_tables if table.name in existing}


# --- backup ------------------------------------------------------------------------------------


def backup(path: str | os.PathLike, overwrite: bool = False) -> BackupResult:
    """Write the whole instance, database and stored files, to the archive at PATH."""
    target = Path(path)
    if target.exists() and not overwrite:
        raise BackupError(f"{target} already exists; choose a new file name (or --force).")
    target.parent.mkdir(parents=True, exist_ok=True)
    url = _url()
    backend = _backend(url, "Backups")
    db.session.rollback()
    partial = target.with_name(target.name + ".partial")
    try:
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".backup-") as staging:
            database_copy = Path(staging) / "database"
            if backend == "sqlite":
                tables = _copy_sqlite(_sqlite_path(url), database_copy)
            else:
                tables = _dump_postgresql(url, database_copy)
            counts = _write_archive(partial, backend, database_copy, tables)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult(target, target.stat().st_size, counts)


def _copy_sqlite(source_path: Path, copy_path: Path) -> dict[str, int]:
    """Copy a consistent snapshot with the online backup API; count the copy's rows."""
    source = sqlite3.connect(source_path)
    copy = sqlite3.connect(copy_path)
    try:
        with copy:
            source.backup(copy)
        if copy.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise BackupError("The copy failed SQLite's integrity check; nothing kept.")
    finally:
        copy.close()
        source.close()
    engine = create_engine(URL.create("sqlite", database=str(copy_path)))
    try:
        with engine.connect() as connection:
            return table_counts(connection)
    finally:
        engine.dispose()


def _dump_postgresql(url: URL, dump_path: Path) -> dict[str, int]:
    """Count the rows in one snapshot and have pg_dump write that same snapshot."""
    with db.engine.connect() as connection:
        connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            snapshot = connection.scalar(text("SELECT pg_export_snapshot()"))
            tables = table_counts(connection)
            _run([_pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges",
                  f"--snapshot={snapshot}", f"--exclude-table-data={FILES_TABLE}",
                  f"--file={dump_path}",
                  f"--dbname={_libpq_url(url)}"])
    return tables


def _write_archive(archive_path: Path, backend: str, database_copy: Path,
                   tables: dict[str, int]) -> Counts:
    data_dir = _data_dir()
    files = []
    with zipfile.ZipFile(archive_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        database = _add(archive, database_copy, DATABASE_MEMBERS[backend])
        for store in storage.STORES:
            for path in store.kept_files():
                name = path.relative_to(data_dir).as_posix()
                files.append({"path": name, **_add(archive, path, f"{FILES_FOLDER}/{name}")})
        if storage.in_database():
            files += _add_stored_rows(archive, data_dir, {entry["path"] for entry in files})
        counts = Counts(tables, len(files))
        manifest = {
            "format": ARCHIVE_FORMAT, "version": ARCHIVE_VERSION,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "database": {"backend": backend, "path": DATABASE_MEMBERS[backend], **database},
            "counts": {"records": counts.records, "files": counts.files,
                       "audit_events": counts.audit_events, "tables": tables},
            "files": files,
        }
        archive.writestr(MANIFEST, json.dumps(manifest, indent=1))
    return counts


def _add_stored_rows(archive: zipfile.ZipFile, data_dir: Path, added: set[str]) -> list[dict]:
    """Copy the files kept in the database into the archive, each where its store's folder
    would keep it; return their manifest entries."""
    entries = []
    for store in storage.STORES:
        hashes = db.session.scalars(select(storage.StoredFileRow.sha256).where(
            storage.StoredFileRow.kind == store.kind).order_by(storage.StoredFileRow.sha256))
        for sha256 in hashes.all():
            name = store.path_of(sha256).relative_to(data_dir).as_posix()
            if name in added:
                continue
            content = store.read(sha256)
            archive.writestr(zipfile.ZipInfo(f"{FILES_FOLDER}/{name}",
                                             datetime.now(UTC).timetuple()[:6]),
                             content, compress_type=zipfile.ZIP_DEFLATED)
            entries.append({"path": name, "sha256": sha256, "size": len(content)})
    db.session.rollback()
    return entries


def _add(archive: zipfile.ZipFile, source: Path, name: str) -> dict:
    """Copy a file into the archive; return its SHA-256 and size as read."""
    info = zipfile.ZipInfo.from_file(source, name)
    info.compress_type = zipfile.ZIP_DEFLATED
    digest, size = hashlib.sha256(), 0
    with source.open("rb") as handle, archive.open(info, "w") as out:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
    return {"sha256": digest.hexdigest(), "size": size}


# --- restore -----------------------------------------------------------------------------------


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
    """Replace the instance with the backup at PATH, then verify the audit chain."""
    source = Path(path)
    if not source.is_file():
        raise BackupError(f"No backup file at {source}.")
    if not force and has_data():
        raise BackupError("The database already holds records; restoring would replace them. "
                          "Add --force to replace them with the backup.")
    db.session.remove()
    url = _url()
    backend = _backend(url, "Restores")
    with source.open("rb") as handle:
        is_archive = handle.read(len(ZIP_SIGNATURE)) == ZIP_SIGNATURE
    if not is_archive:
        _replace_database(url, backend, source)
        return _restored(files=0, holds_files=False, expected=None)
    data_dir = _data_dir()
    data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=data_dir, prefix=".restore-") as staging:
        unpacked = _unpack_verified(source, Path(staging), backend)
        _check_database(backend, unpacked.database, source)
        _put_files_in_place(unpacked.files, data_dir)
        _replace_database(url, backend, unpacked.database)
        if storage.in_database():
            _keep_in_database(unpacked.files, data_dir)
    return _restored(files=len(unpacked.files), holds_files=True, expected=unpacked.expected)


def _put_files_in_place(files: dict[str, Path], data_dir: Path) -> None:
    """Move the checked files to their places (renames on one file system), before the
    database is replaced, so a database that fails to restore leaves the records as they were."""
    for name, staged in files.items():
        final = data_dir / name
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, final)


def _keep_in_database(files: dict[str, Path], data_dir: Path) -> None:
    """Store the restored files in the database too (FILE_STORE "database"), where every
    application server reaches them."""
    by_kind = {store.kind: store for store in storage.STORES}
    for name in files:
        kind = PurePosixPath(name).parts[0]
        by_kind[kind].store((data_dir / name).read_bytes())


def _restored(files: int, holds_files: bool, expected: Counts | None) -> RestoreResult:
    db.engine.dispose()
    counts = Counts(table_counts(db.session.connection()), files)
    return RestoreResult(counts, verify_chain(), holds_files, expected)


@dataclass(frozen=True)
class Unpacked:
    database: Path
    files: dict[str, Path]  # the file's place under DATA_DIR: where it waits in the staging
    expected: Counts


def _unpack_verified(source: Path, staging: Path, backend: str) -> Unpacked:
    """Extract the archive into STAGING, checking every member against the manifest."""
    try:
        with zipfile.ZipFile(source) as archive:
            manifest = _read_manifest(archive, source)
            database = manifest["database"]
            if database["backend"] != backend:
                raise BackupError(f"{source} holds a {database['backend']} database; this "
                                  f"instance uses {backend}: restore it into a "
                                  f"{database['backend']} instance.")
            database_copy = staging / "database"
            problems = _extract(archive, database, database["path"], database_copy)
            files = {}
            for entry in manifest["files"]:
                name = _store_path(entry["path"])
                staged = staging / FILES_FOLDER / name
                problems += _extract(archive, entry, f"{FILES_FOLDER}/{name}", staged)
                files[name] = staged
            counts = manifest["counts"]
            expected = Counts(dict(counts["tables"]), int(counts["files"]))
    except zipfile.BadZipFile as error:
        raise BackupError(f"{source} is not a readable backup archive: {error}.") from None
    except (KeyError, TypeError, ValueError) as error:
        raise BackupError(f"{source} has a manifest this application cannot read "
                          f"({error!r}); nothing was restored.") from None
    if problems:
        shown = "; ".join(problems[:PROBLEMS_SHOWN])
        more = len(problems) - PROBLEMS_SHOWN
        raise BackupError(f"{source} is damaged, nothing was restored: {shown}"
                          + (f"; and {more} more." if more > 0 else "."))
    return Unpacked(database_copy, files, expected)


def _read_manifest(archive: zipfile.ZipFile, source: Path) -> dict:
    try:
        manifest = json.loads(archive.read(MANIFEST))
    except KeyError:
        raise BackupError(f"{source} is an archive without {MANIFEST}: not a backup of this "
                          "application.") from None
    if manifest.get("format") != ARCHIVE_FORMAT:
        raise BackupError(f"{source} is not a backup of this application.")
    if manifest.get("version") != ARCHIVE_VERSION:
        raise BackupError(f"{source} is a backup of format version {manifest.get('version')}; "
                          f"this application reads version {ARCHIVE_VERSION}.")
    return manifest


def _store_path(name: str) -> str:
    """The manifest's name of a stored file, refused unless it lies inside a store's folder."""
    path = PurePosixPath(name)
    kinds = {store.kind for store in storage.STORES}
    if (path.is_absolute() or len(path.parts) < 2 or path.parts[0] not in kinds
            or any(part in ("", ".", "..") for part in path.parts)):
        raise BackupError(f"The backup's manifest names a file outside the file store: {name!r}; "
                          "nothing was restored.")
    return path.as_posix()


def _extract(archive: zipfile.ZipFile, entry: dict, member: str, target: Path) -> list[str]:
    """Copy one member out, hashing it; return what is wrong with it (nothing: [])."""
    try:
        info = archive.getinfo(member)
    except KeyError:
        return [f"{member} is missing from the archive"]
    target.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    try:
        with archive.open(info) as handle, target.open("wb") as out:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
    except zipfile.BadZipFile as error:
        return [f"{member} cannot be read ({error})"]
    if size != entry["size"] or digest.hexdigest() != entry["sha256"]:
        return [f"{member} does not match its SHA-256 and size in the manifest"]
    os.chmod(target, (info.external_attr >> 16) & 0o777 or 0o644)
    return []


def _check_database(backend: str, copy: Path, source: Path) -> None:
    """Refuse a database copy that cannot be restored, before anything is replaced."""
    try:
        if backend == "sqlite":
            _open_sqlite_backup(copy).close()
        else:
            _run([_pg_tool("pg_restore"), "--list", str(copy)])
    except BackupError as error:
        raise BackupError(f"The database in {source} cannot be restored, nothing was "
                          f"restored: {error}") from None


def _replace_database(url: URL, backend: str, copy: Path) -> None:
    db.session.remove()
    db.engine.dispose()
    if backend == "sqlite":
        _restore_sqlite(copy, _sqlite_path(url))
    else:
        _run([_pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--no-privileges",
              "--single-transaction", "--exit-on-error", f"--dbname={_libpq_url(url)}",
              str(copy)])


def _open_sqlite_backup(source: Path) -> sqlite3.Connection:
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
    return backup_db


def _restore_sqlite(source: Path, target: Path) -> None:
    backup_db = _open_sqlite_backup(source)
    # The backup API writes the pages under the database's write lock, in one transaction:
    # running workers wait (busy timeout) rather than see half a restore.
    live = sqlite3.connect(target, timeout=60)
    try:
        with live:
            backup_db.backup(live)
    finally:
        live.close()
        backup_db.close()
