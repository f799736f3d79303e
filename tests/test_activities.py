"""Engagement activities, the CTTI prioritisation method, comparison, coverage and exports."""

import csv
import html
import io
import re
import shutil
from datetime import date

import pytest
from pypdf import PdfReader

from governance.activities import services
from governance.activities.catalogue import catalogue_path, check_catalogue, current_catalogue
from governance.activities.models import ActivityRating, PrioritisationExercise
from governance.audit import history_of
from governance.errors import NotAllowed, ValidationFailed
from governance.extensions import db
from governance.pdf import data_only_fetcher
from tests.conftest import PASSWORD, login

NAME = "Phase 2 protocol – ABC-123"
# Ratings per side: code -> (benefit, investment). Against PATIENT_GROUP, SPONSOR gives:
# RP-01 and RP-05 pursue; TD-04 worth it if resourced; DP-02 the sponsor can offer; TC-01 the
# patient group can offer; TD-01 and RP-03 high value to both, investment to agree (near misses
# of pursue and of worth it); RR-02 nothing (moderate is not low: no offer).
SPONSOR = {
    "RP-01": ("high", "low"),
    "RP-05": ("high", "low"),
    "TD-01": ("high", "low"),
    "TD-04": ("high", "high"),
    "RP-03": ("high", "high"),
    "TC-01": ("high", "moderate"),
    "DP-02": ("low", "low"),
    "RR-02": ("moderate", "low"),
}
PATIENT_GROUP = {
    "RP-01": ("high", "low"),
    "RP-05": ("high", "low"),
    "TD-01": ("high", "moderate"),
    "TD-04": ("high", "high"),
    "RP-03": ("high", "moderate"),
    "TC-01": ("low", "high"),
    "DP-02": ("high", "low"),
    "RR-02": ("high", "low"),
}


@pytest.fixture
def partnership(make_partnership):
    return make_partnership()


@pytest.fixture
def sponsor_advocate(make_user, sponsor):
    return make_user("advocate", sponsor)


@pytest.fixture
def group_partner(make_user, patient_group):
    return make_user("partner", patient_group)


@pytest.fixture
def group_advocate(make_user, patient_group):
    return make_user("advocate", patient_group)


def fill(exercise, user, ratings, complete=True):
    services.select_activities(exercise, list(ratings), user)
    services.rate_activities(exercise, [
        {"activity_code": code, "benefit": benefit, "investment": investment}
        for code, (benefit, investment) in ratings.items()
    ], user)
    if complete:
        services.advance_to_matrix(exercise, user)
        services.complete_exercise(exercise, user)
    db.session.commit()
    return exercise


def rate_side(partnership, side, user, ratings, complete=True, name=NAME):
    return fill(services.start_exercise(partnership, side, name, user), user, ratings, complete)


def rating_form(entries, action="save"):
    """Form data of step 2: entries are (code, benefit, investment, extra dict)."""
    data = {action: "y"}
    for index, (code, benefit, investment, extra) in enumerate(entries):
        prefix = f"ratings-{index}-"
        data[prefix + "activity_code"] = code
        if benefit:
            data[prefix + "benefit"] = benefit
        if investment:
            data[prefix + "investment"] = investment
        for name, value in extra.items():
            data[prefix + name] = value
    return data


def page_text(response) -> str:
    return html.unescape(re.sub(r"\s+", " ", response.get_data(as_text=True)))


def ratings_of(exercise) -> dict:
    if exercise is None:
        return {}
    db.session.refresh(exercise)
    return {r.activity_code: (r.benefit, r.investment) for r in exercise.selected}


def side_ratings(partnership, side) -> dict:
    return ratings_of(services.exercise_for(partnership, side))


def url(exercise, step: str) -> str:
    return f"/prioritisation/{exercise.id}/{step}"


def exercise_count() -> int:
    return db.session.scalar(db.select(db.func.count()).select_from(PrioritisationExercise))


def section(text: str, start: str, end: str) -> str:
    return text.split(f'id="{start}"')[1].split(f'id="{end}"')[0]


# --- the catalogue ----------------------------------------------------------------------------


def test_catalogue_ships_24_activities_with_stable_codes_across_the_stages(app):
    catalogue = current_catalogue()
    codes = [activity.code for activity in catalogue.activities]
    assert len(codes) == 24 == len(set(codes))
    assert all(re.fullmatch(r"[A-Z]{2}-\d{2}", code) for code in codes)
    assert list(catalogue.stages) == ["research_planning", "trial_design", "trial_conduct",
                                      "regulatory_review", "dissemination"]
    assert {activity.stage for activity in catalogue.activities} == set(catalogue.stages)
    assert all(len(a.description.split()) >= 20 and a.example for a in catalogue.activities)
    assert check_catalogue(catalogue_path()) == []


def test_catalogue_page_lists_activities_by_stage(client, sponsor_advocate):
    login(client, sponsor_advocate)
    text = page_text(client.get("/activities"))
    for label in ("Research planning", "Trial design", "Trial conduct", "Regulatory review",
                  "Dissemination and post-approval"):
        assert label in text
    assert "RP-01" in text and "Review informed-consent documents" in text


def test_catalogue_check_reports_each_problem_readably(tmp_path):
    bad = tmp_path / "activities.toml"
    bad.write_text(
        'version = "x"\nsource = "test"\n'
        '[[stages]]\ncode = "trial_design"\nlabel = "Trial design"\n'
        '[[activities]]\ncode = "TD-01"\nstage = "trial_design"\nname = "A"\n'
        'description = "d"\n'
        '[[activities]]\ncode = "TD-01"\nstage = "moon"\nname = ""\ndescription = "d"\n'
        '[[activities]]\ncode = "ORG1-01"\nstage = "trial_design"\nname = "B"\n'
        'description = "d"\n'
    )
    problems = check_catalogue(bad)
    assert "activity TD-01: code is used twice." in problems
    assert "activity TD-01: stage must be one of trial_design." in problems
    assert "activity TD-01: 'name' is required." in problems
    assert any("ORG1-01" in p and "two capitals" in p for p in problems)


def test_organisation_adds_its_own_activity_under_a_namespaced_code(client, sponsor,
                                                                    sponsor_advocate):
    login(client, sponsor_advocate)
    response = client.post("/activities/custom", data={
        "custom-stage": "trial_conduct", "custom-name": "Peer buddy scheme",
        "custom-description": "Experienced participants support newcomers during the trial.",
    })
    assert response.status_code == 302
    code = f"ORG{sponsor.id}-01"
    assert services.unknown_activity_codes([code, "RP-01", "XX-99"]) == ["XX-99"]
    assert code in {a.code for a in services.all_activities()}
    assert code in page_text(client.get("/activities"))


