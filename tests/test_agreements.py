"""Written agreements behind support: recording them (API and pages), support lines paid under
them, certification by the sponsor's signatory, the AGR-* rules, and the framework agreements
the migration makes of each partnership's `agreement_signed_on`."""

from datetime import date

import pytest
from sqlalchemy import create_engine, inspect, select, text

from governance import create_app
from governance.agreements.models import Agreement
from governance.extensions import db
from governance.partnerships.models import Support
from governance.rules.models import Flag

from .conftest import PASSWORD, empty_database_uri, login, make_config

API = "/api/v1"

AGREEMENT = {"kind": "grant", "objective": "Grant towards the patient registry for 2025",
             "parties_and_roles": "Helix Pharma funds; Rare Lung Alliance runs the registry",
             "starts_on": "2025-01-01", "ends_on": "2025-12-31", "amount": "10000.00",
             "currency": "GBP", "signed_on": "2025-01-10",
             "signatories": "CFO of Helix Pharma; Chair of Rare Lung Alliance"}


@pytest.fixture
def advocate_user(make_user, sponsor):
    return make_user("advocate", sponsor)


@pytest.fixture
def advocate(advocate_user, bearer):
    return bearer(advocate_user)


@pytest.fixture
def sponsor_compliance_user(make_user, sponsor):
    return make_user("compliance", sponsor)


@pytest.fixture
def partnership(make_partnership):
    return make_partnership()


@pytest.fixture
def agree(client, advocate, partnership):
    """Record an agreement through the API; answer its JSON."""
    def make(**values):
        response = client.post(f"{API}/agreements", headers=advocate,
                               json=AGREEMENT | {"partnership_id": partnership.id} | values)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return make


@pytest.fixture
def pay(client, advocate, partnership, patient_group):
    """Record a support line through the API; answer the response."""
    def make(amount="1000.00", paid_on="2025-03-01", agreement_id=None, currency="GBP",
             **values):
        return client.post(f"{API}/supports", headers=advocate, json={
            "partnership_id": partnership.id, "recipient_id": patient_group.id,
            "paid_on": paid_on, "kind": "grant", "amount": amount, "currency": currency,
            "description": "Grant towards the patient registry", "agreement_id": agreement_id,
            **values})

    return make


def agreement_rules(client, headers, agreement_id) -> dict[str, dict]:
    body = client.get(f"{API}/agreements/{agreement_id}", headers=headers).get_json()
    return {flag["rule"]: flag for flag in body["flags"] if flag["state"] == "open"}


def partnership_rules(client, headers, partnership_id) -> dict[str, dict]:
    body = client.get(f"{API}/partnerships/{partnership_id}", headers=headers).get_json()
    return {flag["rule"]: flag for flag in body["flags"] if flag["state"] == "open"}


# --- recording ---------------------------------------------------------------------------------


def test_an_agreement_is_recorded_and_read_back_with_its_standing_and_flags(client, advocate,
                                                                            agree):
    body = agree()
    assert body["kind"] == "grant" and body["amount"] == "10000.00" and body["currency"] == "GBP"
    assert body["signed_on"] == "2025-01-10" and body["certified_at"] is None
    assert body["lines"] == 0 and body["paid"] == [] and body["remaining"] == "10000.00"
    assert body["flags"] == []  # nothing paid under it yet: nothing to flag
    again = client.get(f"{API}/agreements/{body['id']}", headers=advocate).get_json()
    assert again["objective"] == AGREEMENT["objective"] and again["version"] == 1


@pytest.mark.parametrize(("values", "field", "words"), [
    ({"ends_on": "2024-12-31"}, "ends_on", "cannot end before it starts"),
    ({"amount": "ten thousand"}, "amount", "number"),
    ({"amount": "-5"}, "amount", "0 or more"),
    ({"currency": "XYZ"}, "currency", "ISO 4217"),
    ({"currency": None}, "currency", "currency of the amount"),
    ({"kind": "loan"}, "kind", "one of"),
    ({"objective": ""}, "objective", "required"),
])
def test_bad_agreement_values_are_refused_on_their_field_and_nothing_is_saved(
        client, advocate, partnership, values, field, words):
    response = client.post(f"{API}/agreements", headers=advocate,
                           json=AGREEMENT | {"partnership_id": partnership.id} | values)
    assert response.status_code == 422, response.get_json()
    messages = " ".join(response.get_json()["error"]["fields"][field])
    assert words.lower() in messages.lower(), messages
    assert db.session.scalar(select(Agreement.id)) is None


