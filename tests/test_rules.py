"""Good-practice rules as data: every rule raises on poor practice and not on a near miss; flags
follow the record; the policy files are checked before anything runs them."""

import shutil
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from governance import create_app
from governance.audit import history_of
from governance.errors import Conflict, NotAllowed, ValidationFailed
from governance.extensions import db
from governance.interactions import services as interactions
from governance.partnerships.models import Support
from governance.review.services import transition_flag
from governance.rules.bulk import evaluate_interactions_in_bulk, reevaluate_all
from governance.rules.cli import check_policies_command
from governance.rules.engine import PolicyError, check_policy_text, load_policy
from governance.rules.evaluation import evaluate_interaction, evaluate_partnership
from governance.rules.flags import flag_json, flags_of_interaction, flags_of_partnership
from governance.rules.models import Flag

from .conftest import follow_job, make_config

PROJECT_POLICIES = Path(__file__).resolve().parent.parent / "policies"
TODAY = date.today()
LONG_AGO = date(2025, 3, 14)  # GOOD_INTERACTION's date


@pytest.fixture
def policies_dir(tmp_path):
    """A private copy of the shipped policy files that a test may change."""
    target = tmp_path / "policies"
    shutil.copytree(PROJECT_POLICIES, target)
    return target


@pytest.fixture
def app_config(policies_dir):
    return {"POLICIES_DIR": str(policies_dir)}


def edit_policy(policies_dir: Path, *replacements: tuple[str, str]) -> None:
    path = policies_dir / "rules.toml"
    text = path.read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new, 1)
    path.write_text(text, encoding="utf-8")


def open_rules(flags) -> set[str]:
    return {flag.rule_id for flag in flags if flag.state == "open"}


def interaction_rules(interaction) -> set[str]:
    return open_rules(flags_of_interaction(interaction.id))


def partnership_rules(partnership) -> set[str]:
    return open_rules(flags_of_partnership(partnership.id))


def partnership_flag(partnership, rule_id: str) -> Flag:
    return next(f for f in flags_of_partnership(partnership.id) if f.rule_id == rule_id)


@pytest.fixture
def partnership(make_partnership):
    return make_partnership(agreement_signed_on=date(2024, 1, 1))


@pytest.fixture
def log(make_interaction, partnership):
    """Log an interaction that follows every good practice, changed by the given values."""
    def do(**values):
        values.setdefault("partnership_id", partnership.id)
        return make_interaction(**values)

    return do


# --- every interaction rule, both ways ------------------------------------------------------

PRODUCT = {"product_specific": True, "product": "HLX-101", "facilitator": "third_party"}

RULE_CASES = [
    # rule, values that raise it, a near miss that does not
    ("WHAT-ADHOC", {"partnership_id": None}, {}),
    ("WHY-NOT-SHARED", {"purpose_shared_on": None}, {"purpose_shared_on": LONG_AGO}),
    ("WHY-NOT-SHARED", {"purpose_shared_on": LONG_AGO + timedelta(days=1)},
     {"purpose_shared_on": LONG_AGO - timedelta(days=1)}),
    ("WHY-VAGUE", {"purpose": "Discuss the protocol"},
     {"purpose": "Gather views on the draft visit schedule today"}),
    ("WHY-VAGUE", {"purpose": None}, {"purpose": "one two three four five six seven eight"}),
    ("WHEN-NEAR-APPROVAL", {**PRODUCT, "lifecycle_stage": "regulatory_review", "purpose": "Chat"},
     {**PRODUCT, "lifecycle_stage": "regulatory_review"}),
    ("WHEN-NEAR-APPROVAL", {**PRODUCT, "lifecycle_stage": "phase_3", "purpose_shared_on": None,
                            "expected_approval_on": LONG_AGO + timedelta(days=300)},
     {**PRODUCT, "lifecycle_stage": "phase_3", "purpose_shared_on": None,
      "expected_approval_on": LONG_AGO + timedelta(days=400)}),
    ("WHEN-NEAR-APPROVAL", {**PRODUCT, "lifecycle_stage": "post_approval", "purpose": "Chat",
                            "approved_on": LONG_AGO - timedelta(days=200)},
     {**PRODUCT, "lifecycle_stage": "post_approval", "purpose": "Chat",
      "approved_on": LONG_AGO - timedelta(days=5 * 365)}),
    ("WHO-PARITY", {"patient_participants": 2, "caregiver_participants": 0, "sponsor_staff": 3},
     {"patient_participants": 2, "caregiver_participants": 1, "sponsor_staff": 3}),
    ("WHO-UNREPRESENTATIVE", {"stages_represented": ["early"], "stages_in_scope": ["all"]},
     {"stages_represented": ["early"], "stages_in_scope": ["early"]}),
    ("WHO-UNREPRESENTATIVE", {"stages_represented": ["early", "intermediate"],
                              "stages_in_scope": ["late"]},
     {"stages_represented": ["all"], "stages_in_scope": ["late", "early"]}),
    ("WHO-ADHOC-SELECTION", {"selection_method": "ad_hoc"},
     {"selection_method": "standard_procedure"}),
    ("HOW-NO-PATIENT-INPUT", {"materials_co_created": False}, {"materials_co_created": True}),
    ("HOW-NO-PROTOCOL", {"protocol_followed": False}, {"protocol_followed": True}),
    ("HOW-SPONSOR-LED-PRODUCT", {**PRODUCT, "facilitator": "sponsor_staff"},
     {**PRODUCT, "facilitator": "third_party"}),
    ("WHERE-SPONSOR-VENUE", {"venue_type": "sponsor_site", "venue_agreed_by_patients": False},
     {"venue_type": "sponsor_site", "venue_agreed_by_patients": True}),
    ("WHERE-ACCESS", {"modality": "hybrid", "accessibility_reviewed": False},
     {"modality": "video", "accessibility_reviewed": False}),
    ("DOC-NO-SUMMARY", {"summary": None, "summary_recorded_on": None},
     {"summary_recorded_on": LONG_AGO + timedelta(days=30)}),
    ("DOC-NO-SUMMARY", {"summary_recorded_on": LONG_AGO + timedelta(days=31)},
     {"occurred_on": TODAY - timedelta(days=10), "summary": None, "summary_recorded_on": None,
      "outcomes_shared_on": None, "purpose_shared_on": TODAY - timedelta(days=20)}),
    ("DOC-NO-FEEDBACK", {"outcomes_shared_on": None},
     {"outcomes_shared_on": LONG_AGO + timedelta(days=90)}),
    ("DOC-NO-FEEDBACK", {"outcomes_shared_on": LONG_AGO + timedelta(days=91)},
     {"occurred_on": TODAY - timedelta(days=60), "outcomes_shared_on": None,
      "summary_recorded_on": TODAY - timedelta(days=50),
      "purpose_shared_on": TODAY - timedelta(days=70)}),
]


