"""Transparency reports: content, jobs, publishing, freezing, corrections, the public page, API."""

import io
import json
import time
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from governance import jobs as background
from governance.audit import AuditEvent, history_of
from governance.auth import services as accounts
from governance.database import utcnow
from governance.extensions import db
from governance.pdf import RefusedResource, render_pdf
from governance.reports import exceptions, jobs, services
from governance.reports.models import Report
from governance.storage import REPORTS as files
from governance.storage import sha256_hex

from .conftest import PASSWORD, follow_job, login, stored_hashes

NOTE = services.DEFAULT_METHODOLOGY
YEAR = 2025


@pytest.fixture
def app_config():
    return {"JOBS_INLINE": True}


def pdf_text(content: bytes) -> str:
    """The PDF's text, white space folded (lines wrap wherever the layout breaks them)."""
    reader = PdfReader(io.BytesIO(content))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


def record_support(actor, partnership, recipient, paid_on, amount, kind="grant", currency="GBP",
                   description="Grant towards the annual members' conference"):
    from governance.partnerships.services import record_support as record

    support = record({"partnership_id": partnership.id, "recipient_id": recipient.id,
                      "paid_on": paid_on, "kind": kind,
                      "amount": None if amount is None else str(amount),
                      "currency": currency, "description": description}, actor)
    db.session.commit()
    return support


@pytest.fixture
def year(make_org, sponsor, patient_group, make_partnership, make_interaction, compliance_user):
    """A sponsor's year: two supported groups, lines of other years and of another sponsor."""
    sponsor.methodology_note = NOTE
    patient_group.annual_income = Decimal("420000.00")
    patient_group.income_currency = "GBP"
    second_group = make_org("Parkinson's Voices", "patient_group", country="IE")
    other_sponsor = make_org("Northwind Therapeutics", "sponsor", country="US")
    unrelated_group = make_org("Sickle Cell Collective", "patient_group", country="US")
    db.session.commit()
    lung = make_partnership("Trial design advisory programme", agreement_signed_on=date(2024, 1, 5))
    voices = make_partnership("Patient-preference study", patient_group_id=second_group.id,
                              agreement_signed_on=date(2024, 2, 1))
    northwind = make_partnership("Northwind access programme", sponsor_id=other_sponsor.id,
                                 patient_group_id=unrelated_group.id,
                                 agreement_signed_on=date(2024, 1, 1))
    lines = [
        record_support(compliance_user, lung, patient_group, date(2025, 2, 3), "12500.00"),
        record_support(compliance_user, lung, patient_group, date(2025, 6, 30), "3400.50",
                       kind="contracted_service",
                       description="Patient advisers reviewing the consent form"),
        record_support(compliance_user, lung, patient_group, date(2025, 9, 1), None,
                       kind="in_kind", description="Meeting room and catering for a workshop"),
        record_support(compliance_user, voices, second_group, date(2025, 11, 20), "8000.00",
                       currency="EUR", kind="sponsorship",
                       description="Sponsorship of the national awareness week"),
    ]
    other_year = record_support(compliance_user, lung, patient_group, date(2024, 12, 31),
                                "77777.00")
    other_sponsor_line = record_support(compliance_user, northwind, unrelated_group,
                                        date(2025, 5, 5), "55555.00")
    interactions = [
        make_interaction(partnership_id=lung.id, title="Advisory board on trial burden"),
        make_interaction(partnership_id=voices.id, title="Focus group on preferences",
                         format="focus_group", occurred_on=date(2025, 7, 2),
                         purpose_shared_on=date(2025, 6, 1), selection_method="ad_hoc"),
    ]
    old_interaction = make_interaction(partnership_id=lung.id, title="Kick-off meeting of 2024",
                                       occurred_on=date(2024, 3, 1),
                                       purpose_shared_on=date(2024, 2, 1))
    return {
        "sponsor": sponsor, "groups": [patient_group, second_group],
        "other_sponsor": other_sponsor, "unrelated_group": unrelated_group,
        "partnerships": [lung, voices, northwind], "lines": lines,
        "other_year": other_year, "other_sponsor_line": other_sponsor_line,
        "interactions": interactions, "old_interaction": old_interaction,
    }


def generate(actor, organisation, reason=None) -> Report:
    report = services.request_report(
        {"organisation_id": organisation.id, "year": YEAR, "reason": reason}, actor)
    db.session.commit()
    jobs.start(report.id)
    db.session.expire_all()
    return db.session.get(Report, report.id)


def publish(actor, report) -> Report:
    exceptions.acknowledge_all(report, actor)
    services.publish_report(report, actor, PASSWORD, "approval")
    db.session.commit()
    jobs.start(report.id)
    db.session.expire_all()
    return db.session.get(Report, report.id)


def stored(report, kind, document="internal") -> bytes:
    """A stored file of the report: by default of the internal governance report, which holds
    every line, flag and answer (tests/test_public_disclosure.py reads the public one)."""
    return files.read(report.sha256_of(kind, document))


