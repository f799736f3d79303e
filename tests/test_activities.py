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

# Ratings per side: code -> (benefit, investment).
SPONSOR = {
    "RP-01": ("high", "low"),
    "TD-01": ("high", "moderate"),
    "TD-04": ("high", "high"),
    "TC-01": ("high", "moderate"),
    "DP-02": ("low", "low"),
}
PATIENT_GROUP = {
    "RP-01": ("high", "low"),
    "TD-01": ("high", "low"),
    "TD-04": ("high", "moderate"),
    "TC-01": ("low", "high"),
    "DP-02": ("high", "low"),
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


def rate_side(partnership, side, user, ratings, complete=True):
    exercise = services.start_exercise(partnership, side, user)
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


def ratings_of(partnership, side) -> dict:
    exercise = services.exercise_for(partnership, side)
    if exercise is None:
        return {}
    db.session.refresh(exercise)
    return {r.activity_code: (r.benefit, r.investment) for r in exercise.selected}


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
    login(client, group_partner)
    base = f"/partnerships/{partnership.id}/prioritisation/patient_group"
    response = client.post(f"{base}/identify/add", data={
        "custom-stage": "trial_conduct", "custom-name": "Peer buddy scheme",
        "custom-description": "Experienced participants support newcomers."})
    assert response.status_code == 302
    code = f"ORG{patient_group.id}-01"
    assert ratings_of(partnership, "patient_group") == {code: (None, None)}
    assert "Peer buddy scheme" in page_text(client.get(f"{base}/identify"))


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
    exercise = services.start_exercise(partnership, "patient_group", compliance_user)
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


def test_advocate_identifies_rates_and_places_activities_in_three_steps(
        client, partnership, sponsor_advocate):
    login(client, sponsor_advocate)
    base = f"/partnerships/{partnership.id}/prioritisation/sponsor"
    assert client.get(f"{base}/identify").status_code == 200

    response = client.post(f"{base}/identify", data={
        "activity_codes": ["RP-01", "TD-04"], "to_rating": "y"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/rate")
    step2 = page_text(client.get(f"{base}/rate"))
    assert "Share community priorities and unmet needs" in step2
    assert "Reach of the effect" in step2 and "Reputational risk" in step2

    response = client.post(f"{base}/rate", data=rating_form([
        ("RP-01", "high", "low", {"benefit_factors": ["reach", "reputation"],
                                  "investment_factors": ["staff_time"],
                                  "rationale": "Shapes every later study.",
                                  "implementation_notes": "Two listening sessions a year."}),
        ("TD-04", "moderate", "high", {}),
    ], action="to_matrix"))
    assert response.status_code == 302 and response.headers["Location"].endswith("/matrix")
    exercise = services.exercise_for(partnership, "sponsor")
    rp01 = next(r for r in exercise.selected if r.activity_code == "RP-01")
    assert (rp01.benefit, rp01.investment) == ("high", "low")
    assert rp01.benefit_factors == ["reach", "reputation"]
    assert rp01.rationale == "Shapes every later study."
    assert exercise.step == 3

    step3 = page_text(client.get(f"{base}/matrix"))
    assert "Pursue: high benefit for a low investment" in step3
    assert "Unlikely to be worth the investment" in step3
    assert 'alt="Priority matrix of the sponsor side' in step3
    assert "Two listening sessions a year." in step3

    response = client.post(f"{base}/complete")
    assert response.status_code == 302
    db.session.refresh(exercise)
    assert exercise.status == "completed" and exercise.completed_by_id == sponsor_advocate.id


def test_draft_is_saved_and_resumed_at_the_step_reached(client, partnership, group_partner):
    login(client, group_partner)
    base = f"/partnerships/{partnership.id}/prioritisation/patient_group"
    client.post(f"{base}/identify", data={"activity_codes": ["RP-03", "DP-02"], "save": "y"})
    response = client.post(f"{base}/rate", data=rating_form([
        ("RP-03", "high", None, {"rationale": "Our registry is our biggest asset."}),
    ]))
    assert response.status_code == 302 and response.headers["Location"].endswith("/rate")

    overview = page_text(client.get(f"/partnerships/{partnership.id}/prioritisation"))
    assert "Resume at step 2" in overview
    step2 = client.get(f"{base}/rate").get_data(as_text=True)
    assert "Our registry is our biggest asset." in step2
    assert re.search(r'value="high"[^>]*checked|checked[^>]*value="high"', step2)
    assert ratings_of(partnership, "patient_group") == {"RP-03": ("high", None),
                                                       "DP-02": (None, None)}


def test_matrix_needs_every_activity_rated_but_keeps_the_draft(client, partnership,
                                                             sponsor_advocate):
    login(client, sponsor_advocate)
    base = f"/partnerships/{partnership.id}/prioritisation/sponsor"
    client.post(f"{base}/identify", data={"activity_codes": ["RP-01", "TD-04"]})
    response = client.post(f"{base}/rate", data=rating_form([
        ("RP-01", "high", "low", {}), ("TD-04", None, "high", {})], action="to_matrix"))
    assert response.status_code == 422
    text = page_text(response)
    assert "Your ratings are saved as a draft." in text
    assert "Rate both benefit and investment before the matrix." in text
    assert ratings_of(partnership, "sponsor") == {"RP-01": ("high", "low"),
                                                 "TD-04": (None, "high")}
    assert services.exercise_for(partnership, "sponsor").step == 2


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
    response = client.post(f"/partnerships/{partnership.id}/prioritisation/sponsor/matrix",
                           data={"activity_code": "TD-04", "cell": "moderate:low"})
    assert response.status_code == 302
    assert ratings_of(partnership, "sponsor")["TD-04"] == ("moderate", "low")
    rating = next(r for r in exercise.selected if r.activity_code == "TD-04")
    last = history_of("activity_rating", rating.id)[-1]
    assert last.action == "update"
    assert last.change_set["benefit"] == ["high", "moderate"]
    assert last.change_set["investment"] == ["high", "low"]
    assert last.reason.startswith("Moved in the matrix from benefit high / investment high")
    assert last.actor_id == sponsor_advocate.id


def test_completed_exercise_is_reopened_before_it_changes(client, partnership,
                                                         sponsor_advocate):
    rate_side(partnership, "sponsor", sponsor_advocate, SPONSOR)
    login(client, sponsor_advocate)
    base = f"/partnerships/{partnership.id}/prioritisation/sponsor"
    response = client.post(f"{base}/matrix", data={"activity_code": "RP-01",
                                                   "cell": "low:high"})
    assert response.status_code == 409
    assert "Reopen it to change it" in page_text(response)
    assert ratings_of(partnership, "sponsor")["RP-01"] == ("high", "low")
    assert client.post(f"{base}/reopen", data={"reason": "New trial added"}).status_code == 302
    assert client.post(f"{base}/matrix", data={"activity_code": "RP-01",
                                               "cell": "low:high"}).status_code == 302
    assert ratings_of(partnership, "sponsor")["RP-01"] == ("low", "high")


def csrf_token_of(page) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.get_data(as_text=True))[1]


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}])
def test_every_step_works_with_csrf_protection_on(client, partnership, sponsor_advocate):
    token = csrf_token_of(client.get("/login"))
    client.post("/login", data={"email": sponsor_advocate.email, "password": PASSWORD,
                                "csrf_token": token})
    base = f"/partnerships/{partnership.id}/prioritisation/sponsor"
    refused = client.post(f"{base}/identify", data={"activity_codes": ["RP-01"]})
    assert refused.status_code == 400
    assert services.exercise_for(partnership, "sponsor") is None

    token = csrf_token_of(client.get(f"{base}/identify"))
    assert client.post(f"{base}/identify", data={"activity_codes": ["RP-01"],
                                                 "csrf_token": token}).status_code == 302
    data = rating_form([("RP-01", "high", "high", {})], action="to_matrix")
    data["csrf_token"] = csrf_token_of(client.get(f"{base}/rate"))
    assert client.post(f"{base}/rate", data=data).status_code == 302
    token = csrf_token_of(client.get(f"{base}/matrix"))
    assert client.post(f"{base}/matrix", data={"activity_code": "RP-01", "cell": "high:low",
                                               "csrf_token": token}).status_code == 302
    assert client.post(f"{base}/complete", data={"csrf_token": token}).status_code == 302
    assert ratings_of(partnership, "sponsor") == {"RP-01": ("high", "low")}
    assert services.exercise_for(partnership, "sponsor").is_completed


