"""Attachments: content checks, size limit, storage by hash, and access-checked downloads."""

import hashlib
import io
import struct
import zipfile

import pytest
from sqlalchemy import func, select

from governance import storage
from governance.attachments import services
from governance.attachments.models import Attachment
from governance.errors import ValidationFailed
from governance.extensions import db

from .conftest import lose_stored_file, stored_hashes

PDF = (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
       b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")


def png_bytes() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (4, 4), "navy").save(out, "PNG")
    return out.getvalue()


def ooxml(main_part: str, folder: str = "word/document.xml") -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", (
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/{folder}" ContentType="{main_part}"/></Types>'))
        archive.writestr("_rels/.rels", "<Relationships/>")
        archive.writestr(folder, "<document/>")
    return out.getvalue()


DOCX_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"


def xlsx_bytes() -> bytes:
    from openpyxl import Workbook

    out = io.BytesIO()
    workbook = Workbook()
    workbook.active["A1"] = "Attendance"
    workbook.save(out)
    return out.getvalue()


def odt_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.text")
        archive.writestr("content.xml", "<office:document-content/>")
    return out.getvalue()


def ole_bytes(*stream_names: str) -> bytes:
    """A minimal Compound File (Office 97-2003 container) holding the named 4 KB streams."""
    sector, end, free, fat_sector, no_stream = 512, 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFF
    per_stream = 4096 // sector
    fat = [fat_sector, end]
    for index in range(len(stream_names)):
        first = 2 + index * per_stream
        fat += list(range(first + 1, first + per_stream)) + [end]
    fat += [free] * (sector // 4 - len(fat))

    def entry(name, kind, child=no_stream, right=no_stream, start=end, size=0):
        encoded = (name + "\0").encode("utf-16-le")
        return (encoded.ljust(64, b"\0") + struct.pack("<HBB", len(encoded), kind, 1)
                + struct.pack("<III", no_stream, right, child) + b"\0" * 16
                + struct.pack("<IQQIQ", 0, 0, 0, start, size))

    entries = [entry("Root Entry", 5, child=1 if stream_names else no_stream)]
    for index, name in enumerate(stream_names):
        right = index + 2 if index + 1 < len(stream_names) else no_stream
        entries.append(entry(name, 2, right=right, start=2 + index * per_stream, size=4096))
    directory = b"".join(entries).ljust(sector, b"\0")
    assert len(directory) == sector, "at most 3 streams fit this sketch"
    header = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 16
              + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6) + b"\0" * 6
              + struct.pack("<IIIIIIIII", 0, 1, 1, 0, 4096, end, 0, end, 0)
              + struct.pack("<I", 0) + struct.pack("<I", free) * 108)
    streams = b"".join(bytes([65 + i]) * 4096 for i in range(len(stream_names)))
    return header + struct.pack(f"<{sector // 4}I", *fat) + directory + streams


EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200


@pytest.fixture
def compliance(make_user):
    return make_user("compliance")


@pytest.fixture
def partnership(make_partnership):
    return make_partnership(title="Registry partnership")


@pytest.fixture
def interaction(make_interaction, partnership):
    return make_interaction(partnership_id=partnership.id)


def attachment_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Attachment))


# --- what is accepted -------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "content", "media_type"), [
    ("agenda.pdf", lambda: PDF, "application/pdf"),
    ("photo.png", png_bytes, "image/png"),
    ("minutes.docx", lambda: ooxml(DOCX_MAIN),
     "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ("attendance.xlsx", xlsx_bytes,
     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ("notes.odt", odt_bytes, "application/vnd.oasis.opendocument.text"),
    ("old minutes.doc", lambda: ole_bytes("WordDocument"), "application/msword"),
    ("budget.xls", lambda: ole_bytes("Workbook"), "application/vnd.ms-excel"),
])
def test_documents_and_images_are_accepted_by_their_content(app, compliance, partnership, name,
                                                            content, media_type):
    attachment = services.attach_file(partnership, "minutes", name, content(), compliance)
    assert attachment.media_type == media_type
    assert attachment.original_name == name