@pytest.mark.parametrize("rule_id, raising, near_miss", RULE_CASES,
                         ids=[f"{case[0]}-{n}" for n, case in enumerate(RULE_CASES)])
def test_each_interaction_rule_raises_on_poor_practice_and_not_on_a_near_miss(
        log, rule_id, raising, near_miss):
    flagged = log(**raising)
    assert rule_id in interaction_rules(flagged)
    flag = next(f for f in flags_of_interaction(flagged.id) if f.rule_id == rule_id)
    assert flag.policy_version == "2025.1"
    assert flag.message and "$" not in flag.message
    assert rule_id not in interaction_rules(log(**near_miss))


def test_an_interaction_following_every_practice_raises_no_flag(log):
    assert interaction_rules(log()) == set()


def test_every_rule_of_the_domain_table_is_in_the_shipped_policy():
    domain = {"WHAT-ADHOC", "WHAT-TRANSACTIONAL", "WHY-NOT-SHARED", "WHY-VAGUE",
              "WHEN-NEAR-APPROVAL", "WHO-PARITY", "WHO-UNREPRESENTATIVE", "WHO-ADHOC-SELECTION",
              "HOW-NO-PATIENT-INPUT", "HOW-NO-PROTOCOL", "HOW-SPONSOR-LED-PRODUCT",
              "WHERE-SPONSOR-VENUE", "WHERE-ACCESS", "DOC-NO-SUMMARY", "DOC-NO-FEEDBACK",
              "PART-NO-AGREEMENT", "PART-IP-UNSETTLED", "PART-CONCENTRATION",
              # payments to individuals, agreements, approval before the event (#18)
              "FEE-ABOVE-FMV", "AGR-MISSING", "PLAN-NOT-APPROVED"}
    domain |= {"AGR-MISSING", "AGR-PAID-BEFORE-SIGNED", "AGR-OUTSIDE-TERM", "AGR-OVER-AMOUNT",
               "AGR-UNCERTIFIED"}
    domain |= {"PART-CLOSED-NO-EVALUATION", "WHEN-LATE-ONLY"}  # issue #21
    policy = load_policy(PROJECT_POLICIES)
    assert set(policy.rules) == domain
    for rule in policy.rules.values():
        assert rule.spec.good_practice and rule.spec.reference["seed"].endswith(".txt")
    # The shipped file claims no co-creation: that is the partners' sign-offs, recorded in the
    # application (test_policy_versions.py).
    provenance = policy.policy.provenance
    assert provenance["method"].startswith("A starting draft, not yet co-created")
    assert not {"co_created_with", "co_created_on", "approved_by"} & set(provenance)


# --- partnership rules, both ways -----------------------------------------------------------


def add_support(partnership, amount, paid_on=None, recipient_id=None):
    db.session.add(Support(partnership_id=partnership.id,
                           recipient_id=recipient_id or partnership.patient_group_id,
                           paid_on=paid_on or TODAY - timedelta(days=20), kind="grant",
                           amount=None if amount is None else Decimal(amount), currency="GBP",
                           description="Grant towards the patient helpline"))
    db.session.flush()