def test_an_unknown_field_answers_400(client, advocate, partnership):
    response = client.post(f"{API}/agreements", headers=advocate,
                           json=AGREEMENT | {"partnership_id": partnership.id, "budget": 1})
    assert response.status_code == 400
    assert "budget" in response.get_json()["error"]["message"]


def test_another_organisations_agreement_answers_404_and_a_partner_may_not_record_one(
        client, agree, make_org, make_user, bearer, patient_group):
    agreement = agree()
    stranger = make_user("advocate", make_org("Northwind Therapeutics", "sponsor"))
    assert client.get(f"{API}/agreements/{agreement['id']}",
                      headers=bearer(stranger)).status_code == 404
    partner = bearer(make_user("partner", patient_group))
    assert client.get(f"{API}/agreements/{agreement['id']}", headers=partner).status_code == 200
    response = client.post(f"{API}/agreements", headers=partner,
                           json=AGREEMENT | {"partnership_id": agreement["partnership_id"]})
    assert response.status_code == 403


# --- support lines name their agreement ------------------------------------------------------


def test_a_support_line_is_paid_under_an_agreement_and_the_agreement_shows_what_remains(
        client, advocate, agree, pay):
    agreement = agree()
    response = pay("2500.00", agreement_id=agreement["id"])
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["agreement_id"] == agreement["id"]
    body = client.get(f"{API}/agreements/{agreement['id']}", headers=advocate).get_json()
    assert body["lines"] == 1
    assert body["paid"] == [{"currency": "GBP", "amount": "2500.00"}]
    assert body["remaining"] == "7500.00"


def test_a_support_line_naming_another_partnerships_agreement_is_refused_on_that_field(
        client, advocate, make_partnership, agree, pay):
    other = make_partnership("Another partnership")
    foreign = client.post(f"{API}/agreements", headers=advocate,
                          json=AGREEMENT | {"partnership_id": other.id}).get_json()
    response = pay(agreement_id=foreign["id"])
    assert response.status_code == 422
    assert "another partnership" in response.get_json()["error"]["fields"]["agreement_id"][0]
    assert db.session.scalar(select(Support.id)) is None
    assert pay(agreement_id=999_999).get_json()["error"]["fields"]["agreement_id"] == [
        "No agreement with this id."]


# --- the rules ---------------------------------------------------------------------------------


def test_a_line_without_an_agreement_raises_agr_missing_on_the_partnership(
        client, advocate, partnership, agree, pay, advocate_user):
    from governance.partnerships.services import update_support

    line = pay().get_json()
    flags = partnership_rules(client, advocate, partnership.id)
    assert f"line {line['id']} (2025-03-01, GBP 1,000.00)" in flags["AGR-MISSING"]["message"]
    assert "PART-NO-AGREEMENT" not in flags
    # Near miss: the same line, once paid under an agreement.
    agreement = agree()
    update_support(db.session.get(Support, line["id"]), {"agreement_id": agreement["id"]},
                   advocate_user, reason="Paid under the registry grant")
    db.session.commit()
    assert "AGR-MISSING" not in partnership_rules(client, advocate, partnership.id)


def test_a_line_paid_before_its_agreement_was_signed_is_flagged_naming_the_line(
        client, advocate, agree, pay):
    agreement = agree(starts_on="2024-12-01")
    early = pay(paid_on="2025-01-05", agreement_id=agreement["id"]).get_json()
    pay(paid_on="2025-01-10", agreement_id=agreement["id"])  # the day it was signed: in time
    flag = agreement_rules(client, advocate, agreement["id"])["AGR-PAID-BEFORE-SIGNED"]
    assert flag["message"] == (
        "1 line(s) were paid before the agreement was signed (2025-01-10): "
        f"line {early['id']} (2025-01-05, GBP 1,000.00).")
    assert flag["severity"] == "high" and flag["dimension"] == "WHAT"