# --- content --------------------------------------------------------------------------------------


def test_pdf_lists_every_supported_organisation_and_amount_of_the_year(year, compliance_user):
    report = generate(compliance_user, year["sponsor"])

    assert report.status == "done", report.error
    text = pdf_text(stored(report, "pdf"))
    for name in ("Rare Lung Alliance", "Parkinson's Voices"):
        assert name in text
    for amount in ("GBP 12,500.00", "GBP 3,400.50", "EUR 8,000.00"):
        assert amount in text
    for line in year["lines"]:
        assert f"support-{line.id}" in text
    assert "not valued" in text  # the in-kind line, described instead of valued
    assert "Meeting room and catering" in text
    assert "Total support in GBP" in text and "GBP 15,900.50" in text


def test_pdf_leaves_out_other_years_and_other_organisations(year, compliance_user):
    text = pdf_text(stored(generate(compliance_user, year["sponsor"]), "pdf"))

    assert "77,777.00" not in text and f"support-{year['other_year'].id}" not in text
    assert "55,555.00" not in text and "Sickle Cell Collective" not in text
    assert "Northwind" not in text
    assert "Kick-off meeting of 2024" not in text
    assert f"interaction-{year['old_interaction'].id}" not in text
    for interaction in year["interactions"]:
        assert f"interaction-{interaction.id}" in text


def test_pdf_has_cover_contents_page_numbers_and_draft_mark(year, compliance_user):
    report = generate(compliance_user, year["sponsor"])
    reader = PdfReader(io.BytesIO(stored(report, "pdf")))
    pages = [page.extract_text() for page in reader.pages]

    assert report.internal_page_count == len(pages) > 3
    assert "Calendar year 2025" in pages[0]
    assert "Contents" in pages[1] and "Methodology" in pages[1]
    assert f"Page 2 of {len(pages)}" in pages[1]
    assert f"Page {len(pages)} of {len(pages)}" in pages[-1]
    assert "DRAFT — not published" in pages[2]
    assert "VAT" in "\n".join(pages)  # the methodology note is printed
    outline = [item.title for item in reader.outline if not isinstance(item, list)]
    assert "1. Methodology" in outline


def test_csv_and_json_give_every_line_a_stable_id(year, compliance_user):
    report = generate(compliance_user, year["sponsor"])
    data = json.loads(stored(report, "json"))
    csv_text = stored(report, "csv").decode("utf-8")

    ids = [line["id"] for recipient in data["recipients"] for line in recipient["lines"]]
    assert sorted(ids) == sorted(f"support-{line.id}" for line in year["lines"])
    interaction_ids = [line["id"] for group in data["interactions"]["partnerships"]
                       for line in group["lines"]]
    assert sorted(interaction_ids) == sorted(f"interaction-{i.id}" for i in year["interactions"])
    for line_id in ids + interaction_ids + [flag["id"] for flag in data["flags"]]:
        assert f"\r\n{line_id}," in csv_text
    assert data["report"]["id"] == f"report-{report.id}"
    assert data["report"]["status"] == "draft" and data["approval"] is None


def test_json_totals_contracted_services_and_share_of_income(year, compliance_user):
    data = json.loads(stored(generate(compliance_user, year["sponsor"]), "json"))
    lung = next(r for r in data["recipients"] if r["name"] == "Rare Lung Alliance")
    voices = next(r for r in data["recipients"] if r["name"] == "Parkinson's Voices")

    assert lung["totals"] == [{"currency": "GBP", "amount": "15900.50"}]
    assert lung["contracted_services"]["totals"] == [{"currency": "GBP", "amount": "3400.50"}]
    assert lung["contracted_services"]["descriptions"] == [
        "Patient advisers reviewing the consent form"]
    assert lung["share_of_income"]["percent"] == "3.8"  # 15,900.50 of 420,000
    assert voices["share_of_income"] is None  # its income is not known
    in_kind = next(line for line in lung["lines"] if line["kind"] == "in_kind")
    assert in_kind["amount"] is None and in_kind["description"].startswith("Meeting room")


def test_adherence_and_flags_of_the_year(year, compliance_user):
    data = json.loads(stored(generate(compliance_user, year["sponsor"]), "json"))
    who = next(row for row in data["interactions"]["adherence"] if row["dimension"] == "WHO")
    flagged = year["interactions"][1]

    assert who["interactions"] == 2 and who["with_open_flag"] == 1 and who["rate"] == "0.5000"
    rules = {(flag["rule"], flag["subject"]) for flag in data["flags"]}
    assert ("WHO-ADHOC-SELECTION", f"interaction-{flagged.id}") in rules
    line = next(line for group in data["interactions"]["partnerships"]
                for line in group["lines"] if line["id"] == f"interaction-{flagged.id}")
    assert line["flags"] and all(flag.startswith("flag-") for flag in line["flags"])