def test_custom_activity_needs_a_known_stage_and_a_new_name(client, sponsor_advocate):
    login(client, sponsor_advocate)
    response = client.post("/activities/custom", data={
        "custom-stage": "moon", "custom-name": "Support recruitment",
        "custom-description": "Same as the catalogue's.",
    })
    assert response.status_code == 422
    text = page_text(response)
    assert "Must be one of: research_planning" in text
    assert "An activity with this name already exists" in text
    assert services.all_activities() == services.all_activities(organisation_ids=[])


def test_catalogue_update_never_overwrites_organisations_activities(app, tmp_path, sponsor,
                                                                   sponsor_advocate):
    row = services.add_custom_activity(sponsor.id, {
        "stage": "trial_design", "name": "Home nursing pilot",
        "description": "Nurses visit participants at home instead of site visits."},
        sponsor_advocate)
    db.session.commit()
    policies = tmp_path / "policies"
    policies.mkdir()
    shutil.copy(catalogue_path(), policies / "activities.toml")
    app.config["POLICIES_DIR"] = str(policies)
    updated = (policies / "activities.toml").read_text().replace(
        'name = "Support recruitment"', 'name = "Support recruitment and outreach"')
    (policies / "activities.toml").write_text(updated)
    by_code = services.activities_by_code()
    assert by_code["TC-01"].name == "Support recruitment and outreach"
    assert by_code[row.code].name == "Home nursing pilot"
    assert by_code[row.code].is_custom


def test_own_activity_added_in_step_one_belongs_to_that_side_and_is_chosen(
        client, partnership, patient_group, group_partner):
    exercise = services.start_exercise(partnership, "patient_group", NAME, group_partner)
    db.session.commit()
    login(client, group_partner)
    response = client.post(url(exercise, "identify/add"), data={
        "custom-stage": "trial_conduct", "custom-name": "Peer buddy scheme",
        "custom-description": "Experienced participants support newcomers."})
    assert response.status_code == 302
    code = f"ORG{patient_group.id}-01"
    assert ratings_of(exercise) == {code: (None, None)}
    assert "Peer buddy scheme" in page_text(client.get(url(exercise, "identify")))


def test_withdrawn_own_activity_is_no_longer_offered_but_keeps_its_name(
        client, partnership, sponsor, sponsor_advocate, compliance_user):
    row = services.add_custom_activity(sponsor.id, {
        "stage": "trial_design", "name": "Home nursing pilot",
        "description": "Nurses visit participants at home."}, sponsor_advocate)
    rate_side(partnership, "sponsor", sponsor_advocate, {row.code: ("high", "low")})
    login(client, sponsor_advocate)
    response = client.post(f"/activities/custom/{row.id}/withdraw",
                           data={"withdraw-reason": "Replaced by the catalogue's TD-06"})
    assert response.status_code == 302
    assert row.code not in {a.code for a in services.all_activities()}
    assert services.unknown_activity_codes([row.code]) == []
    assert services.activity_name(row.code) == "Home nursing pilot"
    assert history_of("custom_activity", row.id)[-1].action == "void"
    exercise = services.start_exercise(partnership, "patient_group", NAME, compliance_user)
    with pytest.raises(ValidationFailed) as refused:
        services.select_activities(exercise, [row.code], compliance_user)
    assert "cannot be chosen here" in refused.value.fields["activity_codes"][0]


def test_interaction_with_an_unknown_activity_code_is_refused(app, compliance_user, sponsor):
    from governance.interactions.services import validate_interaction
    from tests.conftest import GOOD_INTERACTION

    values = dict(GOOD_INTERACTION, organisation_id=sponsor.id,
                  activity_codes=["RP-01", "ZZ-42"])
    with pytest.raises(ValidationFailed) as refused:
        validate_interaction(values, compliance_user)
    assert refused.value.fields["activity_codes"] == ["Unknown activity code: ZZ-42."]
    values["activity_codes"] = ["RP-01", "TD-04"]
    assert validate_interaction(values, compliance_user)["activity_codes"] == ["RP-01", "TD-04"]


# --- the three steps --------------------------------------------------------------------------


