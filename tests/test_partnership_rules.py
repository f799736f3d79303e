"""Partnership rules of issue #21: one sponsor's share of a group's funding measured against the
group's own declared figures and caps (PART-CONCENTRATION), a closed partnership never evaluated
(PART-CLOSED-NO-EVALUATION), and engagement only late in the lifecycle (WHEN-LATE-ONLY); and the
yearly-figures page and API through which a patient group or compliance declares its figures."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from governance.audit import history_of
from governance.extensions import db
from governance.interactions import services as interactions
from governance.organisations.models import GroupYearlyFigures
from governance.partnerships.models import Support
from governance.partnerships.services import update_partnership
from governance.rules.bulk import reevaluate_all
from governance.rules.evaluation import evaluate_partnership
from governance.rules.flags import flags_of_partnership

from .conftest import login

TODAY = date.today()
THIS_YEAR, LAST_YEAR = TODAY.year, TODAY.year - 1


def open_rules(partnership) -> set[str]:
    return {flag.rule_id for flag in flags_of_partnership(partnership.id) if flag.state == "open"}


def message_of(partnership, rule_id: str) -> str:
    return next(flag.message for flag in flags_of_partnership(partnership.id)
                if flag.rule_id == rule_id and flag.state == "open")


def add_support(partnership, amount, paid_on=None, currency="GBP"):
    db.session.add(Support(partnership_id=partnership.id,
                           recipient_id=partnership.patient_group_id,
                           paid_on=paid_on or date(THIS_YEAR, 1, 1), kind="grant",
                           amount=Decimal(amount), currency=currency,
                           description="Grant towards the patient helpline"))
    db.session.flush()


def declare(group, year=THIS_YEAR, industry_support=None, income=None, currency="GBP",
            source=None):
    db.session.add(GroupYearlyFigures(
        organisation_id=group.id, year=year, currency=currency,
        industry_support=None if industry_support is None else Decimal(industry_support),
        income=None if income is None else Decimal(income),
        source=source or f"published accounts {year}"))
    db.session.flush()


@pytest.fixture
def partnership(make_partnership):
    return make_partnership(agreement_signed_on=date(2024, 1, 1))


# --- PART-CONCENTRATION -------------------------------------------------------------------


@pytest.mark.parametrize(("given", "flagged"), [(5100, True), (4900, False)])
def test_more_than_half_of_the_declared_industry_support_is_flagged(
        partnership, patient_group, given, flagged):
    declare(patient_group, industry_support=10_000)
    add_support(partnership, given)
    evaluate_partnership(partnership)
    assert ("PART-CONCENTRATION" in open_rules(partnership)) is flagged


def test_the_flag_reads_as_a_sentence_naming_the_declared_figure(partnership, patient_group):
    declare(patient_group, industry_support=10_000, source="published accounts")
    add_support(partnership, 5100)
    evaluate_partnership(partnership)
    message = message_of(partnership, "PART-CONCENTRATION")
    assert message.startswith(f"In {THIS_YEAR} the sponsor gave 51 % of the industry support "
                              "the group declared (GBP 5,100.00 of GBP 10,000.00; source: "
                              "published accounts).")
    assert "limits" not in message and "none" not in message and "(s)" not in message
    assert "at most 50 % of a group's industry support and 25 % of its income" in message


def test_declared_figures_replace_the_support_recorded_here(partnership, patient_group):
    """The only sponsor recorded gives all the support recorded, but 10 % of what the group
    declared it received from industry."""
    add_support(partnership, 1000)
    evaluate_partnership(partnership)
    message = message_of(partnership, "PART-CONCENTRATION")
    assert "100 % of the industry support recorded here" in message
    assert f"the group declared no industry-support figure for {THIS_YEAR}" in message
    declare(patient_group, industry_support=10_000)
    evaluate_partnership(partnership)
    assert "PART-CONCENTRATION" not in open_rules(partnership)


def test_support_of_two_years_ago_no_longer_counts(partnership):
    add_support(partnership, 9000, paid_on=date(THIS_YEAR - 2, 12, 31))
    evaluate_partnership(partnership)
    assert "PART-CONCENTRATION" not in open_rules(partnership)
    add_support(partnership, 9000, paid_on=date(LAST_YEAR, 1, 1))
    evaluate_partnership(partnership)
    assert f"In {LAST_YEAR} the sponsor gave 100 %" in message_of(partnership,
                                                                 "PART-CONCENTRATION")


@pytest.mark.parametrize(("cap", "flagged"), [(Decimal("30"), True), (Decimal("45"), False)])
def test_the_groups_own_cap_replaces_the_policy_limit(partnership, patient_group, cap, flagged):
    declare(patient_group, industry_support=10_000)
    add_support(partnership, 4000)  # 40 %: within the policy's 50 %
    evaluate_partnership(partnership)
    assert "PART-CONCENTRATION" not in open_rules(partnership)
    patient_group.own_support_cap_pct = cap
    evaluate_partnership(partnership)
    assert ("PART-CONCENTRATION" in open_rules(partnership)) is flagged
    if flagged:
        assert message_of(partnership, "PART-CONCENTRATION").endswith(
            "in a year; this group's own industry policy sets 30 % of its industry support "
            "instead.")


def test_the_declared_income_of_the_year_replaces_the_annual_income(
        make_org, make_partnership, patient_group, partnership):
    other = make_org("Northwind Therapeutics", "sponsor")
    second = make_partnership("Second sponsor", sponsor_id=other.id)
    add_support(partnership, 26_000)
    add_support(second, 26_000)  # an even split of the support recorded
    patient_group.annual_income, patient_group.income_currency = Decimal(100_000), "GBP"
    evaluate_partnership(partnership)
    assert f"In {THIS_YEAR} it gave 26 % of the group's annual income" in message_of(
        partnership, "PART-CONCENTRATION")
    declare(patient_group, income=200_000)  # 13 %
    evaluate_partnership(partnership)
    assert "PART-CONCENTRATION" not in open_rules(partnership) | open_rules(second)


def test_the_groups_own_income_cap_replaces_the_policy_limit(partnership, patient_group,
                                                             make_org, make_partnership):
    second = make_partnership("Second sponsor",
                              sponsor_id=make_org("Northwind Therapeutics", "sponsor").id)
    declare(patient_group, industry_support=100_000, income=200_000)
    add_support(partnership, 30_000)  # 30 % of the support, 15 % of the income
    add_support(second, 30_000)
    evaluate_partnership(partnership)
    assert "PART-CONCENTRATION" not in open_rules(partnership)
    patient_group.own_income_cap_pct = Decimal(10)
    evaluate_partnership(partnership)
    assert "PART-CONCENTRATION" in open_rules(partnership) & open_rules(second)
    assert "sets 10 % of its income instead" in message_of(partnership, "PART-CONCENTRATION")


def test_a_declared_figure_below_the_support_recorded_is_said_so(partnership, patient_group):
    declare(patient_group, industry_support=5_000)
    add_support(partnership, 6_000)
    evaluate_partnership(partnership)
    assert "(GBP 6,000.00 of GBP 6,000.00: the support recorded for the group that year passes " \
           "its figure of GBP 5,000.00; source: " in message_of(partnership, "PART-CONCENTRATION")


def test_support_in_another_currency_than_the_declared_one_is_not_added(partnership,
                                                                        patient_group):
    declare(patient_group, industry_support=10_000, currency="EUR")
    add_support(partnership, 9_000, currency="GBP")
    add_support(partnership, 1_000, currency="EUR")
    evaluate_partnership(partnership)
    assert "PART-CONCENTRATION" not in open_rules(partnership)


# --- PART-CLOSED-NO-EVALUATION ------------------------------------------------------------


@pytest.mark.parametrize(("days", "evaluation", "flagged"), [
    (91, None, True), (89, None, False), (91, "Met its goals; next time involve carers earlier.",
                                           False), (91, "   ", True)])
def test_a_partnership_closed_long_ago_without_an_evaluation_is_flagged(
        make_partnership, days, evaluation, flagged):
    closed = make_partnership(status="closed", ended_on=TODAY - timedelta(days=days),
                              evaluation=evaluation)
    evaluate_partnership(closed)
    assert ("PART-CLOSED-NO-EVALUATION" in open_rules(closed)) is flagged


def test_writing_the_evaluation_clears_the_flag(make_partnership, compliance_user):
    ended = TODAY - timedelta(days=120)
    closed = make_partnership(status="closed", ended_on=ended)
    evaluate_partnership(closed)
    assert message_of(closed, "PART-CLOSED-NO-EVALUATION") == (
        f"The partnership closed on {ended.isoformat()}, 120 days ago, and no evaluation is "
        "written: record the lessons learned with the patient group within 90 days of the end.")
    update_partnership(closed, {"evaluation": "Both sides would co-design the survey earlier."},
                       compliance_user, expected_version=closed.version)
    db.session.commit()
    assert "PART-CLOSED-NO-EVALUATION" not in open_rules(closed)
    flag = next(f for f in flags_of_partnership(closed.id)
                if f.rule_id == "PART-CLOSED-NO-EVALUATION")
    assert flag.state == "remediated"


def test_an_active_partnership_is_not_judged_on_its_evaluation(make_partnership):
    active = make_partnership(ended_on=TODAY - timedelta(days=200))
    evaluate_partnership(active)
    assert "PART-CLOSED-NO-EVALUATION" not in open_rules(active)


# --- WHEN-LATE-ONLY -----------------------------------------------------------------------


@pytest.fixture
def meet(make_interaction, partnership):
    def do(months_ago: float, stage: str | None, **values):
        return make_interaction(partnership_id=partnership.id, lifecycle_stage=stage,
                                occurred_on=TODAY - timedelta(days=round(months_ago * 30.44)),
                                **values)

    return do


def test_meeting_only_in_phase_3_or_later_is_flagged(meet, partnership):
    meet(3, "phase_3")
    meet(10, "regulatory_review")
    meet(20, "post_approval")
    message = message_of(partnership, "WHEN-LATE-ONLY")
    assert message.startswith("Every interaction of the last 24 months sat in phase 3 or later; "
                              "no interaction before phase 3 is recorded.")


def test_a_sponsor_engaging_only_in_phase_3_no_longer_reads_as_adhering_to_when(meet,
                                                                              partnership):
    """The seeds' complaint: WHEN adherence read near 100 % for a sponsor that engages only in
    phase 3. The partnership's flag counts against each of its interactions."""
    from governance.interactions.models import Interaction
    from governance.review.adherence import adherence

    for months_ago in (2, 5, 8):
        meet(months_ago, "phase_3")
    when = next(row for row in adherence([Interaction.partnership_id == partnership.id])
                if row.dimension == "WHEN")
    assert (when.interactions, when.flagged, when.share) == (3, 3, 0.0)