def test_flag_resolution_is_reported(year, compliance_user):
    from governance.review.services import transition_flag
    from governance.rules.models import Flag

    flag = db.session.scalar(select(Flag).where(
        Flag.interaction_id == year["interactions"][1].id,
        Flag.rule_id == "WHO-ADHOC-SELECTION"))
    transition_flag(flag, "acknowledged", "Members chose their own delegates this once.",
                    compliance_user)
    db.session.commit()
    report = generate(compliance_user, year["sponsor"])
    data = json.loads(stored(report, "json"))
    line = next(f for f in data["flags"] if f["id"] == f"flag-{flag.id}")

    assert line["state"] == "acknowledged"
    assert line["note"] == "Members chose their own delegates this once."
    assert line["resolved_by"] == compliance_user.name
    who = next(row for row in data["interactions"]["adherence"] if row["dimension"] == "WHO")
    assert who["with_open_flag"] == 0 and who["kept_with_justification"] == 1
    assert "Members chose their own delegates this once." in pdf_text(stored(report, "pdf"))


def test_prioritised_activities_worked_on(year, compliance_user, make_user, make_interaction):
    from governance.activities.services import seed_demo_exercises

    lung = year["partnerships"][0]
    partner = make_user("partner", year["groups"][0])
    seed_demo_exercises(lung, compliance_user, partner)
    db.session.commit()
    make_interaction(partnership_id=lung.id, title="Community priorities session",
                     occurred_on=date(2025, 10, 1), purpose_shared_on=date(2025, 9, 1),
                     activity_codes=["RP-01"])
    data = json.loads(stored(generate(compliance_user, year["sponsor"]), "json"))
    by_code = {p["activity_code"]: p for p in data["priorities"]}

    assert {"RP-01", "TD-01", "TD-04"} <= set(by_code)
    assert by_code["RP-01"]["interactions_in_year"] == 1
    assert by_code["RP-01"]["last_worked_on"] == "2025-10-01"
    # The demo exercise links the year's advisory board (its purpose: the visit schedule) to TD-01.
    assert by_code["TD-01"]["interactions_in_year"] == 1
    assert by_code["TD-04"]["interactions_in_year"] == 0
    assert by_code["TD-04"]["last_worked_on"] is None
    assert by_code["RP-01"]["id"] == f"priority-{lung.id}-RP-01"


def test_user_text_is_escaped_in_the_preview_and_printed_as_text(year, compliance_user, client):
    lung = year["partnerships"][0]
    record_support(compliance_user, lung, year["groups"][0], date(2025, 3, 3), "10.00",
                   description="<script>alert(1)</script> & <b>bold</b>")
    report = generate(compliance_user, year["sponsor"])
    login(client, compliance_user)
    page = client.get(f"/reports/{report.id}/preview").get_data(as_text=True)

    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in page
    assert "<script>alert(1)</script> & <b>bold</b>" in pdf_text(stored(report, "pdf"))


def test_pdf_lists_keep_columns_aligned_and_long_text_under_its_column():
    from governance.reports import layout

    columns = layout.SUPPORT_COLUMNS
    starts = [sum(column.width for column in columns[:index]) for index in range(len(columns))]
    indent = sum(column.width for column in columns)
    for values in (["support-1", "2025-01-01", "Grant", "GBP 1.00", "Confirmed"],
                   ["support-123456", "2025-12-31", "Contracted service", "GBP 1,250,000.00",
                    "Awaiting"]):
        lines = layout._row(columns, values, "A\tvery\nlong description " * 12)
        first = lines[0]
        for start, column, value in zip(starts, columns, values, strict=True):
            cell = first[start:start + column.width]
            assert cell.strip() == value and cell.endswith("  ")
        assert first[indent:].startswith("A very long description")
        assert len(lines) > 1
        for line in lines:
            assert len(line) <= layout.WIDTH and "\t" not in line and "\n" not in line
        for line in lines[1:]:
            assert line[:indent] == " " * indent and line[indent] != " "
    header = layout._header(columns, "Description")
    assert header[indent:] == "Description"
    assert header[starts[3]:starts[4]].strip() == "Amount"


def test_pdf_fetcher_refuses_files_and_remote_urls_but_serves_data_urls(app, tmp_path):
    from governance.pdf import html_to_pdf

    secret = tmp_path / "secret.png"
    secret.write_bytes(b"not for the report")
    pixel = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42"
             "mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")

    assert html_to_pdf(f'<p>x</p><img src="{pixel}">').pages == 1
    for url in (secret.as_uri(), "http://example.org/tracker.png",
                "https://example.org/style.css", "ftp://example.org/x"):
        with pytest.raises(RefusedResource):
            html_to_pdf(f'<p>x</p><img src="{url}">')
    with pytest.raises(RefusedResource):
        html_to_pdf(f'<link rel="stylesheet" href="{secret.as_uri()}"><p>x</p>')