def test_partnership_meeting_less_than_twice_a_year_is_transactional(log, partnership):
    log(occurred_on=TODAY - timedelta(days=40), purpose_shared_on=TODAY - timedelta(days=50),
        summary_recorded_on=TODAY - timedelta(days=35), outcomes_shared_on=None)
    assert "WHAT-TRANSACTIONAL" in partnership_rules(partnership)
    log(occurred_on=TODAY - timedelta(days=20), purpose_shared_on=TODAY - timedelta(days=30),
        summary_recorded_on=TODAY - timedelta(days=15), outcomes_shared_on=None)
    assert "WHAT-TRANSACTIONAL" not in partnership_rules(partnership)
    flag = db.session.scalar(select(Flag).where(Flag.rule_id == "WHAT-TRANSACTIONAL"))
    assert flag.state == "remediated"


def test_an_interaction_change_re_checks_only_the_partnership_rules_that_count_interactions(
        log, make_partnership):
    """A new interaction moves only its partnership's interaction count: the flags of rules
    about support stay as they were, and the support lines are not read again."""
    from sqlalchemy import event

    unsigned = make_partnership("Unsigned", started_on=TODAY - timedelta(days=400))
    add_support(unsigned, 1000)
    evaluate_partnership(unsigned)
    assert {"AGR-MISSING", "WHAT-TRANSACTIONAL"} <= partnership_rules(unsigned)
    support_flag = partnership_flag(unsigned, "AGR-MISSING")
    version = support_flag.version
    statements = []

    def remember(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", remember)
    try:
        for days in (40, 20):
            log(partnership_id=unsigned.id, occurred_on=TODAY - timedelta(days=days),
                purpose_shared_on=TODAY - timedelta(days=days + 10),
                summary_recorded_on=TODAY - timedelta(days=days - 5), outcomes_shared_on=None)
    finally:
        event.remove(db.engine, "before_cursor_execute", remember)
    assert "WHAT-TRANSACTIONAL" not in partnership_rules(unsigned)
    assert "AGR-MISSING" in partnership_rules(unsigned)
    assert partnership_flag(unsigned, "AGR-MISSING").version == version
    assert not [s for s in statements if "FROM supports" in s]


def test_new_or_proposed_partnerships_are_not_judged_transactional(make_partnership):
    new = make_partnership("New", started_on=TODAY - timedelta(days=30))
    proposed = make_partnership("Proposed", status="proposed")
    for partnership in (new, proposed):
        evaluate_partnership(partnership)
        assert "WHAT-TRANSACTIONAL" not in partnership_rules(partnership)
    old = make_partnership("Old", started_on=TODAY - timedelta(days=400))
    evaluate_partnership(old)
    assert "WHAT-TRANSACTIONAL" in partnership_rules(old)


def test_part_no_agreement_is_switched_off_and_its_open_flags_close_as_superseded(
        make_partnership):
    """AGR-MISSING took over: the old rule raises nothing, and a flag it raised before closes as
    superseded (the policy changed, not the record), naming the policy version."""
    unsigned = make_partnership("Unsigned")
    add_support(unsigned, 1000)
    db.session.add(Flag(partnership_id=unsigned.id, rule_id="PART-NO-AGREEMENT",
                        dimension="WHAT", severity="high", state="open",
                        message="1 support line(s) are recorded but the partnership has no "
                                "signed written agreement.", policy_version="2025.1"))
    db.session.flush()
    evaluate_partnership(unsigned)
    assert "PART-NO-AGREEMENT" not in partnership_rules(unsigned)
    assert "AGR-MISSING" in partnership_rules(unsigned)
    old = partnership_flag(unsigned, "PART-NO-AGREEMENT")
    assert old.state == "superseded"
    assert old.note.startswith("Superseded by policy v2025.1: Replaced by AGR-MISSING")


def test_research_partnership_without_ip_terms_is_flagged(make_partnership):
    research = make_partnership("Research", kind="research_investment")
    settled = make_partnership("Settled", kind="research_investment", ip_terms_agreed=True)
    content = make_partnership("Content", kind="content_engagement")
    for partnership in (research, settled, content):
        evaluate_partnership(partnership)
    assert "PART-IP-UNSETTLED" in partnership_rules(research)
    assert "PART-IP-UNSETTLED" not in partnership_rules(settled)
    assert "PART-IP-UNSETTLED" not in partnership_rules(content)


@pytest.fixture
def two_sponsors(make_org, make_partnership, patient_group):
    other = make_org("Northwind Therapeutics", "sponsor")
    first = make_partnership("First sponsor", agreement_signed_on=date(2024, 1, 1))
    second = make_partnership("Second sponsor", sponsor_id=other.id,
                              agreement_signed_on=date(2024, 1, 1))
    return first, second


def test_one_sponsor_giving_most_of_a_groups_support_is_flagged(two_sponsors):
    first, second = two_sponsors
    add_support(first, 6000)
    add_support(second, 4000)
    evaluate_partnership(first)
    assert "PART-CONCENTRATION" in partnership_rules(first)
    assert "PART-CONCENTRATION" not in partnership_rules(second)
    assert "60 %" in partnership_flag(first, "PART-CONCENTRATION").message


def test_an_even_split_between_sponsors_is_a_near_miss(two_sponsors):
    first, second = two_sponsors
    add_support(first, 5000)
    add_support(second, 5000)
    add_support(first, None)  # in-kind support that cannot be valued does not count
    evaluate_partnership(first)
    assert "PART-CONCENTRATION" not in partnership_rules(first) | partnership_rules(second)


def test_more_than_a_quarter_of_a_groups_income_is_flagged(two_sponsors, patient_group):
    first, second = two_sponsors
    patient_group.annual_income = Decimal("100000")
    patient_group.income_currency = "GBP"
    add_support(first, 26000)
    add_support(second, 26000)
    evaluate_partnership(first)
    assert "PART-CONCENTRATION" in partnership_rules(first)
    db.session.execute(Support.__table__.update().values(amount=Decimal("25000")))
    evaluate_partnership(first)
    assert "PART-CONCENTRATION" not in partnership_rules(first) | partnership_rules(second)


def test_shares_are_counted_per_calendar_year(two_sponsors):
    """The current and the last calendar year are each judged on their own."""
    first, second = two_sponsors
    last_year, this_year = TODAY.year - 1, TODAY.year
    add_support(first, 9000, paid_on=date(last_year, 6, 1))
    add_support(second, 1000, paid_on=date(last_year, 6, 1))
    add_support(second, 9000, paid_on=date(this_year, 1, 1))
    add_support(first, 1000, paid_on=date(this_year, 1, 1))
    evaluate_partnership(first)
    assert "PART-CONCENTRATION" in partnership_rules(first)
    assert "PART-CONCENTRATION" in partnership_rules(second)
    assert f"In {last_year} the sponsor gave 90 %" in partnership_flag(
        first, "PART-CONCENTRATION").message


# --- flags follow the record ----------------------------------------------------------------


def test_fixing_the_record_closes_its_flag_automatically_and_audits_it(
        log, compliance_user):
    interaction = log(protocol_followed=False)
    flag = flags_of_interaction(interaction.id)[0]
    assert flag.rule_id == "HOW-NO-PROTOCOL"
    interactions.update_interaction(interaction, {"protocol_followed": True}, compliance_user,
                                    reason="Protocol was in fact followed")
    db.session.commit()
    assert flag.state == "remediated"
    assert flag.note == "No longer applies under policy v2025.1."
    assert flag.resolved_by_id is None
    events = history_of("flag", flag.id)
    assert [e.action for e in events] == ["create", "update"]
    assert events[1].change_set["state"] == ["open", "remediated"]


def test_evaluating_again_keeps_one_open_flag_per_rule(log):
    interaction = log(protocol_followed=False, selection_method="ad_hoc")
    for _ in range(3):
        evaluate_interaction(interaction)
    flags = flags_of_interaction(interaction.id)
    assert sorted(f.rule_id for f in flags) == ["HOW-NO-PROTOCOL", "WHO-ADHOC-SELECTION"]


def test_the_flags_an_evaluation_settled_are_shown_without_reading_them_again_but_never_stale(
        log, compliance_user):
    from sqlalchemy import event

    interaction = log(protocol_followed=False)
    evaluate_interaction(interaction)
    statements = []

    def remember(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", remember)
    try:
        assert [f.rule_id for f in flags_of_interaction(interaction.id)] == [
            "HOW-NO-PROTOCOL"]
        assert statements == []
        db.session.add(Flag(interaction_id=interaction.id, rule_id="WHO-ADHOC-SELECTION",
                            dimension="WHO", severity="medium", state="open",
                            message="Added by hand", policy_version="2025.1"))
        db.session.flush()
        assert sorted(f.rule_id for f in flags_of_interaction(interaction.id)) == [
            "HOW-NO-PROTOCOL", "WHO-ADHOC-SELECTION"]
    finally:
        event.remove(db.engine, "before_cursor_execute", remember)
    db.session.commit()
    assert len(flags_of_interaction(interaction.id)) == 2


def test_poor_practice_coming_back_opens_a_new_flag(log, compliance_user):
    interaction = log(protocol_followed=False)
    interactions.update_interaction(interaction, {"protocol_followed": True}, compliance_user)
    interactions.update_interaction(interaction, {"protocol_followed": False}, compliance_user)
    flags = flags_of_interaction(interaction.id)
    assert sorted(f.state for f in flags) == ["open", "remediated"]


def test_voiding_a_record_withdraws_its_open_flags(log, compliance_user):
    interaction = log(protocol_followed=False)
    interactions.void_interaction(interaction, compliance_user, "Logged twice")
    flag = db.session.scalar(select(Flag).where(Flag.interaction_id == interaction.id))
    assert flag.voided_at is not None and flag.void_reason == "The interaction was voided."
    assert flags_of_interaction(interaction.id) == []


def test_moving_an_interaction_re_evaluates_the_partnership_it_left(
        log, make_partnership, compliance_user, partnership):
    recent = {"occurred_on": TODAY - timedelta(days=20),
              "purpose_shared_on": TODAY - timedelta(days=30), "outcomes_shared_on": None,
              "summary_recorded_on": TODAY - timedelta(days=10)}
    log(**recent)
    moving = log(**recent)
    assert "WHAT-TRANSACTIONAL" not in partnership_rules(partnership)
    other = make_partnership("Other", agreement_signed_on=date(2024, 1, 1))
    interactions.update_interaction(moving, {"partnership_id": other.id}, compliance_user)
    assert "WHAT-TRANSACTIONAL" in partnership_rules(partnership)


def test_interactions_can_be_found_by_flag_rule_and_state(log, compliance_user):
    flagged = log(protocol_followed=False)
    log()
    page = interactions.find_interactions(
        compliance_user, interactions.InteractionFilter(rule="HOW-NO-PROTOCOL", state="open"))
    assert [i.id for i in page.items] == [flagged.id]


# --- resolving flags --------------------------------------------------------------------------


@pytest.fixture
def open_flag(log):
    interaction = log(protocol_followed=False)
    return flags_of_interaction(interaction.id)[0]


def test_flag_json_has_the_api_shape(open_flag):
    assert flag_json(open_flag) == {
        "id": open_flag.id, "rule": "HOW-NO-PROTOCOL", "dimension": "HOW", "severity": "low",
        "state": "open", "message": "No standard protocol was followed for this interaction.",
    }


def test_compliance_acknowledges_a_flag_with_a_justification(open_flag, compliance_user):
    transition_flag(open_flag, "acknowledged", "Pilot format agreed with the panel",
                             compliance_user)
    db.session.commit()
    assert open_flag.state == "acknowledged"
    assert open_flag.resolved_by_id == compliance_user.id and open_flag.resolved_at
    event = history_of("flag", open_flag.id)[-1]
    assert event.actor_id == compliance_user.id
    assert event.reason == "Pilot format agreed with the panel"


@pytest.mark.parametrize("state, note, error, field", [
    ("acknowledged", "  ", ValidationFailed, "note"),
    ("dismissed", None, ValidationFailed, "note"),
    ("reopened", "why not", ValidationFailed, "state"),
    ("remediated", None, Conflict, None),  # the record still breaks the rule
])
def test_refused_transitions_change_nothing(open_flag, compliance_user, state, note, error,
                                            field):
    with pytest.raises(error) as raised:
        transition_flag(open_flag, state, note, compliance_user)
    if field:
        assert field in raised.value.fields
    db.session.rollback()
    assert db.session.get(Flag, open_flag.id).state == "open"


def test_a_closed_flag_cannot_change_again(open_flag, compliance_user):
    transition_flag(open_flag, "dismissed", "Not applicable to surveys",
                             compliance_user)
    with pytest.raises(Conflict, match="already dismissed"):
        transition_flag(open_flag, "acknowledged", "Changed my mind", compliance_user)


@pytest.mark.parametrize("role", ["partner", "advocate", "auditor"])
def test_only_compliance_may_resolve_flags(open_flag, make_user, patient_group, role):
    user = make_user(role, patient_group if role in ("partner", "advocate") else None)
    with pytest.raises(NotAllowed):
        transition_flag(open_flag, "acknowledged", "Looks fine to us", user)
    assert open_flag.state == "open"


def test_remediated_is_accepted_once_the_record_no_longer_breaks_the_rule(
        open_flag, compliance_user):
    open_flag.interaction.protocol_followed = True  # fixed without re-evaluation (e.g. import)
    db.session.flush()
    transition_flag(open_flag, "remediated", None, compliance_user)
    assert open_flag.state == "remediated"


def test_acknowledged_flag_is_not_reopened_under_the_same_policy_version(
        open_flag, compliance_user):
    transition_flag(open_flag, "acknowledged", "Accepted for this pilot",
                             compliance_user)
    evaluate_interaction(open_flag.interaction)
    assert [f.state for f in flags_of_interaction(open_flag.interaction_id)] == [
        "acknowledged"]


def test_partner_cannot_resolve_a_flag_through_the_page(client, log_in, open_flag, make_user,
                                                       patient_group):
    partner = make_user("partner", patient_group)
    log_in(partner)
    response = client.post(f"/review/flags/{open_flag.id}",
                           data={"state": "dismissed", "note": "Not relevant"})
    assert response.status_code == 403
    assert db.session.get(Flag, open_flag.id).state == "open"


def test_compliance_resolves_a_flag_on_its_page(client, log_in, open_flag, compliance_user):
    log_in(compliance_user)
    page = client.get(f"/review/flags/{open_flag.id}").get_data(as_text=True)
    assert "Standardize protocols, forms, and procedures" in page
    response = client.post(f"/review/flags/{open_flag.id}", data={"state": "dismissed"})
    assert response.status_code == 422
    assert "Say why this flag does not apply." in response.get_data(as_text=True)
    response = client.post(f"/review/flags/{open_flag.id}",
                           data={"state": "dismissed", "note": "Informal survey, no protocol"})
    assert response.status_code == 303
    db.session.expire_all()
    flag = db.session.get(Flag, open_flag.id)
    assert (flag.state, flag.note) == ("dismissed", "Informal survey, no protocol")


# --- policy changes and re-evaluation -------------------------------------------------------


def test_reevaluation_after_a_policy_change_opens_and_closes_flags(
        app, log, runner, policies_dir):
    short = log(purpose="Hear patients on the draft visit schedule of the trial")  # 10 words
    assert interaction_rules(short) == set()
    edit_policy(policies_dir, ('version = "2025.1"', 'version = "2025.2"'),
                ("min_words = { value = 8,", "min_words = { value = 12,"))
    result = runner.invoke(args=["reevaluate"])
    assert result.exit_code == 0, result.output
    assert "under policy v2025.2: 1 flags opened, 0 closed" in result.output
    db.session.expire_all()
    assert interaction_rules(short) == {"WHY-VAGUE"}
    flag = flags_of_interaction(short.id)[0]
    assert flag.policy_version == "2025.2" and "at least 12 words" in flag.message

    edit_policy(policies_dir, ('version = "2025.2"', 'version = "2025.3"'),
                ("min_words = { value = 12,", "min_words = { value = 8,"))
    result = runner.invoke(args=["reevaluate"])
    assert "0 flags opened, 1 closed" in result.output
    db.session.expire_all()
    flag = db.session.get(Flag, flag.id)
    # The purpose did not change, the threshold did: the flag lapsed with the policy (a
    # version kept when it re-evaluated), it was not put right (#21).
    assert flag.state == "superseded" and flag.note.startswith(
        "Superseded by policy v2025.3: the rule changed since v2025.2 raised this flag")
    assert [e.action for e in history_of("flag", flag.id)] == ["create", "update"]
    from governance.audit import verify_chain
    assert verify_chain().intact


def test_reevaluation_is_idempotent(log, runner):
    log(protocol_followed=False)
    before = db.session.scalar(select(db.func.count()).select_from(Flag))
    first = runner.invoke(args=["reevaluate"])
    second = runner.invoke(args=["reevaluate"])
    assert "0 flags opened, 0 closed" in first.output
    assert "0 flags opened, 0 closed" in second.output
    assert db.session.scalar(select(db.func.count()).select_from(Flag)) == before


def test_acknowledged_flag_is_raised_again_under_a_new_policy_version(
        open_flag, compliance_user, policies_dir):
    transition_flag(open_flag, "acknowledged", "Accepted for this pilot",
                             compliance_user)
    db.session.commit()
    edit_policy(policies_dir, ('version = "2025.1"', 'version = "2026.1"'))
    reevaluate_all()
    db.session.commit()
    flags = flags_of_interaction(open_flag.interaction_id)
    assert sorted((f.state, f.policy_version) for f in flags) == [
        ("acknowledged", "2025.1"), ("open", "2026.1")]


def test_bulk_and_single_evaluation_agree(log, make_partnership, compliance_user):
    log(protocol_followed=False, selection_method="ad_hoc", venue_type="sponsor_site",
        venue_agreed_by_patients=False)
    log(partnership_id=None, purpose="Chat", purpose_shared_on=None)
    evaluate_partnership(make_partnership("Research", kind="research_investment"))
    before = {(f.interaction_id, f.partnership_id, f.rule_id, f.state)
              for f in db.session.scalars(select(Flag))}
    db.session.execute(Flag.__table__.delete())  # start again from nothing, in bulk
    reevaluate_all()
    after = {(f.interaction_id, f.partnership_id, f.rule_id, f.state)
             for f in db.session.scalars(select(Flag))}
    assert after == before
    assert {rule for _i, _p, rule, _s in after} >= {"HOW-NO-PROTOCOL", "WHO-ADHOC-SELECTION",
                                                    "WHERE-SPONSOR-VENUE", "WHAT-ADHOC",
                                                    "WHY-VAGUE", "PART-IP-UNSETTLED"}


def test_interactions_saved_in_bulk_are_evaluated_in_bulk(log, sponsor):
    from governance.interactions.models import Interaction

    single = log(protocol_followed=False, selection_method="ad_hoc")
    expected = interaction_rules(single)
    copies = [Interaction(**interactions.interaction_values(single)) for _ in range(3)]
    db.session.add_all(copies)
    db.session.flush()  # saved without evaluation, as an import does
    evaluate_interactions_in_bulk([copy.id for copy in copies])
    for copy in copies:
        assert interaction_rules(copy) == expected == {"HOW-NO-PROTOCOL", "WHO-ADHOC-SELECTION"}
        flag = flags_of_interaction(copy.id)[0]
        assert [e.action for e in history_of("flag", flag.id)] == ["create"]


def test_compliance_re_evaluates_with_the_button_in_the_background(
        client, log_in, compliance_user, log, app, task_worker):
    flagged = log(protocol_followed=False)
    edit_policy(Path(app.config["POLICIES_DIR"]), ('version = "2025.1"', 'version = "2025.2"'))
    log_in(compliance_user)
    response = client.post("/review/reevaluate")
    assert response.status_code == 303
    page_url = response.headers["Location"]
    status = follow_job(client, f"{page_url}/status")
    assert status["status"] == "done", status
    assert status["progress"] == 100
    page = client.get(page_url).get_data(as_text=True)
    assert "Re-evaluated 1 interactions" in page and "policy v2025.2" in page
    assert "Re-evaluation" in client.get("/review/reevaluations").get_data(as_text=True)
    assert interaction_rules(flagged) == {"HOW-NO-PROTOCOL"}  # still one open flag, not two
    run_history = history_of("reevaluation_run", int(page_url.rsplit("/", 1)[1]))
    assert [e.action for e in run_history] == ["create", "update", "update"]
    assert run_history[-1].actor_label == "re-evaluation job"


@pytest.mark.parametrize("app_config", [{"JOBS_INLINE": True}])
def test_a_second_re_evaluation_waits_for_the_first_one(client, log_in, compliance_user):
    from governance.rules import jobs
    from governance.rules.models import ReevaluationRun

    running = jobs.request_reevaluation(compliance_user)
    db.session.commit()
    log_in(compliance_user)
    response = client.post("/review/reevaluate", follow_redirects=True)
    assert "still waiting to start" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(ReevaluationRun)) == 1
    assert jobs.run_job(running.id) and not jobs.run_job(running.id)  # claimed once
    db.session.expire_all()
    assert running.state == "done"
    response = client.post("/review/reevaluate")
    assert response.status_code == 303
    assert db.session.scalar(select(func.count()).select_from(ReevaluationRun)) == 2


@pytest.mark.parametrize("app_config", [{"JOBS_INLINE": True}])
def test_a_re_evaluation_that_fails_says_why(log, compliance_user, monkeypatch):
    from governance.rules import bulk, jobs

    log(protocol_followed=False)
    run = jobs.request_reevaluation(compliance_user)
    db.session.commit()

    def broken(**_kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(bulk, "reevaluate_all", broken)
    assert jobs.run_job(run.id)
    db.session.expire_all()
    assert run.state == "failed" and "disk on fire" in run.error
    assert "start it again" in run.error


def stalled_run(actor, attempts: int):
    """A re-evaluation as a worker killed mid-run leaves it: running, its heartbeat stale."""
    from governance.database import utcnow
    from governance.rules import jobs

    run = jobs.request_reevaluation(actor)
    run.state, run.job_token, run.attempts, run.progress = "running", "dead", attempts, 40
    run.started_at = run.heartbeat_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    return run


@pytest.mark.parametrize("app_config", [{"JOBS_INLINE": True}])
def test_a_re_evaluation_whose_worker_died_is_started_again_by_its_page(
        log, client, log_in, compliance_user):
    run = stalled_run(compliance_user, attempts=1)
    log_in(compliance_user)
    status = client.get(f"/review/reevaluations/{run.id}/status").get_json()

    assert status["status"] == "done" and status["progress"] == 100
    db.session.expire_all()
    assert run.attempts == 2


@pytest.mark.parametrize("app_config", [{"JOBS_INLINE": True}])
def test_a_re_evaluation_that_stalled_for_the_last_time_fails_and_a_new_one_may_start(
        client, log_in, compliance_user):
    from governance.rules.models import ReevaluationRun

    run = stalled_run(compliance_user, attempts=3)
    log_in(compliance_user)
    response = client.post("/review/reevaluate")

    assert response.status_code == 303
    db.session.expire_all()
    assert run.state == "failed" and "stopped responding 3 times" in run.error
    assert db.session.scalar(select(func.count()).select_from(ReevaluationRun)) == 2


def test_advocate_cannot_re_evaluate(client, log_in, make_user, sponsor):
    log_in(make_user("advocate", sponsor))
    assert client.post("/review/reevaluate").status_code == 403


def test_a_policy_file_broken_while_running_keeps_the_last_good_policy(
        log, policies_dir, client, log_in, compliance_user):
    edit_policy(policies_dir, ('severity = "low"', 'severity = "urgent"'))
    interaction = log(protocol_followed=False)  # still evaluated under v2025.1
    assert interaction_rules(interaction) == {"HOW-NO-PROTOCOL"}
    log_in(compliance_user)
    response = client.post("/review/reevaluate", follow_redirects=True)
    assert "nothing was re-evaluated" in response.get_data(as_text=True)
    assert "severity &#39;urgent&#39; is not one of low, medium, high" in \
        response.get_data(as_text=True)


# --- checking the policy files ----------------------------------------------------------------

BAD_POLICIES = [
    ("unknown field", ("condition = \"purpose_word_count < min_words\"",
                       "condition = \"purpose_words < min_words\""),
     "rule WHY-VAGUE: condition uses unknown field 'purpose_words' "
     "(did you mean 'purpose_word_count'?)"),
    ("bad severity", ('severity = "low"', 'severity = "urgent"'),
     "rule WHAT-TRANSACTIONAL: severity 'urgent' is not one of low, medium, high"),
    ("duplicate id", ('id = "WHY-VAGUE"', 'id = "WHY-NOT-SHARED"'),
     "rule WHY-NOT-SHARED: duplicate rule id 'WHY-NOT-SHARED'"),
    ("threshold type", ("min_words = { value = 8,", "min_words = { value = \"eight\","),
     "rule WHY-VAGUE: threshold 'min_words' has the wrong type: it is text ('eight'), but the "
     "condition needs a number"),
    ("bad dimension", ('dimension = "WHERE"', 'dimension = "THERE"'),
     "rule WHERE-SPONSOR-VENUE: dimension 'THERE' is not one of"),
    ("syntax", ('condition = "not protocol_followed"', 'condition = "not protocol_followed or"'),
     "rule HOW-NO-PROTOCOL: condition is not valid rule-engine syntax"),
    ("null unchecked", ("(participant_ratio ?? min_ratio) < min_ratio",
                        "participant_ratio < min_ratio"),
     "rule WHO-PARITY: condition compares participant_ratio, which may be null"),
    ("claimed co-creation", ("review_due = 2025-12-31",
                             'review_due = 2025-12-31\nco_created_with = ["A panel"]'),
     "[policy.provenance]: unknown key 'co_created_with'"),
    ("threshold out of range", ("max_days = { value = 30,", "max_days = { value = -5,"),
     "rule DOC-NO-SUMMARY: threshold 'max_days': is -5, outside its range: from 1 to 3650 days"),
    ("not TOML", ('[policy]', '[policy'), "is not valid TOML"),
]


@pytest.mark.parametrize("name, replacement, expected", BAD_POLICIES,
                         ids=[case[0] for case in BAD_POLICIES])
def test_check_policies_reports_each_problem_on_one_line(policies_dir, name, replacement,
                                                         expected):
    edit_policy(policies_dir, replacement)
    result = CliRunner().invoke(check_policies_command, ["--dir", str(policies_dir)])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if "rules.toml" in line]
    assert len(lines) == 1, result.output
    assert expected in lines[0]


def test_check_policies_reports_every_problem_at_once(policies_dir):
    edit_policy(policies_dir, ('severity = "low"', 'severity = "urgent"'),
                ('id = "WHY-VAGUE"', 'id = "WHY-NOT-SHARED"'))
    result = CliRunner().invoke(check_policies_command, ["--dir", str(policies_dir)])
    assert result.exit_code == 1
    assert "urgent" in result.output and "duplicate rule id" in result.output
    assert "2 problems found" in result.output


def test_check_policies_confirms_valid_files(runner):
    result = runner.invoke(args=["check-policies"])
    assert result.exit_code == 0, result.output
    assert "policy v2025.1" in result.output and "28 rules — valid" in result.output


def test_a_policy_file_missing_is_reported(tmp_path):
    result = CliRunner().invoke(check_policies_command, ["--dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "rules.toml: cannot be read" in result.output


def test_conditions_may_not_read_the_clock():
    text = (PROJECT_POLICIES / "rules.toml").read_text(encoding="utf-8").replace(
        'condition = "not protocol_followed"', 'condition = "not protocol_followed and '
        '$today > $now"')
    _policy, problems = check_policy_text(text.encode(), "rules.toml")
    assert "reads the clock ($now, $today)" in str(problems[0])


def test_a_new_rule_needs_no_code_change(log, policies_dir):
    with (policies_dir / "rules.toml").open("a", encoding="utf-8") as file:
        file.write('''
[[rules]]
id = "WHO-SMALL-GROUP"
subject = "interaction"
dimension = "WHO"
severity = "low"
title = "Very small group"
good_practice = "Enough participants to hear more than one voice."
reference = { seed = "000_620631ea2cdc474c.txt", section = "WHO" }
condition = "patient_participants + caregiver_participants < min_people"
message = "Only $patient_participants patient(s) took part."
thresholds = { min_people = 3 }
''')
    interaction = log(patient_participants=1, caregiver_participants=1, sponsor_staff=1)
    assert interaction_rules(interaction) == {"WHO-SMALL-GROUP"}


def test_the_app_refuses_to_start_on_an_invalid_policy_set(tmp_path, policies_dir):
    edit_policy(policies_dir, ('severity = "low"', 'severity = "urgent"'))
    with pytest.raises(PolicyError) as refused:
        create_app(make_config(tmp_path, POLICIES_DIR=str(policies_dir)))
    assert "severity 'urgent' is not one of low, medium, high" in str(refused.value)


def test_split_remembered_evaluation_agrees_with_rule_engine_on_every_rule():
    """The fast path (conditions split at and/or/not, results remembered) is exact."""
    import random

    from governance.rules.facts import FACTS

    rng = random.Random(11)
    texts = ["active", "proposed", "closed", "research_investment", "ad_hoc", "sponsor_staff",
             "sponsor_site", "in_person", "hybrid", "regulatory_review", "phase_2"]

    def value(fact):
        kind = fact.type.name if fact.type.name != "NULLABLE" else fact.type.inner_type.name
        if fact.type.name == "NULLABLE" and rng.random() < 0.3:
            return None
        if kind == "BOOLEAN":
            return rng.random() < 0.5
        if kind == "STRING":
            return rng.choice(texts)
        return rng.choice([0, 1, 2, 7, 8, 12, 25, 30, 31, 50.5, 90, 91, 400, -3, -13.2])

    policy = load_policy(PROJECT_POLICIES)
    for rule in policy.rules.values():
        for _ in range(300):
            facts = {name: value(fact) for name, fact in FACTS[rule.spec.subject].items()}
            assert rule.applies(facts) == rule.applies_uncached(facts), (rule.spec.id, facts)


def test_an_unknown_re_evaluation_is_not_found_and_advocates_see_none(
        client, log_in, compliance_user, make_user, sponsor):
    log_in(compliance_user)
    assert client.get("/review/reevaluations/999").status_code == 404
    assert client.get("/review/reevaluations/999/status").status_code == 404
    assert "No re-evaluation has been asked for yet" in client.get(
        "/review/reevaluations").get_data(as_text=True)
    log_in(make_user("advocate", sponsor))
    assert client.get("/review/reevaluations").status_code == 403