def test_one_phase_2_interaction_within_the_window_is_a_near_miss(meet, partnership):
    meet(3, "phase_3")
    assert "WHEN-LATE-ONLY" in open_rules(partnership)
    meet(23, "phase_2")
    assert "WHEN-LATE-ONLY" not in open_rules(partnership)


def test_an_early_interaction_older_than_the_window_does_not_count(meet, partnership):
    early = meet(25, "phase_1")
    meet(2, "post_approval")
    message = message_of(partnership, "WHEN-LATE-ONLY")
    assert f"the last one before phase 3 (or without a stage recorded) was on " \
           f"{early.occurred_on.isoformat()}" in message


def test_an_interaction_without_a_stage_does_not_count_as_late(meet, partnership):
    meet(3, "phase_3")
    meet(6, None)
    assert "WHEN-LATE-ONLY" not in open_rules(partnership)


def test_a_cancelled_early_interaction_does_not_count(meet, partnership, compliance_user):
    meet(3, "phase_3")
    early = meet(0.5, "phase_2", status="planned")  # planned for a fortnight ago
    assert "WHEN-LATE-ONLY" not in open_rules(partnership)
    interactions.update_interaction(early, {"status": "cancelled"}, compliance_user,
                                    expected_version=early.version)
    db.session.commit()
    evaluate_partnership(partnership)
    assert "WHEN-LATE-ONLY" in open_rules(partnership)


