"""The JSON API of API.md: every route's success, its error shapes, roles and partner scoping."""

import json
from datetime import date

import pytest
from sqlalchemy import func, select

from governance.audit import AuditEvent
from governance.auth import services as accounts
from governance.extensions import db
from governance.interactions.models import Interaction
from governance.organisations.models import Organisation
from governance.partnerships.models import Partnership, Support
from governance.rules.models import Flag

from .conftest import GOOD_INTERACTION

API = "/api/v1"


def as_json(values: dict) -> dict:
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in values.items()}


@pytest.fixture
def compliance(compliance_user, bearer):
    return bearer(compliance_user)


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
def other_group(make_org):
    return make_org("Sickle Cell Collective", "patient_group", country="US")


@pytest.fixture
def outsider(make_user, other_group, bearer):
    """A partner of a patient group that is not a party of the partnership."""
    return bearer(make_user("partner", other_group))


@pytest.fixture
def insider(make_user, patient_group, bearer):
    """A partner of the partnership's patient group."""
    return bearer(make_user("partner", patient_group))


def interaction_body(partnership, **changes) -> dict:
    return as_json(dict(GOOD_INTERACTION, partnership_id=partnership.id, **changes))


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def assert_error(response, status: int, *fields: str):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"}
    assert body["error"]["message"]
    for name in fields:
        assert body["error"]["fields"][name], body
    return body["error"]


# --- the document and authentication --------------------------------------------------------


