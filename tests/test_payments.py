"""Payments to individuals (ABPI clause 30): pseudonymous payees, the fair-market-value rate
card, FEE-ABOVE-FMV and AGR-MISSING, who sees them, and their aggregate in the report."""

import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from governance.extensions import db
from governance.partnerships.models import Agreement
from governance.payments import services
from governance.payments.models import IndividualPayment
from governance.payments.ratecard import RateCardError, check_rate_card_text, load_rate_card
from governance.rules.cli import check_policies_command

from .conftest import make_config

API = "/api/v1"
PROJECT_POLICIES = Path(__file__).resolve().parent.parent / "policies"


@pytest.fixture
def advocate_user(make_user, sponsor):
    return make_user("advocate", sponsor)


@pytest.fixture
def advocate(advocate_user, bearer):
    return bearer(advocate_user)


@pytest.fixture
def partnership(make_partnership):
    return make_partnership(agreement_signed_on=date(2024, 1, 10))


@pytest.fixture
def agreement(partnership):
    row = Agreement(partnership_id=partnership.id, kind="contracted_service",
                    objective="Patient advisory board fees for 2025", starts_on=date(2025, 1, 1),
                    ends_on=date(2025, 12, 31), signed_on=date(2024, 12, 15),
                    amount=Decimal("20000.00"), currency="GBP")
    db.session.add(row)
    db.session.commit()
    return row


@pytest.fixture
def board(make_interaction, partnership, sponsor):
    return make_interaction(partnership_id=partnership.id, organisation_id=sponsor.id,
                            title="Advisory board on the phase 2 protocol")


def fee(interaction=None, agreement=None, **values) -> dict:
    body = {"payee_reference": "P-0042", "payee_kind": "patient", "service": "advisory_board",
            "hours": "4", "fee": "600.00", "expenses": "85.40", "currency": "GBP",
            "paid_on": "2025-03-20"}
    if interaction is not None:
        body["interaction_id"] = interaction.id
    if agreement is not None:
        body["agreement_id"] = agreement.id
    body.update(values)
    return body


def rules_of(answer) -> set[str]:
    return {flag["rule"] for flag in answer["flags"] if flag["state"] == "open"}


# --- the API contract ------------------------------------------------------------------------


def test_a_fee_within_the_rate_card_under_an_agreement_raises_no_flag(client, advocate, board,
                                                                      agreement):
    response = client.post(f"{API}/individual-payments", json=fee(board, agreement),
                           headers=advocate)
    assert response.status_code == 201, response.get_json()
    answer = response.get_json()
    assert answer["fee"] == "600.00" and answer["expenses"] == "85.40"
    assert answer["payee_reference"] == "P-0042" and answer["interaction_id"] == board.id
    assert answer["flags"] == []
    assert answer["fair_value"]["limit"] == "600.00"
    again = client.get(f"{API}/individual-payments/{answer['id']}", headers=advocate)
    assert again.status_code == 200 and again.get_json()["id"] == answer["id"]


def test_a_fee_above_the_hourly_rate_is_flagged(client, advocate, board, agreement):
    answer = client.post(f"{API}/individual-payments", json=fee(board, agreement, fee="600.01"),
                         headers=advocate).get_json()
    assert rules_of(answer) == {"FEE-ABOVE-FMV"}
    message = next(f["message"] for f in answer["flags"] if f["rule"] == "FEE-ABOVE-FMV")
    assert "GBP 600.01" in message and "GBP 150.00 per hour × 4 hours" in message


def test_a_day_rate_allows_one_fee_per_day_started(client, advocate, board, agreement):
    within = client.post(f"{API}/individual-payments", json=fee(
        board, agreement, service="consultancy", hours="7.5", fee="900.00"), headers=advocate)
    assert rules_of(within.get_json()) == set()
    two_days = client.post(f"{API}/individual-payments", json=fee(
        board, agreement, payee_reference="P-0043", service="consultancy", hours="9",
        fee="1800.00"), headers=advocate)
    assert rules_of(two_days.get_json()) == set()
    above = client.post(f"{API}/individual-payments", json=fee(
        board, agreement, payee_reference="P-0044", service="consultancy", hours="7",
        fee="901.00"), headers=advocate)
    assert rules_of(above.get_json()) == {"FEE-ABOVE-FMV"}


