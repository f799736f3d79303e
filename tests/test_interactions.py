"""Logging, editing and finding interactions across the six dimensions."""

from datetime import date

import pytest

from governance.errors import Conflict, ValidationFailed
from governance.extensions import db
from governance.interactions import services
from governance.interactions.models import Interaction

from .conftest import GOOD_INTERACTION


def count_interactions() -> int:
    return db.session.scalar(db.select(db.func.count(Interaction.id)))


def form_data(**overrides) -> dict:
    data = {k: (v.isoformat() if isinstance(v, date) else v)
            for k, v in GOOD_INTERACTION.items()}
    for key in ("product_specific",):
        data.pop(key)
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None and v is not False}


@pytest.fixture
def advocate(make_user, sponsor):
    return make_user("advocate", sponsor)


def test_advocate_logs_an_interaction_across_all_dimensions(client, log_in, advocate,
                                                            make_partnership):
    partnership = make_partnership()
    log_in(advocate)
    response = client.post("/interactions/new",
                           data=form_data(partnership_id=partnership.id))
    assert response.status_code == 302
    interaction = db.session.scalars(db.select(Interaction)).one()
    assert interaction.partnership_id == partnership.id
    assert interaction.organisation_id == advocate.organisation_id
    assert interaction.stages_represented == ["early", "intermediate", "late"]
    assert interaction.accommodations == ["step_free_access", "travel_support"]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    for heading in ("WHAT the relationship", "WHY the purpose", "WHEN the timing",
                    "WHO the participants", "HOW the structure", "WHERE the venue",
                    "Documentation"):
        assert heading in page


def test_form_groups_fields_by_dimension_with_good_practice_help(client, log_in, advocate):
    log_in(advocate)
    page = client.get("/interactions/new").get_data(as_text=True)
    assert page.count('<fieldset class="dimension">') == 8
    assert "Good practice: A clearly defined purpose, shared with the participants" in page


@pytest.mark.parametrize("overrides, field, message", [
    ({"title": ""}, "title", "This field is required"),
    ({"occurred_on": ""}, "occurred_on", "Enter the date it took place"),
    ({"patient_participants": "-3"}, "patient_participants", "0 or more"),
    ({"format": "picnic"}, "format", "Must be one of"),
    ({"venue_type": "castle"}, "venue_type", "Must be one of"),
    ({"stages_in_scope": ["everyone"]}, "stages_in_scope", "Each value must be one of"),
    ({"summary_recorded_on": "2025-03-01"}, "summary_recorded_on", "Cannot be before"),
    ({"product_specific": "y", "product": ""}, "product", "Name the product"),
])
def test_bad_input_is_reported_on_its_field_and_nothing_is_saved(
        client, log_in, advocate, overrides, field, message):
    log_in(advocate)
    response = client.post("/interactions/new", data=form_data(**overrides))
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert f'id="{field}-error"' in page
    assert message in page
    assert count_interactions() == 0


def test_purpose_shared_after_the_interaction_is_recorded(make_interaction):
    interaction = make_interaction(purpose_shared_on=date(2025, 3, 20))
    assert interaction.purpose_shared_on == date(2025, 3, 20)


def test_unknown_partnership_is_refused(make_interaction):
    with pytest.raises(ValidationFailed) as error:
        make_interaction(partnership_id=9999)
    assert "partnership_id" in error.value.fields


def test_edit_changes_the_record_and_keeps_the_rest(client, log_in, advocate, make_interaction):
    interaction = make_interaction(organisation_id=advocate.organisation_id)
    log_in(advocate)
    data = form_data(title="Renamed board", version=interaction.version)
    response = client.post(f"/interactions/{interaction.id}/edit", data=data)
    assert response.status_code == 302
    db.session.expire_all()
    edited = db.session.get(Interaction, interaction.id)
    assert edited.title == "Renamed board"
    assert edited.version == 2