def test_lines_paid_in_time_raise_no_paid_before_signed(client, advocate, agree, pay):
    agreement = agree()
    pay(paid_on="2025-01-10", agreement_id=agreement["id"])
    assert "AGR-PAID-BEFORE-SIGNED" not in agreement_rules(client, advocate, agreement["id"])


def test_a_line_paid_outside_the_term_is_flagged_and_one_on_its_last_day_is_not(
        client, advocate, agree, pay):
    agreement = agree(signed_on="2024-12-01")
    pay(paid_on="2025-12-31", agreement_id=agreement["id"])
    assert "AGR-OUTSIDE-TERM" not in agreement_rules(client, advocate, agreement["id"])
    late = pay(paid_on="2026-01-02", agreement_id=agreement["id"]).get_json()
    flag = agreement_rules(client, advocate, agreement["id"])["AGR-OUTSIDE-TERM"]
    assert f"line {late['id']} (2026-01-02, GBP 1,000.00)" in flag["message"]
    assert "2025-01-01 to 2025-12-31" in flag["message"]


def test_lines_adding_up_past_the_amount_are_flagged_in_the_same_currency_only(
        client, advocate, agree, pay):
    agreement = agree()
    pay("6000.00", agreement_id=agreement["id"])
    pay("4000.00", paid_on="2025-04-01", agreement_id=agreement["id"])  # exactly the ceiling
    pay("9000.00", paid_on="2025-05-01", agreement_id=agreement["id"], currency="EUR")
    assert "AGR-OVER-AMOUNT" not in agreement_rules(client, advocate, agreement["id"])
    third = pay("0.01", paid_on="2025-06-01", agreement_id=agreement["id"]).get_json()
    flag = agreement_rules(client, advocate, agreement["id"])["AGR-OVER-AMOUNT"]
    assert "add up to 10000.01, 0.01 more than the agreement's 10000.00" in flag["message"]
    assert f"line {third['id']} (2025-06-01, GBP 0.01)" in flag["message"]
    body = client.get(f"{API}/agreements/{agreement['id']}", headers=advocate).get_json()
    assert body["remaining"] == "-0.01"


def test_an_agreement_with_payments_not_certified_is_flagged_until_certified(
        client, advocate, agree, pay, sponsor_compliance_user, bearer):
    agreement = agree()
    assert "AGR-UNCERTIFIED" not in agreement_rules(client, advocate, agreement["id"])  # no lines
    pay(agreement_id=agreement["id"])
    assert "AGR-UNCERTIFIED" in agreement_rules(client, advocate, agreement["id"])
    response = client.post(f"{API}/agreements/{agreement['id']}/certification",
                           headers=bearer(sponsor_compliance_user),
                           json={"password": PASSWORD, "meaning": "certified"})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["certified_by"] == sponsor_compliance_user.name
    assert body["certification_meaning"].startswith("Certified: I am the sponsor's nominated")
    assert "AGR-UNCERTIFIED" not in {f["rule"] for f in body["flags"] if f["state"] == "open"}


def test_voiding_a_line_re_checks_its_agreement(client, advocate, agree, pay, advocate_user):
    from governance.partnerships.services import void_support

    agreement = agree()
    line = pay(paid_on="2025-01-02", agreement_id=agreement["id"]).get_json()
    assert "AGR-PAID-BEFORE-SIGNED" in agreement_rules(client, advocate, agreement["id"])
    void_support(db.session.get(Support, line["id"]), advocate_user, "Entered twice")
    db.session.commit()
    assert agreement_rules(client, advocate, agreement["id"]) == {}


def test_changing_the_signature_date_re_checks_the_agreement(client, advocate, agree, pay,
                                                              advocate_user):
    from governance.agreements.services import update_agreement

    agreement = agree()
    pay(paid_on="2025-01-05", agreement_id=agreement["id"])
    assert "AGR-PAID-BEFORE-SIGNED" in agreement_rules(client, advocate, agreement["id"])
    update_agreement(db.session.get(Agreement, agreement["id"]), {"signed_on": date(2025, 1, 2)},
                     advocate_user, reason="Date corrected from the signed copy")
    db.session.commit()
    assert "AGR-PAID-BEFORE-SIGNED" not in agreement_rules(client, advocate, agreement["id"])


# --- certification -----------------------------------------------------------------------------


