"""An uploaded CSV file: its size, encoding, header and cells; kept by hash, for the person who
uploaded it, between its preview and its commit.

Everything that makes a file unreadable as a whole is a FileRefused with a message a person can
act on (which line, which byte, which columns); problems of single rows are the importer's.
"""

import csv
import io
from collections.abc import Iterator

from marshmallow import fields, missing

from .. import storage
from ..database import utcnow
from ..extensions import db
from ..spreadsheets import FORMULA_PREFIXES
from ..validation import whole_number_or_text
from .models import ImportUpload

LIST_SEPARATOR = ";"


class FileRefused(Exception):
    """The file cannot be imported at all; `message` says why and what to do."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.message = message
        self.status = status


def human_size(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MB" if size >= 1024 * 1024 else f"{size / 1024:.0f} KB"


def read_upload(stream, limit: int) -> bytes:
    """Read at most `limit` bytes of an upload; a larger file is refused without reading it all."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise FileRefused(f"The file is larger than the import limit of {human_size(limit)}. "
                          "Split it into smaller files (each with the header row) and import "
                          "them one after another.", status=413)
    if not data.strip():
        raise FileRefused("The file is empty.")
    return data


def decode(data: bytes) -> str:
    """Return the file's text; anything but UTF-8 is refused with the line and byte at fault."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise FileRefused("The file is UTF-16 (“Unicode text”), not UTF-8. Save it as "
                          "“CSV UTF-8 (comma delimited)” and upload it again.")
    if data.startswith(b"PK\x03\x04"):
        raise FileRefused("This is a spreadsheet workbook (XLSX), not a CSV file. Save it as "
                          "“CSV UTF-8 (comma delimited)” and upload that.")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise FileRefused(
            f"The file is not UTF-8 text: line {line} holds the byte 0x{data[error.start]:02X}, "
            "which is not valid UTF-8. The file was probably saved as Latin-1 or Windows-1252 "
            "(the default of some spreadsheet programs). Save it as “CSV UTF-8 (comma "
            "delimited)” and upload it again.") from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise FileRefused(f"Line {line} holds a NUL character: this is not a text CSV file.")
    return text


def records(text: str) -> Iterator[tuple[int, list[str]]]:
    """Yield (row number, cells); rows are numbered as a spreadsheet shows them (header = 1)."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    number = 0
    try:
        for number, cells in enumerate(reader, start=1):
            yield number, cells
    except csv.Error as error:
        raise FileRefused(f"Row {number + 1} (line {reader.line_num}) cannot be read as CSV: "
                          f"{error}. Check its quotes.") from None


def check_header(cells: list[str], allowed: tuple[str, ...], required: set[str]) -> list[str]:
    """Return the column names, or refuse the file naming the unknown and missing columns."""
    names = [cell.strip().lstrip("\ufeff").lower() for cell in cells]
    problems = []
    blank = [str(i) for i, name in enumerate(names, start=1) if not name]
    if blank:
        problems.append(f"Column(s) {', '.join(blank)} of the header have no name.")
    unknown = [name for name in names if name and name not in allowed]
    if unknown:
        problems.append(f"Unknown column(s): {', '.join(unknown)}.")
    twice = sorted({name for name in names if name and names.count(name) > 1})
    if twice:
        problems.append(f"Column(s) given twice: {', '.join(twice)}.")
    missing_columns = [name for name in allowed if name in required and name not in names]
    if missing_columns:
        problems.append(f"Missing column(s): {', '.join(missing_columns)}.")
    if problems:
        raise FileRefused("The header row (row 1) does not match the template: "
                          + " ".join(problems) + f" The columns are: {', '.join(allowed)} "
                          f"(required: {', '.join(n for n in allowed if n in required)}).")
    return names


def unescape(cell: str) -> str:
    """Undo the apostrophe exports put before a formula-like cell, so a file round-trips."""
    if len(cell) > 1 and cell[0] == "'" and cell[1] in FORMULA_PREFIXES:
        return cell[1:]
    return cell


def looks_like_formula(cell: str) -> bool:
    if not cell or cell[0] not in "=+-@":
        return False
    return cell[0] != "-" or (len(cell) > 1 and not cell[1].isdigit())


def _as_text(cell: str) -> str:
    return cell


class RowReader:
    """Turn one row's cells into service input; each column's kind is worked out once.

    Lists are split on ';'. An empty cell clears the field (the field's default, or empty). A
    column left out of the file is left out here: a new record takes the default, an existing
    one keeps its value.
    """

    def __init__(self, names: list[str], schema):
        self.names = names
        self.columns = []
        for name in names:
            field = schema.fields[name]
            is_list = isinstance(field, fields.List)
            default = field.load_default
            empty = default if default is not missing and not callable(default) else None
            is_integer = isinstance(field.inner if is_list else field, fields.Integer)
            read = whole_number_or_text if is_integer else _as_text
            self.columns.append((name, is_list, empty, read))

    def values(self, cells: list[str]) -> dict:
        values = {}
        for (name, is_list, empty, read), cell in zip(self.columns, cells, strict=False):
            cell = cell.strip()
            if cell[:1] == "'":
                cell = unescape(cell)
            if is_list:
                values[name] = [read(part.strip()) for part in cell.split(LIST_SEPARATOR)
                                if part.strip()]
            else:
                values[name] = read(cell) if cell else empty
        for name, is_list, empty, _read in self.columns[len(cells):]:
            values[name] = [] if is_list else empty
        return values

    def formula_columns(self, cells: list[str]) -> list[str]:
        return [name for name, cell in zip(self.names, cells, strict=False)
                if cell[:1] in FORMULA_START and looks_like_formula(cell.strip())]


FORMULA_START = frozenset("=+-@ ")


def template_csv(columns: tuple[str, ...], example: dict) -> str:
    """The header and one example row, lists joined with ';'."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    writer.writerow([
        LIST_SEPARATOR.join(map(str, value)) if isinstance(value, list | tuple)
        else "" if value is None else str(value).lower() if isinstance(value, bool) else value
        for value in (example.get(name) for name in columns)
    ])
    return buffer.getvalue()


# --- keeping the uploaded file between preview and commit -----------------------------------


def store(data: bytes, filename: str, user) -> str:
    """Keep the file under DATA_DIR/imports/<sha256>, bound to the user who uploaded it (under
    the name they gave it last); return the hash that names it."""
    digest = storage.IMPORTS.store(data).sha256
    upload = db.session.get(ImportUpload, (digest, user.id))
    if upload is None:
        upload = ImportUpload(sha256=digest, uploaded_by_id=user.id)
        db.session.add(upload)
    upload.filename, upload.uploaded_at = filename, utcnow()
    db.session.flush()
    return digest


def load(digest: str, user) -> tuple[bytes, ImportUpload] | None:
    """Return the file this user uploaded under this hash (re-hashed) and its upload, or None:
    another user's upload is as unknown as a file never uploaded."""
    upload = db.session.get(ImportUpload, (digest, user.id))
    if upload is None:
        return None
    try:
        return storage.IMPORTS.read(digest), upload
    except storage.MissingFile:
        return None