def test_advocate_names_an_exercise_identifies_rates_and_places_activities(
        client, partnership, sponsor_advocate):
    login(client, sponsor_advocate)
    new = f"/partnerships/{partnership.id}/prioritisation/sponsor/new"
    page = page_text(client.get(new))
    assert "Name of the exercise" in page and 'value="Lung research partnership"' in page

    response = client.post(new, data={"name": NAME, "activity_codes": ["RP-01", "TD-04"],
                                      "to_rating": "y"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/rate")
    exercise = services.exercise_for(partnership, "sponsor")
    assert exercise.name == NAME and exercise.partnership_id == partnership.id
    step2 = page_text(client.get(url(exercise, "rate")))
    assert "Share community priorities and unmet needs" in step2
    assert "Reach of the effect" in step2 and "Reputational risk" in step2

    response = client.post(url(exercise, "rate"), data=rating_form([
        ("RP-01", "high", "low", {"benefit_factors": ["reach", "reputation"],
                                  "investment_factors": ["staff_time"],
                                  "rationale": "Shapes every later study.",
                                  "implementation_notes": "Two listening sessions a year."}),
        ("TD-04", "moderate", "high", {}),
    ], action="to_matrix"))
    assert response.status_code == 302 and response.headers["Location"].endswith("/matrix")
    db.session.refresh(exercise)
    rp01 = next(r for r in exercise.selected if r.activity_code == "RP-01")
    assert (rp01.benefit, rp01.investment) == ("high", "low")
    assert rp01.benefit_factors == ["reach", "reputation"]
    assert rp01.rationale == "Shapes every later study."
    assert exercise.step == 3

    step3 = page_text(client.get(url(exercise, "matrix")))
    assert "Pursue: high benefit for a low investment" in step3
    assert "Unlikely to be worth the investment" in step3
    assert 'alt="Priority matrix of the sponsor side' in step3
    assert "Two listening sessions a year." in step3

    response = client.post(url(exercise, "complete"))
    assert response.status_code == 302
    db.session.refresh(exercise)
    assert exercise.status == "completed" and exercise.completed_by_id == sponsor_advocate.id


def test_draft_is_saved_and_resumed_at_the_step_reached(client, partnership, group_partner):
    login(client, group_partner)
    client.post(f"/partnerships/{partnership.id}/prioritisation/patient_group/new",
                data={"name": "Registry study", "activity_codes": ["RP-03", "DP-02"],
                      "save": "y"})
    exercise = services.exercise_for(partnership, "patient_group")
    response = client.post(url(exercise, "rate"), data=rating_form([
        ("RP-03", "high", None, {"rationale": "Our registry is our biggest asset."}),
    ]))
    assert response.status_code == 302 and response.headers["Location"].endswith("/rate")

    overview = page_text(client.get(f"/partnerships/{partnership.id}/prioritisation"))
    assert "Resume “Registry study” at step 2" in overview
    step2 = client.get(url(exercise, "rate")).get_data(as_text=True)
    assert "Our registry is our biggest asset." in step2
    assert re.search(r'value="high"[^>]*checked|checked[^>]*value="high"', step2)
    assert ratings_of(exercise) == {"RP-03": ("high", None), "DP-02": (None, None)}


def test_renaming_in_step_one_is_audited(client, partnership, sponsor_advocate):
    exercise = rate_side(partnership, "sponsor", sponsor_advocate, {"RP-01": ("high", "low")},
                         complete=False)
    login(client, sponsor_advocate)
    response = client.post(url(exercise, "identify"), data={
        "name": "Phase 3 programme", "activity_codes": ["RP-01"], "save": "y"})
    assert response.status_code == 302
    db.session.refresh(exercise)
    assert exercise.name == "Phase 3 programme"
    last = history_of("prioritisation_exercise", exercise.id)[-1]
    assert last.change_set["name"] == [NAME, "Phase 3 programme"]
    assert last.actor_id == sponsor_advocate.id


def test_matrix_needs_every_activity_rated_but_keeps_the_draft(client, partnership,
                                                             sponsor_advocate):
    exercise = rate_side(partnership, "sponsor", sponsor_advocate,
                         {"RP-01": ("high", "low"), "TD-04": (None, None)}, complete=False)
    login(client, sponsor_advocate)
    response = client.post(url(exercise, "rate"), data=rating_form([
        ("RP-01", "high", "low", {}), ("TD-04", None, "high", {})], action="to_matrix"))
    assert response.status_code == 422
    text = page_text(response)
    assert "Your ratings are saved as a draft." in text
    assert "Rate both benefit and investment before the matrix." in text
    assert ratings_of(exercise) == {"RP-01": ("high", "low"), "TD-04": (None, "high")}
    assert exercise.step == 2


def test_dropping_an_activity_keeps_its_rating_for_the_record(app, partnership,
                                                             sponsor_advocate):
    exercise = rate_side(partnership, "sponsor", sponsor_advocate,
                         {"RP-01": ("high", "low"), "TD-04": ("low", "high")}, complete=False)
    services.select_activities(exercise, ["RP-01"], sponsor_advocate)
    db.session.commit()
    dropped = db.session.scalars(db.select(ActivityRating).where(
        ActivityRating.activity_code == "TD-04")).one()
    assert dropped.is_void and dropped.benefit == "low"
    services.select_activities(exercise, ["RP-01", "TD-04"], sponsor_advocate)
    assert not dropped.is_void and dropped.investment == "high"


def test_moving_an_activity_in_the_matrix_changes_its_rating_and_is_audited(
        client, partnership, sponsor_advocate):
    exercise = rate_side(partnership, "sponsor", sponsor_advocate, SPONSOR, complete=False)
    services.advance_to_matrix(exercise, sponsor_advocate)
    db.session.commit()
    login(client, sponsor_advocate)
    response = client.post(url(exercise, "matrix"),
                           data={"activity_code": "TD-04", "cell": "moderate:low"})
    assert response.status_code == 302
    assert ratings_of(exercise)["TD-04"] == ("moderate", "low")
    rating = next(r for r in exercise.selected if r.activity_code == "TD-04")
    last = history_of("activity_rating", rating.id)[-1]
    assert last.action == "update"
    assert last.change_set["benefit"] == ["high", "moderate"]
    assert last.change_set["investment"] == ["high", "low"]
    assert last.reason.startswith("Moved in the matrix from benefit high / investment high")
    assert last.actor_id == sponsor_advocate.id


def test_completed_exercise_is_reopened_before_it_changes(client, partnership,
                                                         sponsor_advocate):
    exercise = rate_side(partnership, "sponsor", sponsor_advocate, SPONSOR)
    login(client, sponsor_advocate)
    response = client.post(url(exercise, "matrix"), data={"activity_code": "RP-01",
                                                          "cell": "low:high"})
    assert response.status_code == 409
    assert "Reopen it to change it" in page_text(response)
    assert ratings_of(exercise)["RP-01"] == ("high", "low")
    assert client.post(url(exercise, "reopen"),
                       data={"reason": "New trial added"}).status_code == 302
    assert client.post(url(exercise, "matrix"), data={"activity_code": "RP-01",
                                                      "cell": "low:high"}).status_code == 302
    assert ratings_of(exercise)["RP-01"] == ("low", "high")


def csrf_token_of(page) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.get_data(as_text=True))[1]


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}])
def test_every_step_works_with_csrf_protection_on(client, partnership, sponsor_advocate):
    token = csrf_token_of(client.get("/login"))
    client.post("/login", data={"email": sponsor_advocate.email, "password": PASSWORD,
                                "csrf_token": token})
    new = f"/partnerships/{partnership.id}/prioritisation/sponsor/new"
    refused = client.post(new, data={"name": NAME, "activity_codes": ["RP-01"]})
    assert refused.status_code == 400
    assert exercise_count() == 0

    token = csrf_token_of(client.get(new))
    assert client.post(new, data={"name": NAME, "activity_codes": ["RP-01"],
                                  "csrf_token": token}).status_code == 302
    exercise = services.exercise_for(partnership, "sponsor")
    data = rating_form([("RP-01", "high", "high", {})], action="to_matrix")
    data["csrf_token"] = csrf_token_of(client.get(url(exercise, "rate")))
    assert client.post(url(exercise, "rate"), data=data).status_code == 302
    token = csrf_token_of(client.get(url(exercise, "matrix")))
    assert client.post(url(exercise, "matrix"), data={
        "activity_code": "RP-01", "cell": "high:low", "csrf_token": token}).status_code == 302
    assert client.post(url(exercise, "complete"), data={"csrf_token": token}).status_code == 302
    assert ratings_of(exercise) == {"RP-01": ("high", "low")}
    assert exercise.is_completed


