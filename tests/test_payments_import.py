"""CSV import of payments to individuals (issue #18): through the payments service, all or none."""

import csv
import io
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from governance.errors import ValidationFailed
from governance.extensions import db
from governance.partnerships.models import Agreement
from governance.payments import services
from governance.payments.models import IndividualPayment
from governance.rules.models import Flag
from governance.transfer import imports
from governance.transfer.imports import IMPORTERS

from .test_import import commit, csv_bytes, upload

COLUMNS = IMPORTERS["payments"].columns()


def count() -> int:
    return db.session.scalar(select(func.count()).select_from(IndividualPayment))


@pytest.fixture
def advocate(make_user, sponsor, log_in):
    user = make_user("advocate", sponsor)
    log_in(user)
    return user


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


def payment_row(number: int, interaction, agreement, **changes) -> dict:
    row = {"interaction_id": interaction.id, "payee_reference": f"P-{number:04d}",
           "payee_kind": "patient", "service": "advisory_board", "hours": "4",
           "fee": "600.00", "expenses": "85.40", "currency": "GBP", "paid_on": "2025-03-20",
           "agreement_id": agreement.id, "external_id": f"PAY-{number}"}
    row.update(changes)
    return row


def rules_of(payment) -> set[str]:
    return set(db.session.scalars(select(Flag.rule_id).where(
        Flag.individual_payment_id == payment.id, Flag.state == "open")))


def test_template_has_the_payment_columns(client, advocate):
    response = client.get("/imports/payments/template.csv")
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert tuple(rows[0]) == COLUMNS
    for column in ("payee_reference", "payee_kind", "service", "hours", "fee", "expenses",
                   "currency", "paid_on", "interaction_id", "agreement_id", "external_id"):
        assert column in rows[0]
    assert rows[1][rows[0].index("payee_reference")] == "P-0042"


def test_a_valid_file_imports_with_flags(client, advocate, board, agreement):
    data = csv_bytes([payment_row(1, board, agreement),
                      payment_row(2, board, agreement, fee="600.01")])
    response = commit(client, data, "payments")
    assert response.status_code == 303 and response.headers["Location"].endswith("/payments/")
    assert count() == 2
    within = db.session.scalar(select(IndividualPayment).filter_by(external_id="PAY-1"))
    above = db.session.scalar(select(IndividualPayment).filter_by(external_id="PAY-2"))
    assert within.organisation_id == advocate.organisation_id
    assert within.created_by_id == advocate.id
    assert rules_of(within) == set()
    assert rules_of(above) == {"FEE-ABOVE-FMV"}


@pytest.mark.parametrize(("changes", "column", "words"), [
    ({"payee_reference": "Jane Smith"}, "payee_reference", "looks like a name"),
    ({"payee_reference": "jane@example.org"}, "payee_reference", "email address"),
    ({"fee": "lots"}, "fee", ""),
    ({"service": ""}, "service", "rate card"),
])
def test_a_bad_row_is_reported_by_row_and_column_and_nothing_is_saved(
        client, advocate, board, agreement, changes, column, words):
    data = csv_bytes([payment_row(1, board, agreement),
                      payment_row(2, board, agreement, **changes)])
    preview = upload(client, data, "payments")
    assert preview.status_code == 422
    report = imports.import_file("payments", data, advocate, filename="p.csv",
                                 digest="a" * 64, commit=True)
    assert not report.committed
    assert [(p.row, p.column) for p in report.problems] == [(3, column)]
    assert words in report.problems[0].message
    assert count() == 0
    assert db.session.scalar(select(func.count()).select_from(Flag).where(
        Flag.individual_payment_id.is_not(None))) == 0


def test_another_organisations_interaction_or_agreement_is_refused(
        client, advocate, board, agreement, make_org, make_partnership, make_interaction):
    northwind = make_org("Northwind Therapeutics", "sponsor")
    theirs = make_partnership("Northwind's partnership", sponsor_id=northwind.id,
                              patient_group_id=make_org("CF Families", "patient_group").id)
    their_agreement = Agreement(partnership_id=theirs.id, kind="framework",
                                objective="Framework")
    db.session.add(their_agreement)
    db.session.commit()
    their_meeting = make_interaction(organisation_id=northwind.id, partnership_id=None,
                                     title="Northwind's own meeting")
    data = csv_bytes([payment_row(1, board, agreement),
                      payment_row(2, their_meeting, agreement),
                      payment_row(3, board, their_agreement)])
    report = imports.import_file("payments", data, advocate, filename="p.csv",
                                 digest="b" * 64, commit=True)
    assert {(p.row, p.column) for p in report.problems} >= {(3, "interaction_id"),
                                                           (4, "agreement_id")}
    assert not report.committed and count() == 0


def test_reimporting_the_same_file_creates_no_duplicates(client, advocate, board, agreement):
    data = csv_bytes([payment_row(1, board, agreement), payment_row(2, board, agreement)])
    assert commit(client, data, "payments").status_code == 303
    again = imports.import_file("payments", data, advocate, filename="p.csv",
                                digest="c" * 64, commit=True)
    assert again.committed and (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert count() == 2
    changed = csv_bytes([payment_row(1, board, agreement, fee="650.00"),
                         payment_row(2, board, agreement)])
    report = imports.import_file("payments", changed, advocate, filename="p2.csv",
                                 digest="d" * 64, commit=True)
    assert (report.created, report.updated, report.unchanged) == (0, 1, 1)
    payment = db.session.scalar(select(IndividualPayment).filter_by(external_id="PAY-1"))
    assert payment.fee == Decimal("650.00") and rules_of(payment) == {"FEE-ABOVE-FMV"}


def test_another_organisations_payment_cannot_be_overwritten(
        client, advocate, board, agreement, make_org, make_user):
    other = make_user("advocate", make_org("Northwind Therapeutics", "sponsor"))
    data = csv_bytes([payment_row(1, board, agreement)])
    assert commit(client, data, "payments").status_code == 303
    report = imports.import_file("payments", csv_bytes([payment_row(1, board, agreement,
                                                                    fee="1.00")]),
                                 other, filename="p.csv", digest="e" * 64, commit=True)
    assert [(p.row, p.column) for p in report.problems] == [(2, "external_id")]
    assert db.session.scalar(select(IndividualPayment.fee)) == Decimal("600.00")


def test_the_export_round_trips_through_the_import(client, advocate, board, agreement):
    commit(client, csv_bytes([payment_row(1, board, agreement, hours="")]), "payments")
    exported = client.get("/payments/export.csv").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(exported.lstrip("\ufeff"))))
    again = csv_bytes([{name: rows[0][name] for name in COLUMNS}], list(COLUMNS))
    report = imports.import_file("payments", again, advocate, filename="again.csv",
                                 digest="f" * 64, commit=True)
    assert report.ok and (report.created, report.updated, report.unchanged) == (0, 0, 1)


def test_the_payments_list_links_to_the_import(client, advocate):
    page = client.get("/payments/").get_data(as_text=True)
    assert "/imports/?kind=payments" in page and "Import from a CSV file" in page


def test_a_form_recorded_payment_keeps_its_service_layer_checks(advocate, board, agreement):
    """The importer and the form share validate_payment: same refusal, same field."""
    with pytest.raises(ValidationFailed) as form_error:
        services.validate_payment(payment_row(9, board, agreement, payee_reference="A B"),
                                  advocate)
    report = imports.import_file("payments", csv_bytes(
        [payment_row(9, board, agreement, payee_reference="A B")]), advocate,
        filename="p.csv", digest="9" * 64, commit=False)
    assert report.problems[0].message in form_error.value.fields["payee_reference"]
