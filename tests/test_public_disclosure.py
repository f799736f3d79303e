"""The public disclosure and the internal governance report: two documents from one snapshot.

The public files (PDF, CSV, JSON, and the public page) name no member of staff, quote no flag
note, resolution or dispute note, and show an interaction's title only where it is marked
publishable; the internal report holds all of it. Only the public one is reachable without
signing in.
"""

import io
import json
from datetime import date
from decimal import Decimal

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from governance.auth import services as accounts
from governance.errors import ValidationFailed
from governance.extensions import db
from governance.reports import jobs, services
from governance.reports.exceptions import acknowledge_all
from governance.reports.models import Report
from governance.rules.models import Flag
from governance.storage import REPORTS as files

from .conftest import PASSWORD, login

YEAR = 2025
FLAG_NOTE = "Kept: Dr Quill insisted on the venue for the hospice visit"
DISPUTE_NOTE = "Our treasurer Ms Okonkwo-Varga says this grant never arrived"
INTERACTION_NOTE = "Minutes were lost in the move"
SECRET_TITLE = "Advisory board on unlicensed XR-99 dosing"
PUBLIC_TITLE = "Listening session on trial burden"


@pytest.fixture
def app_config():
    return {"JOBS_INLINE": True}


def text_of(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


@pytest.fixture
def disclosed_year(sponsor, patient_group, make_partnership, make_interaction):
    """A sponsor's year with everything the public must not read: named staff who resolved
    flags with notes, a partner's dispute note, an unpublishable interaction title."""
    from governance.confirmations.services import answer_interaction, answer_support
    from governance.partnerships.services import record_support
    from governance.review.services import transition_flag

    sponsor.methodology_note = services.DEFAULT_METHODOLOGY
    officer = accounts.create_user("ines.barros@helix.example", "Inês Barros-Whitfield",
                                   "compliance", PASSWORD, sponsor.name)
    advocate = accounts.create_user("tobias.marchetti@helix.example", "Tobias Marchetti",
                                    "advocate", PASSWORD, sponsor.name)
    partner = accounts.create_user("grace.adeyemi@lung.example", "Grace Adeyemi-Lindqvist",
                                   "partner", PASSWORD, patient_group.name)
    db.session.commit()
    partnership = make_partnership("Trial design advisory programme",
                                   agreement_signed_on=date(2024, 1, 5))
    grant = record_support({"partnership_id": partnership.id, "recipient_id": patient_group.id,
                            "paid_on": date(2025, 2, 3), "kind": "grant", "amount": "12500.00",
                            "currency": "GBP",
                            "description": "Grant towards the annual members' conference"},
                           officer)
    confirmed = record_support({"partnership_id": partnership.id,
                                "recipient_id": patient_group.id, "paid_on": date(2025, 5, 9),
                                "kind": "donation", "amount": "800.00", "currency": "GBP",
                                "description": "Donation to the helpline"}, officer)
    secret = make_interaction(partnership_id=partnership.id, title=SECRET_TITLE,
                              selection_method="ad_hoc")
    shown = make_interaction(partnership_id=partnership.id, title=PUBLIC_TITLE,
                             format="listening_session", publishable=True,
                             occurred_on=date(2025, 8, 14), purpose_shared_on=date(2025, 7, 1))
    answer_support(grant, {"answer": "disputed", "note": DISPUTE_NOTE}, partner)
    answer_support(confirmed, {"answer": "confirmed", "note": None}, partner)
    answer_interaction(secret, {"answer": "disputed", "note": INTERACTION_NOTE}, partner)
    db.session.commit()
    flags = db.session.scalars(select(Flag).where(Flag.interaction_id == secret.id,
                                                  Flag.state == "open")).all()
    assert flags, "the fixture needs a flag to resolve"
    transition_flag(flags[0], "acknowledged", FLAG_NOTE, officer)
    db.session.commit()
    return {"sponsor": sponsor, "officer": officer, "advocate": advocate, "partner": partner,
            "grant": grant, "secret": secret, "shown": shown, "flag": flags[0]}


def generate_and_publish(officer, organisation) -> Report:
    report = services.request_report({"organisation_id": organisation.id, "year": YEAR},
                                     officer)
    db.session.commit()
    jobs.start(report.id)
    db.session.expire_all()
    report = db.session.get(Report, report.id)
    acknowledge_all(report, officer, "Reviewed with the partner; kept as recorded.")
    db.session.commit()
    services.publish_report(report, officer, PASSWORD, "approval")
    db.session.commit()
    jobs.start(report.id)
    db.session.expire_all()
    return db.session.get(Report, report.id)


def public_files(report) -> dict[str, str]:
    return {"pdf": text_of(files.read(report.pdf_sha256)),
            "csv": files.read(report.csv_sha256).decode("utf-8"),
            "json": files.read(report.json_sha256).decode("utf-8")}


def internal_files(report) -> dict[str, str]:
    return {"pdf": text_of(files.read(report.internal_pdf_sha256)),
            "csv": files.read(report.internal_csv_sha256).decode("utf-8"),
            "json": files.read(report.internal_json_sha256).decode("utf-8")}


def test_no_public_file_names_staff_or_quotes_a_note(disclosed_year, client):
    report = generate_and_publish(disclosed_year["officer"], disclosed_year["sponsor"])
    assert report.is_published
    from governance.auth.models import User

    people = db.session.scalars(select(User)).all()
    forbidden = [FLAG_NOTE, DISPUTE_NOTE, INTERACTION_NOTE, SECRET_TITLE,
                 "Reviewed with the partner"]
    forbidden += [user.name for user in people] + [user.email for user in people]
    public_page = client.get(f"/public/reports/{report.id}").get_data(as_text=True)
    for name, content in public_files(report).items() | {("page", public_page)}:
        for text in forbidden:
            assert text not in content, f"{text!r} is in the public {name}"
        assert "Grant towards the annual members" in content
        assert "Helix Pharma" in content
    assert PUBLIC_TITLE in public_files(report)["json"]
    assert PUBLIC_TITLE in public_page


def test_the_internal_report_keeps_what_the_public_one_leaves_out(disclosed_year):
    report = generate_and_publish(disclosed_year["officer"], disclosed_year["sponsor"])
    internal = internal_files(report)

    document = json.loads(internal["json"])
    flag = next(f for f in document["flags"] if f["id"] == f"flag-{disclosed_year['flag'].id}")
    assert flag["note"] == FLAG_NOTE and flag["resolved_by"] == "Inês Barros-Whitfield"
    assert DISPUTE_NOTE in internal["csv"] and SECRET_TITLE in internal["csv"]
    assert "Reviewed with the partner; kept as recorded." in internal["csv"]  # an exception
    assert document["approval"]["name"] == "Inês Barros-Whitfield"


def test_the_public_json_has_stable_ids_agreements_and_adherence(disclosed_year):
    report = generate_and_publish(disclosed_year["officer"], disclosed_year["sponsor"])
    document = json.loads(files.read(report.json_sha256))

    assert document["schema"] == "governance.transparency-disclosure/1"
    assert document["document"] == "public"
    (recipient,) = document["recipients"]
    ids = {line["id"] for line in recipient["lines"]}
    assert f"support-{disclosed_year['grant'].id}" in ids
    assert all(set(line) == {"id", "paid_on", "kind", "amount", "currency", "description",
                             "agreement"} for line in recipient["lines"])
    assert recipient["totals"] == [{"currency": "GBP", "amount": "13300.00"}]
    assert [row["dimension"] for row in document["adherence"]] == [
        "WHAT", "WHY", "WHEN", "WHO", "HOW", "WHERE", "DOC"]
    assert document["approval"]["signatory"] == "The nominated signatory of Helix Pharma"
    assert [line["title"] for line in document["interactions"]["publishable"]] == [PUBLIC_TITLE]


def test_only_the_public_document_is_reachable_without_signing_in(disclosed_year, client):
    report = generate_and_publish(disclosed_year["officer"], disclosed_year["sponsor"])

    for kind in ("pdf", "csv", "json"):
        public = client.get(f"/public/reports/{report.id}/{kind}")
        assert public.status_code == 200
        assert public.data == files.read(report.sha256_of(kind))
        assert client.get(f"/reports/{report.id}/files/internal/{kind}").status_code in (
            302, 401)
    assert client.get(f"/public/reports/{report.id}/internal/json").status_code == 404

    login(client, disclosed_year["officer"])
    internal = client.get(f"/reports/{report.id}/files/internal/json")
    assert internal.status_code == 200 and DISPUTE_NOTE.encode() in internal.data
    assert client.get(f"/reports/{report.id}/files/secret/json").status_code == 404


def test_a_national_disclosure_covers_one_country_and_converts_at_stated_rates(
        disclosed_year, make_org, make_partnership, client):
    from governance.partnerships.services import record_support

    sponsor, officer = disclosed_year["sponsor"], disclosed_year["officer"]
    irish = make_org("Cystic Fibrosis Ireland", "patient_group", country="IE")
    partnership = make_partnership("Irish registry", patient_group_id=irish.id,
                                   agreement_signed_on=date(2024, 3, 1))
    record_support({"partnership_id": partnership.id, "recipient_id": irish.id,
                    "paid_on": date(2025, 4, 1), "kind": "grant", "amount": "1000.00",
                    "currency": "EUR", "description": "Registry grant"}, officer)
    db.session.commit()

    # A reporting currency needs a rate for every other currency paid in the year.
    with pytest.raises(ValidationFailed) as error:
        services.request_report({"organisation_id": sponsor.id, "year": YEAR,
                                 "reporting_currency": "GBP"}, officer)
    assert "EUR" in error.value.fields["exchange_rates"][0]
    db.session.rollback()
    assert db.session.scalar(select(Report.id)) is None

    national = services.request_report({"organisation_id": sponsor.id, "year": YEAR,
                                        "country": "ie"}, officer)
    converted = services.request_report(
        {"organisation_id": sponsor.id, "year": YEAR, "reporting_currency": "GBP",
         "exchange_rates": {"EUR": "0.85"}}, officer)
    db.session.commit()
    for report in (national, converted):
        jobs.start(report.id)
    db.session.expire_all()
    national = db.session.get(Report, national.id)
    converted = db.session.get(Report, converted.id)

    document = json.loads(files.read(national.json_sha256))
    assert [r["name"] for r in document["recipients"]] == ["Cystic Fibrosis Ireland"]
    assert document["report"]["scope"] == {"country": "IE", "label": "Ireland (IE)"}
    assert "-ie-" in national.file_name("pdf")
    document = json.loads(files.read(converted.json_sha256))
    assert document["summary"]["in_reporting_currency"]["total"] == str(
        Decimal("13300.00") + Decimal("850.00"))
    assert document["methodology"]["exchange_rates"] == [
        {"currency": "EUR", "rate": "0.850000", "into": "GBP"}]


def test_report_requests_with_bad_rates_are_refused_naming_the_field(disclosed_year, client,
                                                                     bearer):
    sponsor, officer = disclosed_year["sponsor"], disclosed_year["officer"]
    headers = bearer(officer)
    cases = [
        ({"reporting_currency": "GBP", "exchange_rates": {"EUR": "0"}}, "exchange_rates"),
        ({"exchange_rates": {"EUR": "0.85"}}, "reporting_currency"),
        ({"reporting_currency": "XXQ"}, "reporting_currency"),
        ({"country": "Narnia"}, "country"),
    ]
    for extra, field in cases:
        response = client.post("/api/v1/reports", headers=headers,
                               json={"organisation_id": sponsor.id, "year": YEAR, **extra})
        assert response.status_code == 422, (extra, response.get_json())
        assert field in response.get_json()["error"]["fields"], extra
    assert db.session.scalar(select(Report.id)) is None


def test_the_public_pdf_reads_as_a_corporate_disclosure(disclosed_year):
    report = generate_and_publish(disclosed_year["officer"], disclosed_year["sponsor"])
    reader = PdfReader(io.BytesIO(files.read(report.pdf_sha256)))
    pages = [" ".join(page.extract_text().split()) for page in reader.pages]
    text = " ".join(pages)

    assert "Helix Pharma" in pages[0] and "Support to patient organisations in 2025" in pages[0]
    assert "Summary of 2025" in pages[1] and "Support by kind" in pages[1]
    assert "GBP 12,500.00" in text and "Rare Lung Alliance" in text
    assert "Signed electronically: The nominated signatory of Helix Pharma" in text
    assert f"Page 2 of {len(pages)}" in pages[1]
    # Internal ids are in the CSV and JSON, never in the PDF's body.
    import re

    assert not re.search(r"\b(support|organisation|agreement|interaction|flag)-\d+\b", text)
    assert report.page_count == len(pages) <= 4  # sections flow; no page per section
    outline = [item.title for item in reader.outline if not isinstance(item, list)]
    assert "Summary of 2025" in outline and "Methodology" in outline


def test_a_long_recipient_table_repeats_its_header_on_every_page(app):
    from governance.reports.artefacts import public_html
    from governance.reports.public import public_document

    lines = [{"id": f"support-{n}", "paid_on": "2025-03-01", "kind": "grant",
              "amount": "100.00", "currency": "GBP", "description": f"Grant number {n}",
              "confirmation": {"state": "confirmed", "note": None}, "agreement": None}
             for n in range(160)]
    snapshot = {
        "report": {"id": "report-1", "year": 2025, "period": {"from": "2025-01-01",
                                                              "to": "2025-12-31"},
                   "version": 1, "status": "draft", "generated_at": "2026-01-05T10:00:00Z",
                   "published_at": None, "corrects": None,
                   "organisation": {"id": "organisation-1", "name": "Helix Pharma",
                                    "kind": "sponsor", "country": "GB"}},
        "methodology": {"note": "Currency: GBP. VAT excluded. Identified from the ledger.",
                        "rules": []},
        "totals": {"recipients": 1, "lines": 160, "unvalued_lines": 0,
                   "by_currency": [{"currency": "GBP", "amount": "16000.00"}],
                   "by_kind": [{"kind": "grant", "currency": "GBP", "amount": "16000.00"}]},
        "recipients": [{"id": "organisation-2", "name": "Rare Lung Alliance",
                        "kind": "patient_group", "country": "GB", "share_of_income": None,
                        "totals": [{"currency": "GBP", "amount": "16000.00"}],
                        "contracted_services": None, "lines": lines}],
        "interactions": {"count": 0, "by_format": [], "adherence": [], "partnerships": []},
        "approval": None,
    }
    from governance.pdf import html_to_pdf

    pdf = html_to_pdf(public_html(public_document(snapshot))).content
    pages = [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]
    with_lines = [page for page in pages if "Grant number" in page]
    assert len(with_lines) >= 2
    assert all("Description" in page and "Agreement" in page for page in with_lines)
    assert "DRAFT" in pages[0]


def test_the_report_form_refuses_unreadable_rates_and_creates_nothing(disclosed_year, client):
    login(client, disclosed_year["officer"])
    response = client.post("/reports/", data={
        "organisation_id": disclosed_year["sponsor"].id, "year": YEAR,
        "reporting_currency": "GBP", "exchange_rates": "EUR is about 0.85"})
    assert response.status_code == 422
    assert "a currency code and a rate" in response.get_data(as_text=True)
    assert db.session.scalar(select(Report.id)) is None


def test_both_documents_say_how_the_policy_was_co_created(disclosed_year):
    """Until a partner signs the policy off, both documents say co-creation is not recorded;
    afterwards the public one names the group and the date, never the person (#21)."""
    from governance.rules import versions

    first = generate_and_publish(disclosed_year["officer"], disclosed_year["sponsor"])
    public = json.loads(public_files(first)["json"])
    assert public["policy"]["version"] == "2025.1"
    assert public["policy"]["co_creation"]["statement"].startswith(
        "Co-creation not yet recorded")
    assert "Co-creation not yet recorded" in public_files(first)["pdf"]

    partner = disclosed_year["partner"]
    versions.sign_off_version(versions.get_version("2025.1", keep=True), partner, PASSWORD,
                              "co_created")
    db.session.commit()
    second = services.request_report({"organisation_id": disclosed_year["sponsor"].id,
                                      "year": YEAR,
                                      "reason": "The policy's co-creation is now recorded."},
                                     disclosed_year["officer"])
    db.session.commit()
    jobs.start(second.id)
    db.session.expire_all()
    second = db.session.get(Report, second.id)
    statement = "Co-created with and signed off by 1 patient partner (Rare Lung Alliance)."
    public = json.loads(public_files(second)["json"])
    assert public["policy"]["co_creation"]["statement"] == statement
    assert public["policy"]["co_creation"]["signed_off_by"][0]["organisation"] == \
        "Rare Lung Alliance"
    assert partner.name not in public_files(second)["json"]
    assert partner.name not in public_files(second)["pdf"]
    internal = internal_files(second)
    assert statement in internal["pdf"] and partner.name in internal["pdf"]