def test_old_single_exercise_urls_lead_to_the_sides_first_exercise(client, partnership,
                                                                  sponsor_advocate):
    login(client, sponsor_advocate)
    old = f"/partnerships/{partnership.id}/prioritisation/sponsor"
    response = client.get(f"{old}/identify")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(
        f"/partnerships/{partnership.id}/prioritisation/sponsor/new")
    assert client.get(f"{old}/matrix").status_code == 404

    first = rate_side(partnership, "sponsor", sponsor_advocate, SPONSOR, complete=False,
                      name="Prioritisation")
    rate_side(partnership, "sponsor", sponsor_advocate, SPONSOR, complete=False,
              name="Phase 3 programme")
    for step, target in (("identify", "identify"), ("rate", "rate"), ("matrix", "matrix"),
                         ("matrix.svg", "matrix.svg"), ("export.csv", "export.csv"),
                         ("complete", "matrix")):
        response = client.get(f"{old}/{step}")
        assert response.status_code == 302, step
        assert response.headers["Location"].endswith(url(first, target)), step
    response = client.post(f"{old}/matrix", data={"activity_code": "RP-01", "cell": "low:low"})
    assert response.status_code == 307
    assert response.headers["Location"].endswith(url(first, "matrix"))


# --- refused input --------------------------------------------------------------------------


def test_rating_outside_the_scale_is_refused_and_nothing_changes(client, partnership,
                                                                sponsor_advocate):
    exercise = rate_side(partnership, "sponsor", sponsor_advocate,
                         {"RP-01": ("moderate", "moderate"), "TD-01": ("low", "low")},
                         complete=False)
    login(client, sponsor_advocate)
    response = client.post(url(exercise, "rate"), data=rating_form([
        ("RP-01", "high", "low", {}), ("TD-01", "extreme", "low", {})]))
    assert response.status_code == 422
    text = page_text(response)
    assert "'extreme' is not on the scale; choose low, moderate or high." in text
    assert "nothing was saved" in text
    assert ratings_of(exercise) == {"RP-01": ("moderate", "moderate"), "TD-01": ("low", "low")}

    response = client.post(url(exercise, "matrix"), data={"activity_code": "RP-01",
                                                          "cell": "huge:low"})
    assert response.status_code == 422
    assert "'huge' is not on the scale" in page_text(response)
    assert ratings_of(exercise)["RP-01"] == ("moderate", "moderate")


def test_unknown_activity_code_is_refused_and_nothing_is_created(client, partnership,
                                                                sponsor_advocate):
    login(client, sponsor_advocate)
    response = client.post(f"/partnerships/{partnership.id}/prioritisation/sponsor/new",
                           data={"name": NAME, "activity_codes": ["RP-01", "XX-99"]})
    assert response.status_code == 422
    assert "Unknown activity code: XX-99." in page_text(response)
    assert exercise_count() == 0


def test_exercise_without_a_name_is_refused_on_its_field_and_nothing_is_created(
        client, partnership, sponsor_advocate):
    login(client, sponsor_advocate)
    response = client.post(f"/partnerships/{partnership.id}/prioritisation/sponsor/new",
                           data={"name": "  ", "activity_codes": ["RP-01"]})
    assert response.status_code == 422
    text = page_text(response)
    assert re.search(r'id="name-error"[^>]*>This field is required\.', text)
    assert 'id="pick-RP-01" checked' in text  # what was ticked stays ticked
    assert exercise_count() == 0


def test_a_name_a_side_already_uses_is_refused_whatever_its_case_and_nothing_changes(
        client, partnership, sponsor_advocate, group_partner):
    first = rate_side(partnership, "sponsor", sponsor_advocate, {"RP-01": ("high", "low")},
                      complete=False)
    login(client, sponsor_advocate)
    response = client.post(f"/partnerships/{partnership.id}/prioritisation/sponsor/new",
                           data={"name": NAME.upper(), "activity_codes": ["TD-01"]})
    assert response.status_code == 422
    assert (f"An exercise named “{NAME.upper()}” already exists among this partnership's "
            "sponsor side") in page_text(response)
    assert exercise_count() == 1

    other = rate_side(partnership, "sponsor", sponsor_advocate, {"TD-01": ("high", "low")},
                      complete=False, name="Phase 3 programme")
    response = client.post(url(other, "identify"), data={"name": NAME,
                                                         "activity_codes": ["DP-02"]})
    assert response.status_code == 422
    assert "already exists" in page_text(response)
    assert ratings_of(other) == {"TD-01": ("high", "low")}
    db.session.refresh(other)
    assert other.name == "Phase 3 programme" and first.name == NAME
    # the other side may use the same name: that is how a pair is matched
    assert rate_side(partnership, "patient_group", group_partner, {"RP-01": ("high", "low")},
                     complete=False).name == NAME


def test_unknown_factor_is_refused(app, partnership, sponsor_advocate):
    exercise = rate_side(partnership, "sponsor", sponsor_advocate, {"RP-01": ("low", "low")},
                         complete=False)
    with pytest.raises(ValidationFailed) as refused:
        services.rate_activities(exercise, [{"activity_code": "RP-01", "benefit": "high",
                                             "benefit_factors": ["luck"]}], sponsor_advocate)
    assert "RP-01.benefit_factors" in refused.value.fields
    db.session.rollback()
    assert ratings_of(exercise) == {"RP-01": ("low", "low")}


# --- who may do what --------------------------------------------------------------------------


def test_partner_edits_only_their_own_side(client, partnership, sponsor_advocate,
                                           group_partner):
    exercise = rate_side(partnership, "sponsor", sponsor_advocate, SPONSOR, complete=False)
    services.advance_to_matrix(exercise, sponsor_advocate)
    db.session.commit()
    login(client, group_partner)
    attempts = [
        client.post(url(exercise, "identify"), data={"name": NAME, "activity_codes": ["DP-02"]}),
        client.post(url(exercise, "rate"), data=rating_form([("RP-01", "low", "high", {})])),
        client.post(url(exercise, "matrix"), data={"activity_code": "RP-01",
                                                   "cell": "low:high"}),
        client.post(url(exercise, "complete")),
        client.post(f"/partnerships/{partnership.id}/prioritisation/sponsor/new",
                    data={"name": "Theirs", "activity_codes": ["DP-02"]}),
    ]
    for response in attempts:
        assert response.status_code == 403
        assert "Only the sponsor's people can change the sponsor side's ratings" in \
            page_text(response)
    assert ratings_of(exercise) == SPONSOR
    assert exercise.status == "draft" and exercise_count() == 1

    assert client.post(f"/partnerships/{partnership.id}/prioritisation/patient_group/new",
                       data={"name": NAME, "activity_codes": ["DP-02"]}).status_code == 302
    assert side_ratings(partnership, "patient_group") == {"DP-02": (None, None)}