def test_a_currency_without_a_rate_is_not_flagged_and_says_no_rate(client, advocate, board,
                                                                   agreement, log_in,
                                                                   advocate_user):
    answer = client.post(f"{API}/individual-payments", json=fee(
        board, agreement, currency="CHF", fee="99999.00"), headers=advocate).get_json()
    assert rules_of(answer) == set() and answer["fair_value"] is None
    log_in(advocate_user)
    page = client.get(f"/payments/{answer['id']}").get_data(as_text=True)
    assert "No rate" in page


def test_a_payment_without_an_agreement_raises_agr_missing(client, advocate, board):
    answer = client.post(f"{API}/individual-payments", json=fee(board), headers=advocate)
    assert answer.status_code == 201
    assert rules_of(answer.get_json()) == {"AGR-MISSING"}


@pytest.mark.parametrize("reference, reason", [
    ("jane.doe@example.org", "looks like an email address"),
    ("Jane Doe", "looks like a name (it has spaces)"),
])
def test_a_payee_reference_that_could_name_someone_is_refused(client, advocate, board,
                                                               reference, reason):
    response = client.post(f"{API}/individual-payments",
                           json=fee(board, payee_reference=reference), headers=advocate)
    assert response.status_code == 422
    messages = response.get_json()["error"]["fields"]["payee_reference"]
    assert reason in messages[0] and "no names" in messages[0]
    assert db.session.query(IndividualPayment).count() == 0


@pytest.mark.parametrize("changes, field, expected", [
    ({"service": None}, "service", "a fee without a service"),
    ({"fee": "-5.00"}, "fee", "Must be 0 or more."),
    ({"expenses": "-1"}, "expenses", "Must be 0 or more."),
    ({"currency": "POUNDS"}, "currency", "ISO 4217"),
    ({"currency": "XYZ"}, "currency", "not an ISO 4217 currency code"),
    ({"payee_kind": "doctor"}, "payee_kind", "Must be one of"),
    ({"hours": "0"}, "hours", "above 0"),
])
def test_bad_values_are_refused_on_their_field(client, advocate, board, changes, field,
                                               expected):
    body = fee(board) | changes
    body = {k: v for k, v in body.items() if v is not None}
    response = client.post(f"{API}/individual-payments", json=body, headers=advocate)
    assert response.status_code == 422, response.get_json()
    assert expected in " ".join(response.get_json()["error"]["fields"][field])
    assert db.session.query(IndividualPayment).count() == 0


def test_an_unknown_field_is_a_malformed_request(client, advocate, board):
    response = client.post(f"{API}/individual-payments", json=fee(board, payee_name="Jane"),
                           headers=advocate)
    assert response.status_code == 400


def test_an_agreement_of_another_partnership_is_refused(client, advocate, board,
                                                        make_partnership, make_org):
    other = make_partnership("Second partnership",
                             patient_group_id=make_org("Cystic Fibrosis Families",
                                                       "patient_group").id)
    foreign = Agreement(partnership_id=other.id, kind="framework", objective="Framework")
    db.session.add(foreign)
    db.session.commit()
    response = client.post(f"{API}/individual-payments", json=fee(board, foreign),
                           headers=advocate)
    assert response.status_code == 422
    assert "not of the interaction's partnership" in \
        response.get_json()["error"]["fields"]["agreement_id"][0]


def test_another_organisations_payment_answers_404_and_partners_may_not_read(
        client, advocate, board, agreement, make_org, make_user, bearer, patient_group):
    created = client.post(f"{API}/individual-payments", json=fee(board, agreement),
                          headers=advocate).get_json()
    outsider = bearer(make_user("compliance", make_org("Northwind Therapeutics", "sponsor")))
    assert client.get(f"{API}/individual-payments/{created['id']}",
                      headers=outsider).status_code == 404
    partner = bearer(make_user("partner", patient_group))
    assert client.get(f"{API}/individual-payments/{created['id']}",
                      headers=partner).status_code == 403
    assert client.post(f"{API}/individual-payments", json=fee(board),
                       headers=partner).status_code == 403


