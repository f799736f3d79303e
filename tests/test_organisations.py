"""Organisations: the form, its validation, the list, and who may do what."""

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from governance.audit import AuditEvent
from governance.errors import ValidationFailed
from governance.extensions import db
from governance.organisations import services
from governance.organisations.models import Organisation

GOOD = {
    "name": "Pulmonary Fibrosis Trust",
    "kind": "patient_group",
    "country": "ie",
    "website": "https://pf-trust.example.org",
    "disease_areas": "pulmonary fibrosis, sarcoidosis\nlung transplant",
    "annual_income": "250000.50",
    "income_currency": "EUR",
    "methodology_note": "",
}


@pytest.fixture
def app_config():
    return {"PER_PAGE": 3}


@pytest.fixture
def compliance(make_user, log_in):
    user = make_user("compliance")
    log_in(user)
    return user


def organisation_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Organisation))


def test_compliance_adds_an_organisation_and_sees_it(client, compliance):
    response = client.post("/organisations/new", data=GOOD)
    assert response.status_code == 302
    organisation = db.session.scalar(select(Organisation).where(
        Organisation.name == "Pulmonary Fibrosis Trust"))
    assert organisation.kind == "patient_group"
    assert organisation.country == "IE"
    assert organisation.disease_areas == ["pulmonary fibrosis", "sarcoidosis", "lung transplant"]
    assert organisation.annual_income == Decimal("250000.50")
    assert organisation.income_currency == "EUR"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Pulmonary Fibrosis Trust" in page and "EUR 250,000.50" in page
    assert "pulmonary fibrosis, sarcoidosis, lung transplant" in page


@pytest.mark.parametrize(("changes", "field_message"), [
    ({"name": ""}, "This field is required."),
    ({"name": "   "}, "This field is required."),
    ({"kind": "charity"}, "Must be one of: sponsor, patient_group, other."),
    ({"country": "XX"}, "two-letter ISO 3166 country code"),
    ({"country": "GBR"}, "two-letter ISO 3166 country code"),
    ({"website": "ftp://files.example.org"}, "starting with http:// or https://"),
    ({"website": "javascript:alert(1)"}, "starting with http:// or https://"),
    ({"annual_income": "-5"}, "Must be 0 or more."),
    ({"annual_income": "12.5x"}, "Not a valid number."),
    ({"annual_income": "10.555"}, "Use at most 2 decimal places."),
    ({"income_currency": ""}, "Give the currency of the annual income."),
    ({"income_currency": "EURO"}, "ISO 4217"),
    ({"income_currency": "ABC"}, "ABC is not an ISO 4217 currency code."),
])
def test_bad_organisation_values_are_refused_on_their_field_and_nothing_is_saved(
        client, compliance, changes, field_message):
    before = organisation_count()
    response = client.post("/organisations/new", data=GOOD | changes)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Nothing was saved" in page
    assert field_message in page
    field = next(iter(changes))
    assert f'id="{field}-error"' in page
    assert organisation_count() == before


def test_an_organisation_name_is_unique_whatever_its_case(client, compliance, make_org):
    make_org("Helix Pharma", "sponsor")
    response = client.post("/organisations/new", data=GOOD | {"name": "helix  PHARMA"})
    assert response.status_code == 422
    assert "Another organisation is already called “Helix Pharma”" in response.get_data(
        as_text=True)
    assert organisation_count() == 1


def test_the_service_accepts_disease_areas_as_a_list_or_text(app, compliance_user):
    from_list = services.create_organisation(
        {"name": "A", "kind": "other", "disease_areas": ["rare disease", " rare  disease "]},
        compliance_user)
    from_text = services.create_organisation(
        {"name": "B", "kind": "other", "disease_areas": "ALS; motor neurone disease"},
        compliance_user)
    assert from_list.disease_areas == ["rare disease"]
    assert from_text.disease_areas == ["ALS", "motor neurone disease"]


def test_the_input_schema_refuses_unknown_fields(app, compliance_user):
    with pytest.raises(ValidationFailed) as error:
        services.create_organisation({"name": "A", "kind": "other", "colour": "red"},
                                     compliance_user)
    assert "colour" in error.value.fields


def test_editing_keeps_the_audit_reason_and_checks_the_version(client, compliance, make_org):
    org = make_org("Rare Lung Alliance", "patient_group", country="GB")
    form = client.get(f"/organisations/{org.id}/edit").get_data(as_text=True)
    assert "Rare Lung Alliance" in form
    data = {"name": "Rare Lung Alliance", "kind": "patient_group", "country": "GB",
            "website": "", "disease_areas": "pulmonary fibrosis", "annual_income": "",
            "income_currency": "", "methodology_note": "", "reason": "Disease area added",
            "version": str(org.version)}
    assert client.post(f"/organisations/{org.id}/edit", data=data).status_code == 302
    db.session.expire_all()
    assert db.session.get(Organisation, org.id).disease_areas == ["pulmonary fibrosis"]
    event = db.session.scalars(select(AuditEvent).where(
        AuditEvent.entity == "organisation", AuditEvent.entity_id == org.id)
        .order_by(AuditEvent.id.desc())).first()
    assert event.action == "update" and event.reason == "Disease area added"
    stale = client.post(f"/organisations/{org.id}/edit", data=data | {"country": "IE"})
    assert stale.status_code == 409
    db.session.expire_all()
    assert db.session.get(Organisation, org.id).country == "GB"