def test_certification_needs_the_signers_password_and_a_meaning(client, agree,
                                                                 sponsor_compliance_user, bearer):
    agreement = agree()
    url = f"{API}/agreements/{agreement['id']}/certification"
    headers = bearer(sponsor_compliance_user)
    response = client.post(url, headers=headers, json={"password": "wrong", "meaning": "x"})
    assert response.status_code == 422
    assert set(response.get_json()["error"]["fields"]) == {"password", "meaning"}
    assert db.session.get(Agreement, agreement["id"]).certified_at is None


def test_only_a_compliance_officer_of_the_sponsor_certifies(client, agree, advocate, make_user,
                                                            patient_group, bearer):
    agreement = agree()
    url = f"{API}/agreements/{agreement['id']}/certification"
    body = {"password": PASSWORD, "meaning": "certified"}
    assert client.post(url, headers=advocate, json=body).status_code == 403
    group_officer = make_user("compliance", patient_group)
    response = client.post(url, headers=bearer(group_officer), json=body)
    assert response.status_code == 403
    assert "compliance officer of the sponsor" in response.get_json()["error"]["message"]


def test_changing_certified_terms_withdraws_the_certification(client, agree, advocate_user,
                                                              sponsor_compliance_user):
    from governance.agreements.services import certify_agreement, update_agreement

    agreement = db.session.get(Agreement, agree()["id"])
    certify_agreement(agreement, sponsor_compliance_user, PASSWORD, "responsibility")
    db.session.commit()
    assert agreement.certified_at is not None
    update_agreement(agreement, {"amount": "20000"}, advocate_user, reason="Amended")
    db.session.commit()
    assert agreement.certified_at is None and agreement.certified_by_id is None


# --- pages -------------------------------------------------------------------------------------


def test_the_partnership_page_shows_each_agreement_with_paid_and_remaining(
        client, agree, pay, partnership, advocate_user):
    agreement = agree()
    pay("2500.00", agreement_id=agreement["id"])
    login(client, advocate_user)
    page = client.get(f"/partnerships/{partnership.id}").get_data(as_text=True)
    assert "Written agreements" in page
    assert f"#{agreement['id']} Grant" in page
    assert "7,500.00" in page  # what remains


def test_an_agreement_is_recorded_and_certified_through_the_pages(
        client, partnership, advocate_user, sponsor_compliance_user):
    login(client, advocate_user)
    response = client.post(f"/agreements/new/{partnership.id}", data={
        "kind": "sponsorship", "objective": "Sponsorship of the annual patient conference",
        "starts_on": "2025-01-01", "ends_on": "2025-06-30", "amount": "5000",
        "currency": "gbp", "signed_on": "2025-01-03"})
    assert response.status_code == 302, response.get_data(as_text=True)
    agreement = db.session.scalar(select(Agreement))
    assert agreement.amount == 5000 and agreement.currency == "GBP"
    refused = client.post(f"/agreements/new/{partnership.id}", data={
        "kind": "grant", "objective": "Grant", "starts_on": "2025-02-01",
        "ends_on": "2025-01-01"})
    assert refused.status_code == 422
    assert "cannot end before it starts" in refused.get_data(as_text=True)
    client.get("/logout")
    login(client, sponsor_compliance_user)
    page = client.get(f"/agreements/{agreement.id}").get_data(as_text=True)
    assert "Certify as the sponsor" in page
    response = client.post(f"/agreements/{agreement.id}/certify",
                           data={"meaning": "certified", "password": PASSWORD})
    assert response.status_code == 302
    page = client.get(f"/agreements/{agreement.id}").get_data(as_text=True)
    assert f"Certified by {sponsor_compliance_user.name}" in page


def test_the_support_form_offers_the_partnerships_agreements(client, agree, partnership,
                                                             advocate_user):
    agreement = agree()
    login(client, advocate_user)
    page = client.get(f"/partnerships/{partnership.id}/supports/new").get_data(as_text=True)
    assert f'value="{agreement["id"]}"' in page and "Paid under the agreement" in page
    response = client.post(f"/partnerships/{partnership.id}/supports/new", data={
        "recipient_id": partnership.patient_group_id, "paid_on": "2025-02-01", "kind": "grant",
        "amount": "100", "currency": "GBP", "description": "Registry grant",
        "agreement_id": agreement["id"]})
    assert response.status_code == 302, response.get_data(as_text=True)
    assert db.session.scalar(select(Support.agreement_id)) == agreement["id"]