def test_the_interaction_knows_it_has_individual_payments(client, advocate, board, agreement):
    assert services.has_individual_payments(board.id) is False
    client.post(f"{API}/individual-payments", json=fee(board, agreement), headers=advocate)
    assert services.has_individual_payments(board.id) is True


def test_voiding_a_payment_withdraws_its_flags(app, advocate_user, board):
    payment = services.record_payment(fee(board), advocate_user)
    db.session.commit()
    assert services.has_individual_payments(board.id)
    services.void_payment(payment, advocate_user, "Recorded twice")
    db.session.commit()
    from governance.rules.flags import flags_of_individual_payment

    assert [f for f in flags_of_individual_payment(payment.id) if f.is_open] == []
    assert not services.has_individual_payments(board.id)


# --- pages -----------------------------------------------------------------------------------


def test_an_advocate_records_a_payment_through_the_form(client, log_in, advocate_user, board,
                                                       agreement):
    log_in(advocate_user)
    assert client.get("/payments/new").status_code == 200
    response = client.post("/payments/new", data={
        "interaction_id": board.id, "payee_reference": "Jane Doe", "payee_kind": "patient",
        "service": "advisory_board", "hours": "4", "fee": "900.00", "expenses": "0",
        "currency": "GBP", "paid_on": "2025-03-20", "agreement_id": agreement.id})
    assert response.status_code == 422
    assert "no names" in response.get_data(as_text=True)
    response = client.post("/payments/new", data={
        "interaction_id": board.id, "payee_reference": "P-0100", "payee_kind": "patient",
        "service": "advisory_board", "hours": "4", "fee": "900.00", "expenses": "0",
        "currency": "GBP", "paid_on": "2025-03-20", "agreement_id": agreement.id},
        follow_redirects=True)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "FEE-ABOVE-FMV" in page and "GBP 600.00" in page
    listing = client.get("/payments/").get_data(as_text=True)
    assert "P-0100" in listing


# --- the rate card ---------------------------------------------------------------------------


def test_check_policies_confirms_the_rate_card():
    result = CliRunner().invoke(check_policies_command, ["--dir", str(PROJECT_POLICIES)])
    assert result.exit_code == 0, result.output
    assert "rate_card.toml: rate card v2025.1" in result.output


def test_a_rate_card_with_an_unknown_service_is_refused(tmp_path):
    policies = tmp_path / "policies"
    shutil.copytree(PROJECT_POLICIES, policies)
    card = policies / "rate_card.toml"
    card.write_text(card.read_text().replace('service = "review"', 'service = "massage"', 1))
    result = CliRunner().invoke(check_policies_command, ["--dir", str(policies)])
    assert result.exit_code == 1
    assert "unknown service 'massage'" in result.output


@pytest.mark.parametrize("old, new, expected", [
    ('rate = "150.00"', 'rate = "-150"', "rate must be more than 0"),
    ('unit = "hour"', 'unit = "week"', "unit 'week' is not one of hour, day"),
    ('currency = "GBP"', 'currency = "GBX"', "not an ISO 4217 code"),
])
def test_a_bad_rate_is_reported(old, new, expected):
    text = (PROJECT_POLICIES / "rate_card.toml").read_text().replace(old, new, 1)
    card, problems = check_rate_card_text(text.encode(), "rate_card.toml")
    assert card is None and expected in " ".join(problems)


def test_the_app_refuses_to_start_on_a_broken_rate_card(tmp_path):
    from governance import create_app

    policies = tmp_path / "policies"
    shutil.copytree(PROJECT_POLICIES, policies)
    card = policies / "rate_card.toml"
    card.write_text(card.read_text().replace('unit = "day"', 'unit = "fortnight"', 1))
    with pytest.raises(RateCardError):
        create_app(make_config(tmp_path, POLICIES_DIR=str(policies)))


