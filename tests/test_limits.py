"""Limits on what a request may carry: every text's length, ids in paths and query strings, and
hostile JSON. Each is a clear 4xx naming what is wrong, and nothing is saved."""

import json
from datetime import date

import pytest
from sqlalchemy import func, select

from governance.audit import AuditEvent
from governance.extensions import db
from governance.interactions.models import Interaction
from governance.organisations.models import Organisation
from governance.reports.services import DEFAULT_METHODOLOGY
from governance.transfer import imports

from .conftest import GOOD_INTERACTION
from .test_import import csv_bytes, interaction_row
from .test_interactions import form_data

API = "/api/v1"
TOO_LONG = "x" * 10_001


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def as_json(values: dict) -> dict:
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in values.items()}


@pytest.fixture
def advocate(make_user, sponsor):
    return make_user("advocate", sponsor)


@pytest.fixture
def partnership(make_partnership):
    return make_partnership(agreement_signed_on=date(2024, 1, 10))


@pytest.fixture
def interaction(make_interaction, partnership):
    return make_interaction(partnership_id=partnership.id)


# --- every text has a limit -------------------------------------------------------------------


def test_an_over_long_purpose_is_refused_on_the_form_naming_the_limit(client, log_in, advocate,
                                                                     partnership):
    log_in(advocate)
    response = client.post("/interactions/new", data=form_data(partnership_id=partnership.id,
                                                               purpose=TOO_LONG))
    assert response.status_code == 422
    assert "At most 10000 characters." in response.get_data(as_text=True)
    assert count(Interaction) == 0


def test_an_over_long_purpose_is_refused_by_the_api_naming_the_field(client, advocate, bearer,
                                                                    partnership):
    body = as_json(dict(GOOD_INTERACTION, partnership_id=partnership.id, purpose=TOO_LONG))
    response = client.post(f"{API}/interactions", headers=bearer(advocate), json=body)
    assert response.status_code == 422
    assert response.get_json()["error"]["fields"] == {"purpose": ["At most 10000 characters."]}
    assert count(Interaction) == 0


def test_an_over_long_summary_or_purpose_change_is_refused_and_changes_nothing(
        client, advocate, bearer, interaction):
    url = f"{API}/interactions/{interaction.id}"
    response = client.patch(url, headers=bearer(advocate), json={
        "summary": "x" * 100_001, "purpose": TOO_LONG, "version": interaction.version})
    assert response.status_code == 422
    assert response.get_json()["error"]["fields"] == {"summary": ["At most 100000 characters."],
                                                      "purpose": ["At most 10000 characters."]}
    db.session.expire_all()
    assert db.session.get(Interaction, interaction.id).summary == GOOD_INTERACTION["summary"]


def test_a_patch_reason_longer_than_the_documented_1000_characters_is_refused(
        client, advocate, bearer, interaction):
    headers = bearer(advocate)
    events = count(AuditEvent)
    response = client.patch(f"{API}/interactions/{interaction.id}", headers=headers,
                            json={"title": "Renamed", "reason": "r" * 100_000,
                                  "version": interaction.version})
    assert response.status_code == 422
    assert response.get_json()["error"]["fields"] == {"reason": ["At most 1000 characters."]}
    assert count(AuditEvent) == events
    schema = client.get(f"{API}/openapi.json").get_json()["components"]["schemas"]
    assert schema["InteractionChanges"]["properties"]["reason"]["maxLength"] == 1000


def test_the_openapi_document_shows_the_limit_of_every_free_text(client):
    schemas = client.get(f"{API}/openapi.json").get_json()["components"]["schemas"]
    interaction = schemas["InteractionInput"]["properties"]
    for name in ("purpose", "outcome_changes"):
        assert interaction[name]["maxLength"] == 10_000
    assert interaction["summary"]["maxLength"] == 100_000
    organisation = schemas["OrganisationInput"]["properties"]
    assert organisation["methodology_note"]["maxLength"] == 10_000
    assert organisation["disease_areas"]["maxItems"] == 50
    assert organisation["disease_areas"]["items"]["maxLength"] == 100


def test_an_over_long_purpose_in_a_csv_import_is_refused_on_its_row(advocate, partnership):
    data = csv_bytes([interaction_row(partnership, 1),
                      interaction_row(partnership, 2, purpose=TOO_LONG)])
    report = imports.import_file("interactions", data, advocate, filename="x.csv",
                                 digest="0" * 64, commit=True)
    assert [(p.row, p.column, p.message) for p in report.problems] == [
        (3, "purpose", "At most 10000 characters.")]
    assert count(Interaction) == 0