def test_render_pdf_is_a_pure_function_of_template_and_data(year, compliance_user):
    from governance.reports.artefacts import snapshot_from_json, template_context

    report = generate(compliance_user, year["sponsor"])
    context = template_context(snapshot_from_json(stored(report, "json")), for_pdf=True)
    first = render_pdf("reports/pdf.html", context)
    second = render_pdf("reports/pdf.html", context)

    assert first.startswith(b"%PDF-")
    assert pdf_text(first) == pdf_text(second) == pdf_text(stored(report, "pdf"))


# --- the job --------------------------------------------------------------------------------------


def test_generation_runs_as_a_job_and_the_page_shows_its_state(year, compliance_user, client):
    login(client, compliance_user)
    response = client.post("/reports/", data={"organisation_id": year["sponsor"].id,
                                              "year": YEAR})
    assert response.status_code == 303
    report = db.session.scalar(select(Report))
    assert response.location.endswith(f"/reports/{report.id}")

    status = client.get(f"/reports/{report.id}/status").get_json()
    assert status["status"] == "done" and status["progress"] == 100
    assert set(status["links"]) == {"pdf", "csv", "json", "public", "internal"}
    page = client.get(f"/reports/{report.id}").get_data(as_text=True)
    assert "Sign and publish" in page and status["sha256"]["pdf"] in page
    assert status["internal_sha256"]["pdf"] in page
    assert client.get(status["links"]["pdf"]).data == stored(report, "pdf", "public")
    assert client.get(status["links"]["internal"]["pdf"]).data == stored(report, "pdf")


def test_page_of_a_running_job_shows_a_progress_bar_without_inline_script(
        year, compliance_user, client):
    report = services.request_report({"organisation_id": year["sponsor"].id, "year": YEAR},
                                     compliance_user)
    db.session.commit()
    login(client, compliance_user)
    page = client.get(f"/reports/{report.id}").get_data(as_text=True)

    assert '<progress id="report-progress"' in page
    assert 'data-job-status="/reports/' in page
    assert '<script src="/static/jobs/progress.js" defer></script>' in page
    assert "<script>" not in page
    script = client.get("/static/jobs/progress.js")
    assert script.status_code == 200 and b"progress" in script.data
    script.close()


@pytest.mark.parametrize("app_config", [{"JOBS_INLINE": False}])
def test_generation_runs_on_the_task_queue(year, compliance_user, client, task_worker):
    login(client, compliance_user)
    response = client.post("/reports/", data={"organisation_id": year["sponsor"].id,
                                              "year": YEAR})
    assert response.status_code == 303
    report_id = db.session.scalar(select(Report.id))
    status = follow_job(client, f"/reports/{report_id}/status")
    assert status["status"] == "done", status
    report = db.session.get(Report, report_id)
    assert "Rare Lung Alliance" in pdf_text(stored(report, "pdf"))


def test_a_job_is_claimed_once(year, compliance_user):
    report = services.request_report({"organisation_id": year["sponsor"].id, "year": YEAR},
                                     compliance_user)
    db.session.commit()

    assert jobs.claim(report.id) is not None
    assert jobs.claim(report.id) is None  # another worker finds it running
    assert jobs.run_job(report.id) is False


def test_failed_generation_says_why_and_publishes_nothing(year, compliance_user, monkeypatch,
                                                           client):
    from governance.reports import artefacts

    def broken(*_args, **_kwargs):
        raise RuntimeError("the layout engine ran out of paper")

    monkeypatch.setattr(artefacts, "html_to_pdf", broken)
    report = generate(compliance_user, year["sponsor"])

    assert report.status == "failed"
    assert "ran out of paper" in report.error
    assert report.pdf_sha256 is None and not report.has_files
    assert stored_hashes(files) == set()
    login(client, compliance_user)
    assert "ran out of paper" in client.get(f"/reports/{report.id}").get_data(as_text=True)
    assert client.get(f"/reports/{report.id}/files/pdf").status_code == 404
    assert client.get(f"/public/reports/{report.id}/pdf").status_code == 404

    monkeypatch.undo()
    response = client.post(f"/reports/{report.id}/retry")
    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.get(Report, report.id).status == "done"