def test_the_rate_in_force_on_the_day_paid_is_used(tmp_path):
    policies = tmp_path / "policies"
    shutil.copytree(PROJECT_POLICIES, policies)
    with (policies / "rate_card.toml").open("a") as file:
        file.write('\n[[rates]]\nservice = "advisory_board"\nunit = "hour"\nrate = "160.00"\n'
                   'currency = "GBP"\nsource = "2026 review"\neffective_from = 2026-01-01\n')
    card = load_rate_card(policies)
    assert card.rate_for("advisory_board", "GBP", date(2025, 6, 1)).rate == Decimal("150.00")
    assert card.rate_for("advisory_board", "GBP", date(2026, 6, 1)).rate == Decimal("160.00")
    assert card.rate_for("advisory_board", "GBP", date(2024, 6, 1)) is None


# --- the year's aggregate in the transparency report -----------------------------------------


@pytest.fixture
def app_config():
    return {"JOBS_INLINE": True}


def test_the_report_shows_the_years_fees_in_aggregate_and_no_payee(app, advocate_user, board,
                                                                  agreement, sponsor, make_user):
    import json

    from governance.reports import jobs
    from governance.reports import services as reports
    from governance.reports.models import Report
    from governance.storage import REPORTS as files

    for reference, amount in (("P-0001", "600.00"), ("P-0002", "450.00"), ("P-0003", "600.00")):
        services.record_payment(fee(board, agreement, payee_reference=reference, fee=amount,
                                    expenses="40.00"), advocate_user)
    services.record_payment(fee(board, agreement, payee_reference="P-0001", service="review",
                                hours="2", fee="200.00", expenses="0",
                                paid_on="2025-06-01"), advocate_user)
    services.record_payment(fee(board, agreement, payee_reference="P-0009",
                                paid_on="2024-12-31"), advocate_user)  # another year
    sponsor.methodology_note = ("Support is identified from the ledger; amounts in the currency "
                                "paid; VAT excluded; in-kind support is valued at cost.")
    db.session.commit()
    officer = make_user("compliance", sponsor)
    report = reports.request_report({"organisation_id": sponsor.id, "year": 2025}, officer)
    db.session.commit()
    jobs.start(report.id)
    db.session.expire_all()
    report = db.session.get(Report, report.id)
    assert report.status == "done", report.error

    data = json.loads(files.read(report.sha256_of("json")))
    payments = data["individual_payments"]
    assert payments["individuals"] == 3
    board_row = next(r for r in payments["by_service"] if r["service"] == "advisory_board")
    assert board_row == {"id": "individual-payments-advisory_board-GBP",
                         "service": "advisory_board", "currency": "GBP", "individuals": 3,
                         "payments": 3, "total_fees": "1650.00", "total_expenses": "120.00"}
    assert payments["totals"][0]["total_fees"] == "1850.00"
    csv_text = files.read(report.sha256_of("csv")).decode("utf-8")
    assert "individual-payments-advisory_board-GBP,individual_payments" in csv_text
    import io

    from pypdf import PdfReader

    pdf = " ".join(page.extract_text() for page in PdfReader(
        io.BytesIO(files.read(report.sha256_of("pdf")))).pages)
    assert "Fees and expenses paid to individuals" in pdf
    for kind in ("json", "csv"):
        assert "P-000" not in files.read(report.sha256_of(kind)).decode("utf-8")
    assert "P-000" not in pdf


def test_the_payments_list_exports_as_csv(client, log_in, advocate_user, board, agreement):
    services.record_payment(fee(board, agreement), advocate_user)
    db.session.commit()
    log_in(advocate_user)
    response = client.get("/payments/export.csv")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "payee_reference" in text.splitlines()[0] and "P-0042" in text and "600.00" in text


def test_compliance_sees_a_payments_flag_in_the_queue_and_on_its_page(client, log_in, board,
                                                                     advocate_user, make_user,
                                                                     sponsor):
    payment = services.record_payment(fee(board, fee="900.00"), advocate_user)
    db.session.commit()
    from governance.rules.flags import flags_of_individual_payment

    flag = next(f for f in flags_of_individual_payment(payment.id) if f.rule_id == "FEE-ABOVE-FMV")
    log_in(make_user("compliance", sponsor))
    queue = client.get("/review/").get_data(as_text=True)
    assert "Payment to P-0042" in queue
    page = client.get(f"/review/flags/{flag.id}")
    assert page.status_code == 200 and "P-0042" in page.get_data(as_text=True)
