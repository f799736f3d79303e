"""Files kept byte for byte under DATA_DIR, one folder per kind, each named by its SHA-256.

A file is written whole to a temporary name beside its final one and then renamed, so a reader
never sees half of one; the same content always lands on the same name, so storing it again
changes nothing. A stored file is made read-only and never overwritten: rows point at it by its
hash for good. The name of a file is its content's hash, never a name a person gave.
"""

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from flask import current_app

HEX_SHA256 = re.compile(r"[0-9a-f]{64}")


class MissingFile(Exception):
    """A stored file is missing or no longer matches its SHA-256 (or that is not a SHA-256)."""


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    size: int


def sha256_hex(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


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
        try:
            content = self.path_of(sha256).read_bytes()
        except FileNotFoundError:
            raise MissingFile(f"stored file {self.kind}/{sha256} is missing") from None
        if sha256_hex(content) != sha256:
            raise MissingFile(f"stored file {self.kind}/{sha256} no longer matches its SHA-256")
        return content

    def kept_files(self) -> Iterator[Path]:
        """Every file this store holds (with what lives beside them), not the ones being written."""
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
STORES = (REPORTS, ATTACHMENTS, IMPORTS)
