"""Attach, find, serve and void documents on interactions and partnerships.

A file is accepted only when its content is a PDF, an office document or an image and its name
says the same; it is stored once per content (by SHA-256) under <DATA_DIR>/attachments/, and the
name the person gave is kept as data only, never used as a path.
"""

import io
import unicodedata
import zipfile
from dataclasses import dataclass
from typing import NoReturn

import filetype
import olefile
from flask import current_app
from sqlalchemy import select

from .. import audit, storage
from ..database import utcnow
from ..errors import Conflict, NotAllowed, ValidationFailed
from ..extensions import db
from ..permissions import can_edit_partnership, can_edit_records
from ..vocabulary import ATTACHMENT_LABELS
from .models import Attachment


@dataclass(frozen=True)
class FileType:
    extension: str
    media_type: str
    description: str
    names: tuple[str, ...]  # file-name extensions that may carry this content


FILE_TYPES = {t.extension: t for t in (
    FileType("pdf", "application/pdf", "a PDF document", ("pdf",)),
    FileType("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
             "a Word document", ("docx",)),
    FileType("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
             "an Excel workbook", ("xlsx",)),
    FileType("pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation",
             "a PowerPoint presentation", ("pptx",)),
    FileType("odt", "application/vnd.oasis.opendocument.text", "an OpenDocument text",
             ("odt",)),
    FileType("ods", "application/vnd.oasis.opendocument.spreadsheet",
             "an OpenDocument spreadsheet", ("ods",)),
    FileType("doc", "application/msword", "a Word 97-2003 document", ("doc",)),
    FileType("xls", "application/vnd.ms-excel", "an Excel 97-2003 workbook", ("xls",)),
    FileType("png", "image/png", "a PNG image", ("png",)),
    FileType("jpg", "image/jpeg", "a JPEG image", ("jpg", "jpeg")),
    FileType("gif", "image/gif", "a GIF image", ("gif",)),
    FileType("webp", "image/webp", "a WebP image", ("webp",)),
)}
ALLOWED_NAMES = {name: t for t in FILE_TYPES.values() for name in t.names}
ACCEPTED = ("PDF, Word, Excel, PowerPoint (.docx, .xlsx, .pptx, .doc, .xls), OpenDocument "
            "(.odt, .ods) and images (.png, .jpg, .gif, .webp)")

# The part of [Content_Types].xml that names an OOXML package's main document.
OOXML_MAIN_PARTS = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml",
}
ODF_MIMETYPES = {"odt": FILE_TYPES["odt"].media_type, "ods": FILE_TYPES["ods"].media_type}
OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_SIGNATURE = b"PK\x03\x04"
MAX_MANIFEST_BYTES = 1024 * 1024


def refuse(message: str) -> NoReturn:
    raise ValidationFailed({"file": [message]})


# --- names ---------------------------------------------------------------------------------


def display_name(name: str | None) -> str:
    """Return the given file name made safe to show: no folders, control or direction marks."""
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(" " if ch.isspace() else ch for ch in name
                   if ch.isspace() or unicodedata.category(ch)[0] != "C")
    name = " ".join(name.split()).strip(" .")
    if len(name) > 255:
        stem, dot, extension = name.rpartition(".")
        name = f"{stem[:250 - len(extension)]}.{extension}" if dot and len(extension) < 10 \
            else name[:255]
    return name


def name_extension(name: str) -> str:
    stem, dot, extension = name.rpartition(".")
    return extension.lower() if dot and stem else ""


# --- content -------------------------------------------------------------------------------


def detect_type(data: bytes) -> FileType:
    """Return what the content really is, or refuse it with the reason."""
    if data.startswith(ZIP_SIGNATURE):
        return FILE_TYPES[_zipped_document(data)]
    if data.startswith(OLE_SIGNATURE):
        return FILE_TYPES[_legacy_office_document(data)]
    kind = filetype.guess(data)
    if kind is None:
        refuse(f"The content of this file is not a document or image that can be attached "
               f"(accepted: {ACCEPTED}), whatever its name says.")
    extension = {"jpeg": "jpg"}.get(kind.extension, kind.extension)
    if extension not in ("pdf", "png", "jpg", "gif", "webp"):
        refuse(f"The content of this file is {kind.mime} (.{kind.extension}), which cannot be "
               f"attached. Accepted: {ACCEPTED}.")
    return FILE_TYPES[extension]


