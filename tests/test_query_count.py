"""List pages read a page of records with a fixed number of SQL statements, however many rows.

An N+1 query (a partnership or an organisation loaded once per row shown) would make the count
grow with the rows on the page; the pages are measured with 3 and with 40 records, each record
in its own partnership with its own patient group, so nothing is shared between rows.
"""

from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import event

from governance.extensions import db
from governance.partnerships.models import Support

PAGES = ["/interactions/", "/interactions/?date_from=2025-01-01&sort=title", "/partnerships/",
         "/partnerships/supports"]


@contextmanager
def counted_statements():
    statements: list[str] = []

    def count(_conn, _cursor, statement, _parameters, _context, _executemany):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


@pytest.fixture
def add_records(make_org, make_partnership, make_interaction):
    """Add records until there are `total` of each kind, every one in a new partnership with a
    new patient group (`member` joins each partnership as a further organisation)."""
    made = []

    def add(total: int, member=None) -> None:
        while len(made) < total:
            n = len(made)
            group = make_org(f"Patient group {n:02d}", "patient_group")
            partnership = make_partnership(f"Partnership {n:02d}", patient_group_id=group.id)
            if member is not None:
                partnership.other_organisations.append(member)
            make_interaction(title=f"Meeting {n:02d}", partnership_id=partnership.id,
                             occurred_on=date(2025, 1, 1) + timedelta(days=n))
            db.session.add(Support(partnership_id=partnership.id, recipient_id=group.id,
                                   paid_on=date(2025, 2, 1) + timedelta(days=n), kind="grant",
                                   amount=Decimal(1000 + n), currency="GBP",
                                   description="Grant towards the members' conference"))
            db.session.commit()
            made.append(partnership)

    return add


def statements_per_page(client) -> dict[str, int]:
    counts = {}
    for url in PAGES:
        with counted_statements() as statements:
            response = client.get(url)
        assert response.status_code == 200, url
        assert "Partnership 00" in response.get_data(as_text=True), url  # rows are shown
        counts[url] = len(statements)
    return counts


# Each role scoped to its organisation, and a compliance officer of the whole installation.
USERS = {"compliance of the sponsor": ("compliance", "sponsor"),
         "auditor of the sponsor": ("auditor", "sponsor"),
         "advocate of the sponsor": ("advocate", "sponsor"),
         "partner of the patient group": ("partner", "patient_group"),
         "compliance of the installation": ("compliance", None)}


@pytest.mark.parametrize("user", USERS)
def test_list_pages_use_as_many_statements_for_40_records_as_for_3(
        client, log_in, make_user, sponsor, patient_group, add_records, user):
    role, organisation = USERS[user]
    organisation = {"sponsor": sponsor, "patient_group": patient_group, None: None}[organisation]
    member = patient_group if role == "partner" else None
    log_in(make_user(role, organisation))

    add_records(3, member)
    few = statements_per_page(client)
    add_records(40, member)
    many = statements_per_page(client)

    assert many == few
    assert max(many.values()) <= 13, many  # one of them: the header's unread notifications


def test_a_counted_up_to_list_shows_the_same_pages_as_a_fully_counted_one(
        compliance_user, sponsor, make_interaction):
    from governance.interactions import services

    for n in range(14):
        make_interaction(title=f"Meeting {n % 5}", occurred_on=date(2025, 1, 1 + n % 9),
                         format="survey" if n % 3 else "workshop")
    filters = [{}, {"date_from": date(2025, 1, 5)}, {"format": "survey"},
               {"organisation_id": sponsor.id}, {"rule": "WHAT-ADHOC"}]
    for criteria in filters:
        for sort in ("-occurred_on", "occurred_on", "title", "-title", "format"):
            for page in (1, 2, 3, 4):
                exact = services.find_interactions(compliance_user, services.InteractionFilter(
                    sort=sort, page=page, per_page=3, **criteria))
                bounded = services.find_interactions(
                    compliance_user, services.InteractionFilter(
                        sort=sort, page=page, per_page=3, count_limit=4, **criteria))
                shown = (criteria, sort, page)
                assert [i.id for i in bounded.items] == [i.id for i in exact.items], shown
                if exact.total > max(4, page * 3):
                    assert bounded.more and bounded.total == max(4, page * 3) + 1, shown
                else:
                    assert not bounded.more and bounded.total == exact.total, shown


def test_a_long_list_says_more_than_and_counts_them_all_on_request(
        client, log_in, compliance_user, make_interaction, monkeypatch):
    from governance.interactions import services

    monkeypatch.setattr(services, "LIST_COUNT_LIMIT", 5)
    for n in range(27):
        make_interaction(title=f"Meeting {n:02d}", occurred_on=date(2025, 1, 1 + n))
    log_in(compliance_user)
    page = client.get("/interactions/").get_data(as_text=True)
    assert "Page 1 (more than 25 in all)" in page
    assert "Meeting 26" in page and "Meeting 01" not in page  # newest first
    assert "count=all" in page
    counted = client.get("/interactions/?count=all").get_data(as_text=True)
    assert "Page 1 of 2 (27 in all)" in counted and "Count them all" not in counted
    second = client.get("/interactions/?page=2").get_data(as_text=True)
    assert "Meeting 01" in second and "Meeting 00" in second