def test_a_sponsor_of_a_partnership_cannot_become_a_patient_group(
        client, compliance, sponsor, make_partnership):
    make_partnership()
    data = {"name": sponsor.name, "kind": "patient_group", "country": "GB",
            "version": sponsor.version}
    response = client.post(f"/organisations/{sponsor.id}/edit", data=data)
    assert response.status_code == 422
    assert "must stay a sponsor" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Organisation, sponsor.id).kind == "sponsor"


def test_void_needs_a_reason_and_no_live_partnership(client, compliance, sponsor,
                                                     make_partnership, make_org):
    make_partnership()
    refused = client.post(f"/organisations/{sponsor.id}/void", data={"reason": "duplicate"})
    assert refused.status_code == 409
    assert "party of 1 partnership" in refused.get_data(as_text=True)
    spare = make_org("Duplicate Pharma", "sponsor")
    assert client.post(f"/organisations/{spare.id}/void", data={"reason": ""}).status_code == 422
    assert client.post(f"/organisations/{spare.id}/void",
                       data={"reason": "Entered twice"}).status_code == 302
    db.session.expire_all()
    voided = db.session.get(Organisation, spare.id)
    assert voided.is_void and voided.void_reason == "Entered twice"
    assert "Duplicate Pharma" not in client.get("/organisations/").get_data(as_text=True)


def test_the_list_filters_by_kind_country_and_name_and_paginates(client, compliance, make_org):
    for index in range(5):
        make_org(f"Sponsor {index}", "sponsor", country="US")
    make_org("Lung Group", "patient_group", country="GB")
    make_org("Heart Group", "patient_group", country="FR")

    first = client.get("/organisations/?kind=sponsor").get_data(as_text=True)
    assert "Page 1 of 2 (5 in all)" in first
    assert "Sponsor 0" in first and "Sponsor 3" not in first
    second = client.get("/organisations/?kind=sponsor&page=2").get_data(as_text=True)
    assert "Sponsor 3" in second and "Sponsor 4" in second and "Sponsor 0" not in second

    groups = client.get("/organisations/?kind=patient_group&country=gb").get_data(as_text=True)
    assert "Lung Group" in groups and "Heart Group" not in groups
    search = client.get("/organisations/?q=heart").get_data(as_text=True)
    assert "Heart Group" in search and "Lung Group" not in search
    newest_first = client.get("/organisations/?sort=-name").get_data(as_text=True)
    assert newest_first.index("Sponsor 4") < newest_first.index("Sponsor 3")


@pytest.mark.parametrize(("role", "method", "path", "status"), [
    ("partner", "get", "/organisations/", 403),
    ("partner", "get", "/organisations/{id}", 403),
    ("auditor", "get", "/organisations/{id}", 200),
    ("auditor", "get", "/organisations/new", 403),
    ("advocate", "get", "/organisations/new", 200),
    ("advocate", "get", "/organisations/{id}/edit", 403),
    ("advocate", "post", "/organisations/{id}/void", 403),
    ("admin", "get", "/organisations/{id}/edit", 200),
    ("compliance", "get", "/organisations/999999", 404),
])
def test_who_may_see_and_change_organisations(client, make_user, log_in, patient_group,
                                              role, method, path, status):
    user = make_user(role, organisation=patient_group if role in ("advocate", "partner")
                     else None)
    log_in(user)
    response = getattr(client, method)(path.format(id=patient_group.id),
                                       data={"reason": "x"} if method == "post" else None)
    assert response.status_code == status


def test_visitors_are_sent_to_log_in(client, patient_group):
    response = client.get(f"/organisations/{patient_group.id}")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_the_api_patches_an_organisation_with_its_version_and_reason(client, bearer, sponsor,
                                                                     make_org):
    from governance.auth import services as accounts

    officer = accounts.create_user("officer@helix.example", "Helix Officer", "compliance",
                                   "correct-horse-battery-2026", sponsor.name)
    outsider_org = make_org("Northwind Therapeutics", "sponsor", country="US")
    outsider = accounts.create_user("nw@northwind.example", "Northwind Officer", "compliance",
                                    "correct-horse-battery-2026", outsider_org.name)
    db.session.commit()
    headers = bearer(officer)
    url = f"/api/v1/organisations/{sponsor.id}"
    version = client.get(url, headers=headers).get_json()["version"]

    assert client.patch(url, headers=headers, json={"website": "https://helix.example"}
                        ).status_code == 428
    bad = client.patch(url, headers=headers, json={"version": version, "country": "Atlantis"})
    assert bad.status_code == 422 and "country" in bad.get_json()["error"]["fields"]
    changed = client.patch(url, headers=headers, json={
        "version": version, "website": "https://helix.example", "reason": "New site",
        "methodology_note": services_note()})
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["website"] == "https://helix.example"
    assert client.patch(url, headers=headers, json={"version": version, "website": "x"}
                        ).status_code == 409
    event = db.session.scalars(select(AuditEvent).where(
        AuditEvent.entity == "organisation", AuditEvent.entity_id == sponsor.id)
        .order_by(AuditEvent.id.desc())).first()
    assert event.reason == "New site"
    # Another sponsor's officer neither sees nor changes it.
    assert client.patch(url, headers=bearer(outsider), json={
        "version": version + 1, "website": "https://evil.example"}).status_code == 404
    db.session.refresh(sponsor)
    assert sponsor.website == "https://helix.example"


def services_note() -> str:
    from governance.reports.services import DEFAULT_METHODOLOGY

    return DEFAULT_METHODOLOGY
