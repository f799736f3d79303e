"""Report files kept byte-for-byte under DATA_DIR/reports, named by their SHA-256.

A file is written whole to a temporary name and then renamed, so a reader never sees half of
one; the same content always lands on the same name, so writing it again changes nothing.
Files are never overwritten or deleted: a published report's row points at them for good.
"""

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from flask import current_app

HEX_SHA256 = re.compile(r"[0-9a-f]{64}")


class MissingFile(Exception):
    """A stored report file is missing or no longer matches its SHA-256."""


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    size: int


def store_dir() -> Path:
    return Path(current_app.config["DATA_DIR"]) / "reports"


def sha256_hex(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def path_of(sha256: str) -> Path:
    if not HEX_SHA256.fullmatch(sha256 or ""):
        raise MissingFile(f"not a SHA-256: {sha256!r}")
    return store_dir() / sha256[:2] / sha256


def store(content: bytes) -> StoredFile:
    """Keep the bytes under their SHA-256 and return the hash and size."""
    digest = sha256_hex(content)
    target = path_of(digest)
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


def read(sha256: str) -> bytes:
    """Return the stored bytes, checked against their SHA-256."""
    try:
        content = path_of(sha256).read_bytes()
    except FileNotFoundError:
        raise MissingFile(f"report file {sha256} is missing") from None
    if sha256_hex(content) != sha256:
        raise MissingFile(f"report file {sha256} no longer matches its SHA-256")
    return content