# --- refused input --------------------------------------------------------------------------


def test_rating_outside_the_scale_is_refused_and_nothing_changes(client, partnership,
                                                                sponsor_advocate):
    rate_side(partnership, "sponsor", sponsor_advocate,
              {"RP-01": ("moderate", "moderate"), "TD-01": ("low", "low")}, complete=False)
    login(client, sponsor_advocate)
    base = f"/partnerships/{partnership.id}/prioritisation/sponsor"
    response = client.post(f"{base}/rate", data=rating_form([
        ("RP-01", "high", "low", {}), ("TD-01", "extreme", "low", {})]))
    assert response.status_code == 422
    text = page_text(response)
    assert "'extreme' is not on the scale; choose low, moderate or high." in text
    assert "nothing was saved" in text
    assert ratings_of(partnership, "sponsor") == {"RP-01": ("moderate", "moderate"),
                                                 "TD-01": ("low", "low")}

    response = client.post(f"{base}/matrix", data={"activity_code": "RP-01",
                                                   "cell": "huge:low"})
    assert response.status_code == 422
    assert "'huge' is not on the scale" in page_text(response)
    assert ratings_of(partnership, "sponsor")["RP-01"] == ("moderate", "moderate")


def test_unknown_activity_code_is_refused_and_nothing_is_created(client, partnership,
                                                                sponsor_advocate):
    login(client, sponsor_advocate)
    response = client.post(f"/partnerships/{partnership.id}/prioritisation/sponsor/identify",
                           data={"activity_codes": ["RP-01", "XX-99"]})
    assert response.status_code == 422
    assert "Unknown activity code: XX-99." in page_text(response)
    assert db.session.scalar(db.select(db.func.count()).select_from(
        PrioritisationExercise)) == 0


