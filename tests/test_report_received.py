"""The patient group's side: its report of the industry funding it received, from the lines it
confirmed, and the reconciliation of those lines with each company's disclosure."""

import io
import json
from datetime import date
from decimal import Decimal

import pytest
from pypdf import PdfReader

from governance.extensions import db
from governance.reports import exceptions, jobs, services
from governance.reports.models import Report
from governance.reports.reconciliation import reconcile
from governance.storage import REPORTS as files

from .conftest import PASSWORD, login
from .test_reports import NOTE, YEAR, record_support

DISPUTE_NOTE = "Our treasurer says this sponsorship was never paid"


@pytest.fixture
def app_config():
    return {"JOBS_INLINE": True}


def answered(line, state, note=None):
    line.confirmed_by_partner = state
    line.confirmation_note = note
    db.session.commit()
    return line


@pytest.fixture
def funded(sponsor, patient_group, make_org, make_partnership, make_user):
    """Rare Lung Alliance's 2025: two companies' lines, some confirmed, one pending, one
    disputed; and a compliance officer on each side."""
    sponsor.methodology_note = NOTE
    patient_group.methodology_note = NOTE
    patient_group.annual_income = Decimal("420000.00")
    patient_group.income_currency = "GBP"
    northwind = make_org("Northwind Therapeutics", "sponsor", country="US",
                         methodology_note=NOTE)
    helix_officer = make_user("compliance", sponsor)
    northwind_officer = make_user("compliance", northwind)
    group_officer = make_user("compliance", patient_group)
    lung = make_partnership("Trial design advisory programme")
    access = make_partnership("Northwind access programme", sponsor_id=northwind.id)
    lines = {
        "grant": answered(record_support(helix_officer, lung, patient_group, date(2025, 2, 3),
                                         "12500.00"), "confirmed"),
        "pending": record_support(helix_officer, lung, patient_group, date(2025, 6, 30),
                                  "3400.50", kind="contracted_service",
                                  description="Patient advisers reviewing the consent form"),
        "disputed": answered(record_support(
            helix_officer, lung, patient_group, date(2025, 9, 1), "2000.00",
            kind="sponsorship", description="Sponsorship of the awareness week"),
            "disputed", DISPUTE_NOTE),
        "northwind": answered(record_support(northwind_officer, access, patient_group,
                                             date(2025, 5, 5), "8400.00"), "confirmed"),
        "last_year": answered(record_support(helix_officer, lung, patient_group,
                                             date(2024, 12, 31), "77777.00"), "confirmed"),
    }
    return {"group": patient_group, "helix": sponsor, "northwind": northwind,
            "helix_officer": helix_officer, "group_officer": group_officer, "lines": lines}


def generate(actor, organisation) -> Report:
    report = services.request_report({"organisation_id": organisation.id, "year": YEAR}, actor)
    db.session.commit()
    jobs.start(report.id)
    db.session.expire_all()
    return db.session.get(Report, report.id)


def publish(actor, report) -> Report:
    exceptions.acknowledge_all(report, actor, "Left out until the group has answered.")
    services.publish_report(report, actor, PASSWORD, "approval")
    db.session.commit()
    jobs.start(report.id)
    db.session.expire_all()
    return db.session.get(Report, report.id)


def stored_json(report, document) -> dict:
    return json.loads(files.read(report.sha256_of("json", document)))


def pdf_text(content: bytes) -> str:
    reader = PdfReader(io.BytesIO(content))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


def test_a_group_reports_the_funding_it_confirmed_by_company(funded):
    report = generate(funded["group_officer"], funded["group"])
    assert report.status == "done", report.error
    snapshot = stored_json(report, "internal")
    assert snapshot["report"]["side"] == "received"
    assert "recipients" not in snapshot
    companies = {company["name"]: company for company in snapshot["funders"]}
    assert sorted(companies) == ["Helix Pharma", "Northwind Therapeutics"]
    lines = funded["lines"]
    assert [line["id"] for line in companies["Helix Pharma"]["lines"]] == \
        [f"support-{lines['grant'].id}"]
    assert [line["amount"] for line in companies["Northwind Therapeutics"]["lines"]] == \
        ["8400.00"]
    # 12,500 of an income of 420,000; 8,400 of it
    assert companies["Helix Pharma"]["share_of_income"]["percent"] == "3.0"
    assert companies["Northwind Therapeutics"]["share_of_income"]["percent"] == "2.0"
    assert snapshot["totals"]["funders"] == 2
    assert snapshot["totals"]["by_currency"] == [{"currency": "GBP", "amount": "20900.00"}]
    assert snapshot["individual_payments"] is None


def test_the_lines_it_has_not_confirmed_are_its_exceptions(funded):
    report = generate(funded["group_officer"], funded["group"])
    found = {item["key"]: item for item in stored_json(report, "internal")["exceptions"]}
    pending, disputed = funded["lines"]["pending"].id, funded["lines"]["disputed"].id
    assert set(found) == {f"support_pending:support-{pending}",
                          f"support_disputed:support-{disputed}"}
    message = found[f"support_disputed:support-{disputed}"]["message"]
    assert message == ("The sponsorship of GBP 2,000.00 from Helix Pharma paid on 1 Sep 2025 is "
                       "disputed by you. It is left out of this report until it is confirmed.")
    assert found[f"support_pending:support-{pending}"]["fix"] == {
        "endpoint": "confirmations.confirm_support", "values": {"support_id": pending}}