def test_failed_publication_keeps_the_draft_and_withdraws_the_signature(
        year, compliance_user, monkeypatch):
    from governance.reports import artefacts

    report = generate(compliance_user, year["sponsor"])
    draft_hash = report.pdf_sha256

    def broken(*_args, **_kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(artefacts, "html_to_pdf", broken)
    report = publish(compliance_user, report)

    assert report.status == "done" and not report.is_published
    assert "Publishing failed" in report.error and "disk full" in report.error
    assert report.signed_at is None and report.signature_name is None
    assert report.pdf_sha256 == draft_hash
    assert services.published_reports() == []


# --- publishing, freezing, corrections ------------------------------------------------------------


def test_publishing_needs_the_password_and_a_stated_meaning(year, compliance_user, client):
    report = generate(compliance_user, year["sponsor"])
    exceptions.acknowledge_all(report, compliance_user)
    db.session.commit()
    login(client, compliance_user)

    response = client.post(f"/reports/{report.id}/publish",
                           data={"meaning": "approval", "password": "not my password"})
    assert response.status_code == 422
    assert "This is not your password" in response.get_data(as_text=True)
    response = client.post(f"/reports/{report.id}/publish", data={"password": PASSWORD})
    assert response.status_code == 422
    db.session.expire_all()
    assert db.session.get(Report, report.id).status == "done"

    response = client.post(f"/reports/{report.id}/publish",
                           data={"meaning": "approval", "password": PASSWORD})
    assert response.status_code == 303
    db.session.expire_all()
    report = db.session.get(Report, report.id)
    assert report.is_published and report.signature_name == compliance_user.name
    text = pdf_text(stored(report, "pdf"))
    assert f"Signed electronically by {compliance_user.name}" in text
    assert "Approved for publication" in text and "DRAFT" not in text
    data = json.loads(stored(report, "json"))
    assert data["approval"]["name"] == compliance_user.name
    assert data["approval"]["signed_at"].endswith("Z")
    events = db.session.scalars(select(AuditEvent).where(
        AuditEvent.entity == "report", AuditEvent.entity_id == report.id)).all()
    assert any("Electronic signature by" in (event.reason or "") for event in events)


def test_only_compliance_publishes(year, compliance_user, make_user, client):
    report = generate(compliance_user, year["sponsor"])
    auditor = make_user("auditor")
    login(client, auditor)

    assert client.get(f"/reports/{report.id}").status_code == 200
    assert client.post(f"/reports/{report.id}/publish",
                       data={"meaning": "approval", "password": PASSWORD}).status_code == 403
    assert client.post("/reports/", data={"organisation_id": year["sponsor"].id,
                                          "year": YEAR}).status_code == 403


@pytest.mark.parametrize("role", ["advocate", "partner", "admin"])
def test_other_roles_cannot_open_report_pages(year, compliance_user, make_user, client, role):
    report = generate(compliance_user, year["sponsor"])
    user = make_user(role, year["groups"][0] if role in ("advocate", "partner") else None)
    login(client, user)

    for url in ("/reports/", f"/reports/{report.id}", f"/reports/{report.id}/status",
                f"/reports/{report.id}/preview", f"/reports/{report.id}/files/pdf"):
        assert client.get(url).status_code == 403, url


def test_published_report_is_unchanged_by_later_edits(year, compliance_user, client):
    from governance.partnerships.services import update_support

    report = publish(compliance_user, generate(compliance_user, year["sponsor"]))
    before = {kind: stored(report, kind, "public") for kind in ("pdf", "csv", "json")}
    hashes = {kind: report.sha256_of(kind) for kind in ("pdf", "csv", "json")}

    update_support(year["lines"][0], {"amount": "99999.00"}, compliance_user,
                   reason="Amount corrected by finance")
    year["groups"][0].name = "Renamed Lung Alliance"
    db.session.commit()
    record_support(compliance_user, year["partnerships"][0], year["groups"][0],
                   date(2025, 12, 1), "4242.00")

    db.session.expire_all()
    report = db.session.get(Report, report.id)
    for kind in ("pdf", "csv", "json"):
        served = client.get(f"/public/reports/{report.id}/{kind}")
        assert served.status_code == 200
        assert served.data == before[kind]
        assert served.headers["ETag"] == f'"{hashes[kind]}"'
        assert sha256_hex(served.data) == hashes[kind] == report.sha256_of(kind)
    text = pdf_text(before["pdf"])
    assert "GBP 12,500.00" in text and "99,999.00" not in text and "4,242.00" not in text
    public_view = client.get(f"/public/reports/{report.id}").get_data(as_text=True)
    assert "Rare Lung Alliance" in public_view and "Renamed" not in public_view


def test_correction_is_version_2_and_version_1_stays_available(year, compliance_user, client):
    from governance.partnerships.services import update_support

    first = publish(compliance_user, generate(compliance_user, year["sponsor"]))
    first_pdf = stored(first, "pdf", "public")
    update_support(year["lines"][0], {"amount": "12000.00"}, compliance_user,
                   reason="The grant was 12,000, not 12,500")
    db.session.commit()

    with pytest.raises(services.ValidationFailed) as refused:
        services.request_report({"organisation_id": year["sponsor"].id, "year": YEAR},
                                compliance_user)
    assert "reason" in refused.value.fields
    db.session.rollback()

    second = generate(compliance_user, year["sponsor"],
                      reason="The grant of February was 12,000, not 12,500")
    assert second.revision == 2 and second.corrects_id == first.id
    assert second.status == "done"
    second = publish(compliance_user, second)
    text = pdf_text(stored(second, "pdf"))
    assert "GBP 12,000.00" in text and "corrects version 1" in text

    db.session.expire_all()
    first = db.session.get(Report, first.id)
    assert first.is_published and stored(first, "pdf", "public") == first_pdf
    page = client.get("/public/reports/").get_data(as_text=True)
    assert first.pdf_sha256 in page and second.pdf_sha256 in page
    assert "Corrected by version 2" in page
    assert client.get(f"/public/reports/{first.id}/pdf").data == first_pdf


def test_a_draft_is_generated_again_rather_than_duplicated(year, compliance_user):
    first = generate(compliance_user, year["sponsor"])
    again = generate(compliance_user, year["sponsor"])

    assert again.id == first.id and again.revision == 1
    assert db.session.scalar(select(Report.id).where(Report.id != first.id)) is None


def test_report_needs_a_complete_methodology_note(year, compliance_user, client):
    year["sponsor"].methodology_note = "Amounts in GBP."
    db.session.commit()
    login(client, compliance_user)

    response = client.post("/reports/", data={"organisation_id": year["sponsor"].id,
                                              "year": YEAR})
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "no complete methodology note" in body and "VAT" in body
    assert db.session.scalar(select(Report.id)) is None

    response = client.post(f"/reports/methodology/{year['sponsor'].id}",
                           data={"methodology_note": "Amounts are in GBP."})
    assert response.status_code == 422
    assert "how VAT is treated" in response.get_data(as_text=True)
    note = ("Currency: GBP, as paid. VAT: amounts exclude VAT. Support was identified from the "
            "finance ledger and the partnership records.")
    response = client.post(f"/reports/methodology/{year['sponsor'].id}",
                           data={"methodology_note": note})
    assert response.status_code == 303
    db.session.expire_all()
    assert year["sponsor"].methodology_note == note
    report = generate(compliance_user, year["sponsor"])
    assert report.methodology_note == note
    assert "finance ledger and the partnership records" in pdf_text(stored(report, "pdf"))


def test_methodology_page_offers_a_starting_text(year, compliance_user, client):
    year["sponsor"].methodology_note = None
    db.session.commit()
    login(client, compliance_user)
    page = client.get(f"/reports/methodology/{year['sponsor'].id}").get_data(as_text=True)

    assert "VAT treatment: amounts are shown excluding VAT." in page
    assert "Check every sentence" in page


def test_a_year_not_yet_over_cannot_be_published(year, compliance_user, monkeypatch):
    report = generate(compliance_user, year["sponsor"])

    monkeypatch.setattr(services, "utcnow", lambda: datetime(YEAR, 12, 31, 23, 59))
    with pytest.raises(services.ValidationFailed) as refused:
        services.publish_report(report, compliance_user, PASSWORD, "approval")
    assert refused.value.fields["year"] == [
        f"The year is not over: a report of {YEAR} can be published from 1 January {YEAR + 1}."]


# --- the public page ------------------------------------------------------------------------------


def test_public_page_shows_only_published_reports(year, compliance_user, client, make_org):
    other = make_org("Aurora Biologics", "sponsor", methodology_note=NOTE)
    draft = generate(compliance_user, other)
    published = publish(compliance_user, generate(compliance_user, year["sponsor"]))

    page = client.get("/public/reports/")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "Helix Pharma" in body and published.pdf_sha256 in body
    assert published.csv_sha256 in body and published.json_sha256 in body
    assert "Aurora Biologics" not in body and draft.pdf_sha256 not in body
    for url in (f"/public/reports/{draft.id}", f"/public/reports/{draft.id}/pdf",
                f"/public/reports/{draft.id}/json", f"/public/reports/{published.id}/exe",
                "/public/reports/999999/pdf"):
        assert client.get(url).status_code == 404, url
    response = client.get(f"/public/reports/{published.id}/pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert "attachment" in response.headers["Content-Disposition"]
    assert client.get(f"/public/reports/{published.id}").status_code == 200


# --- the API --------------------------------------------------------------------------------------


def bearer(user) -> dict:
    token = accounts.issue_token(user, "test")
    db.session.commit()
    return {"Authorization": f"Bearer {token}"}


def test_api_post_report_answers_202_and_get_gives_status_and_links(year, compliance_user,
                                                                     client):
    headers = bearer(compliance_user)
    response = client.post("/api/v1/reports", headers=headers,
                           json={"organisation_id": year["sponsor"].id, "year": YEAR})
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert set(body) >= {"id", "status"}
    assert response.headers["Location"].endswith(f"/api/v1/reports/{body['id']}")

    status = client.get(f"/api/v1/reports/{body['id']}", headers=headers).get_json()
    assert status["status"] == "done" and status["version"] == 1
    assert set(status["links"]) == {"pdf", "csv", "json", "public", "internal"}
    assert status["links"]["public"] == {kind: status["links"][kind]
                                         for kind in ("pdf", "csv", "json")}
    pdf = client.get(status["links"]["pdf"], headers=headers)
    assert pdf.status_code == 200 and sha256_hex(pdf.data) == status["sha256"]["pdf"]
    internal = client.get(status["links"]["internal"]["json"], headers=headers)
    assert sha256_hex(internal.data) == status["internal_sha256"]["json"]
    assert client.get(status["links"]["internal"]["json"]).status_code == 401


def test_api_refuses_bad_requests_in_the_documented_shape(year, compliance_user, make_user,
                                                          client):
    headers = bearer(compliance_user)
    unknown = client.post("/api/v1/reports", headers=headers,
                          json={"organisation_id": year["sponsor"].id, "year": YEAR,
                                "colour": "blue"})
    assert unknown.status_code == 400
    assert "colour" in unknown.get_json()["error"]["fields"]
    invalid = client.post("/api/v1/reports", headers=headers,
                          json={"organisation_id": year["sponsor"].id, "year": 1850})
    assert invalid.status_code == 422
    assert "year" in invalid.get_json()["error"]["fields"]
    assert client.post("/api/v1/reports",
                       json={"organisation_id": 1, "year": YEAR}).status_code == 401
    auditor = bearer(make_user("auditor"))
    assert client.post("/api/v1/reports", headers=auditor,
                       json={"organisation_id": year["sponsor"].id, "year": YEAR}
                       ).status_code == 403
    assert client.get("/api/v1/reports/424242", headers=headers).status_code == 404
    assert db.session.scalar(select(Report.id)) is None


def test_api_reports_are_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]

    assert "post" in paths["/api/v1/reports"]
    assert "202" in paths["/api/v1/reports"]["post"]["responses"]
    assert "get" in paths["/api/v1/reports/{report_id}"]


# --- a job whose worker died ----------------------------------------------------------------------


def worker_died(report: Report, attempts: int = 1, seconds_ago: int = 60) -> Report:
    """The report's job as a worker killed mid-job leaves it: running, its heartbeat stale."""
    report.status, report.job_token, report.attempts = "running", "a-dead-worker", attempts
    report.progress, report.progress_note = 35, "Laying out page 1"
    report.started_at = report.heartbeat_at = utcnow() - timedelta(seconds=seconds_ago)
    db.session.commit()
    return report


def queued(actor, organisation) -> Report:
    report = services.request_report({"organisation_id": organisation.id, "year": YEAR}, actor)
    db.session.commit()
    return report


def test_a_job_whose_heartbeat_is_stale_is_queued_again_and_runs_to_done(
        year, compliance_user, client):
    report = worker_died(queued(compliance_user, year["sponsor"]))
    status = client.get(f"/api/v1/reports/{report.id}", headers=bearer(compliance_user))

    assert status.status_code == 200
    assert status.get_json()["status"] == "done" and status.get_json()["progress"] == 100
    db.session.expire_all()
    assert report.attempts == 2 and report.heartbeat_at is not None
    reasons = [event.reason for event in history_of("report", report.id)]
    assert any("stopped responding" in (reason or "") for reason in reasons)


def test_a_job_with_a_live_heartbeat_is_left_running(year, compliance_user, client):
    report = worker_died(queued(compliance_user, year["sponsor"]), seconds_ago=5)
    status = client.get(f"/api/v1/reports/{report.id}", headers=bearer(compliance_user))

    assert status.get_json()["status"] == "running" and not status.get_json()["stalled"]
    response = client.post("/api/v1/reports", headers=bearer(compliance_user),
                           json={"organisation_id": year["sponsor"].id, "year": YEAR})
    assert response.status_code == 409
    assert "already being prepared" in response.get_json()["error"]["message"]


def test_after_its_last_attempt_a_stalled_job_fails_saying_why(year, compliance_user, client):
    report = worker_died(queued(compliance_user, year["sponsor"]), attempts=3)
    login(client, compliance_user)
    status = client.get(f"/reports/{report.id}/status").get_json()

    assert status["status"] == "failed"
    assert "stopped responding 3 times" in status["error"]
    assert "stopped responding 3 times" in client.get(f"/reports/{report.id}").get_data(
        as_text=True)


def test_run_report_jobs_runs_a_stalled_job(year, compliance_user, runner):
    report = worker_died(queued(compliance_user, year["sponsor"]))
    result = runner.invoke(args=["run-report-jobs"])

    assert result.exit_code == 0, result.output
    assert "Ran 1 report job." in result.output
    db.session.expire_all()
    assert db.session.get(Report, report.id).status == "done"


def test_run_report_jobs_runs_a_queued_job_whose_worker_died_before_it_started(
        year, compliance_user, runner):
    report = queued(compliance_user, year["sponsor"])
    result = runner.invoke(args=["run-report-jobs"])

    assert "Ran 1 report job." in result.output
    db.session.expire_all()
    assert db.session.get(Report, report.id).status == "done"


def test_a_new_request_for_the_year_after_a_stall_is_not_refused(year, compliance_user, client):
    report = worker_died(queued(compliance_user, year["sponsor"]))
    response = client.post("/api/v1/reports", headers=bearer(compliance_user),
                           json={"organisation_id": year["sponsor"].id, "year": YEAR})

    assert response.status_code == 202, response.get_json()
    assert response.get_json()["id"] == report.id
    db.session.expire_all()
    assert db.session.get(Report, report.id).status == "done"


def test_a_new_request_after_the_last_attempt_starts_over(year, compliance_user, client):
    report = worker_died(queued(compliance_user, year["sponsor"]), attempts=3)
    response = client.post("/api/v1/reports", headers=bearer(compliance_user),
                           json={"organisation_id": year["sponsor"].id, "year": YEAR})

    assert response.status_code == 202, response.get_json()
    db.session.expire_all()
    report = db.session.get(Report, report.id)
    assert report.status == "done" and report.attempts == 1


def test_api_retries_a_failed_job(year, compliance_user, make_user, make_org, client,
                                  monkeypatch):
    from governance.reports import artefacts

    monkeypatch.setattr(artefacts, "html_to_pdf", lambda *_a, **_k: 1 / 0)
    report = generate(compliance_user, year["sponsor"])
    assert report.status == "failed"
    monkeypatch.undo()
    other_officer = make_user("compliance", make_org("Northwind Pharma", "sponsor"))

    assert client.post(f"/api/v1/reports/{report.id}/retry",
                       headers=bearer(other_officer)).status_code == 404
    assert client.post(f"/api/v1/reports/{report.id}/retry",
                       headers=bearer(make_user("advocate", year["sponsor"]))).status_code == 403
    response = client.post(f"/api/v1/reports/{report.id}/retry", headers=bearer(compliance_user))
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["id"] == report.id
    assert response.headers["Location"].endswith(f"/api/v1/reports/{report.id}")
    status = client.get(f"/api/v1/reports/{report.id}", headers=bearer(compliance_user))
    assert status.get_json()["status"] == "done"

    again = client.post(f"/api/v1/reports/{report.id}/retry", headers=bearer(compliance_user))
    assert again.status_code == 409
    assert "Only a failed" in again.get_json()["error"]["message"]


def test_api_retry_is_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]

    retry = paths["/api/v1/reports/{report_id}/retry"]["post"]
    assert {"202", "404", "409"} <= set(retry["responses"])