def test_voiding_the_only_early_interaction_rechecks_the_partnership(meet, partnership,
                                                                     compliance_user):
    meet(3, "phase_3")
    early = meet(5, "phase_2")
    assert "WHEN-LATE-ONLY" not in open_rules(partnership)
    interactions.void_interaction(early, compliance_user, "Logged twice")
    db.session.commit()
    assert "WHEN-LATE-ONLY" in open_rules(partnership)


def test_a_partnership_with_no_interaction_in_the_window_is_not_judged(meet, partnership):
    meet(30, "phase_3")
    assert "WHEN-LATE-ONLY" not in open_rules(partnership)


def test_full_reevaluation_judges_the_lifecycle_alike(meet, partnership, make_partnership,
                                                      make_interaction):
    meet(3, "phase_3")
    balanced = make_partnership("Balanced partnership")
    make_interaction(partnership_id=balanced.id, lifecycle_stage="phase_1",
                     occurred_on=TODAY - timedelta(days=40))
    db.session.execute(
        type(flags_of_partnership(partnership.id)[0]).__table__.delete())  # start afresh
    reevaluate_all()
    assert "WHEN-LATE-ONLY" in open_rules(partnership)
    assert "WHEN-LATE-ONLY" not in open_rules(balanced)


# --- the yearly figures: page and API -------------------------------------------------------