def test_openapi_document_is_public_and_describes_every_route(client):
    response = client.get(f"{API}/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    assert spec["openapi"].startswith("3.")
    operations = {(method.upper(), path) for path, item in spec["paths"].items()
                  for method in item}
    for expected in [
        ("POST", "/api/v1/organisations"), ("GET", "/api/v1/organisations"),
        ("GET", "/api/v1/organisations/{organisation_id}"), ("POST", "/api/v1/partnerships"),
        ("GET", "/api/v1/partnerships/{partnership_id}"), ("POST", "/api/v1/supports"),
        ("POST", "/api/v1/interactions"), ("GET", "/api/v1/interactions"),
        ("GET", "/api/v1/interactions/{interaction_id}"),
        ("PATCH", "/api/v1/interactions/{interaction_id}"),
        ("POST", "/api/v1/flags/{flag_id}/transition"), ("GET", "/api/v1/activities"),
        ("GET", "/api/v1/audit"),
    ]:
        assert expected in operations
    post = spec["paths"]["/api/v1/interactions"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/InteractionInput")
    assert spec["components"]["schemas"]["Support"]["properties"]["amount"]["type"] == "string"


def test_openapi_document_says_what_a_patch_needs_and_what_answers_carry(client):
    document = client.get(f"{API}/openapi.json").get_json()
    patch = document["paths"]["/api/v1/interactions/{interaction_id}"]["patch"]
    assert {"409", "412", "428"} <= set(patch["responses"])
    assert [p["name"] for p in patch["parameters"] if p["in"] == "header"] == ["If-Match"]
    assert "ETag" in patch["responses"]["200"]["headers"]
    assert {"ETag", "Retry-After"} <= set(patch["responses"]["409"]["headers"])
    for path in ("/api/v1/interactions/{interaction_id}", "/api/v1/agreements/{agreement_id}",
                 "/api/v1/individual-payments/{payment_id}"):
        assert "ETag" in document["paths"][path]["get"]["responses"]["200"]["headers"]


def test_requests_without_a_valid_token_get_401(client, compliance_user, partnership):
    for headers in ({}, {"Authorization": "Bearer not-a-token"},
                    {"Authorization": "Basic abc"}):
        assert_error(client.get(f"{API}/interactions", headers=headers), 401)
        assert_error(client.post(f"{API}/interactions", headers=headers, json={}), 401)


def test_a_session_cookie_does_not_authenticate_the_api(client, compliance_user, log_in):
    log_in(compliance_user)
    assert client.get(f"{API}/interactions").status_code == 401


def test_a_revoked_token_is_refused(client, compliance_user, bearer):
    headers = bearer(compliance_user)
    assert client.get(f"{API}/activities", headers=headers).status_code == 200
    for token in accounts.tokens_of(compliance_user):
        accounts.revoke_token(compliance_user, token.id)
    db.session.commit()
    assert_error(client.get(f"{API}/activities", headers=headers), 401)


# --- organisations -------------------------------------------------------------------------


def test_advocate_records_an_organisation(client, advocate):
    response = client.post(f"{API}/organisations", headers=advocate, json={
        "name": "Bridgewater Facilitation", "kind": "other", "country": "gb",
        "disease_areas": ["asthma"], "annual_income": "1250.5", "income_currency": "EUR"})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["id"] and body["country"] == "GB"
    assert body["annual_income"] == "1250.50"
    assert client.get(f"{API}/organisations/{body['id']}", headers=advocate).get_json()[
        "name"] == "Bridgewater Facilitation"


def test_organisations_are_listed_by_name_and_filtered(client, compliance, sponsor,
                                                       patient_group):
    names = [o["name"] for o in client.get(f"{API}/organisations", headers=compliance).json]
    assert names == sorted(names) and {"Helix Pharma", "Rare Lung Alliance"} <= set(names)
    groups = client.get(f"{API}/organisations?kind=patient_group", headers=compliance).json
    assert [o["name"] for o in groups] == ["Rare Lung Alliance"]


def test_unknown_organisation_is_404(client, compliance):
    assert_error(client.get(f"{API}/organisations/999", headers=compliance), 404)


def test_partner_may_not_list_organisations(client, insider):
    assert_error(client.get(f"{API}/organisations", headers=insider), 403)


def test_auditor_may_not_create_an_organisation(client, make_user, bearer):
    auditor = bearer(make_user("auditor"))
    assert_error(client.post(f"{API}/organisations", headers=auditor,
                             json={"name": "X", "kind": "other"}), 403)
    assert count(Organisation) == 0


def test_malformed_json_is_400_and_changes_nothing(client, advocate, sponsor):
    before = count(Organisation)
    for body in ('{"name": "X", "kind": ', "not json", "", "\xff"):
        error = assert_error(client.post(f"{API}/organisations", headers=advocate, data=body,
                                         content_type="application/json"), 400)
        assert "JSON" in error["message"] or "UTF-8" in error["message"]
    error = assert_error(client.post(f"{API}/organisations", headers=advocate,
                                     json=["name", "kind"]), 400)
    assert "object" in error["message"]
    assert count(Organisation) == before


def test_unknown_field_is_400_naming_it(client, advocate):
    before = count(Organisation)
    error = assert_error(client.post(f"{API}/organisations", headers=advocate, json={
        "name": "X", "kind": "other", "colour": "blue"}), 400, "colour")
    assert "colour" in error["message"]
    assert count(Organisation) == before


def test_wrong_types_and_invalid_values_are_422_on_each_field(client, advocate):
    before = count(Organisation)
    error = assert_error(client.post(f"{API}/organisations", headers=advocate, json={
        "name": 5, "kind": "charity", "country": "Narnia", "annual_income": "-3",
        "disease_areas": "not a list of areas but fine"}), 422,
        "name", "kind", "country", "annual_income")
    assert "Must be one of" in " ".join(error["fields"]["kind"])
    assert count(Organisation) == before


def test_a_duplicate_name_is_422_also_outside_ascii(client, advocate):
    body = {"name": "Élan Santé", "kind": "patient_group"}
    assert client.post(f"{API}/organisations", headers=advocate, json=body).status_code == 201
    assert_error(client.post(f"{API}/organisations", headers=advocate, json=body), 422, "name")


def test_unknown_query_parameter_is_400(client, compliance):
    error = assert_error(client.get(f"{API}/interactions?partnership=3", headers=compliance),
                         400, "partnership")
    assert "partnership" in error["message"]


# --- partnerships and support ----------------------------------------------------------------


def test_partnership_is_created_with_its_flags(client, advocate, sponsor, patient_group):
    response = client.post(f"{API}/partnerships", headers=advocate, json={
        "title": "Registry co-funding", "sponsor_id": sponsor.id,
        "patient_group_id": patient_group.id, "kind": "research_investment",
        "status": "active", "started_on": "2025-01-01"})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["started_on"] == "2025-01-01"
    rules = {flag["rule"] for flag in body["flags"]}
    assert "PART-IP-UNSETTLED" in rules
    for flag in body["flags"]:
        assert set(flag) == {"id", "rule", "dimension", "severity", "state", "message"}
    again = client.get(f"{API}/partnerships/{body['id']}", headers=advocate).get_json()
    assert {flag["rule"] for flag in again["flags"]} == rules


def test_partnership_with_invalid_parties_is_422(client, advocate, sponsor):
    error = assert_error(client.post(f"{API}/partnerships", headers=advocate, json={
        "title": "Bad", "sponsor_id": sponsor.id, "patient_group_id": sponsor.id,
        "kind": "advocacy"}), 422)
    assert error["fields"]
    assert count(Partnership) == 0


def test_huge_ids_are_a_clear_422_not_a_crash(client, advocate, sponsor):
    assert_error(client.post(f"{API}/partnerships", headers=advocate, json={
        "title": "Huge", "sponsor_id": 2**80, "patient_group_id": "99999999999999999999999",
        "kind": "advocacy"}), 422, "sponsor_id", "patient_group_id")
    assert_error(client.get(f"{API}/partnerships/{2**80}", headers=advocate), 404)


def test_partner_sees_only_partnerships_they_belong_to(client, partnership, insider, outsider):
    assert client.get(f"{API}/partnerships/{partnership.id}", headers=insider).status_code == 200
    assert_error(client.get(f"{API}/partnerships/{partnership.id}", headers=outsider), 404)


def test_support_is_recorded_with_money_as_a_decimal_string(client, advocate, make_partnership,
                                                            patient_group):
    partnership = make_partnership()  # no signed agreement
    response = client.post(f"{API}/supports", headers=advocate, json={
        "partnership_id": partnership.id, "recipient_id": patient_group.id,
        "paid_on": "2025-02-01", "kind": "grant", "amount": "1250", "currency": "GBP",
        "description": "Grant for the registry"})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["amount"] == "1250.00" and body["currency"] == "GBP"
    assert body["confirmed_by_partner"] == "pending"
    flags = client.get(f"{API}/partnerships/{partnership.id}", headers=advocate).json["flags"]
    assert "AGR-MISSING" in {flag["rule"] for flag in flags}
    assert client.get(f"{API}/supports/{body['id']}", headers=advocate).json["amount"] == \
        "1250.00"


def test_in_kind_support_may_have_no_amount_but_a_grant_must(client, advocate, partnership,
                                                              patient_group):
    base = {"partnership_id": partnership.id, "recipient_id": patient_group.id,
            "paid_on": "2025-02-01", "currency": "GBP", "description": "Meeting rooms"}
    assert client.post(f"{API}/supports", headers=advocate,
                       json=dict(base, kind="in_kind", amount=None)).json["amount"] is None
    assert_error(client.post(f"{API}/supports", headers=advocate,
                             json=dict(base, kind="grant", amount=None)), 422, "amount")
    assert_error(client.post(f"{API}/supports", headers=advocate,
                             json=dict(base, kind="grant", amount="12.345",
                                       currency="euro")), 422, "amount", "currency")
    assert count(Support) == 1


# --- interactions ---------------------------------------------------------------------------


def test_interaction_is_logged_with_its_flags(client, advocate, partnership):
    response = client.post(f"{API}/interactions", headers=advocate,
                           json=interaction_body(partnership, selection_method="ad_hoc"))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["occurred_on"] == "2025-03-14"
    assert body["partnership_id"] == partnership.id
    assert "WHO-ADHOC-SELECTION" in {flag["rule"] for flag in body["flags"]}
    one = client.get(f"{API}/interactions/{body['id']}", headers=advocate).get_json()
    assert one["flags"] == body["flags"]


def test_invalid_interaction_is_422_per_field_and_writes_nothing(client, advocate, partnership):
    before = (count(Interaction), count(AuditEvent))
    error = assert_error(client.post(f"{API}/interactions", headers=advocate, json=interaction_body(
        partnership, occurred_on="14/03/2025", format="party", patient_participants=-1,
        activity_codes=["NOPE-1"], stages_in_scope="all")), 422,
        "occurred_on", "format", "patient_participants", "stages_in_scope")
    assert "Must be one of" in error["fields"]["format"][0]
    assert (count(Interaction), count(AuditEvent)) == before


def test_interaction_with_wrong_types_is_422(client, advocate, partnership):
    assert_error(client.post(f"{API}/interactions", headers=advocate, json=interaction_body(
        partnership, title=["a"], product_specific="perhaps", sponsor_staff="many")), 422,
        "title", "product_specific", "sponsor_staff")


LOOSE_INTEGERS = [("partnership_id", 1.9999), ("patient_participants", 3.7),
                  ("patient_participants", "3"), ("patient_participants", 3.0),
                  ("sponsor_staff", True), ("partnership_id", "1")]


@pytest.mark.parametrize(("field", "value"), LOOSE_INTEGERS)
def test_an_integer_given_as_a_fraction_text_or_boolean_is_refused_on_post(
        client, advocate, partnership, field, value):
    before = (count(Interaction), count(AuditEvent))
    body = interaction_body(partnership) | {field: value}
    error = assert_error(client.post(f"{API}/interactions", headers=advocate, json=body),
                         422, field)
    assert "whole number" in error["fields"][field][0]
    assert (count(Interaction), count(AuditEvent)) == before


@pytest.mark.parametrize(("field", "value"), LOOSE_INTEGERS)
def test_an_integer_given_as_a_fraction_text_or_boolean_is_refused_on_patch(
        client, advocate, partnership, make_interaction, field, value):
    interaction = make_interaction(partnership_id=partnership.id)
    url = f"{API}/interactions/{interaction.id}"
    before = client.get(url, headers=advocate).get_json()
    assert_error(client.patch(url, headers=advocate, json={field: value, "version": 1}),
                 422, field)
    assert client.get(url, headers=advocate).get_json() == before


def test_ids_in_support_and_lists_take_integers_only_and_money_stays_a_string(
        client, advocate, partnership, patient_group):
    line = {"partnership_id": partnership.id, "recipient_id": patient_group.id,
            "paid_on": "2025-02-01", "kind": "grant", "amount": "1250.00", "currency": "EUR",
            "description": "Grant"}
    assert_error(client.post(f"{API}/supports", headers=advocate,
                             json=dict(line, recipient_id=float(patient_group.id))),
                 422, "recipient_id")
    assert_error(client.post(f"{API}/partnerships", headers=advocate, json={
        "title": "Loose ids", "sponsor_id": partnership.sponsor_id,
        "patient_group_id": partnership.patient_group_id, "kind": "experiential",
        "status": "active", "started_on": "2025-01-01",
        "other_organisation_ids": [str(patient_group.id)]}), 422, "other_organisation_ids")
    assert count(Support) == 0
    saved = client.post(f"{API}/supports", headers=advocate, json=line)
    assert saved.status_code == 201, saved.get_json()
    assert saved.get_json()["amount"] == "1250.00"


def test_a_json_body_after_a_utf8_byte_order_mark_is_read(client, advocate, make_interaction):
    body = json.dumps({"name": "Orbit Bio", "kind": "sponsor"}).encode()
    created = client.post(f"{API}/organisations", headers=advocate, data=b"\xef\xbb\xbf" + body,
                          content_type="application/json")
    assert created.status_code == 201, created.get_json()
    interaction = make_interaction()
    edited = client.patch(f"{API}/interactions/{interaction.id}", headers=advocate,
                          data=b"\xef\xbb\xbf" + json.dumps({"title": "After a BOM",
                                                              "version": 1}).encode(),
                          content_type="application/json")
    assert edited.status_code == 200, edited.get_json()
    assert edited.get_json()["title"] == "After a BOM"


def test_unknown_interaction_field_is_400(client, advocate, partnership):
    assert_error(client.post(f"{API}/interactions", headers=advocate,
                             json=interaction_body(partnership, patient_names=["Ann"])),
                 400, "patient_names")
    assert count(Interaction) == 0


def test_partner_may_read_but_not_log_interactions(client, insider, partnership):
    assert_error(client.post(f"{API}/interactions", headers=insider,
                             json=interaction_body(partnership)), 403)


@pytest.fixture
def three_interactions(make_interaction, partnership):
    return [
        make_interaction(title="Early", occurred_on=date(2025, 1, 10),
                         partnership_id=partnership.id),
        make_interaction(title="Ad hoc", occurred_on=date(2025, 2, 10),
                         partnership_id=partnership.id, selection_method="ad_hoc"),
        make_interaction(title="Outside", occurred_on=date(2025, 3, 10)),
    ]


def test_interactions_are_filtered_and_paged(client, compliance, partnership,
                                             three_interactions):
    url = f"{API}/interactions"
    everything = client.get(url, headers=compliance).get_json()
    assert everything["total"] == 3 and everything["page"] == 1
    assert [i["title"] for i in everything["items"]] == ["Outside", "Ad hoc", "Early"]
    in_partnership = client.get(f"{url}?partnership_id={partnership.id}", headers=compliance)
    assert in_partnership.json["total"] == 2
    window = client.get(f"{url}?from=2025-02-01&to=2025-02-28", headers=compliance).json
    assert [i["title"] for i in window["items"]] == ["Ad hoc"]
    flagged = client.get(f"{url}?rule=WHO-ADHOC-SELECTION&state=open", headers=compliance).json
    assert [i["title"] for i in flagged["items"]] == ["Ad hoc"]
    second = client.get(f"{url}?per_page=2&page=2", headers=compliance).json
    assert second["total"] == 3 and second["page"] == 2
    assert [i["title"] for i in second["items"]] == ["Early"]
    by_org = client.get(f"{url}?organisation_id={partnership.patient_group_id}",
                        headers=compliance).json
    assert by_org["total"] == 2


def test_bad_query_values_are_422(client, compliance):
    error = assert_error(client.get(f"{API}/interactions?page=abc&from=yesterday&state=shut",
                                    headers=compliance), 422, "page", "from", "state")
    assert error["message"]


def test_partners_see_only_their_partnerships_interactions(client, insider, outsider,
                                                           three_interactions):
    inside = client.get(f"{API}/interactions", headers=insider).json
    assert {i["title"] for i in inside["items"]} == {"Early", "Ad hoc"}
    assert client.get(f"{API}/interactions", headers=outsider).json == {
        "items": [], "total": 0, "page": 1, "per_page": 25}
    early = three_interactions[0]
    assert client.get(f"{API}/interactions/{early.id}", headers=insider).status_code == 200
    assert_error(client.get(f"{API}/interactions/{early.id}", headers=outsider), 404)
    assert_error(client.get(f"{API}/interactions/{three_interactions[2].id}",
                            headers=insider), 404)


def test_patch_changes_fields_with_a_reason_and_re_evaluates(client, advocate,
                                                             three_interactions):
    ad_hoc = three_interactions[1]
    response = client.patch(f"{API}/interactions/{ad_hoc.id}", headers=advocate, json={
        "selection_method": "co_created_procedure", "reason": "Selection was co-created",
        "version": ad_hoc.version})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["selection_method"] == "co_created_procedure"
    assert body["title"] == "Ad hoc" and body["version"] == 2
    states = {flag["rule"]: flag["state"] for flag in body["flags"]}
    assert states["WHO-ADHOC-SELECTION"] == "remediated"
    event = db.session.scalars(select(AuditEvent).where(
        AuditEvent.entity == "interaction", AuditEvent.entity_id == ad_hoc.id)
        .order_by(AuditEvent.id.desc())).first()
    assert event.action == "update" and event.reason == "Selection was co-created"


def test_rejected_patch_changes_nothing(client, advocate, three_interactions):
    early = three_interactions[0]
    url = f"{API}/interactions/{early.id}"
    before = client.get(url, headers=advocate).get_json()
    assert_error(client.patch(url, headers=advocate, json={"title": "", "sponsor_staff": -2,
                                                           "version": early.version}),
                 422, "title", "sponsor_staff")
    assert_error(client.patch(url, headers=advocate, json={"title": "New", "colour": "x",
                                                           "version": early.version}),
                 400, "colour")
    assert_error(client.patch(url, headers=advocate, json={"title": "New", "reason": 5,
                                                           "version": early.version}),
                 422, "reason")
    assert_error(client.patch(url, headers=advocate, data="{", content_type="application/json"),
                 400)
    assert client.get(url, headers=advocate).get_json() == before


def test_patch_with_a_stale_version_is_409(client, advocate, three_interactions):
    early = three_interactions[0]
    assert_error(client.patch(f"{API}/interactions/{early.id}", headers=advocate,
                              json={"title": "Changed", "version": 99}), 409)


def test_patch_without_a_version_is_428_and_overwrites_nothing(client, advocate, compliance,
                                                               three_interactions):
    early = three_interactions[0]
    url = f"{API}/interactions/{early.id}"
    newer = client.patch(url, headers=compliance, json={"title": "Newer", "version": 1})
    assert newer.status_code == 200
    before = client.get(url, headers=advocate).get_json()
    for body in ({"title": "Blind"}, {"title": "Blind", "version": None}):
        error = assert_error(client.patch(url, headers=advocate, json=body), 428, "version")
        assert "If-Match" in error["message"] and "version" in error["message"]
        assert "current_version" not in error
    assert client.get(url, headers=advocate).get_json() == before


def test_get_and_patch_answers_carry_the_records_etag(client, advocate, three_interactions,
                                                       sponsor):
    early = three_interactions[0]
    url = f"{API}/interactions/{early.id}"
    read = client.get(url, headers=advocate)
    assert read.headers["ETag"] == f'"interaction-{early.id}-v1"'
    edited = client.patch(url, headers=advocate, json={"title": "Changed", "version": 1})
    assert edited.headers["ETag"] == f'"interaction-{early.id}-v2"'
    assert client.get(url, headers=advocate).headers["ETag"] == edited.headers["ETag"]
    organisation = client.get(f"{API}/organisations/{sponsor.id}", headers=advocate)
    assert organisation.headers["ETag"] == f'"organisation-{sponsor.id}-v{sponsor.version}"'
    created = client.post(f"{API}/organisations", headers=advocate,
                          json={"name": "Orbit Bio", "kind": "sponsor"})
    assert created.headers["ETag"] == f'"organisation-{created.get_json()["id"]}-v1"'


def test_patch_with_the_current_etag_in_if_match_is_saved(client, advocate, three_interactions):
    early = three_interactions[0]
    url = f"{API}/interactions/{early.id}"
    etag = client.get(url, headers=advocate).headers["ETag"]
    answer = client.patch(url, headers={**advocate, "If-Match": etag},
                          json={"title": "Changed by ETag"})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["title"] == "Changed by ETag"
    assert answer.get_json()["version"] == 2


def test_patch_with_a_stale_etag_is_409_with_the_current_version(client, advocate, compliance,
                                                                 three_interactions):
    early = three_interactions[0]
    url = f"{API}/interactions/{early.id}"
    stale = client.get(url, headers=advocate).headers["ETag"]
    assert client.patch(url, headers=compliance, json={"title": "Theirs",
                                                       "version": 1}).status_code == 200
    refused = client.patch(url, headers={**advocate, "If-Match": stale},
                           json={"title": "Mine"})
    error = assert_error(refused, 409)
    assert error["current_version"] == 2
    assert refused.headers["ETag"] == f'"interaction-{early.id}-v2"'
    assert "Retry-After" not in refused.headers  # nobody was saving it at the same moment
    retried = client.patch(url, headers={**advocate, "If-Match": refused.headers["ETag"]},
                           json={"title": "Mine"})
    assert retried.status_code == 200
    assert client.get(url, headers=advocate).get_json()["title"] == "Mine"


def test_if_match_naming_another_record_is_412_and_body_and_header_must_agree(
        client, advocate, three_interactions):
    early, ad_hoc = three_interactions[:2]
    url = f"{API}/interactions/{early.id}"
    before = client.get(url, headers=advocate).get_json()
    other = client.get(f"{API}/interactions/{ad_hoc.id}", headers=advocate).headers["ETag"]
    for tag in (other, "*", 'W/"interaction-1-v1"'):
        assert_error(client.patch(url, headers={**advocate, "If-Match": tag},
                                  json={"title": "Mine"}), 412)
    assert_error(client.patch(url, headers={**advocate, "If-Match": f'"interaction-{early.id}-v1"'},
                              json={"title": "Mine", "version": 2}), 422, "version")
    assert client.get(url, headers=advocate).get_json() == before


def test_patch_of_unknown_or_invisible_interaction_is_404(client, advocate, insider,
                                                          three_interactions):
    assert_error(client.patch(f"{API}/interactions/999", headers=advocate,
                              json={"title": "x", "version": 1}), 404)
    assert_error(client.patch(f"{API}/interactions/{three_interactions[0].id}", headers=insider,
                              json={"title": "x", "version": 1}), 403)


# --- flags ------------------------------------------------------------------------------------


@pytest.fixture
def open_flag(three_interactions):
    return db.session.scalar(select(Flag).where(
        Flag.interaction_id == three_interactions[1].id, Flag.rule_id == "WHO-ADHOC-SELECTION"))


def test_compliance_acknowledges_a_flag_with_a_justification(client, compliance, open_flag):
    response = client.post(f"{API}/flags/{open_flag.id}/transition", headers=compliance,
                           json={"state": "acknowledged",
                                 "note": "A one-off expert panel chosen by the group."})
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {
        "id": open_flag.id, "rule": "WHO-ADHOC-SELECTION", "dimension": "WHO",
        "severity": open_flag.severity, "state": "acknowledged", "message": open_flag.message}


def test_flag_transition_errors(client, compliance, advocate, open_flag, outsider):
    url = f"{API}/flags/{open_flag.id}/transition"
    assert_error(client.post(url, headers=compliance, json={"state": "acknowledged"}), 422,
                 "note")
    assert_error(client.post(url, headers=compliance, json={"state": "closed", "note": "x"}),
                 422, "state")
    assert_error(client.post(url, headers=compliance, json={"state": 3}), 422, "state")
    assert_error(client.post(url, headers=compliance, json={"state": "dismissed", "why": "x"}),
                 400, "why")
    assert_error(client.post(url, headers=compliance, json={"state": "remediated"}), 409)
    assert_error(client.post(url, headers=advocate, json={"state": "dismissed", "note": "x"}),
                 403)
    assert_error(client.post(url, headers=outsider, json={"state": "dismissed", "note": "x"}),
                 403)
    assert_error(client.post(f"{API}/flags/999/transition", headers=compliance,
                             json={"state": "dismissed", "note": "x"}), 404)
    db.session.refresh(open_flag)
    assert open_flag.state == "open"


# --- activities and audit --------------------------------------------------------------------


def test_every_role_reads_the_activity_catalogue(client, make_user, bearer, patient_group):
    for role in ("advocate", "compliance", "auditor", "partner", "admin"):
        user = make_user(role, patient_group if role in ("advocate", "partner") else None)
        activities = client.get(f"{API}/activities", headers=bearer(user)).get_json()
        codes = [activity["code"] for activity in activities]
        assert len(codes) >= 24 and "RP-01" in codes


def test_organisations_own_activities_are_listed_only_to_those_they_concern(
        client, make_user, make_org, bearer, sponsor, patient_group, partnership, compliance):
    from governance.activities import services as activities

    stranger = make_org("Northwind Therapeutics", "sponsor", country="US")
    owners = {"ours": sponsor, "partner's": patient_group, "stranger's": stranger}
    codes = {}
    for label, organisation in owners.items():
        author = make_user("advocate", organisation)
        codes[label] = activities.add_custom_activity(organisation.id, {
            "stage": "trial_design", "name": f"{label} home visit pilot",
            "description": "Nurses visit participants at home."}, author).code
    db.session.commit()

    def listed(headers):
        return {a["code"] for a in client.get(f"{API}/activities", headers=headers).get_json()}

    advocate_sees = listed(bearer(make_user("advocate", sponsor)))
    assert {codes["ours"], codes["partner's"]} <= advocate_sees
    assert codes["stranger's"] not in advocate_sees and "RP-01" in advocate_sees
    assert set(codes.values()) <= listed(compliance)


def test_audit_trail_is_oldest_first_and_filtered(client, compliance, three_interactions):
    events = client.get(f"{API}/audit", headers=compliance).get_json()
    ids = [event["id"] for event in events]
    assert ids == sorted(ids) and len(ids) == count(AuditEvent)
    target = three_interactions[0]
    mine = client.get(f"{API}/audit?entity=interaction&entity_id={target.id}",
                      headers=compliance).get_json()
    assert mine and all(e["entity"] == "interaction" and e["entity_id"] == target.id
                        for e in mine)
    assert mine[0]["action"] == "create"
    assert mine[0]["changes"]["title"] == [None, "Early"]
    assert json.dumps(mine)  # plain JSON all the way down


def test_advocates_read_one_visible_records_history_only(client, advocate, insider,
                                                         three_interactions, make_user, bearer,
                                                         other_group, make_interaction):
    target = three_interactions[0]
    assert client.get(f"{API}/audit?entity=interaction&entity_id={target.id}",
                      headers=advocate).status_code == 200
    assert_error(client.get(f"{API}/audit", headers=advocate), 403)
    stranger = bearer(make_user("advocate", other_group))
    assert_error(client.get(f"{API}/audit?entity=interaction&entity_id={target.id}",
                            headers=stranger), 404)
    assert_error(client.get(f"{API}/audit", headers=insider), 403)