@pytest.mark.parametrize("app_config", [{"JOBS_INLINE": False, "JOB_HEARTBEAT_SECONDS": 0.05}])
def test_a_running_job_beats_its_heartbeat(year, compliance_user, app):
    report_id = queued(compliance_user, year["sponsor"]).id
    token = jobs.claim(report_id)
    first = db.session.get(Report, report_id, populate_existing=True).heartbeat_at
    db.session.rollback()  # the test's session lets the heartbeat's write in
    with background.heartbeat(jobs.KIND, report_id, token):
        time.sleep(1.2)
    beaten = db.session.get(Report, report_id, populate_existing=True).heartbeat_at
    assert beaten > first


@pytest.mark.parametrize("app_config", [{"JOBS_INLINE": False}])
def test_a_stopping_worker_hands_its_job_back_with_a_log_line(year, compliance_user, app,
                                                              caplog):
    report_id = queued(compliance_user, year["sponsor"]).id
    token = jobs.claim(report_id)
    with background.heartbeat(jobs.KIND, report_id, token):
        handed = background.hand_back(app, wait_seconds=0)

    assert handed == 1
    assert f"report job {report_id} handed back to the queue" in caplog.text
    report = db.session.get(Report, report_id, populate_existing=True)
    assert report.status == "queued" and report.job_token is None
    assert "Handed back" in history_of("report", report_id)[-1].reason
    db.session.rollback()
    assert jobs.run_job(report_id)
    assert db.session.get(Report, report_id, populate_existing=True).status == "done"


@pytest.mark.parametrize("app_config", [{"JOBS_INLINE": False}])
def test_a_stopping_worker_lets_its_job_finish_within_its_grace(year, compliance_user, app,
                                                                caplog, task_worker):
    report_id = queued(compliance_user, year["sponsor"]).id
    db.session.rollback()  # the test's session lets the job's writes in
    jobs.start(report_id)
    deadline = time.monotonic() + 30
    while not app.extensions.get("job_heartbeats") and time.monotonic() < deadline:
        time.sleep(0.01)  # the worker has taken it

    assert background.hand_back(app, wait_seconds=120) == 0
    assert "handed back" not in caplog.text
    assert db.session.get(Report, report_id, populate_existing=True).status == "done"