@pytest.fixture
def group_partner(make_user, patient_group):
    return make_user("partner", patient_group, email="partner@rarelung.example")


@pytest.fixture
def sponsor_compliance(make_user, sponsor):
    return make_user("compliance", sponsor, email="compliance@helix.example")


FIGURES = {"year": str(LAST_YEAR), "industry_support": "80000.00", "income": "400000.00",
           "currency": "GBP", "source": f"published accounts {LAST_YEAR}"}


def figures_count() -> int:
    return db.session.scalar(select(func.count()).select_from(GroupYearlyFigures))


def test_the_groups_partner_records_figures_on_the_page_and_the_partnership_is_rechecked(
        client, group_partner, patient_group, partnership):
    add_support(partnership, 9_000, paid_on=date(LAST_YEAR, 5, 1))
    evaluate_partnership(partnership)
    db.session.commit()
    assert "PART-CONCENTRATION" in open_rules(partnership)
    login(client, group_partner)
    page = client.get(f"/organisations/{patient_group.id}/yearly-figures")
    assert page.status_code == 200 and "No yearly figures are declared yet" in page.text
    response = client.post(f"/organisations/{patient_group.id}/yearly-figures/record",
                           data=FIGURES)
    assert response.status_code == 302, response.text
    page = client.get(f"/organisations/{patient_group.id}/yearly-figures")
    assert "GBP 80,000.00" in page.text and f"published accounts {LAST_YEAR}" in page.text
    assert "PART-CONCENTRATION" not in open_rules(partnership)  # 9,000 of 80,000
    figures = db.session.scalar(select(GroupYearlyFigures))
    assert figures.industry_support == Decimal("80000.00")
    assert [event.action for event in history_of("group_yearly_figures", figures.id)] == [
        "create"]


def test_a_second_entry_for_the_same_year_needs_a_reason_and_then_changes_it(
        client, group_partner, patient_group):
    login(client, group_partner)
    url = f"/organisations/{patient_group.id}/yearly-figures/record"
    client.post(url, data=FIGURES)
    again = client.post(url, data=dict(FIGURES, industry_support="90000"))
    assert again.status_code == 422
    assert "already recorded (industry support GBP 80,000.00" in again.text
    figures = db.session.scalar(select(GroupYearlyFigures))
    assert figures.industry_support == Decimal("80000.00")
    changed = client.post(url, data=dict(FIGURES, industry_support="90000",
                                         reason="Audited accounts corrected the figure",
                                         version=str(figures.version)))
    assert changed.status_code == 302, changed.text
    db.session.expire_all()
    assert figures_count() == 1
    assert db.session.get(GroupYearlyFigures, figures.id).industry_support == Decimal("90000")
    events = history_of("group_yearly_figures", figures.id)
    assert events[-1].reason == "Audited accounts corrected the figure"


def test_bad_figures_are_refused_field_by_field_and_nothing_is_saved(client, group_partner,
                                                                    patient_group):
    login(client, group_partner)
    response = client.post(f"/organisations/{patient_group.id}/yearly-figures/record", data={
        "year": "20x5", "industry_support": "-5", "income": "12.5x", "currency": "eur",
        "source": ""})
    assert response.status_code == 422
    text = response.text
    for message in ("Not a valid integer", "Must be 0 or more.", "Not a valid number.",
                    "ISO 4217", "This field is required."):
        assert message in text, message
    assert figures_count() == 0
    future = client.post(f"/organisations/{patient_group.id}/yearly-figures/record",
                         data=dict(FIGURES, year=str(THIS_YEAR + 1)))
    assert future.status_code == 422 and f"{THIS_YEAR} at the latest" in future.text
    empty = client.post(f"/organisations/{patient_group.id}/yearly-figures/record",
                        data=dict(FIGURES, industry_support="", income=""))
    assert "Give the industry support or the income" in empty.text
    assert figures_count() == 0


def test_the_group_sets_its_own_caps_on_the_industry_policy_page(
        client, group_partner, patient_group, partnership):
    declare(patient_group, industry_support=10_000)
    add_support(partnership, 4000)
    db.session.commit()
    login(client, group_partner)
    url = f"/organisations/{patient_group.id}/industry-policy"
    assert client.get(url).status_code == 200
    refused = client.post(url, data={"own_support_cap_pct": "130",
                                     "version": str(patient_group.version)})
    assert refused.status_code == 422 and "Give a percentage from 0 to 100." in refused.text
    saved = client.post(url, data={"own_support_cap_pct": "30", "reason": "Board policy 2025",
                                   "version": str(patient_group.version)})
    assert saved.status_code == 302, saved.text
    assert "PART-CONCENTRATION" in open_rules(partnership)