def test_unknown_factor_is_refused(app, partnership, sponsor_advocate):
    exercise = rate_side(partnership, "sponsor", sponsor_advocate, {"RP-01": ("low", "low")},
                         complete=False)
    with pytest.raises(ValidationFailed) as refused:
        services.rate_activities(exercise, [{"activity_code": "RP-01", "benefit": "high",
                                             "benefit_factors": ["luck"]}], sponsor_advocate)
    assert "RP-01.benefit_factors" in refused.value.fields
    db.session.rollback()
    assert ratings_of(partnership, "sponsor") == {"RP-01": ("low", "low")}


def test_partner_edits_only_their_own_side(client, partnership, sponsor_advocate,
                                           group_partner):
    exercise = rate_side(partnership, "sponsor", sponsor_advocate, SPONSOR, complete=False)
    services.advance_to_matrix(exercise, sponsor_advocate)
    db.session.commit()
    login(client, group_partner)
    sponsor_side = f"/partnerships/{partnership.id}/prioritisation/sponsor"
    attempts = [
        client.post(f"{sponsor_side}/identify", data={"activity_codes": ["DP-02"]}),
        client.post(f"{sponsor_side}/rate", data=rating_form([("RP-01", "low", "high", {})])),
        client.post(f"{sponsor_side}/matrix", data={"activity_code": "RP-01",
                                                    "cell": "low:high"}),
        client.post(f"{sponsor_side}/complete"),
    ]
    for response in attempts:
        assert response.status_code == 403
        assert "Only the sponsor's people can change the sponsor side's ratings" in \
            page_text(response)
    assert ratings_of(partnership, "sponsor") == SPONSOR
    assert services.exercise_for(partnership, "sponsor").status == "draft"

    own_side = f"/partnerships/{partnership.id}/prioritisation/patient_group"
    assert client.post(f"{own_side}/identify",
                       data={"activity_codes": ["DP-02"]}).status_code == 302
    assert ratings_of(partnership, "patient_group") == {"DP-02": (None, None)}


def test_sponsor_advocate_cannot_edit_the_patient_group_side(app, partnership,
                                                            sponsor_advocate):
    with pytest.raises(NotAllowed):
        services.start_exercise(partnership, "patient_group", sponsor_advocate)
    assert services.exercise_for(partnership, "patient_group") is None


def test_compliance_edits_either_side(app, partnership, compliance_user):
    for side in ("sponsor", "patient_group"):
        rate_side(partnership, side, compliance_user, {"RP-01": ("high", "low")})
    assert services.compare_exercises(partnership).ready


def test_other_sides_draft_stays_private_until_completed(client, partnership,
                                                         sponsor_advocate, group_partner):
    rate_side(partnership, "sponsor", sponsor_advocate, SPONSOR, complete=False)
    login(client, group_partner)
    base = f"/partnerships/{partnership.id}/prioritisation/sponsor"
    response = client.get(f"{base}/matrix")
    assert response.status_code == 403
    assert "still drafting" in page_text(response)
    assert client.get(f"{base}/matrix.svg").status_code == 403
    exercise = services.exercise_for(partnership, "sponsor")
    services.advance_to_matrix(exercise, sponsor_advocate)
    services.complete_exercise(exercise, sponsor_advocate)
    db.session.commit()
    assert client.get(f"{base}/matrix").status_code == 200