@pytest.mark.parametrize(("name", "content", "message"), [
    ("agenda.pdf", png_bytes, "The file is named .pdf but its content is a PNG image."),
    ("agenda.pdf", lambda: b"Agenda\n1. Welcome\n2. Trial design\n",
     "not a document or image that can be attached"),
    ("minutes.docx", lambda: EXE, "application/x-msdownload"),
    ("setup.exe", lambda: EXE, "Files named “.exe” cannot be attached."),
    ("minutes", lambda: PDF, "Files named “.(no extension)” cannot be attached."),
    ("minutes.docx", lambda: ooxml("application/vnd.ms-word.document.macroEnabled.main+xml"),
     "Documents with macros cannot be attached"),
    ("minutes.docx", lambda: ole_bytes("WordDocument", "Macros"),
     "Documents with macros cannot be attached"),
    ("minutes.docx", lambda: zipfile_bytes({"evil.sh": "rm -rf /"}),
     "a ZIP archive, which cannot be attached"),
    ("minutes.docx", lambda: b"PK\x03\x04" + b"\x00" * 100, "damaged"),
    ("minutes.xlsx", lambda: ooxml(DOCX_MAIN),
     "The file is named .xlsx but its content is a Word document."),
    ("slides.doc", lambda: ole_bytes("PowerPoint Document"),
     "Only Word and Excel 97-2003 files are accepted"),
    ("drawing.svg", lambda: b"<svg xmlns='http://www.w3.org/2000/svg'><script/></svg>",
     "Files named “.svg” cannot be attached."),
    ("empty.pdf", lambda: b"", "The file is empty."),
])
def test_files_are_refused_by_content_not_only_by_name(app, compliance, partnership, name,
                                                      content, message):
    with pytest.raises(ValidationFailed) as error:
        services.attach_file(partnership, "minutes", name, content(), compliance)
    assert message in error.value.fields["file"][0]
    assert attachment_count() == 0
    assert stored_hashes(storage.ATTACHMENTS) == set()


def zipfile_bytes(members: dict) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for member, text in members.items():
            archive.writestr(member, text)
    return out.getvalue()


def test_files_over_the_size_limit_are_refused(app, compliance, partnership):
    app.config["ATTACHMENT_MAX_BYTES"] = 1024
    with pytest.raises(ValidationFailed) as error:
        services.attach_file(partnership, "agenda", "big.pdf", PDF + b"%" * 1024, compliance)
    assert error.value.fields == {"file": ["The file is larger than the limit of 1 KB."]}
    services.attach_file(partnership, "agenda", "small.pdf", PDF, compliance)
    assert attachment_count() == 1


def test_an_unknown_label_is_refused_on_its_field(app, compliance, partnership):
    with pytest.raises(ValidationFailed) as error:
        services.attach_file(partnership, "invoice", "a.pdf", PDF, compliance)
    assert error.value.fields == {"label": ["Must be one of: agenda, minutes, agreement, other."]}


# --- storage ------------------------------------------------------------------------------------


def test_files_are_stored_once_by_content_hash(app, compliance, partnership, interaction):
    first = services.attach_file(partnership, "agreement", "signed.pdf", PDF, compliance)
    second = services.attach_file(interaction, "agenda", "copy of signed.pdf", PDF, compliance)
    db.session.commit()
    digest = hashlib.sha256(PDF).hexdigest()
    assert first.sha256 == second.sha256 == digest
    assert stored_hashes(storage.ATTACHMENTS) == {digest}
    assert storage.ATTACHMENTS.read(digest) == PDF
    with pytest.raises(ValidationFailed) as twice:
        services.attach_file(partnership, "other", "again.pdf", PDF, compliance)
    assert "already attached here as “signed.pdf” (agreement)" in twice.value.fields["file"][0]


@pytest.mark.parametrize(("given", "shown"), [
    ("../../etc/passwd.pdf", "passwd.pdf"),
    ("C:\\Users\\me\\Minutes 3.pdf", "Minutes 3.pdf"),
    ("report\u202egpj.pdf", "reportgpj.pdf"),
    ("  tabs\tand\nnewlines .pdf", "tabs and newlines .pdf"),
])
def test_the_given_name_is_kept_for_display_only(app, compliance, partnership, given, shown):
    attachment = services.attach_file(partnership, "minutes", given, PDF, compliance)
    assert attachment.original_name == shown
    assert attachment.sha256 == storage.sha256_hex(PDF)
    assert storage.ATTACHMENTS.holds(attachment.sha256)


# --- pages and access -------------------------------------------------------------------------


def fetch(client, url):
    """GET a download and close it (the file stays open until the response is closed)."""
    response = client.get(url)
    response.get_data()
    response.close()
    return response


def upload(client, url, content, name, label="minutes"):
    return client.post(url, data={"label": label, "file": (io.BytesIO(content), name)},
                       content_type="multipart/form-data")


def test_advocate_attaches_minutes_to_an_interaction_and_downloads_them(
        client, log_in, make_user, sponsor, interaction):
    log_in(make_user("advocate", sponsor))
    page = client.get(f"/interactions/{interaction.id}").get_data(as_text=True)
    assert "Attachments" in page and 'enctype="multipart/form-data"' in page
    response = upload(client, f"/attachments/interactions/{interaction.id}/new", PDF,
                      "Minutes 14 March.pdf")
    assert response.status_code == 302
    attachment = db.session.scalars(select(Attachment)).one()
    assert attachment.interaction_id == interaction.id and attachment.label == "minutes"
    assert "Minutes 14 March.pdf" in client.get(f"/interactions/{interaction.id}").get_data(
        as_text=True)
    download = fetch(client, f"/attachments/{attachment.id}")
    assert download.status_code == 200
    assert download.data == PDF
    assert download.headers["Content-Type"] == "application/pdf"
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert "Minutes" in download.headers["Content-Disposition"]
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in download.headers["Content-Security-Policy"]