# --- the migration -----------------------------------------------------------------------------


def test_the_migration_turns_agreement_signed_on_into_a_framework_agreement(tmp_path):
    """Upgrade a database of the previous revision holding a signed partnership and a line."""
    from flask_migrate import downgrade, upgrade

    from governance.extensions import load_migrations

    app = create_app(make_config(tmp_path, SQLALCHEMY_DATABASE_URI=empty_database_uri(tmp_path)))
    with app.app_context():
        load_migrations(app)
        upgrade(revision="4d2e8f1a6b35")
        with db.engine.begin() as connection:
            now = "2025-01-01 00:00:00"
            for org_id, name, kind in ((1, "Helix", "sponsor"), (2, "Alliance", "patient_group")):
                connection.execute(text(
                    "INSERT INTO organisations (id, name, kind, disease_areas, created_at, "
                    "updated_at, version) VALUES (:id, :name, :kind, '[]', :now, :now, 1)"),
                    {"id": org_id, "name": name, "kind": kind, "now": now})
            for pid, signed in ((1, "2024-03-01"), (2, None)):
                connection.execute(text(
                    "INSERT INTO partnerships (id, title, sponsor_id, patient_group_id, kind, "
                    "status, started_on, agreement_signed_on, ip_terms_agreed, created_at, "
                    "updated_at, version) VALUES (:id, :title, 1, 2, 'advocacy', 'active', "
                    "'2024-01-01', :signed, false, :now, :now, 1)"),
                    {"id": pid, "title": f"P{pid}", "signed": signed, "now": now})
                connection.execute(text(
                    "INSERT INTO supports (partnership_id, recipient_id, paid_on, kind, amount, "
                    "currency, description, confirmed_by_partner, created_at, updated_at, "
                    "version) VALUES (:pid, 2, '2024-05-01', 'grant', 100, 'GBP', 'Grant', "
                    "'pending', :now, :now, 1)"), {"pid": pid, "now": now})
        upgrade(revision="a7c1e2d3f4b5")
        with db.engine.connect() as connection:
            agreements = connection.execute(text(
                "SELECT id, partnership_id, kind, objective, signed_on, starts_on "
                "FROM agreements")).all()
            lines = dict(connection.execute(text(
                "SELECT partnership_id, agreement_id FROM supports")).all())
        assert len(agreements) == 1
        framework = agreements[0]
        assert framework.partnership_id == 1 and framework.kind == "framework"
        assert framework.objective == ("Framework agreement recorded before agreements were "
                                       "kept one by one")
        assert str(framework.signed_on) == "2024-03-01" and str(framework.starts_on) == \
            "2024-01-01"
        assert lines == {1: framework.id, 2: None}
        downgrade(revision="4d2e8f1a6b35")
        db.engine.dispose()
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    assert "agreement_id" not in {c["name"] for c in inspect(engine).get_columns("flags")}
    engine.dispose()


def test_flags_hold_exactly_one_subject(app, partnership, agree):
    agreement = agree()
    db.session.add(Flag(partnership_id=partnership.id, agreement_id=agreement["id"],
                        rule_id="AGR-MISSING", dimension="WHAT", severity="high",
                        message="Two subjects", policy_version="2025.1"))
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()


# --- CSV import and export -----------------------------------------------------------------


def _csv(rows: list[dict]) -> bytes:
    import csv
    import io

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def _commit_import(client, kind: str, data: bytes):
    import io

    preview = client.post("/imports/", data={"kind": kind, "file": (io.BytesIO(data), "f.csv")},
                          content_type="multipart/form-data")
    page = preview.get_data(as_text=True)
    if preview.status_code != 200:
        return preview
    end = page.index("/commit")
    return client.post(f"/imports/{kind}/{page[end - 64:end]}/commit")