def test_auditor_reads_exercises_but_cannot_change_them(client, partnership, make_user,
                                                       sponsor_advocate):
    rate_side(partnership, "sponsor", sponsor_advocate, SPONSOR)
    auditor = make_user("auditor")
    login(client, auditor)
    base = f"/partnerships/{partnership.id}/prioritisation/sponsor"
    assert client.get(f"{base}/matrix").status_code == 200
    response = client.post(f"{base}/matrix", data={"activity_code": "RP-01",
                                                   "cell": "low:high"})
    assert response.status_code == 403
    assert ratings_of(partnership, "sponsor") == SPONSOR


def test_partner_of_another_partnership_sees_nothing(client, partnership, make_org,
                                                     make_user):
    outsider = make_user("partner", make_org("Other Group", "patient_group"))
    login(client, outsider)
    for path in ("prioritisation", "prioritisation/compare", "coverage",
                 "prioritisation/patient_group/identify"):
        assert client.get(f"/partnerships/{partnership.id}/{path}").status_code == 404


# --- comparing both sides -------------------------------------------------------------------


def test_mutual_priorities_are_high_for_both_and_cheapest_first(app, partnership,
                                                               sponsor_advocate,
                                                               group_partner):
    rate_side(partnership, "sponsor", sponsor_advocate, SPONSOR)
    rate_side(partnership, "patient_group", group_partner, PATIENT_GROUP)
    comparison = services.compare_exercises(partnership)
    # RP-01 low+low=2, TD-01 moderate+low=3, TD-04 high+moderate=5
    assert [row.code for row in comparison.mutual_priorities] == ["RP-01", "TD-01", "TD-04"]
    assert [row.code for row in comparison.disagreements] == ["TC-01", "DP-02"]
    assert len(comparison.rows) == 5


def test_comparison_waits_until_both_sides_complete(app, partnership, sponsor_advocate,
                                                    group_partner):
    rate_side(partnership, "sponsor", sponsor_advocate, SPONSOR)
    rate_side(partnership, "patient_group", group_partner, PATIENT_GROUP, complete=False)
    comparison = services.compare_exercises(partnership)
    assert not comparison.ready
    assert comparison.mutual_priorities == []
    assert all(row.patient_group is None for row in comparison.rows)


def test_compare_page_shows_both_matrices_and_every_rating(client, partnership,
                                                          sponsor_advocate, group_partner):
    rate_side(partnership, "sponsor", sponsor_advocate, SPONSOR)
    rate_side(partnership, "patient_group", group_partner, PATIENT_GROUP)
    login(client, group_partner)
    response = client.get(f"/partnerships/{partnership.id}/prioritisation/compare")
    assert response.status_code == 200
    text = page_text(response)
    assert "Sponsor matrix: benefit (rows) by investment (columns)" in text
    assert "Patient group matrix: benefit (rows) by investment (columns)" in text
    mutual = text.split('id="mutual"')[1].split('id="disagree"')[0]
    assert mutual.index("RP-01") < mutual.index("TD-01") < mutual.index("TD-04")
    disagreements = text.split('id="disagree"')[1].split('id="all-ratings"')[0]
    assert "TC-01" in disagreements and "DP-02" in disagreements
    assert "RP-01" not in disagreements
    assert text.count("/matrix.svg") == 2


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
    make_linked_interaction(partnership, "Protocol review", date(2024, 3, 1),
                            ["TD-01", "TC-01"])
    make_linked_interaction(partnership, "Recruitment webinar", date(2025, 4, 1), ["TC-01"])
    make_linked_interaction(partnership, "Catch-up call", date(2025, 4, 9), [])

    coverage = services.coverage_for(partnership, today=date(2025, 6, 30))
    assert coverage.since == date(2024, 6, 30)
    served = {item.row.code: item for item in coverage.priorities}
    assert [i.title for i in served["RP-01"].interactions] == ["Listening session"]
    assert served["RP-01"].last_served_on == date(2025, 5, 2)
    assert served["TD-01"].last_served_on == date(2024, 3, 1)
    assert [item.row.code for item in coverage.stale] == ["TD-01", "TD-04"]
    assert sorted(i.title for i in coverage.unlinked_interactions) == [
        "Catch-up call", "Recruitment webinar"]


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
    td04 = next(row for row in rows if "TD-04" in row)
    assert "No interaction in the last 12 months" not in rp01 and "Listening session" in rp01
    assert "No interaction in the last 12 months" in td04 and "Never" in td04
    assert "2 of 3 priorities had no interaction" in text