def test_sponsor_advocate_cannot_edit_the_patient_group_side(app, partnership,
                                                            sponsor_advocate):
    with pytest.raises(NotAllowed):
        services.start_exercise(partnership, "patient_group", NAME, sponsor_advocate)
    assert services.exercise_for(partnership, "patient_group") is None


def test_compliance_edits_either_side(app, partnership, compliance_user):
    for side in ("sponsor", "patient_group"):
        rate_side(partnership, side, compliance_user, {"RP-01": ("high", "low")})
    assert services.compare_exercises(partnership).ready


def test_other_sides_draft_stays_private_until_completed(client, partnership,
                                                         sponsor_advocate, group_partner):
    exercise = rate_side(partnership, "sponsor", sponsor_advocate, SPONSOR, complete=False)
    login(client, group_partner)
    response = client.get(url(exercise, "matrix"))
    assert response.status_code == 403
    assert "still drafting" in page_text(response)
    assert client.get(url(exercise, "matrix.svg")).status_code == 403
    services.advance_to_matrix(exercise, sponsor_advocate)
    services.complete_exercise(exercise, sponsor_advocate)
    db.session.commit()
    assert client.get(url(exercise, "matrix")).status_code == 200


def test_auditor_reads_exercises_but_cannot_change_them(client, partnership, make_user,
                                                       sponsor_advocate):
    exercise = rate_side(partnership, "sponsor", sponsor_advocate, SPONSOR)
    auditor = make_user("auditor")
    login(client, auditor)
    assert client.get(url(exercise, "matrix")).status_code == 200
    response = client.post(url(exercise, "matrix"), data={"activity_code": "RP-01",
                                                          "cell": "low:high"})
    assert response.status_code == 403
    assert ratings_of(exercise) == SPONSOR


def test_partner_of_another_partnership_sees_nothing(client, partnership, make_org,
                                                     make_user, sponsor_advocate):
    exercise = rate_side(partnership, "sponsor", sponsor_advocate, SPONSOR)
    outsider = make_user("partner", make_org("Other Group", "patient_group"))
    login(client, outsider)
    for path in ("prioritisation", "prioritisation/compare", "coverage",
                 "prioritisation/patient_group/identify", "prioritisation/sponsor/new"):
        assert client.get(f"/partnerships/{partnership.id}/{path}").status_code == 404
    assert client.get(url(exercise, "matrix")).status_code == 404
    assert NAME not in page_text(client.get("/prioritisation"))


# --- comparing a pair, as the CTTI paper has it ------------------------------------------------


def test_pursue_worth_it_and_can_offer_follow_the_paper_with_near_misses(
        app, partnership, sponsor_advocate, group_partner):
    rate_side(partnership, "sponsor", sponsor_advocate, SPONSOR)
    rate_side(partnership, "patient_group", group_partner, PATIENT_GROUP)
    comparison = services.compare_exercises(partnership)
    assert comparison.ready
    # high benefit for a low investment to both; TD-01 (low and moderate) is not
    assert [row.code for row in comparison.pursue] == ["RP-01", "RP-05"]
    assert comparison.mutual_priorities == comparison.pursue
    # high benefit for a high investment to both; RP-03 (high and moderate) is not
    assert [row.code for row in comparison.worth_if_resourced] == ["TD-04"]
    # low value to one side, high to the other: the first can offer it; RR-02 (moderate) not
    assert [row.code for row in comparison.offered_by("sponsor")] == ["DP-02"]
    assert [row.code for row in comparison.offered_by("patient_group")] == ["TC-01"]
    assert {(row.code, row.offered_by, row.offered_to) for row in comparison.can_offer} == {
        ("DP-02", "sponsor", "patient_group"), ("TC-01", "patient_group", "sponsor")}
    assert [row.code for row in comparison.to_discuss] == ["RP-03", "TD-01"]
    outcomes = {row.code: row.outcome for row in comparison.rows}
    assert outcomes["RR-02"] is None and outcomes["TD-01"] == "to_discuss"
    assert outcomes["DP-02"] == "sponsor_can_offer" and outcomes["TD-04"] == "worth_if_resourced"


def test_comparison_waits_until_both_sides_complete(app, partnership, sponsor_advocate,
                                                    group_partner):
    rate_side(partnership, "sponsor", sponsor_advocate, SPONSOR)
    rate_side(partnership, "patient_group", group_partner, PATIENT_GROUP, complete=False)
    comparison = services.compare_exercises(partnership)
    assert not comparison.ready
    assert comparison.pursue == [] and comparison.can_offer == []
    assert all(row.patient_group is None for row in comparison.rows)


def test_compare_page_shows_the_three_groups_in_the_papers_words(client, partnership,
                                                                 sponsor_advocate,
                                                                 group_partner):
    rate_side(partnership, "sponsor", sponsor_advocate, SPONSOR)
    rate_side(partnership, "patient_group", group_partner, PATIENT_GROUP)
    login(client, group_partner)
    response = client.get(f"/partnerships/{partnership.id}/prioritisation/compare")
    assert response.status_code == 200
    text = page_text(response)
    assert "Sponsor matrix: benefit (rows) by investment (columns)" in text
    assert "Patient group matrix: benefit (rows) by investment (columns)" in text
    pursue = section(text, "pursue", "resourced")
    assert "Activities both sides rate high benefit for a low investment" in pursue
    assert "RP-01" in pursue and "RP-05" in pursue and "TD-01" not in pursue
    resourced = section(text, "resourced", "offer")
    assert "high benefit for a high investment" in resourced and "TD-04" in resourced
    assert "RP-03" not in resourced
    offer = section(text, "offer", "discuss")
    assert "What one side rates of low value to itself and the other of high value" in offer
    sponsor_offers = section(offer, "offer-sponsor", "offer-patient_group")
    assert "The sponsor can offer the patient group" in sponsor_offers
    assert "DP-02" in sponsor_offers and "TC-01" not in sponsor_offers
    assert "TC-01" in offer.split('id="offer-patient_group"')[1]
    assert "RR-02" not in offer
    assert "RP-03" in section(text, "discuss", "all-ratings")
    assert text.count("/matrix.svg") == 2


def test_compare_page_before_any_exercise_says_so_in_every_group(client, partnership,
                                                                 sponsor_advocate):
    login(client, sponsor_advocate)
    text = page_text(client.get(f"/partnerships/{partnership.id}/prioritisation/compare"))
    assert "The sponsor side has not started an exercise for this partnership." in text
    assert "None yet: both sides must complete an exercise" in section(text, "pursue",
                                                                       "resourced")
    assert "None yet" in section(text, "resourced", "offer")
    assert "Nothing yet" in section(text, "offer", "discuss")
    assert "No completed sponsor exercise to choose yet." in text