def test_too_many_or_too_long_disease_areas_are_refused(client, advocate, bearer):
    headers, before = bearer(advocate), count(Organisation)
    many = client.post(f"{API}/organisations", headers=headers, json={
        "name": "Many areas", "kind": "patient_group",
        "disease_areas": [f"area {n}" for n in range(51)]})
    long = client.post(f"{API}/organisations", headers=headers, json={
        "name": "Long area", "kind": "patient_group", "disease_areas": ["a" * 101]})
    assert many.status_code == long.status_code == 422
    assert many.get_json()["error"]["fields"] == {"disease_areas": ["At most 50 items."]}
    assert "disease_areas" in long.get_json()["error"]["fields"]
    assert count(Organisation) == before


def test_an_over_long_flag_resolution_note_is_refused(client, compliance_user, bearer,
                                                      make_interaction, partnership):
    from governance.rules.models import Flag

    make_interaction(partnership_id=partnership.id, protocol_followed=False)
    flag = db.session.scalars(select(Flag).where(Flag.state == "open")).first()
    response = client.post(f"{API}/flags/{flag.id}/transition", headers=bearer(compliance_user),
                           json={"state": "acknowledged", "note": "n" * 4001})
    assert response.status_code == 422
    assert response.get_json()["error"]["fields"] == {"note": ["At most 4000 characters."]}
    db.session.expire_all()
    assert db.session.get(Flag, flag.id).state == "open"


# --- the methodology note: compliance alone writes it ------------------------------------------


def test_an_advocate_cannot_write_a_methodology_note_through_a_new_organisation(
        client, advocate, bearer):
    response = client.post(f"{API}/organisations", headers=bearer(advocate), json={
        "name": "Noted", "kind": "sponsor", "methodology_note": DEFAULT_METHODOLOGY})
    assert response.status_code == 403
    assert "compliance officer" in response.get_json()["error"]["message"]
    assert db.session.scalar(select(Organisation).where(Organisation.name == "Noted")) is None


def test_the_organisation_form_no_longer_writes_the_methodology_note(client, log_in, make_user,
                                                                    sponsor):
    sponsor.methodology_note = DEFAULT_METHODOLOGY
    db.session.commit()
    log_in(make_user("admin"))
    page = client.get(f"/organisations/{sponsor.id}/edit").get_data(as_text=True)
    assert 'name="methodology_note"' not in page
    response = client.post(f"/organisations/{sponsor.id}/edit", data={
        "name": sponsor.name, "kind": "sponsor", "country": "GB", "version": sponsor.version,
        "methodology_note": "Rewritten by an administrator"})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Organisation, sponsor.id).methodology_note == DEFAULT_METHODOLOGY


def test_compliance_cannot_write_a_methodology_note_over_10000_characters(
        client, log_in, make_user, sponsor):
    officer = make_user("compliance", sponsor)
    log_in(officer)
    response = client.post(f"/reports/methodology/{sponsor.id}", data={
        "methodology_note": DEFAULT_METHODOLOGY + "x" * 10_000})
    assert response.status_code == 422
    assert "10000" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Organisation, sponsor.id).methodology_note is None


def test_an_organisation_edit_by_its_compliance_officer_checks_the_note_like_the_report_page(
        make_user, sponsor):
    from governance.errors import ValidationFailed
    from governance.organisations.services import update_organisation

    officer = make_user("compliance", sponsor)
    with pytest.raises(ValidationFailed) as refused:
        update_organisation(sponsor, {"methodology_note": DEFAULT_METHODOLOGY + "x" * 10_000},
                            officer, expected_version=sponsor.version)
    assert "methodology_note" in refused.value.fields
    db.session.rollback()
    update_organisation(sponsor, {"methodology_note": DEFAULT_METHODOLOGY}, officer,
                        expected_version=sponsor.version)
    assert sponsor.methodology_note == DEFAULT_METHODOLOGY


# --- ids in paths and query strings ----------------------------------------------------------


@pytest.mark.parametrize("number", [2**31, 2**63, 2**64, 10**10])
def test_an_id_past_any_record_is_not_found_on_pages_and_the_public_report(
        client, log_in, compliance_user, number):
    assert client.get(f"/public/reports/{number}").status_code == 404
    log_in(compliance_user)
    for path in (f"/interactions/{number}", f"/partnerships/{number}", f"/reports/{number}",
                 f"/organisations/{number}/edit"):
        assert client.get(path).status_code == 404, path


def test_a_5000_digit_id_in_a_path_is_not_found(client):
    assert client.get(f"/public/reports/{'9' * 5000}").status_code == 404


@pytest.mark.parametrize("query", [f"page={2**63}", f"partnership_id={2**63}",
                                   f"organisation_id={2**64}", f"page={'9' * 5000}"])
def test_a_list_parameter_past_any_record_is_refused_naming_it(client, log_in, compliance_user,
                                                              query):
    log_in(compliance_user)
    response = client.get(f"/interactions/?{query}")
    assert response.status_code == 400
    assert f"“{query.split('=')[0]}”" in response.get_data(as_text=True)
    for path in ("/audit/?entity_id=", "/payments/?interaction_id=", "/review/?page="):
        assert client.get(f"{path}{2**63}").status_code == 400, path