def test_the_api_list_of_interactions_reads_a_page_with_as_many_statements_for_25_as_for_3(
        client, make_user, add_records, make_interaction):
    from governance.auth import services as accounts

    token = accounts.issue_token(make_user("compliance"), "tests")
    db.session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    # Used once already this hour, so neither count includes recording its use.
    assert client.get("/api/v1/organisations", headers=headers).status_code == 200
    db.session.rollback()

    def statements_and_flags() -> tuple[int, int]:
        with counted_statements() as statements:
            answer = client.get("/api/v1/interactions?per_page=25", headers=headers)
        assert answer.status_code == 200
        return len(statements), sum(len(item["flags"]) for item in answer.get_json()["items"])

    add_records(3)
    make_interaction(title="Without a protocol", protocol_followed=False)
    few, few_flags = statements_and_flags()
    add_records(30)
    many, many_flags = statements_and_flags()
    assert few_flags >= 1 and many_flags >= few_flags  # the flags are still there
    assert many == few


@pytest.fixture
def add_agreements_and_payments(make_interaction):
    """Add agreements to one partnership, a support line paid under each, and individual
    payments, until there are `total` of each; some paid before signature or over the amount
    so the AGR rules raise flags."""
    from governance.agreements.services import record_agreement
    from governance.partnerships.services import record_support
    from governance.payments.services import record_payment

    made = []

    def add(total: int, partnership, recipient, organisation, actor) -> None:
        interaction = make_interaction(title="Advisory board on dosing", format="workshop",
                                       partnership_id=partnership.id,
                                       organisation_id=organisation.id)
        while len(made) < total:
            n = len(made)
            agreement = record_agreement({
                "partnership_id": partnership.id, "kind": "grant",
                "objective": f"Agreement {n:02d} for the helpline", "starts_on": "2025-01-01",
                "ends_on": "2025-12-31", "amount": "1000.00", "currency": "GBP",
                "signed_on": "2025-02-01"}, actor)
            record_support({
                "partnership_id": partnership.id, "recipient_id": recipient.id,
                "agreement_id": agreement.id, "kind": "grant", "currency": "GBP",
                "paid_on": (date(2025, 1, 20) if n % 3 == 0 else date(2025, 3, 1)).isoformat(),
                "amount": "1500.00" if n % 2 else "500.00",
                "description": f"Grant {n:02d} towards the helpline"}, actor)
            record_payment({
                "organisation_id": organisation.id, "interaction_id": interaction.id,
                "agreement_id": agreement.id, "payee_reference": f"P-{n:04d}",
                "payee_kind": "patient", "service": "advisory_board", "hours": "3",
                "fee": "150.00" if n % 2 else "5000.00", "expenses": "20.00",
                "currency": "GBP", "paid_on": "2025-03-01"}, actor)
            db.session.commit()
            made.append(agreement)

    return add


def test_partnership_supports_and_payments_pages_use_as_many_statements_for_30_agreements_as_for_3(
        client, log_in, make_user, sponsor, patient_group, make_partnership,
        add_agreements_and_payments):
    from governance import audit

    officer = make_user("compliance", sponsor)
    partnership = make_partnership("Partnership 00", patient_group_id=patient_group.id)
    markers = {f"/partnerships/{partnership.id}": "Agreement 00",
               "/partnerships/supports": "Grant 0", "/payments/": "P-000"}
    pages = list(markers)
    log_in(officer)

    def statements() -> dict[str, int]:
        # The filter choices are cached until partnerships or organisations change, and only
        # agreements, lines and payments change here: read each page once so both rounds
        # count a page with its choices cached.
        for url in pages:
            assert client.get(url).status_code == 200, url
        counts = {}
        for url in pages:
            with counted_statements() as seen:
                response = client.get(url)
            assert response.status_code == 200, url
            text = response.get_data(as_text=True)
            assert markers[url] in text, url  # rows are shown
            counts[url] = len(seen)
        return counts

    with audit.acting_as(audit.Actor(officer.id, officer.email)):
        add_agreements_and_payments(3, partnership, patient_group, sponsor, officer)
    few = statements()
    with audit.acting_as(audit.Actor(officer.id, officer.email)):
        add_agreements_and_payments(30, partnership, patient_group, sponsor, officer)
    many = statements()
    assert many == few
    assert max(many.values()) <= 13, many  # one of them: the header's unread notifications