def test_a_side_holds_several_named_exercises_and_the_user_chooses_the_pair(
        client, partnership, sponsor_advocate, group_partner):
    phase2 = rate_side(partnership, "sponsor", sponsor_advocate, SPONSOR)
    phase3 = rate_side(partnership, "sponsor", sponsor_advocate, {"DP-02": ("high", "low")},
                       name="Phase 3 programme")
    group2 = rate_side(partnership, "patient_group", group_partner, PATIENT_GROUP)
    group_registry = rate_side(partnership, "patient_group", group_partner,
                               {"DP-02": ("high", "low")}, name="Registry")
    assert [ex.name for ex in services.exercises_of(partnership, "sponsor")] == [
        NAME, "Phase 3 programme"]

    # by default the same-named pair, though Phase 3 and Registry were completed later
    comparison = services.compare_exercises(partnership)
    assert (comparison.exercises["sponsor"], comparison.exercises["patient_group"]) == (
        phase2, group2)
    chosen = services.compare_exercises(partnership, {"sponsor": phase3.id,
                                                      "patient_group": group_registry.id})
    assert [row.code for row in chosen.pursue] == ["DP-02"]

    login(client, group_partner)
    base = f"/partnerships/{partnership.id}/prioritisation"
    text = page_text(client.get(
        f"{base}/compare?sponsor={phase3.id}&patient_group={group_registry.id}"))
    assert "“Phase 3 programme”" in text and "DP-02" in section(text, "pursue", "resourced")
    assert f'<option selected value="{phase3.id}">' in text or \
        f'<option value="{phase3.id}" selected' in text
    rows = list(csv.DictReader(io.StringIO(client.get(
        f"{base}/compare.csv?sponsor={phase3.id}&patient_group={group_registry.id}")
        .get_data(as_text=True))))
    assert [(r["activity_code"], r["sponsor_exercise"], r["outcome"]) for r in rows] == [
        ("DP-02", "Phase 3 programme", "pursue")]
    overview = page_text(client.get(base))
    assert f"View matrix of “{NAME}”" in overview and "View matrix of “Registry”" in overview


def test_default_pair_without_a_shared_name_is_the_latest_completed_of_each_side(
        app, partnership, sponsor_advocate, group_partner):
    rate_side(partnership, "sponsor", sponsor_advocate, SPONSOR, name="Early")
    later = rate_side(partnership, "sponsor", sponsor_advocate, SPONSOR, name="Later")
    rate_side(partnership, "sponsor", sponsor_advocate, SPONSOR, complete=False, name="Draft")
    group = rate_side(partnership, "patient_group", group_partner, PATIENT_GROUP,
                      name="Our view")
    comparison = services.compare_exercises(partnership)
    assert comparison.exercises == {"sponsor": later, "patient_group": group}
    assert [ex.name for ex in comparison.choices["sponsor"]] == ["Later", "Early"]


def test_choosing_an_exercise_that_is_not_this_partnerships_is_refused_on_the_form(
        client, partnership, make_partnership, sponsor_advocate, group_partner):
    rate_side(partnership, "sponsor", sponsor_advocate, SPONSOR)
    rate_side(partnership, "patient_group", group_partner, PATIENT_GROUP)
    elsewhere = rate_side(make_partnership("Other study"), "sponsor", sponsor_advocate,
                          SPONSOR)
    draft = rate_side(partnership, "sponsor", sponsor_advocate, SPONSOR, complete=False,
                      name="Draft")
    login(client, sponsor_advocate)
    for value in (elsewhere.id, draft.id, "abc"):
        response = client.get(f"/partnerships/{partnership.id}/prioritisation/compare"
                              f"?sponsor={value}")
        assert response.status_code == 422
        text = page_text(response)
        assert "Choose one of this partnership's completed sponsor exercises." in text
        assert "the default pair is shown" in text and "RP-01" in section(text, "pursue",
                                                                          "resourced")
    assert client.get(f"/partnerships/{partnership.id}/prioritisation/compare.csv"
                      f"?sponsor={elsewhere.id}").status_code == 422


# --- an organisation's own exercise, then attached -------------------------------------------


def test_organisation_runs_its_own_exercise_then_attaches_it_to_a_partnership(
        client, partnership, sponsor, sponsor_advocate, group_partner):
    login(client, sponsor_advocate)
    page = page_text(client.get("/prioritisation"))
    assert "Start an exercise of Helix Pharma's own" in page
    response = client.post("/prioritisation/new", data={
        "name": "Portfolio review", "activity_codes": list(SPONSOR), "to_rating": "y"})
    assert response.status_code == 302
    exercise = services.own_exercises([sponsor.id])[0]
    assert (exercise.partnership_id, exercise.organisation_id, exercise.side) == (
        None, sponsor.id, "sponsor")
    fill(exercise, sponsor_advocate, SPONSOR)
    assert client.get(url(exercise, "matrix")).status_code == 200
    listed = page_text(client.get("/prioritisation"))
    assert "Portfolio review" in listed and "not part of a partnership" in listed
    assert "Attach “Portfolio review” to this partnership" in listed

    # the partnership's partner cannot see it before it is attached
    login(client, group_partner)
    assert client.get(url(exercise, "matrix")).status_code == 404

    login(client, sponsor_advocate)
    response = client.post(url(exercise, "attach"),
                           data={f"attach-{exercise.id}-partnership_id": partnership.id})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/partnerships/{partnership.id}/prioritisation")
    db.session.refresh(exercise)
    assert exercise.partnership_id == partnership.id
    last = history_of("prioritisation_exercise", exercise.id)[-1]
    assert last.change_set["partnership_id"] == [None, partnership.id]
    assert last.reason == "Attached to the partnership “Lung research partnership”."
    assert last.actor_id == sponsor_advocate.id

    login(client, group_partner)
    assert client.get(url(exercise, "matrix")).status_code == 200
    rate_side(partnership, "patient_group", group_partner, PATIENT_GROUP)
    comparison = services.compare_exercises(partnership)
    assert comparison.exercises["sponsor"] == exercise
    assert [row.code for row in comparison.pursue] == ["RP-01", "RP-05"]


