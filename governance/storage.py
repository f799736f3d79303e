"""Files kept byte for byte, one store per kind, each named by its SHA-256: in the database
(FILE_STORE "database", the default on PostgreSQL, so every application server reaches them) or
under DATA_DIR, one folder per kind (FILE_STORE "folder", the default on SQLite).

A file is stored whole before any row points at it: in a folder it is written to a temporary
name beside its final one and then renamed, so a reader never sees half of one; in the database
it is inserted and committed on a connection of its own. The same content always lands on the
same name, so storing it again changes nothing. A stored file is never overwritten: rows point
at it by its hash for good. The name of a file is its content's hash, never a name a person
gave.
"""

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from flask import current_app
from sqlalchemy import LargeBinary, String, select
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.orm import Mapped, mapped_column

from .database import utcnow
from .extensions import db

HEX_SHA256 = re.compile(r"[0-9a-f]{64}")


class MissingFile(Exception):
    """A stored file is missing or no longer matches its SHA-256 (or that is not a SHA-256)."""


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    size: int


def sha256_hex(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


class StoredFileRow(db.Model):
    """A stored file kept in the database (FILE_STORE "database")."""

    __tablename__ = "stored_files"

    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int]
    content: Mapped[bytes] = mapped_column(LargeBinary)
    stored_at: Mapped[datetime] = mapped_column(default=utcnow)


def in_database() -> bool:
    return current_app.config["FILE_STORE"] == "database"


@dataclass(frozen=True)
class FileStore:
    """The files of one kind, under DATA_DIR/<kind>/, in folders of the hash's first two
    characters (or all in one folder when `fan_out` is false)."""

    kind: str
    fan_out: bool = True

    def folder(self) -> Path:
        return Path(current_app.config["DATA_DIR"]) / self.kind

    def path_of(self, sha256: str) -> Path:
        """The one place a stored file lives."""
        if not HEX_SHA256.fullmatch(sha256 or ""):
            raise MissingFile(f"not a SHA-256: {sha256!r}")
        folder = self.folder()
        return folder / sha256[:2] / sha256 if self.fan_out else folder / sha256

    def store(self, content: bytes) -> StoredFile:
        """Keep the bytes under their SHA-256 and return the hash and size."""
        digest = sha256_hex(content)
        if in_database():
            with db.engine.begin() as connection:
                connection.execute(postgres_insert(StoredFileRow).values(
                    kind=self.kind, sha256=digest, size=len(content), content=content,
                    stored_at=utcnow()).on_conflict_do_nothing())
            return StoredFile(digest, len(content))
        target = self.path_of(digest)
        if target.exists() and target.stat().st_size == len(content):
            return StoredFile(digest, len(content))
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(content)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temporary, 0o444)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return StoredFile(digest, len(content))

    def read(self, sha256: str) -> bytes:
        """Return the stored bytes, checked against their SHA-256."""
        content = self._from_database(sha256) if in_database() else None
        if content is None:  # in the folder (also: a file stored before the database held any)
            try:
                content = self.path_of(sha256).read_bytes()
            except FileNotFoundError:
                raise MissingFile(f"stored file {self.kind}/{sha256} is missing") from None
        if sha256_hex(content) != sha256:
            raise MissingFile(f"stored file {self.kind}/{sha256} no longer matches its SHA-256")
        return content

    def _from_database(self, sha256: str) -> bytes | None:
        if not HEX_SHA256.fullmatch(sha256 or ""):
            raise MissingFile(f"not a SHA-256: {sha256!r}")
        content = db.session.scalar(select(StoredFileRow.content).where(
            StoredFileRow.kind == self.kind, StoredFileRow.sha256 == sha256))
        return None if content is None else bytes(content)

    def holds(self, sha256: str) -> bool:
        """Whether the store keeps a file by this SHA-256 (not read, not checked)."""
        if in_database() and db.session.scalar(select(StoredFileRow.size).where(
                StoredFileRow.kind == self.kind, StoredFileRow.sha256 == sha256)) is not None:
            return True
        try:
            return self.path_of(sha256).is_file()
        except MissingFile:
            return False

    def kept_files(self) -> Iterator[Path]:
        """Every file this store's folder holds (with what lives beside them), not the ones being
        written. (Files kept in the database are in the database's own copy.)"""
        folder = self.folder()
        if folder.is_dir():
            for path in sorted(folder.rglob("*")):
                if path.is_file() and not path.name.startswith(".incoming-"):
                    yield path


# The folders existing installations already hold.
REPORTS = FileStore("reports")
ATTACHMENTS = FileStore("attachments")
IMPORTS = FileStore("imports", fan_out=False)
LOGOS = FileStore("logos", fan_out=False)
STORES = (REPORTS, ATTACHMENTS, IMPORTS, LOGOS)