def test_the_group_publishes_a_disclosure_of_funding_received(funded, client):
    officer = funded["group_officer"]
    report = publish(officer, generate(officer, funded["group"]))
    assert report.is_published, report.error

    document = stored_json(report, "public")
    assert document["report"]["side"] == "received"
    assert [company["name"] for company in document["funders"]] == \
        ["Helix Pharma", "Northwind Therapeutics"]
    assert document["summary"]["funders"] == 2
    public_files = b"".join(files.read(report.sha256_of(kind, "public"))
                            for kind in ("csv", "json")).decode()
    public_text = pdf_text(files.read(report.sha256_of("pdf", "public")))
    for text in (public_files, public_text):
        assert DISPUTE_NOTE not in text and officer.name not in text
        assert officer.email not in text
        assert "77777" not in text and "3400.50" not in text and "3,400.50" not in text
    assert "Industry funding received in 2025" in public_text
    assert "Funding received from companies" in public_text
    assert "Published disclosure of industry funding received" in public_text
    assert "support to patient organisations" not in public_text
    assert "3.0 % of Rare Lung Alliance's annual income" in public_text
    assert "Fees and expenses paid to individuals" not in public_text

    page = client.get("/public/reports/").get_data(as_text=True)
    received_part = page.split("Funding received by patient organisations", 1)[1]
    assert f"/public/reports/{report.id}" in received_part
    assert officer.name not in page
    assert "The nominated signatory of Rare Lung Alliance" in page
    view = client.get(f"/public/reports/{report.id}").get_data(as_text=True)
    assert "Companies that gave funding" in view and DISPUTE_NOTE not in view


def test_the_reconciliation_sets_each_company_beside_the_group(funded, client):
    helix_officer, lines = funded["helix_officer"], funded["lines"]
    disclosed = publish(helix_officer, generate(helix_officer, funded["helix"]))
    assert disclosed.is_published, disclosed.error
    # After Helix published: the grant's amount is corrected to 12,000 and confirmed again,
    # the disputed sponsorship moved to another date and confirmed, a new line recorded.
    lines["grant"].amount = Decimal("12000.00")
    lines["disputed"].paid_on = date(2025, 4, 1)
    answered(lines["disputed"], "confirmed")
    late = answered(record_support(helix_officer, lines["grant"].partnership,
                                   funded["group"], date(2025, 12, 1), "500.00"), "confirmed")

    found = reconcile(funded["group"], YEAR)
    assert found.group_source.report is None  # the group has published nothing yet
    by_name = {company.company.name: company for company in found.companies}
    helix = by_name["Helix Pharma"]
    assert helix.source.report.id == disclosed.id
    assert {(d.kind, d.line_id) for d in helix.differences} == {
        ("amount_differs", f"support-{lines['grant'].id}"),
        ("date_differs", f"support-{lines['disputed'].id}"),
        ("missing_from_group", f"support-{lines['pending'].id}"),
        ("missing_from_company", f"support-{late.id}"),
    }
    amount = next(d for d in helix.differences if d.kind == "amount_differs")
    assert (amount.company.amount, amount.group.amount) == ("12500.00", "12000.00")
    # Northwind has published nothing: its recorded line, confirmed, agrees.
    assert by_name["Northwind Therapeutics"].differences == []
    assert found.difference_count == 4

    login(client, funded["group_officer"])
    page = client.get(f"/reports/reconciliation/{funded['group'].id}?year={YEAR}")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "4 differences" in body and "Amount differs" in body
    assert "GBP 12,500.00 disclosed by the company, GBP 12,000.00 on Rare Lung Alliance" in body
    assert "In the group&#39;s report, not in the company&#39;s disclosure" in body


def test_only_the_group_reads_its_reconciliation(funded, client):
    login(client, funded["helix_officer"])
    assert client.get(f"/reports/reconciliation/{funded['group'].id}").status_code == 404
    assert client.get(f"/reports/reconciliation/{funded['helix'].id}").status_code == 404
    login(client, funded["group_officer"])
    answer = client.get(f"/reports/reconciliation/{funded['group'].id}?year=not-a-year")
    assert answer.status_code == 200  # an unreadable year shows last year's
    reports_page = client.get("/reports/").get_data(as_text=True)
    assert f"/reports/reconciliation/{funded['group'].id}" in reports_page


def test_a_reporting_currency_needs_a_rate_for_each_currency_the_group_received(funded):
    officer, group = funded["group_officer"], funded["group"]
    with pytest.raises(services.ValidationFailed) as refused:
        services.request_report({"organisation_id": group.id, "year": YEAR,
                                 "reporting_currency": "EUR"}, officer)
    assert "GBP" in " ".join(refused.value.fields["exchange_rates"])
    assert db.session.query(Report).count() == 0