def test_own_exercise_is_never_shown_to_another_organisation(client, sponsor, make_org,
                                                            make_user, sponsor_advocate):
    exercise = fill(services.start_own_exercise(sponsor.id, "Portfolio review",
                                                sponsor_advocate), sponsor_advocate, SPONSOR)
    other_sponsor = make_org("Northwind Therapeutics", "sponsor")
    for role in ("advocate", "compliance", "auditor"):
        login(client, make_user(role, other_sponsor))
        for step in ("matrix", "matrix.svg", "export.csv", "identify"):
            assert client.get(url(exercise, step)).status_code in (403, 404)
        assert client.get(url(exercise, "matrix")).status_code == 404
        assert "Portfolio review" not in page_text(client.get("/prioritisation"))
    colleague = make_user("auditor", sponsor)
    login(client, colleague)
    assert client.get(url(exercise, "matrix")).status_code == 200
    assert client.get(url(exercise, "identify")).status_code == 403


def test_attaching_to_a_partnership_the_organisation_is_not_a_party_to_is_refused(
        client, sponsor, make_org, make_partnership, sponsor_advocate, compliance_user):
    exercise = fill(services.start_own_exercise(sponsor.id, "Portfolio review",
                                                sponsor_advocate), sponsor_advocate, SPONSOR)
    northwind = make_org("Northwind Therapeutics", "sponsor")
    theirs = make_partnership("Their study", sponsor_id=northwind.id)
    login(client, sponsor_advocate)
    response = client.post(url(exercise, "attach"),
                           data={f"attach-{exercise.id}-partnership_id": theirs.id})
    assert response.status_code == 422
    assert ("Choose a partnership Helix Pharma is the sponsor of; this exercise can join only "
            "such a partnership.") in page_text(response)
    response = client.post(url(exercise, "attach"), data={})
    assert response.status_code == 422
    assert "This field is required." in page_text(response)
    db.session.refresh(exercise)
    assert exercise.partnership_id is None
    # even a compliance officer of the whole installation cannot put it on the wrong side
    with pytest.raises(ValidationFailed):
        services.attach_exercise(exercise, theirs.id, compliance_user)


def test_attaching_under_a_name_the_partnership_side_already_uses_is_refused(
        client, partnership, sponsor, sponsor_advocate):
    rate_side(partnership, "sponsor", sponsor_advocate, SPONSOR, name="Portfolio review")
    exercise = services.start_own_exercise(sponsor.id, "portfolio REVIEW", sponsor_advocate)
    db.session.commit()
    login(client, sponsor_advocate)
    response = client.post(url(exercise, "attach"),
                           data={f"attach-{exercise.id}-partnership_id": partnership.id})
    assert response.status_code == 422
    assert "already exists among this partnership's sponsor side" in page_text(response)
    db.session.refresh(exercise)
    assert exercise.is_own


def test_own_exercise_needs_a_unique_name_and_an_organisation_with_a_side(
        client, sponsor, make_org, make_user, sponsor_advocate, group_partner):
    services.start_own_exercise(sponsor.id, "Portfolio review", sponsor_advocate)
    db.session.commit()
    login(client, sponsor_advocate)
    response = client.post("/prioritisation/new", data={"name": "portfolio review",
                                                        "activity_codes": ["RP-01"]})
    assert response.status_code == 422
    assert "already exists among this organisation's own exercises" in page_text(response)
    response = client.post("/prioritisation/new", data={"name": "", "activity_codes": []})
    assert response.status_code == 422
    assert exercise_count() == 1

    login(client, group_partner)  # a partner works only within partnerships
    assert client.post("/prioritisation/new", data={"name": "Ours"}).status_code == 403
    login(client, make_user("advocate", make_org("Contract Research Ltd", "other")))
    response = client.get("/prioritisation/new")
    assert response.status_code == 409
    assert "neither a sponsor nor a patient group" in page_text(response)
    assert exercise_count() == 1


# --- coverage -------------------------------------------------------------------------------


def make_linked_interaction(partnership, title, occurred_on, codes):
    from governance.interactions.models import Interaction

    interaction = Interaction(title=title, occurred_on=occurred_on, format="workshop",
                              organisation_id=partnership.sponsor_id,
                              partnership_id=partnership.id, activity_codes=codes)
    db.session.add(interaction)
    db.session.commit()
    return interaction


def test_coverage_shows_which_interactions_served_each_priority(app, partnership,
                                                                sponsor_advocate,
                                                                group_partner):
    rate_side(partnership, "sponsor", sponsor_advocate, SPONSOR)
    rate_side(partnership, "patient_group", group_partner, PATIENT_GROUP)
    make_linked_interaction(partnership, "Listening session", date(2025, 5, 2), ["RP-01"])
    make_linked_interaction(partnership, "Consent review", date(2024, 3, 1), ["TD-04"])
    make_linked_interaction(partnership, "Protocol review", date(2025, 2, 1), ["TD-01"])
    make_linked_interaction(partnership, "Recruitment webinar", date(2025, 4, 1), ["TC-01"])
    make_linked_interaction(partnership, "Catch-up call", date(2025, 4, 9), [])

    coverage = services.coverage_for(partnership, today=date(2025, 6, 30))
    assert coverage.since == date(2024, 6, 30)
    served = {item.row.code: item for item in coverage.priorities}
    assert list(served) == ["RP-01", "RP-05"]
    assert [i.title for i in served["RP-01"].interactions] == ["Listening session"]
    assert served["RP-01"].last_served_on == date(2025, 5, 2)
    assert [item.row.code for item in coverage.stale] == ["RP-05"]
    assert [(item.row.code, item.last_served_on) for item in coverage.resourced] == [
        ("TD-04", date(2024, 3, 1))]
    assert sorted(i.title for i in coverage.unlinked_interactions) == [
        "Catch-up call", "Protocol review", "Recruitment webinar"]


def test_priority_without_a_recent_interaction_stands_out_in_words(client, partnership,
                                                                   sponsor_advocate,
                                                                   group_partner):
    rate_side(partnership, "sponsor", sponsor_advocate, SPONSOR)
    rate_side(partnership, "patient_group", group_partner, PATIENT_GROUP)
    make_linked_interaction(partnership, "Listening session", date.today(), ["RP-01"])
    login(client, sponsor_advocate)
    text = page_text(client.get(f"/partnerships/{partnership.id}/coverage"))
    rows = text.split("<tbody>")[1].split("</tbody>")[0].split("<tr")
    rp01 = next(row for row in rows if "RP-01" in row)
    rp05 = next(row for row in rows if "RP-05" in row)
    assert "No interaction in the last 12 months" not in rp01 and "Listening session" in rp01
    assert "No interaction in the last 12 months" in rp05 and "Never" in rp05
    assert "1 of 2 priorities had no interaction" in text
    assert "Worth it if resourced" in text and "TD-04" in text.split("Worth it if resourced")[1]