def test_coverage_before_any_exercise_says_what_is_missing(client, partnership,
                                                           sponsor_advocate):
    make_linked_interaction(partnership, "Kick-off", date(2025, 1, 10), [])
    login(client, sponsor_advocate)
    text = page_text(client.get(f"/partnerships/{partnership.id}/coverage"))
    assert "both sides need to complete their" in text
    assert "Kick-off" in text


def test_partnership_page_shows_the_coverage_of_priorities(client, partnership,
                                                          sponsor_advocate, group_partner):
    rate_side(partnership, "sponsor", sponsor_advocate, SPONSOR)
    rate_side(partnership, "patient_group", group_partner, PATIENT_GROUP)
    make_linked_interaction(partnership, "Consent form review", date.today(), ["TD-04"])
    login(client, group_partner)
    text = page_text(client.get(f"/partnerships/{partnership.id}"))
    assert "Priorities served by interactions" in text
    assert "Consent form review" in text
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
    rate_side(partnership, "sponsor", sponsor_advocate, SPONSOR)
    login(client, sponsor_advocate)
    response = client.get(f"/partnerships/{partnership.id}/prioritisation/sponsor/matrix.svg")
    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    svg = response.get_data(as_text=True)
    assert "style=" not in svg and "<script" not in svg
    for words in ("PURSUE", "WORTH IT IF RESOURCED", "MAY SUIT A PARTNER", "UNLIKELY WORTH IT"):
        assert words in svg
    assert "<title" in svg and "<desc" in svg and "RP-01 Share community" in svg
    page = client.get(f"/partnerships/{partnership.id}/prioritisation/sponsor/matrix")
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
    response = client.get(f"/partnerships/{partnership.id}/prioritisation/sponsor/export.csv")
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 5
    rp01 = next(row for row in rows if row["activity_code"] == "RP-01")
    assert rp01["activity_name"] == "Share community priorities and unmet needs"
    assert (rp01["benefit"], rp01["investment"], rp01["quadrant"]) == ("high", "low", "pursue")
    assert rp01["benefit_factors"] == "reach;reputation"
    assert rp01["rationale"].startswith("'=HYPERLINK")


def test_matrix_pdf_opens_and_names_every_activity(client, partnership, sponsor_advocate):
    rate_side(partnership, "sponsor", sponsor_advocate, SPONSOR)
    login(client, sponsor_advocate)
    response = client.get(f"/partnerships/{partnership.id}/prioritisation/sponsor/export.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    reader = PdfReader(io.BytesIO(response.data))
    text = re.sub(r"\s+", " ", " ".join(page.extract_text() for page in reader.pages))
    for name in ("Share community priorities and unmet needs",
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
    assert "Mutual priorities" in text and "Disagreements to discuss" in text
    assert "Share community priorities and unmet needs" in text
    rows = list(csv.DictReader(io.StringIO(client.get(f"{base}/compare.csv")
                                           .get_data(as_text=True))))
    by_code = {row["activity_code"]: row for row in rows}
    assert by_code["RP-01"]["mutual_priority"] == "yes"
    assert by_code["RP-01"]["priority_rank"] == "1"
    assert by_code["TC-01"]["disagreement"] == "yes"
    assert by_code["TC-01"]["patient_group_benefit"] == "low"


def test_pdf_fetcher_refuses_files_and_the_network():
    fetcher = data_only_fetcher()
    for url in ("file:///etc/passwd", "http://example.org/logo.png",
                "https://example.org/x.css"):
        with pytest.raises(ValueError, match="disallowed protocol"):
            fetcher.fetch(url)


# --- demo -----------------------------------------------------------------------------------


def test_demo_gives_a_completed_exercise_per_side_with_priorities_and_a_disagreement(
        app, partnership, sponsor_advocate, group_partner):
    made = services.seed_demo_exercises(partnership, sponsor_advocate, group_partner)
    db.session.commit()
    assert {side: ex.status for side, ex in made.items()} == {"sponsor": "completed",
                                                              "patient_group": "completed"}
    comparison = services.compare_exercises(partnership)
    assert comparison.ready
    assert [row.code for row in comparison.mutual_priorities][:2] == ["RP-01", "TD-04"]
    assert {row.code for row in comparison.disagreements} == {"TC-01", "DP-02"}