def test_agreements_then_lines_under_them_are_imported_and_exported(
        client, partnership, advocate_user):
    login(client, advocate_user)
    response = _commit_import(client, "agreements", _csv([
        AGREEMENT | {"partnership_id": partnership.id, "external_id": "CRM-AGR-1"}]))
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    agreement = db.session.scalar(select(Agreement))
    assert agreement.external_id == "CRM-AGR-1" and agreement.amount == 10000
    line = {"partnership_id": partnership.id, "recipient_id": partnership.patient_group_id,
            "paid_on": "2025-01-05", "kind": "grant", "amount": "500.00", "currency": "GBP",
            "description": "Registry grant", "external_id": "CRM-SUP-1",
            "agreement_id": agreement.id}
    response = _commit_import(client, "supports", _csv([line]))
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    assert db.session.scalar(select(Support.agreement_id)) == agreement.id
    flags = {f.rule_id for f in db.session.scalars(
        select(Flag).where(Flag.agreement_id == agreement.id, Flag.state == "open"))}
    assert {"AGR-PAID-BEFORE-SIGNED", "AGR-UNCERTIFIED"} <= flags

    export = client.get(f"/exports/agreements.csv?partnership_id={partnership.id}")
    text_out = export.get_data(as_text=True)
    assert export.status_code == 200
    assert "CRM-AGR-1" in text_out and "GBP 500.00" in text_out and "9500.00" in text_out
    supports = client.get("/exports/supports.csv").get_data(as_text=True)
    header = supports.lstrip("\ufeff").splitlines()[0].split(",")
    assert "agreement_id" in header


def test_an_imported_line_naming_another_partnerships_agreement_is_refused(
        client, partnership, make_partnership, advocate_user):
    from governance.agreements.services import record_agreement

    other = make_partnership("Other")
    foreign = record_agreement(dict(AGREEMENT, partnership_id=other.id), advocate_user)
    db.session.commit()
    login(client, advocate_user)
    response = _commit_import(client, "supports", _csv([{
        "partnership_id": partnership.id, "recipient_id": partnership.patient_group_id,
        "paid_on": "2025-01-05", "kind": "grant", "amount": "500.00", "currency": "GBP",
        "description": "Registry grant", "external_id": "CRM-SUP-2",
        "agreement_id": foreign.id}]))
    assert response.status_code == 422
    assert "another partnership" in response.get_data(as_text=True)
    assert db.session.scalar(select(Support.id)) is None


def test_the_demo_shows_certified_over_amount_and_paid_before_signature_agreements(app):
    from governance.demo import seed_demo

    seed_demo()
    db.session.commit()
    by_objective = {a.objective: a for a in db.session.scalars(select(Agreement))}
    flags = {}
    for flag in db.session.scalars(select(Flag).where(Flag.agreement_id.is_not(None),
                                                      Flag.state == "open")):
        flags.setdefault(flag.agreement_id, set()).add(flag.rule_id)
    certified = by_objective["Grant towards the patient helpline for the year"]
    assert certified.certified_at is not None and certified.id not in flags
    assert "AGR-OVER-AMOUNT" in flags[
        by_objective["Sponsorship of the annual patient conference"].id]
    assert "AGR-PAID-BEFORE-SIGNED" in flags[
        by_objective["Patient advisers' fees for the protocol review panel"].id]
    assert db.session.scalar(select(Agreement.id).where(Agreement.kind == "framework"))


def test_an_agreement_flag_is_reviewed_like_any_other(client, agree, pay, compliance_user,
                                                      bearer):
    agreement = agree()
    pay(paid_on="2025-01-02", agreement_id=agreement["id"])
    flag = db.session.scalar(select(Flag).where(Flag.rule_id == "AGR-PAID-BEFORE-SIGNED"))
    headers = bearer(compliance_user)
    refused = client.post(f"{API}/flags/{flag.id}/transition", headers=headers,
                          json={"state": "remediated", "note": "Fixed"})
    assert refused.status_code in (409, 422)  # it still applies: not remediated
    response = client.post(f"{API}/flags/{flag.id}/transition", headers=headers,
                           json={"state": "acknowledged", "note": "Signed copy dated late"})
    assert response.status_code == 200, response.get_json()
    login(client, compliance_user)
    page = client.get(f"/review/flags/{flag.id}").get_data(as_text=True)
    assert f"Agreement <a href=\"/agreements/{agreement['id']}\">" in page
    queue = client.get("/review/?state=acknowledged").get_data(as_text=True)
    assert f"Agreement #{agreement['id']}" in queue