def _zipped_document(data: bytes) -> str:
    """Tell OOXML and OpenDocument packages apart by their manifest, not by their name."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            declared = _read_small(archive, "mimetype") if "mimetype" in names else None
            manifest = _read_small(archive, "[Content_Types].xml") \
                if "[Content_Types].xml" in names else None
    except ValidationFailed:
        raise
    except Exception:  # any failure to parse untrusted bytes means "damaged"
        refuse("This file looks like a ZIP package but is damaged; it cannot be attached.")
    if declared is not None:
        declared_type = declared.decode("ascii", "replace").strip()
        for extension, media_type in ODF_MIMETYPES.items():
            if declared_type == media_type:
                return extension
        refuse(f"This OpenDocument file is of a kind that cannot be attached ({declared_type}). "
               f"Accepted: {ACCEPTED}.")
    if manifest is not None:
        content_types = manifest.decode("utf-8", "replace")
        if "vbaProject" in content_types or "macroEnabled" in content_types:
            refuse("Documents with macros cannot be attached; save it without macros "
                   "(.docx, .xlsx, .pptx) or as PDF.")
        for extension, main_part in OOXML_MAIN_PARTS.items():
            if f'ContentType="{main_part}"' in content_types:
                return extension
        refuse("This Office Open XML package is not a Word, Excel or PowerPoint document.")
    refuse(f"The content of this file is a ZIP archive, which cannot be attached. Accepted: "
           f"{ACCEPTED}.")


def _read_small(archive: zipfile.ZipFile, name: str) -> bytes:
    info = archive.getinfo(name)
    if info.file_size > MAX_MANIFEST_BYTES:
        refuse("This document's manifest is implausibly large; it cannot be attached.")
    with archive.open(info) as member:
        return member.read(MAX_MANIFEST_BYTES + 1)[:MAX_MANIFEST_BYTES]


def _legacy_office_document(data: bytes) -> str:
    """Tell Word and Excel 97-2003 files apart by their streams; refuse macros and others."""
    try:
        with olefile.OleFileIO(io.BytesIO(data)) as ole:
            present = {name for name in ("EncryptedPackage", "Macros", "_VBA_PROJECT_CUR",
                                         "WordDocument", "Workbook", "Book") if ole.exists(name)}
    except Exception:  # any failure to parse untrusted bytes means "damaged"
        refuse("This file looks like an Office 97-2003 document but is damaged; it cannot be "
               "attached.")
    if "EncryptedPackage" in present:
        refuse("Password-protected documents cannot be attached; remove the password first.")
    if present & {"Macros", "_VBA_PROJECT_CUR"}:
        refuse("Documents with macros cannot be attached; save it without macros or as PDF.")
    if "WordDocument" in present:
        return "doc"
    if present & {"Workbook", "Book"}:
        return "xls"
    refuse(f"Only Word and Excel 97-2003 files are accepted in the old Office format; save "
           f"PowerPoint and other files as PDF. Accepted: {ACCEPTED}.")


def check_file(name: str, data: bytes) -> FileType:
    """Refuse empty or oversized files, other content, and names that disagree with content."""
    limit = current_app.config["ATTACHMENT_MAX_BYTES"]
    if not data:
        refuse("The file is empty.")
    if len(data) > limit:
        refuse(f"The file is larger than the limit of {human_size(limit)}.")
    extension = name_extension(name)
    if extension not in ALLOWED_NAMES:
        refuse(f"Files named “.{extension or '(no extension)'}” cannot be attached. Accepted: "
               f"{ACCEPTED}.")
    actual = detect_type(data)
    if extension not in actual.names:
        refuse(f"The file is named .{extension} but its content is {actual.description}. "
               "Rename it or choose the right file.")
    return actual


def human_size(size: int) -> str:
    for unit in ("bytes", "KB", "MB"):
        if size < 1024 or unit == "MB":
            return f"{size:g} {unit}" if unit == "bytes" else f"{size:.0f} {unit}"
        size /= 1024
    return f"{size} MB"


# --- records -------------------------------------------------------------------------------


def owner_column(owner):
    from ..interactions.models import Interaction
    from ..partnerships.models import Partnership

    if isinstance(owner, Interaction):
        return Attachment.interaction_id, "interaction_id"
    if isinstance(owner, Partnership):
        return Attachment.partnership_id, "partnership_id"
    from ..agreements.models import Agreement

    if isinstance(owner, Agreement):
        return Attachment.agreement_id, "agreement_id"
    raise TypeError(f"attachments belong to interactions or partnerships, not {owner!r}")


def attach_file(owner, label: str, filename: str, data: bytes, actor) -> Attachment:
    """Check a file by content, store it by hash and attach it to an interaction or partnership."""
    _require_editor(actor, owner)
    errors = {}
    if label not in ATTACHMENT_LABELS:
        errors["label"] = [f"Must be one of: {', '.join(ATTACHMENT_LABELS)}."]
    if owner.is_void:
        raise Conflict("This record has been voided; nothing more can be attached to it.")
    name = display_name(filename)
    try:
        file_type = check_file(name, data)
    except ValidationFailed as error:
        errors.update(error.fields)
    if errors:
        raise ValidationFailed(errors)
    digest = storage.sha256_hex(data)
    column, key = owner_column(owner)
    duplicate = db.session.scalar(select(Attachment).where(
        column == owner.id, Attachment.sha256 == digest, Attachment.voided_at.is_(None)))
    if duplicate is not None:
        refuse(f"This file is already attached here as “{duplicate.original_name}” "
               f"({ATTACHMENT_LABELS.get(duplicate.label, duplicate.label).lower()}).")
    storage.ATTACHMENTS.store(data)
    attachment = Attachment(label=label, original_name=name, media_type=file_type.media_type,
                            size=len(data), sha256=digest, uploaded_by_id=actor.id,
                            **{key: owner.id})
    db.session.add(attachment)
    db.session.flush()
    return attachment


def void_attachment(attachment: Attachment, actor, reason: str) -> Attachment:
    """Withdraw an attachment; the stored file stays for the audit trail."""
    _require_editor(actor, owner_of(attachment))
    if not (reason or "").strip():
        raise ValidationFailed({"reason": ["Say why this attachment is being voided."]})
    if attachment.is_void:
        raise Conflict("This attachment is already void.")
    audit.set_reason(reason)
    attachment.voided_at = utcnow()
    attachment.void_reason = reason.strip()
    db.session.flush()
    return attachment


def owner_of(attachment: Attachment):
    from ..interactions.models import Interaction
    from ..partnerships.models import Partnership

    if attachment.interaction_id is not None:
        return db.session.get(Interaction, attachment.interaction_id)
    if attachment.agreement_id is not None:
        from ..agreements.models import Agreement

        return db.session.get(Agreement, attachment.agreement_id)
    return db.session.get(Partnership, attachment.partnership_id)


def attachments_of(owner, include_void: bool = False) -> list[Attachment]:
    column, _key = owner_column(owner)
    conditions = [column == owner.id]
    if not include_void:
        conditions.append(Attachment.voided_at.is_(None))
    return list(db.session.scalars(
        select(Attachment).where(*conditions).order_by(Attachment.created_at.desc(),
                                                       Attachment.id.desc())))


def may_change(actor, owner) -> bool:
    """Editors of the owning record may attach and void its documents."""
    from ..agreements.models import Agreement
    from ..partnerships.models import Partnership

    if isinstance(owner, Partnership):
        return can_edit_partnership(actor, owner)
    if isinstance(owner, Agreement):  # the signed document: its partnership's editors
        return can_edit_records(actor) and can_edit_partnership(actor, owner.partnership)
    return can_edit_records(actor)  # interactions: the editor passed interaction_scope to reach it


def _require_editor(actor, owner) -> None:
    if not may_change(actor, owner):
        raise NotAllowed("Only advocates and compliance officers who may edit the record "
                         "attach or void its documents.")