def test_coverage_before_any_exercise_says_what_is_missing(client, partnership,
                                                           sponsor_advocate):
    make_linked_interaction(partnership, "Kick-off", date(2025, 1, 10), [])
    login(client, sponsor_advocate)
    text = page_text(client.get(f"/partnerships/{partnership.id}/coverage"))
    assert "No priorities to pursue yet: both sides need to complete their" in text
    assert "Kick-off" in text


def test_partnership_page_shows_the_coverage_of_priorities(client, partnership,
                                                          sponsor_advocate, group_partner):
    rate_side(partnership, "sponsor", sponsor_advocate, SPONSOR)
    rate_side(partnership, "patient_group", group_partner, PATIENT_GROUP)
    make_linked_interaction(partnership, "Community priorities session", date.today(),
                            ["RP-01"])
    login(client, group_partner)
    text = page_text(client.get(f"/partnerships/{partnership.id}"))
    assert "Priorities served by interactions" in text
    assert "Community priorities session" in text
    assert "No interaction in the last 12 months" in text


@pytest.mark.parametrize("day, expected", [
    (date(2025, 3, 31), date(2024, 3, 31)),
    (date(2024, 2, 29), date(2023, 2, 28)),
])
def test_twelve_months_back_handles_month_ends(day, expected):
    assert services.months_before(day, 12) == expected


# --- the matrix as SVG and the exports -------------------------------------------------------


def test_matrix_svg_names_quadrants_in_words_without_style_attributes(client, partnership,
                                                                      sponsor_advocate):
    exercise = rate_side(partnership, "sponsor", sponsor_advocate, SPONSOR)
    login(client, sponsor_advocate)
    response = client.get(url(exercise, "matrix.svg"))
    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    svg = response.get_data(as_text=True)
    assert "style=" not in svg and "<script" not in svg
    for words in ("PURSUE", "WORTH IT IF RESOURCED", "MAY SUIT A PARTNER", "UNLIKELY WORTH IT"):
        assert words in svg
    assert "<title" in svg and "<desc" in svg and "RP-01 Share community" in svg
    page = client.get(url(exercise, "matrix"))
    assert "style=" not in page.get_data(as_text=True)


def test_exercise_exports_as_csv(client, partnership, sponsor_advocate):
    exercise = rate_side(partnership, "sponsor", sponsor_advocate, SPONSOR, complete=False)
    services.rate_activities(exercise, [{"activity_code": "RP-01", "benefit": "high",
                                         "investment": "low",
                                         "rationale": "=HYPERLINK(\"http://x\")",
                                         "benefit_factors": ["reach", "reputation"]}],
                             sponsor_advocate)
    db.session.commit()
    login(client, sponsor_advocate)
    response = client.get(url(exercise, "export.csv"))
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == len(SPONSOR)
    rp01 = next(row for row in rows if row["activity_code"] == "RP-01")
    assert rp01["exercise"] == NAME and rp01["organisation"] == "Helix Pharma"
    assert rp01["activity_name"] == "Share community priorities and unmet needs"
    assert (rp01["benefit"], rp01["investment"], rp01["quadrant"]) == ("high", "low", "pursue")
    assert rp01["benefit_factors"] == "reach;reputation"
    assert rp01["rationale"].startswith("'=HYPERLINK")


def test_matrix_pdf_opens_and_names_every_activity(client, partnership, sponsor_advocate):
    exercise = rate_side(partnership, "sponsor", sponsor_advocate, SPONSOR)
    login(client, sponsor_advocate)
    response = client.get(url(exercise, "export.pdf"))
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    reader = PdfReader(io.BytesIO(response.data))
    text = re.sub(r"\s+", " ", " ".join(page.extract_text() for page in reader.pages))
    for name in (NAME, "Share community priorities and unmet needs",
                 "Review protocol design and feasibility", "Review informed-consent documents",
                 "Support recruitment", "Co-write lay summaries"):
        assert name in text


def test_comparison_exports_as_pdf_and_csv(client, partnership, sponsor_advocate,
                                           group_partner):
    rate_side(partnership, "sponsor", sponsor_advocate, SPONSOR)
    rate_side(partnership, "patient_group", group_partner, PATIENT_GROUP)
    login(client, group_partner)
    base = f"/partnerships/{partnership.id}/prioritisation"
    reader = PdfReader(io.BytesIO(client.get(f"{base}/compare.pdf").data))
    text = re.sub(r"\s+", " ", " ".join(page.extract_text() for page in reader.pages))
    assert "Priorities to pursue" in text and "Worth it if resourced" in text
    assert "The sponsor can offer the patient group" in text
    assert "Share community priorities and unmet needs" in text
    rows = list(csv.DictReader(io.StringIO(client.get(f"{base}/compare.csv")
                                           .get_data(as_text=True))))
    by_code = {row["activity_code"]: row for row in rows}
    assert by_code["RP-01"]["outcome"] == "pursue"
    assert by_code["TD-04"]["outcome"] == "worth_if_resourced"
    assert (by_code["TC-01"]["offered_by"], by_code["TC-01"]["offered_to"]) == (
        "patient_group", "sponsor")
    assert by_code["TC-01"]["patient_group_benefit"] == "low"
    assert by_code["RR-02"]["outcome"] == ""


def test_pdf_fetcher_refuses_files_and_the_network():
    fetcher = data_only_fetcher()
    for url in ("file:///etc/passwd", "http://example.org/logo.png",
                "https://example.org/x.css"):
        with pytest.raises(ValueError, match="disallowed protocol"):
            fetcher.fetch(url)


# --- demo -----------------------------------------------------------------------------------


def test_demo_pair_shows_priorities_worth_it_and_what_each_side_can_offer(
        app, partnership, sponsor, sponsor_advocate, group_partner):
    made = services.seed_demo_exercises(partnership, sponsor_advocate, group_partner)
    own = services.seed_demo_own_exercise(sponsor.id, sponsor_advocate)
    db.session.commit()
    assert {side: (ex.status, ex.name) for side, ex in made.items()} == {
        "sponsor": ("completed", "Phase 2 protocol – Lung research partnership"),
        "patient_group": ("completed", "Phase 2 protocol – Lung research partnership")}
    comparison = services.compare_exercises(partnership)
    assert comparison.ready
    assert [row.code for row in comparison.pursue] == ["RP-01", "TD-01", "TD-04"]
    assert [row.code for row in comparison.worth_if_resourced] == ["RP-03"]
    assert [row.code for row in comparison.offered_by("sponsor")] == ["DP-02"]
    assert [row.code for row in comparison.offered_by("patient_group")] == ["TC-01"]
    assert own.is_own and own.is_completed and own.organisation_id == sponsor.id