def test_a_refused_upload_shows_the_reason_on_the_field_and_saves_nothing(
        client, log_in, make_user, sponsor, partnership):
    log_in(make_user("advocate", sponsor))
    response = upload(client, f"/attachments/partnerships/{partnership.id}/new", png_bytes(),
                      "agreement.pdf", label="agreement")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'id="file-error"' in page
    assert "The file is named .pdf but its content is a PNG image." in page
    missing = client.post(f"/attachments/partnerships/{partnership.id}/new",
                          data={"label": "agenda"}, content_type="multipart/form-data")
    assert missing.status_code == 422 and "Choose a file to attach." in missing.get_data(
        as_text=True)
    assert attachment_count() == 0


def test_partner_downloads_only_documents_of_their_partnerships(
        client, log_in, make_user, make_org, make_partnership, patient_group, compliance,
        partnership):
    northwind = make_org("Northwind Therapeutics", "sponsor")
    families = make_org("Cystic Fibrosis Families", "patient_group")
    foreign = make_partnership(title="Theirs", sponsor_id=northwind.id,
                               patient_group_id=families.id)
    own_file = services.attach_file(partnership, "agreement", "ours.pdf", PDF, compliance)
    foreign_file = services.attach_file(foreign, "agreement", "theirs.pdf", PDF + b"%theirs",
                                        compliance)
    db.session.commit()
    log_in(make_user("partner", patient_group))
    assert fetch(client, f"/attachments/{own_file.id}").status_code == 200
    assert fetch(client, f"/attachments/{foreign_file.id}").status_code == 404
    assert fetch(client, "/attachments/999999").status_code == 404
    assert "ours.pdf" in client.get(f"/partnerships/{partnership.id}").get_data(as_text=True)
    refused = upload(client, f"/attachments/partnerships/{partnership.id}/new", PDF, "x.pdf")
    assert refused.status_code == 403


def test_advocate_of_another_organisation_gets_404(client, log_in, make_user, make_org,
                                                   compliance, partnership, interaction):
    outsider_org = make_org("Aurora Biologics", "sponsor")
    on_partnership = services.attach_file(partnership, "agreement", "a.pdf", PDF, compliance)
    on_interaction = services.attach_file(interaction, "agenda", "b.pdf", PDF + b"%b",
                                          compliance)
    db.session.commit()
    log_in(make_user("advocate", outsider_org))
    for attachment in (on_partnership, on_interaction):
        assert fetch(client, f"/attachments/{attachment.id}").status_code == 404
        assert client.post(f"/attachments/{attachment.id}/void",
                           data={"reason": "x"}).status_code == 404
    assert upload(client, f"/attachments/interactions/{interaction.id}/new", PDF,
                  "x.pdf").status_code == 404


def test_voided_attachments_leave_the_page_and_stay_for_compliance(
        client, log_in, make_user, sponsor, compliance, partnership):
    attachment = services.attach_file(partnership, "minutes", "draft.pdf", PDF, compliance)
    db.session.commit()
    advocate = make_user("advocate", sponsor)
    log_in(advocate)
    assert client.post(f"/attachments/{attachment.id}/void",
                       data={"reason": ""}).status_code == 422
    assert client.post(f"/attachments/{attachment.id}/void",
                       data={"reason": "Superseded by the final minutes"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Attachment, attachment.id).is_void
    assert storage.ATTACHMENTS.holds(attachment.sha256)
    assert "draft.pdf" not in client.get(f"/partnerships/{partnership.id}").get_data(
        as_text=True)
    assert fetch(client, f"/attachments/{attachment.id}").status_code == 404
    client.post("/logout")
    log_in(make_user("auditor"))
    assert fetch(client, f"/attachments/{attachment.id}").status_code == 200
    assert "Superseded by the final minutes" in client.get(
        f"/partnerships/{partnership.id}").get_data(as_text=True)


def test_nothing_can_be_attached_to_a_voided_record(app, compliance, make_partnership):
    from governance.errors import Conflict

    voided = make_partnership(title="Gone")
    voided.voided_at = voided.created_at
    voided.void_reason = "duplicate"
    db.session.commit()
    with pytest.raises(Conflict):
        services.attach_file(voided, "agenda", "a.pdf", PDF, compliance)


def test_a_stored_file_that_went_missing_answers_404(client, log_in, compliance, partnership):
    attachment = services.attach_file(partnership, "agenda", "a.pdf", PDF, compliance)
    db.session.commit()
    lose_stored_file(storage.ATTACHMENTS, attachment.sha256)
    log_in(compliance)
    assert fetch(client, f"/attachments/{attachment.id}").status_code == 404