def test_a_list_parameter_of_the_api_out_of_range_answers_422_with_its_name(
        client, advocate, bearer):
    headers = bearer(advocate)
    for query, name in ((f"partnership_id={2**63}", "partnership_id"),
                        (f"page={2**63}", "page"), ("per_page=0", "per_page"),
                        (f"page={'9' * 5000}", "page")):
        response = client.get(f"{API}/interactions?{query}", headers=headers)
        assert response.status_code == 422, query
        assert list(response.get_json()["error"]["fields"]) == [name]


def test_a_search_holding_an_encoded_lone_surrogate_is_not_a_server_error(client, log_in,
                                                                         compliance_user):
    log_in(compliance_user)
    for path in ("/interactions/?q=%ED%A0%80", "/organisations/?q=%ED%A0%80",
                 "/audit/?actor=%ED%A0%80"):
        assert client.get(path).status_code == 200, path


# --- hostile JSON ------------------------------------------------------------------------------


def post_raw(client, headers, text: str):
    return client.post(f"{API}/organisations", headers=headers, data=text.encode(),
                       content_type="application/json")


def test_a_json_body_nested_1000_deep_is_refused(client, advocate, bearer):
    headers, before = bearer(advocate), count(Organisation)
    for text in ("[" * 1000 + "]" * 1000,
                 '{"name": "Deep", "kind": "sponsor", "disease_areas": ' + "[" * 1000
                 + "]" * 1000 + "}",
                 '{"name": "Deep", "kind": "sponsor", "website": ' + "[" * 100 + "]" * 100
                 + "}"):
        response = post_raw(client, headers, text)
        assert response.status_code == 400
        assert "nested deeper than 64 levels" in response.get_json()["error"]["message"]
    assert count(Organisation) == before


def test_a_json_number_of_5000_digits_is_refused(client, advocate, bearer):
    headers, before = bearer(advocate), count(Organisation)
    response = post_raw(client, headers,
                        '{"name": "Huge", "kind": "sponsor", "annual_income": ' + "9" * 5000
                        + "}")
    assert response.status_code == 400
    assert "more digits" in response.get_json()["error"]["message"]
    assert count(Organisation) == before


def test_a_lone_surrogate_in_a_json_string_or_key_is_refused_naming_the_field(
        client, advocate, bearer, interaction):
    headers, before = bearer(advocate), count(Organisation)
    created = post_raw(client, headers, '{"name": "Bad \\ud800", "kind": "sponsor"}')
    assert created.status_code == 400
    assert created.get_json()["error"]["fields"] == {
        "name": ["Text may not contain a lone UTF-16 surrogate."]}
    keyed = post_raw(client, headers, '{"name": "Bad", "kind": "sponsor", "\\udfff": 1}')
    assert keyed.status_code == 400
    assert list(keyed.get_json()["error"]["fields"]) == ["\\udfff"]
    listed = client.patch(f"{API}/interactions/{interaction.id}", headers=headers,
                          data=json.dumps({"accommodations": ["ok", "\ud800"],
                                           "version": interaction.version}),
                          content_type="text/plain")
    assert listed.status_code == 400
    assert list(listed.get_json()["error"]["fields"]) == ["accommodations[1]"]
    assert count(Organisation) == before
    paired = post_raw(client, headers, '{"name": "Smile \\ud83d\\ude00", "kind": "sponsor"}')
    assert paired.status_code == 201
    assert paired.get_json()["name"] == "Smile \U0001f600"


# --- what schemathesis found -------------------------------------------------------------------


def test_an_empty_if_match_is_refused_as_naming_no_version(client, advocate, bearer, interaction):
    response = client.patch(f"{API}/interactions/{interaction.id}",
                            headers={**bearer(advocate), "If-Match": '""'},
                            json={"title": "Renamed"})
    assert response.status_code == 412
    assert "If-Match does not name a version" in response.get_json()["error"]["message"]


def test_a_certification_password_that_is_not_text_is_refused(client, make_user, sponsor,
                                                              advocate, bearer, partnership):
    from governance.agreements.models import Agreement

    from .test_agreements import AGREEMENT

    created = client.post(f"{API}/agreements", headers=bearer(advocate),
                          json=AGREEMENT | {"partnership_id": partnership.id})
    assert created.status_code == 201
    agreement_id = created.get_json()["id"]
    response = client.post(f"{API}/agreements/{agreement_id}/certification",
                           headers=bearer(make_user("compliance", sponsor)),
                           json={"meaning": "certified", "password": ["secret"]})
    assert response.status_code == 422
    assert response.get_json()["error"]["fields"] == {"password": ["Not a valid string."]}
    assert db.session.get(Agreement, agreement_id).certified_at is None