def test_stale_edit_is_refused_as_changed_since_opened(make_interaction, compliance_user):
    interaction = make_interaction()
    opened_version = interaction.version
    services.update_interaction(interaction, {"title": "Someone else's edit"}, compliance_user)
    db.session.commit()
    with pytest.raises(Conflict, match="changed since you opened it"):
        services.update_interaction(interaction, {"title": "Mine"}, compliance_user,
                                    expected_version=opened_version)


def test_void_requires_a_reason_and_hides_the_record_from_lists(
        client, log_in, advocate, make_interaction):
    interaction = make_interaction(organisation_id=advocate.organisation_id)
    log_in(advocate)
    response = client.post(f"/interactions/{interaction.id}/void", data={"reason": ""})
    assert response.status_code == 422
    assert db.session.get(Interaction, interaction.id).voided_at is None
    client.post(f"/interactions/{interaction.id}/void", data={"reason": "duplicate"})
    assert interaction.title not in client.get("/interactions/").get_data(as_text=True)


@pytest.fixture
def listed(make_interaction, make_partnership, make_org):
    other_group = make_org("Parkinson's Voices", "patient_group")
    lung = make_partnership("Lung partnership")
    pd = make_partnership("PD partnership", patient_group_id=other_group.id)
    make_interaction(title="Lung board", partnership_id=lung.id, occurred_on=date(2025, 1, 10))
    make_interaction(title="Lung survey", partnership_id=lung.id, format="survey",
                     occurred_on=date(2025, 6, 1), purpose="Survey about inhaler "
                     "technique and daily burden of treatment for people")
    make_interaction(title="PD workshop", partnership_id=pd.id, format="workshop",
                     occurred_on=date(2025, 9, 1))
    return {"lung": lung, "pd": pd, "group": other_group}


@pytest.mark.parametrize("query, expected", [
    ("", {"Lung board", "Lung survey", "PD workshop"}),
    ("format=survey", {"Lung survey"}),
    ("date_from=2025-05-01&date_to=2025-08-31", {"Lung survey"}),
    ("q=inhaler", {"Lung survey"}),
    ("q=workshop", {"PD workshop"}),
])
def test_list_filters(client, log_in, compliance_user, listed, query, expected):
    log_in(compliance_user)
    page = client.get(f"/interactions/?{query}").get_data(as_text=True)
    shown = {t for t in ("Lung board", "Lung survey", "PD workshop") if t in page}
    assert shown == expected


def test_list_filters_by_partnership_and_organisation(client, log_in, compliance_user, listed):
    log_in(compliance_user)
    by_partnership = client.get(f"/interactions/?partnership_id={listed['pd'].id}")
    assert "PD workshop" in by_partnership.get_data(as_text=True)
    assert "Lung board" not in by_partnership.get_data(as_text=True)
    by_org = client.get(f"/interactions/?organisation_id={listed['group'].id}")
    assert "PD workshop" in by_org.get_data(as_text=True)
    assert "Lung survey" not in by_org.get_data(as_text=True)


def test_list_paginates_on_the_server(client, log_in, compliance_user, make_interaction):
    for n in range(30):
        make_interaction(title=f"Meeting {n:02d}", occurred_on=date(2025, 1, 1 + n % 28))
    log_in(compliance_user)
    first = client.get("/interactions/?sort=title").get_data(as_text=True)
    second = client.get("/interactions/?sort=title&page=2").get_data(as_text=True)
    assert "Meeting 00" in first and "Meeting 24" in first and "Meeting 25" not in first
    assert "Meeting 25" in second and "Meeting 29" in second
    assert "Page 1 of 2 (30 in all)" in first


def test_bad_filter_dates_are_ignored_with_a_message(client, log_in, compliance_user, listed):
    log_in(compliance_user)
    page = client.get("/interactions/?date_from=yesterday").get_data(as_text=True)
    assert "(ignored)" in page and "Lung board" in page