def test_compliance_of_the_sponsor_records_figures_through_the_api(
        client, bearer, sponsor_compliance, patient_group, partnership):
    headers = bearer(sponsor_compliance)
    url = f"/api/v1/organisations/{patient_group.id}/yearly-figures"
    created = client.post(url, json=dict(FIGURES, year=LAST_YEAR), headers=headers)
    assert created.status_code == 201, created.text
    body = created.get_json()
    assert body["industry_support"] == "80000.00" and body["version"] == 1
    assert created.headers["ETag"]
    listed = client.get(url, headers=headers).get_json()
    assert [row["year"] for row in listed] == [LAST_YEAR]
    again = client.post(url, json=dict(FIGURES, year=LAST_YEAR), headers=headers)
    assert again.status_code == 409 and "PATCH" in again.get_json()["error"]["message"]


def test_a_patch_without_the_version_is_refused_with_428(client, bearer, sponsor_compliance,
                                                         patient_group, partnership):
    declare(patient_group, year=LAST_YEAR, industry_support=80_000)
    db.session.commit()
    headers = bearer(sponsor_compliance)
    url = f"/api/v1/organisations/{patient_group.id}/yearly-figures/{LAST_YEAR}"
    missing = client.patch(url, json={"industry_support": "1", "reason": "typo"},
                           headers=headers)
    assert missing.status_code == 428
    no_reason = client.patch(url, json={"industry_support": "1", "version": 1}, headers=headers)
    assert no_reason.status_code == 422 and "reason" in no_reason.get_json()["error"]["fields"]
    changed = client.patch(url, json={"industry_support": "85000", "version": 1,
                                      "reason": "Audited accounts"}, headers=headers)
    assert changed.status_code == 200, changed.text
    assert changed.get_json()["industry_support"] == "85000.00"
    stale = client.patch(url, json={"income": "1", "version": 1, "reason": "late"},
                         headers=headers)
    assert stale.status_code == 409
    assert client.patch(f"/api/v1/organisations/{patient_group.id}/yearly-figures/1999",
                        json={"version": 1}, headers=headers).status_code == 404


def test_bad_input_through_the_api_names_each_field(client, bearer, sponsor_compliance,
                                                    patient_group, partnership):
    response = client.post(f"/api/v1/organisations/{patient_group.id}/yearly-figures",
                           json={"year": "2025", "industry_support": "-1", "currency": "XYZ",
                                 "source": "accounts"},
                           headers=bearer(sponsor_compliance))
    assert response.status_code == 422
    assert set(response.get_json()["error"]["fields"]) == {"year", "industry_support",
                                                           "currency"}
    assert figures_count() == 0


def test_people_of_an_unrelated_organisation_cannot_read_or_record_the_figures(
        client, bearer, make_org, make_user, patient_group):
    declare(patient_group, year=LAST_YEAR, industry_support=80_000)
    db.session.commit()
    stranger = make_user("advocate", make_org("Northwind Therapeutics", "sponsor"))
    login(client, stranger)
    assert client.get(f"/organisations/{patient_group.id}/yearly-figures").status_code == 404
    headers = bearer(stranger)
    url = f"/api/v1/organisations/{patient_group.id}/yearly-figures"
    assert client.get(url, headers=headers).status_code == 404
    assert client.post(url, json=FIGURES, headers=headers).status_code == 403


def test_compliance_that_added_the_group_but_has_no_partnership_with_it_is_refused(
        client, bearer, make_org, make_user, patient_group):
    other = make_org("Northwind Therapeutics", "sponsor")
    patient_group.added_by_organisation_id = other.id
    db.session.commit()
    officer = make_user("compliance", other)
    response = client.post(f"/api/v1/organisations/{patient_group.id}/yearly-figures",
                           json=dict(FIGURES, year=LAST_YEAR), headers=bearer(officer))
    assert response.status_code == 403
    assert "in partnership with it" in response.get_json()["error"]["message"]
    assert figures_count() == 0


def test_a_sponsor_has_no_yearly_figures(client, sponsor_compliance, sponsor):
    login(client, sponsor_compliance)
    assert client.get(f"/organisations/{sponsor.id}/yearly-figures").status_code == 403
