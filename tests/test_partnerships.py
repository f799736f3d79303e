"""Partnerships and their support entries: forms, validation, lists, and who sees what."""

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from governance.errors import Conflict, NotAllowed, ValidationFailed
from governance.extensions import db
from governance.partnerships import services
from governance.partnerships.models import Partnership, Support


@pytest.fixture
def app_config():
    return {"PER_PAGE": 2}


@pytest.fixture
def advocate(make_user, sponsor):
    return make_user("advocate", sponsor)


@pytest.fixture
def academic(make_org):
    return make_org("Lung Research Institute", "other", country="GB")


@pytest.fixture
def other_group(make_org):
    return make_org("Cystic Fibrosis Families", "patient_group", country="GB")


@pytest.fixture
def other_sponsor(make_org):
    return make_org("Northwind Therapeutics", "sponsor", country="US")


def partnership_form(sponsor, patient_group, **overrides) -> dict:
    data = {
        "title": "Trial design advisory programme",
        "sponsor_id": str(sponsor.id),
        "patient_group_id": str(patient_group.id),
        "kind": "research_investment",
        "status": "active",
        "started_on": "2025-01-15",
        "ended_on": "",
        "agreement_signed_on": "2025-01-10",
        "ip_terms_agreed": "y",
        "data_sharing_terms": "Aggregate data only, shared both ways.",
        "independence_measures": "The group has four industry funders.",
        "policy_reference": "SOP-PE-004 v2",
        "evaluation": "",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def support_form(**overrides) -> dict:
    data = {"recipient_id": "", "paid_on": "2025-03-01", "kind": "grant", "amount": "12500.00",
            "currency": "EUR", "description": "Unrestricted grant for the patient registry."}
    data.update(overrides)
    return data


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


# --- partnerships -----------------------------------------------------------------------------


def test_advocate_records_a_partnership_of_their_organisation(
        client, log_in, advocate, sponsor, patient_group, academic):
    log_in(advocate)
    assert client.get("/partnerships/new").status_code == 200
    response = client.post("/partnerships/new", data=partnership_form(
        sponsor, patient_group, other_organisation_ids=[str(academic.id)]))
    assert response.status_code == 302
    partnership = db.session.scalars(select(Partnership)).one()
    assert partnership.sponsor_id == sponsor.id
    assert partnership.patient_group_id == patient_group.id
    assert [o.name for o in partnership.other_organisations] == ["Lung Research Institute"]
    assert partnership.ip_terms_agreed is True
    assert partnership.started_on == date(2025, 1, 15)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    for text in ("Helix Pharma", "Rare Lung Alliance", "Lung Research Institute",
                 "Research investment", "SOP-PE-004 v2", "The group has four industry funders",
                 "WHAT the relationship", "Interactions", "Support", "Attachments"):
        assert text in page


@pytest.mark.parametrize(("overrides", "field", "message"), [
    ({"title": ""}, "title", "This field is required."),
    ({"sponsor_id": ""}, "sponsor_id", "This field is required."),
    ({"ended_on": "2024-12-31"}, "ended_on", "Cannot be before the start date (2025-01-15)."),
    ({"kind": "joint_venture"}, "kind", "Must be one of: experiential, content_engagement"),
    ({"status": "paused"}, "status", "Must be one of: proposed, active, closed."),
    ({"started_on": "15/01/2025"}, "started_on", "Not a valid date value."),
    ({"sponsor_id": "999"}, "sponsor_id", "No organisation with id 999."),
    ({"sponsor_id": "abc"}, "sponsor_id", "Not a valid integer."),
    ({"other_organisation_ids": ["999"]}, "other_organisation_ids",
     "No organisation with id 999."),
])
def test_bad_partnership_values_are_refused_on_their_field_and_nothing_is_saved(
        client, log_in, advocate, sponsor, patient_group, overrides, field, message):
    log_in(advocate)
    response = client.post("/partnerships/new",
                           data=partnership_form(sponsor, patient_group, **overrides))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert f'id="{field}-error"' in page, page
    assert message in page
    assert count(Partnership) == 0


def test_a_sponsor_must_be_a_sponsor_and_a_patient_group_a_patient_group(
        client, log_in, sponsor, patient_group, make_user):
    log_in(make_user("compliance"))
    swapped = partnership_form(patient_group, sponsor)
    response = client.post("/partnerships/new", data=swapped)
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Organisation “Rare Lung Alliance” is a patient_group, not a sponsor." in page
    assert "Organisation “Helix Pharma” is a sponsor, not a patient_group." in page
    assert count(Partnership) == 0


def test_the_service_names_the_field_of_a_wrong_party(app, compliance_user, patient_group,
                                                      other_group):
    with pytest.raises(ValidationFailed) as error:
        services.create_partnership({"title": "X", "sponsor_id": patient_group.id,
                                     "patient_group_id": other_group.id, "kind": "advocacy"},
                                    compliance_user)
    assert error.value.fields == {
        "sponsor_id": ["Organisation “Rare Lung Alliance” is a patient_group, not a sponsor."]}
    assert count(Partnership) == 0


def test_the_input_schemas_are_shared_and_refuse_unknown_fields(app, compliance_user, sponsor,
                                                                patient_group):
    from governance.partnerships.services import PartnershipInput, SupportInput

    assert "other_organisation_ids" in PartnershipInput().fields
    assert "recipient_id" in SupportInput().fields
    with pytest.raises(ValidationFailed) as error:
        services.create_partnership({"title": "X", "sponsor_id": sponsor.id,
                                     "patient_group_id": patient_group.id, "kind": "advocacy",
                                     "budget": "lots"}, compliance_user)
    assert error.value.fields == {"budget": ["Unknown field."]}


def test_advocate_cannot_record_a_partnership_between_other_organisations(
        client, log_in, advocate, other_sponsor, other_group):
    log_in(advocate)
    response = client.post("/partnerships/new", data=partnership_form(other_sponsor, other_group))
    assert response.status_code == 422
    assert "You can record only partnerships your own organisation is a party of." in \
        response.get_data(as_text=True)
    assert count(Partnership) == 0


def test_editing_re_validates_and_keeps_the_version(client, log_in, advocate, sponsor,
                                                    patient_group, make_partnership):
    partnership = make_partnership(title="Registry")
    log_in(advocate)
    assert "Registry" in client.get(f"/partnerships/{partnership.id}/edit").get_data(
        as_text=True)
    good = partnership_form(sponsor, patient_group, title="Registry",
                            version=str(partnership.version), reason="Agreement signed")
    bad = client.post(f"/partnerships/{partnership.id}/edit",
                      data=good | {"started_on": "2025-06-01", "ended_on": "2025-05-01"})
    assert bad.status_code == 422
    db.session.expire_all()
    assert db.session.get(Partnership, partnership.id).started_on == date(2024, 1, 1)
    assert client.post(f"/partnerships/{partnership.id}/edit", data=good).status_code == 302
    db.session.expire_all()
    saved = db.session.get(Partnership, partnership.id)
    assert saved.agreement_signed_on == date(2025, 1, 10) and saved.kind == "research_investment"
    stale = client.post(f"/partnerships/{partnership.id}/edit", data=good | {"title": "Late"})
    assert stale.status_code == 409
    db.session.expire_all()
    assert db.session.get(Partnership, partnership.id).title == "Registry"


def test_void_needs_a_reason_and_nothing_hanging_on_the_partnership(
        client, log_in, make_user, make_partnership, patient_group):
    log_in(make_user("compliance"))
    with_support = make_partnership(title="Funded")
    db.session.add(Support(partnership_id=with_support.id, recipient_id=patient_group.id,
                           paid_on=date(2025, 2, 1), kind="grant", amount=Decimal("100"),
                           currency="EUR", description="Grant"))
    db.session.commit()
    refused = client.post(f"/partnerships/{with_support.id}/void", data={"reason": "error"})
    assert refused.status_code == 409
    assert "1 support entry" in refused.get_data(as_text=True)
    empty = make_partnership(title="Entered twice")
    assert client.post(f"/partnerships/{empty.id}/void", data={"reason": ""}).status_code == 422
    assert client.post(f"/partnerships/{empty.id}/void",
                       data={"reason": "Duplicate of Funded"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Partnership, empty.id).void_reason == "Duplicate of Funded"
    listing = client.get("/partnerships/").get_data(as_text=True)
    assert "Entered twice" not in listing and "Funded" in listing


def test_the_list_filters_by_status_kind_organisation_and_search_and_paginates(
        client, log_in, make_user, make_partnership, other_sponsor, other_group):
    log_in(make_user("auditor"))
    make_partnership(title="Alpha registry", kind="research_investment")
    make_partnership(title="Beta content", kind="content_engagement", status="proposed")
    make_partnership(title="Gamma advocacy", kind="advocacy", status="closed")
    make_partnership(title="Delta tour", sponsor_id=other_sponsor.id,
                     patient_group_id=other_group.id, kind="experiential")

    first = client.get("/partnerships/").get_data(as_text=True)
    assert "Page 1 of 2 (4 in all)" in first and "Alpha registry" in first
    assert "Gamma advocacy" not in first
    second = client.get("/partnerships/?page=2").get_data(as_text=True)
    assert "Gamma advocacy" in second and "Alpha registry" not in second
    active = client.get("/partnerships/?status=active").get_data(as_text=True)
    assert "Alpha registry" in active and "Beta content" not in active
    kind = client.get("/partnerships/?kind=advocacy").get_data(as_text=True)
    assert "Gamma advocacy" in kind and "Alpha registry" not in kind
    by_org = client.get(f"/partnerships/?organisation_id={other_group.id}").get_data(
        as_text=True)
    assert "Delta tour" in by_org and "Alpha registry" not in by_org
    search = client.get("/partnerships/?q=CONTENT").get_data(as_text=True)
    assert "Beta content" in search and "Delta tour" not in search


def test_partner_sees_only_their_partnerships_and_gets_404_elsewhere(
        client, log_in, make_user, make_partnership, patient_group, other_sponsor, other_group):
    own = make_partnership(title="Ours")
    foreign = make_partnership(title="Theirs", sponsor_id=other_sponsor.id,
                               patient_group_id=other_group.id)
    log_in(make_user("partner", patient_group))
    listing = client.get("/partnerships/").get_data(as_text=True)
    assert "Ours" in listing and "Theirs" not in listing
    assert client.get(f"/partnerships/{own.id}").status_code == 200
    assert client.get(f"/partnerships/{foreign.id}").status_code == 404
    assert client.get("/partnerships/999999").status_code == 404
    assert client.get(f"/partnerships/{own.id}/edit").status_code == 403
    assert client.get("/partnerships/new").status_code == 403


def test_advocate_gets_404_for_partnerships_of_other_organisations(
        client, log_in, advocate, make_partnership, other_sponsor, other_group):
    foreign = make_partnership(title="Theirs", sponsor_id=other_sponsor.id,
                               patient_group_id=other_group.id)
    log_in(advocate)
    for path in (f"/partnerships/{foreign.id}", f"/partnerships/{foreign.id}/edit",
                 f"/partnerships/{foreign.id}/void", f"/partnerships/{foreign.id}/supports/new"):
        assert client.get(path).status_code == 404, path
    with pytest.raises(NotAllowed):
        services.update_partnership(foreign, {"title": "Mine now"}, advocate)


def test_every_change_re_evaluates_the_partnership(app, monkeypatch, compliance_user, sponsor,
                                                   patient_group):
    import governance.rules.evaluation as rules

    seen = []
    monkeypatch.setattr(rules, "evaluate_partnership", lambda p: seen.append(p.id))
    values = {"title": "X", "sponsor_id": sponsor.id, "patient_group_id": patient_group.id,
              "kind": "advocacy"}
    partnership = services.create_partnership(values, compliance_user)
    services.update_partnership(partnership, {"status": "active"}, compliance_user)
    support = services.record_support(
        {"partnership_id": partnership.id, "recipient_id": patient_group.id,
         "paid_on": "2025-01-01", "kind": "grant", "amount": "10", "currency": "EUR",
         "description": "Grant"}, compliance_user)
    services.update_support(support, {"amount": "20"}, compliance_user)
    services.void_support(support, compliance_user, "Entered in error")
    services.void_partnership(partnership, compliance_user, "Entered in error")
    assert seen == [partnership.id] * 6


def test_partnership_values_round_trip(app, compliance_user, sponsor, patient_group, academic):
    partnership = services.create_partnership(
        {"title": "X", "sponsor_id": sponsor.id, "patient_group_id": patient_group.id,
         "kind": "advocacy", "other_organisation_ids": [academic.id]}, compliance_user)
    values = services.partnership_values(partnership)
    assert values["other_organisation_ids"] == [academic.id]
    services.update_partnership(partnership, values, compliance_user)
    with pytest.raises(Conflict):
        services.update_partnership(partnership, {"title": "Y"}, compliance_user,
                                    expected_version=partnership.version - 1)


# --- support ----------------------------------------------------------------------------------


def test_advocate_records_support_and_the_partner_is_asked_to_confirm(
        client, log_in, advocate, make_partnership, patient_group):
    partnership = make_partnership(agreement_signed_on=date(2024, 1, 1))
    log_in(advocate)
    form = client.get(f"/partnerships/{partnership.id}/supports/new").get_data(as_text=True)
    assert "Rare Lung Alliance" in form
    response = client.post(f"/partnerships/{partnership.id}/supports/new",
                           data=support_form(recipient_id=str(patient_group.id)))
    assert response.status_code == 302
    support = db.session.scalars(select(Support)).one()
    assert support.amount == Decimal("12500.00") and support.currency == "EUR"
    assert support.confirmed_by_partner == "pending"
    page = client.get(f"/partnerships/{partnership.id}").get_data(as_text=True)
    assert "EUR 12,500.00" in page and "Awaiting partner" in page


@pytest.mark.parametrize(("overrides", "field", "message"), [
    ({"amount": "12.5x"}, "amount", "Not a valid number."),
    ({"amount": "-10"}, "amount", "Must be 0 or more."),
    ({"amount": "10.005"}, "amount", "Use at most 2 decimal places."),
    ({"amount": "1,000"}, "amount", "Not a valid number."),
    ({"amount": ""}, "amount", "only in-kind support may be left unvalued"),
    ({"kind": "in_kind", "amount": "", "description": ""}, "description",
     "This field is required."),
    ({"kind": "bribe"}, "kind", "Must be one of: grant, donation, sponsorship, in_kind"),
    ({"currency": ""}, "currency", "This field is required."),
    ({"currency": "ZZZ"}, "currency", "ZZZ is not an ISO 4217 currency code."),
    ({"currency": "EURO"}, "currency", "three-letter ISO 4217 currency code"),
    ({"paid_on": ""}, "paid_on", "Enter the date the support was paid or provided."),
    ({"description": "  "}, "description", "This field is required."),
    ({"recipient_id": "999"}, "recipient_id", "No organisation with id 999."),
])
def test_bad_support_values_are_refused_on_their_field_and_nothing_is_saved(
        client, log_in, advocate, make_partnership, patient_group, overrides, field, message):
    partnership = make_partnership()
    log_in(advocate)
    data = support_form(recipient_id=str(patient_group.id)) | overrides
    response = client.post(f"/partnerships/{partnership.id}/supports/new", data=data)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert f'id="{field}-error"' in page, page
    assert message in page
    assert count(Support) == 0


def test_in_kind_support_may_be_unvalued_when_described(client, log_in, advocate,
                                                        make_partnership, patient_group):
    partnership = make_partnership()
    log_in(advocate)
    response = client.post(f"/partnerships/{partnership.id}/supports/new", data=support_form(
        recipient_id=str(patient_group.id), kind="in_kind", amount="",
        description="Meeting rooms and catering for the annual patient conference."))
    assert response.status_code == 302
    assert db.session.scalars(select(Support)).one().amount is None


def test_the_recipient_must_be_a_party_and_not_the_sponsor(
        app, compliance_user, make_partnership, sponsor, other_group, academic):
    partnership = make_partnership(other_organisations=[academic])
    values = {"partnership_id": partnership.id, "paid_on": "2025-02-01", "kind": "grant",
              "amount": "100", "currency": "GBP", "description": "Grant"}
    with pytest.raises(ValidationFailed) as outsider:
        services.record_support(values | {"recipient_id": other_group.id}, compliance_user)
    assert outsider.value.fields == {"recipient_id": [
        "Cystic Fibrosis Families is not a party of the partnership “Lung research "
        "partnership”."]}
    with pytest.raises(ValidationFailed) as giver:
        services.record_support(values | {"recipient_id": sponsor.id}, compliance_user)
    assert "is the sponsor, who gives the support" in giver.value.fields["recipient_id"][0]
    services.record_support(values | {"recipient_id": academic.id}, compliance_user)
    assert count(Support) == 1


def test_support_on_a_voided_or_unknown_partnership_is_refused(app, compliance_user,
                                                               patient_group):
    with pytest.raises(ValidationFailed) as error:
        services.record_support({"partnership_id": 999, "recipient_id": patient_group.id,
                                 "paid_on": "2025-02-01", "kind": "grant", "amount": "1",
                                 "currency": "EUR", "description": "x"}, compliance_user)
    assert error.value.fields == {"partnership_id": ["No partnership with this id."]}


def test_changing_a_confirmed_fact_asks_the_partner_again(app, compliance_user,
                                                          make_partnership, patient_group):
    partnership = make_partnership()
    support = services.record_support(
        {"partnership_id": partnership.id, "recipient_id": patient_group.id,
         "paid_on": "2025-02-01", "kind": "grant", "amount": "100.00", "currency": "EUR",
         "description": "Grant"}, compliance_user)
    support.confirmed_by_partner = "confirmed"
    support.confirmation_note = "Received"
    db.session.commit()
    services.update_support(support, {"description": "Grant"}, compliance_user)
    assert support.confirmed_by_partner == "confirmed"
    services.update_support(support, {"amount": "150"}, compliance_user, reason="Typo")
    assert support.confirmed_by_partner == "pending" and support.confirmation_note is None
    assert support.amount == Decimal("150.00")
    with pytest.raises(ValidationFailed) as moved:
        services.update_support(support, {"partnership_id": 999}, compliance_user)
    assert "stays with its partnership" in moved.value.fields["partnership_id"][0]


def test_support_is_edited_and_voided_through_the_pages(client, log_in, advocate,
                                                        make_partnership, patient_group):
    partnership = make_partnership()
    support = Support(partnership_id=partnership.id, recipient_id=patient_group.id,
                      paid_on=date(2025, 2, 1), kind="grant", amount=Decimal("100"),
                      currency="EUR", description="Grant")
    db.session.add(support)
    db.session.commit()
    log_in(advocate)
    form = client.get(f"/partnerships/supports/{support.id}/edit").get_data(as_text=True)
    assert 'value="100.00"' in form
    bad = client.post(f"/partnerships/supports/{support.id}/edit",
                      data=support_form(recipient_id=str(patient_group.id), amount="abc",
                                        version=str(support.version)))
    assert bad.status_code == 422
    db.session.expire_all()
    assert db.session.get(Support, support.id).amount == Decimal("100.00")
    good = client.post(f"/partnerships/supports/{support.id}/edit", data=support_form(
        recipient_id=str(patient_group.id), amount="250.50", version=str(support.version)))
    assert good.status_code == 302
    db.session.expire_all()
    assert db.session.get(Support, support.id).amount == Decimal("250.50")
    assert client.post(f"/partnerships/supports/{support.id}/void",
                       data={"reason": "Paid by the affiliate instead"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Support, support.id).is_void
    assert "250.50" not in client.get("/partnerships/supports").get_data(as_text=True)


def add_support(partnership, recipient, paid_on, kind="grant", amount="100", currency="EUR",
                description="Support"):
    support = Support(partnership_id=partnership.id, recipient_id=recipient.id, paid_on=paid_on,
                      kind=kind, amount=Decimal(amount) if amount else None, currency=currency,
                      description=description)
    db.session.add(support)
    db.session.commit()
    return support


def test_the_support_list_filters_by_partnership_recipient_year_and_kind(
        client, log_in, make_user, make_partnership, patient_group, academic, other_sponsor,
        other_group):
    first = make_partnership(title="Registry", other_organisations=[academic])
    second = make_partnership(title="Tour", sponsor_id=other_sponsor.id,
                              patient_group_id=other_group.id)
    add_support(first, patient_group, date(2024, 5, 1), description="Registry grant 2024")
    add_support(first, patient_group, date(2025, 5, 1), amount="200",
                description="Registry grant 2025")
    add_support(first, academic, date(2025, 6, 1), kind="contracted_service", amount="50.25",
                description="Statistics service")
    add_support(second, other_group, date(2025, 7, 1), kind="in_kind", amount=None,
                description="Venue for the tour")
    log_in(make_user("compliance"))

    def listing(query=""):
        return client.get(f"/partnerships/supports{query}").get_data(as_text=True)

    everything = listing()
    assert "Page 1 of 2 (4 in all)" in everything
    assert "Venue for the tour" in everything and "Registry grant 2024" not in everything
    assert "Registry grant 2024" in listing("?page=2")
    by_partnership = listing(f"?partnership_id={second.id}")
    assert "Venue for the tour" in by_partnership and "Registry grant" not in by_partnership
    by_recipient = listing(f"?recipient_id={academic.id}")
    assert "Statistics service" in by_recipient and "Registry grant" not in by_recipient
    by_year = listing("?year=2025&kind=grant")
    assert "Registry grant 2025" in by_year and "Registry grant 2024" not in by_year
    assert "Statistics service" not in by_year
    assert "EUR 200.00" in by_year
    totals = listing(f"?partnership_id={first.id}")
    assert "EUR 350.25" in totals


def test_partner_sees_only_support_of_their_partnerships(
        client, log_in, make_user, make_partnership, patient_group, other_sponsor, other_group):
    own = make_partnership(title="Ours")
    foreign = make_partnership(title="Theirs", sponsor_id=other_sponsor.id,
                               patient_group_id=other_group.id)
    add_support(own, patient_group, date(2025, 1, 1), description="Our grant")
    hidden = add_support(foreign, other_group, date(2025, 1, 1), description="Their grant")
    log_in(make_user("partner", patient_group))
    listing = client.get("/partnerships/supports").get_data(as_text=True)
    assert "Our grant" in listing and "Their grant" not in listing
    filtered = client.get(f"/partnerships/supports?partnership_id={foreign.id}").get_data(
        as_text=True)
    assert "Their grant" not in filtered
    assert client.get(f"/partnerships/supports/{hidden.id}/edit").status_code == 403
    assert client.post(f"/partnerships/{own.id}/supports/new",
                       data=support_form(recipient_id=str(patient_group.id))).status_code == 403


def test_advocate_cannot_touch_support_of_other_partnerships(
        client, log_in, advocate, make_partnership, other_sponsor, other_group):
    foreign = make_partnership(title="Theirs", sponsor_id=other_sponsor.id,
                               patient_group_id=other_group.id)
    hidden = add_support(foreign, other_group, date(2025, 1, 1))
    log_in(advocate)
    assert client.get(f"/partnerships/supports/{hidden.id}/edit").status_code == 404
    assert client.post(f"/partnerships/supports/{hidden.id}/void",
                       data={"reason": "x"}).status_code == 404
    assert client.get("/partnerships/supports/999999/edit").status_code == 404
    db.session.expire_all()
    assert not db.session.get(Support, hidden.id).is_void
