"""Approval before the event: planned interactions checked before they happen, the advocate's
submission, the compliance officer's decision (API and pages), and PLAN-NOT-APPROVED."""

from datetime import date, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from governance.audit import history_of
from governance.database import utcnow
from governance.extensions import db
from governance.interactions.models import Interaction
from governance.rules.engine import check_policy_text
from governance.rules.facts import plan_facts
from governance.rules.models import Flag

from .conftest import GOOD_INTERACTION, login

API = "/api/v1"


def today() -> date:
    """Read when each test runs, so a run that crosses midnight plans on the right day."""
    return utcnow().date()


def next_week() -> date:
    return today() + timedelta(days=7)


@pytest.fixture
def partnership(make_partnership):
    return make_partnership(agreement_signed_on=date(2024, 1, 10))


@pytest.fixture
def advocate_user(make_user, sponsor):
    return make_user("advocate", sponsor)


@pytest.fixture
def officer_user(make_user, sponsor):
    """A compliance officer of the sponsor that holds the interactions."""
    return make_user("compliance", sponsor)


@pytest.fixture
def advocate(advocate_user, bearer):
    return bearer(advocate_user)


@pytest.fixture
def officer(officer_user, bearer):
    return bearer(officer_user)


def plan_values(partnership, **values) -> dict:
    """An advisory board that follows every practice, planned for next week."""
    data = dict(GOOD_INTERACTION, format="advisory_board", partnership_id=partnership.id,
                status="planned", occurred_on=next_week(),
                purpose_shared_on=today(), summary=None, summary_recorded_on=None,
                outcomes_shared_on=None)
    data.update(values)
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in data.items()}


@pytest.fixture
def plan(client, advocate, partnership):
    """Plan an interaction through the API as the advocate; return its JSON."""
    def make(**values):
        response = client.post(f"{API}/interactions", json=plan_values(partnership, **values),
                               headers=advocate)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return make


def rules_of(answer) -> set[str]:
    return {flag["rule"] for flag in answer["flags"] if flag["state"] == "open"}


def decide(client, headers, interaction_id, decision="approved", note="Agenda and fees fit "
           "the policy."):
    return client.post(f"{API}/interactions/{interaction_id}/approval",
                       json={"decision": decision, "note": note}, headers=headers)


def hold(client, headers, answer, **changes):
    return client.patch(f"{API}/interactions/{answer['id']}",
                        json={"status": "held", "version": answer["version"], **changes},
                        headers=headers)


# --- the plan is checked before the event ----------------------------------------------------


def test_a_planned_interaction_shows_its_flags_before_it_happens(plan):
    answer = plan(protocol_followed=False, accessibility_reviewed=False)
    assert answer["status"] == "planned"
    assert answer["approval"] is None and answer["submitted_at"] is None
    assert rules_of(answer) == {"HOW-NO-PROTOCOL", "WHERE-ACCESS"}


def test_interactions_are_held_by_default(client, advocate, partnership):
    values = plan_values(partnership, format="workshop", occurred_on=date(2025, 3, 14),
                         purpose_shared_on=date(2025, 3, 1))
    del values["status"]
    answer = client.post(f"{API}/interactions", json=values, headers=advocate).get_json()
    assert answer["status"] == "held"


def test_documentation_deadlines_wait_until_the_interaction_is_held(plan, client, advocate):
    overdue = today() - timedelta(days=120)
    answer = plan(format="workshop", occurred_on=overdue,
                  purpose_shared_on=overdue - timedelta(days=7))
    assert not rules_of(answer) & {"DOC-NO-SUMMARY", "DOC-NO-FEEDBACK"}
    held = hold(client, advocate, answer).get_json()
    assert {"DOC-NO-SUMMARY", "DOC-NO-FEEDBACK"} <= rules_of(held)


def test_outcome_changes_are_recorded_with_the_interaction(plan):
    answer = plan(outcome_changes="You asked for home visits; the protocol now offers them.")
    assert answer["outcome_changes"].startswith("You asked for home visits")


def test_status_is_one_of_the_vocabulary(client, advocate, partnership):
    response = client.post(f"{API}/interactions", json=plan_values(partnership, status="soon"),
                           headers=advocate)
    assert response.status_code == 422
    assert "status" in response.get_json()["error"]["fields"]


def test_an_interaction_is_not_logged_as_cancelled(client, advocate, partnership):
    response = client.post(f"{API}/interactions",
                           json=plan_values(partnership, status="cancelled"), headers=advocate)
    assert response.status_code == 422
    assert "status" in response.get_json()["error"]["fields"]
    assert db.session.scalar(select(Interaction.id)) is None


# --- submission and decision: the whole path -------------------------------------------------


def test_advocate_submits_compliance_approves_and_the_held_board_keeps_the_approval(
        plan, client, advocate, officer, officer_user):
    answer = plan()
    submitted = client.post(f"{API}/interactions/{answer['id']}/submission", headers=advocate)
    assert submitted.status_code == 200 and submitted.get_json()["submitted_at"]

    response = decide(client, officer, answer["id"])
    assert response.status_code == 200, response.get_json()
    approval = response.get_json()["approval"]
    assert approval["decision"] == "approved" and approval["by"] == officer_user.name
    assert approval["note"] == "Agenda and fees fit the policy."
    assert approval["at"].endswith("+00:00") and approval["at"].startswith(today().isoformat())
    event = history_of("interaction", answer["id"])[-1]
    assert event.actor_id == officer_user.id and "Plan approved by" in event.reason

    current = client.get(f"{API}/interactions/{answer['id']}", headers=advocate).get_json()
    held = hold(client, advocate, current, summary="Fewer visits.", summary_recorded_on=(
        next_week() + timedelta(days=1)).isoformat())
    assert held.status_code == 200, held.get_json()
    held = held.get_json()
    assert held["status"] == "held" and held["approval"]["decision"] == "approved"
    assert "PLAN-NOT-APPROVED" not in rules_of(held)


def test_compliance_rejects_a_plan_with_a_note_and_the_advocate_submits_again(
        plan, client, advocate, officer):
    answer = plan()
    no_note = decide(client, officer, answer["id"], "rejected", "")
    assert no_note.status_code == 422 and "note" in no_note.get_json()["error"]["fields"]
    rejected = decide(client, officer, answer["id"], "rejected", "Pay patients the rate card.")
    assert rejected.get_json()["approval"]["decision"] == "rejected"
    again = client.post(f"{API}/interactions/{answer['id']}/submission", headers=advocate)
    assert again.status_code == 200 and again.get_json()["approval"] is None


# --- refusals -----------------------------------------------------------------------------


def test_nobody_approves_a_plan_they_logged(client, officer, partnership):
    logged = client.post(f"{API}/interactions", json=plan_values(partnership),
                         headers=officer).get_json()
    response = decide(client, officer, logged["id"])
    assert response.status_code == 403
    error = response.get_json()["error"]
    assert "another compliance officer" in error["message"]
    assert "decision" in error["fields"]
    assert db.session.get(Interaction, logged["id"]).approval_decision is None


def test_a_plan_is_not_approved_after_its_date(plan, client, officer):
    answer = plan(occurred_on=today() - timedelta(days=1),
                  purpose_shared_on=today() - timedelta(days=10))
    response = decide(client, officer, answer["id"])
    assert response.status_code == 422
    assert "has passed" in response.get_json()["error"]["fields"]["decision"][0]
    assert db.session.get(Interaction, answer["id"]).approval_decision is None


def test_a_plan_is_approved_on_its_own_day(plan, client, officer):
    answer = plan(occurred_on=today(), purpose_shared_on=today() - timedelta(days=3))
    assert decide(client, officer, answer["id"]).status_code == 200


def test_held_or_cancelled_interactions_are_not_approved(plan, client, advocate, officer):
    held = hold(client, advocate, plan()).get_json()
    assert decide(client, officer, held["id"]).status_code == 409
    planned = plan()
    cancelled = client.patch(f"{API}/interactions/{planned['id']}",
                             json={"status": "cancelled", "version": planned["version"]},
                             headers=advocate)
    assert cancelled.status_code == 200
    assert decide(client, officer, planned["id"]).status_code == 409


def test_only_compliance_of_the_holding_organisation_decides(
        plan, client, advocate, bearer, make_user, make_org):
    answer = plan()
    assert decide(client, advocate, answer["id"]).status_code == 403
    rival = bearer(make_user("compliance", make_org("Other Pharma", "sponsor")))
    assert decide(client, rival, answer["id"]).status_code == 404


def test_a_decision_must_be_approved_or_rejected_and_names_only_its_fields(
        plan, client, officer):
    answer = plan()
    wrong = decide(client, officer, answer["id"], "maybe")
    assert wrong.status_code == 422 and "decision" in wrong.get_json()["error"]["fields"]
    extra = client.post(f"{API}/interactions/{answer['id']}/approval",
                        json={"decision": "approved", "signed": True}, headers=officer)
    assert extra.status_code == 400


def test_a_held_interaction_cannot_go_back_to_planned(plan, client, advocate):
    held = hold(client, advocate, plan()).get_json()
    response = client.patch(f"{API}/interactions/{held['id']}",
                            json={"status": "planned", "version": held["version"]},
                            headers=advocate)
    assert response.status_code == 422
    assert "cannot go back to planned" in response.get_json()["error"]["fields"]["status"][0]


def test_cancelling_a_plan_withdraws_its_flags(plan, client, advocate):
    answer = plan(protocol_followed=False)
    assert "HOW-NO-PROTOCOL" in rules_of(answer)
    cancelled = client.patch(f"{API}/interactions/{answer['id']}",
                             json={"status": "cancelled", "version": answer["version"]},
                             headers=advocate).get_json()
    assert cancelled["flags"] == []
    flag = db.session.scalar(select(Flag).where(Flag.interaction_id == answer["id"]))
    assert flag.void_reason == "The interaction was cancelled."


# --- PLAN-NOT-APPROVED, both ways ----------------------------------------------------------


def test_a_held_advisory_board_without_approval_is_flagged(plan, client, advocate):
    held = hold(client, advocate, plan()).get_json()
    assert "PLAN-NOT-APPROVED" in rules_of(held)


def test_a_held_workshop_needs_no_approval(plan, client, advocate):
    held = hold(client, advocate, plan(format="workshop")).get_json()
    assert "PLAN-NOT-APPROVED" not in rules_of(held)


def test_a_rejected_plan_held_all_the_same_is_flagged(plan, client, advocate, officer):
    answer = plan(format="focus_group")
    decide(client, officer, answer["id"], "rejected", "Find a neutral venue first.")
    current = client.get(f"{API}/interactions/{answer['id']}", headers=advocate).get_json()
    assert "PLAN-NOT-APPROVED" in rules_of(hold(client, advocate, current).get_json())


def test_an_approval_given_after_the_date_does_not_count():
    record = SimpleNamespace(status="held", format="advisory_board",
                             occurred_on=date(2025, 3, 14), approval_decision="approved",
                             approved_at=utcnow().replace(year=2025, month=3, day=15))
    facts = plan_facts(record, frozenset({"advisory_board"}))
    assert facts["needs_approval"] and not facts["approved_before_event"]


def test_individual_payments_make_any_format_need_approval():
    paid = SimpleNamespace(status="held", format="survey", occurred_on=date(2025, 3, 14),
                           approval_decision=None, approved_at=None,
                           has_individual_payments=True)
    unpaid = SimpleNamespace(**{**vars(paid), "has_individual_payments": False})
    assert plan_facts(paid, frozenset({"advisory_board"}))["needs_approval"]
    assert not plan_facts(unpaid, frozenset({"advisory_board"}))["needs_approval"]


# --- the policy names the formats --------------------------------------------------------


def policy_text(app, approval: str) -> bytes:
    from pathlib import Path

    text = (Path(app.config["POLICIES_DIR"]) / "rules.toml").read_text("utf-8")
    start = text.index("[approval]")
    end = text.index("\n\n", start)
    return (text[:start] + approval + text[end:]).encode()


def test_check_policies_refuses_an_unknown_approval_format(app):
    compiled, problems = check_policy_text(
        policy_text(app, '[approval]\nformats = ["advisory_board", "town_hall"]'), "rules.toml")
    assert compiled is None
    assert any("'town_hall' is not an interaction format" in str(p) for p in problems)


def test_the_policy_decides_which_formats_need_approval(app):
    compiled, problems = check_policy_text(
        policy_text(app, '[approval]\nformats = ["workshop"]'), "rules.toml")
    assert problems == [] and compiled.approval_formats == {"workshop"}


# --- pages -----------------------------------------------------------------------------------


def test_compliance_approves_from_the_queue_and_the_advocate_sees_the_state(
        app, plan, advocate_user, officer_user, make_user):
    answer = plan(title="Advisory board on dosing diaries")
    advocate_client, officer_client = app.test_client(), app.test_client()
    login(advocate_client, advocate_user)
    page = advocate_client.get(f"/interactions/{answer['id']}").get_data(as_text=True)
    assert "Not yet submitted" in page and "Submit the plan for approval" in page
    response = advocate_client.post(f"/review/plans/{answer['id']}/submit")
    assert response.status_code == 303

    login(officer_client, officer_user)
    queue = officer_client.get("/review/approvals").get_data(as_text=True)
    assert "Advisory board on dosing diaries" in queue and "by " + advocate_user.name in queue
    assert officer_client.get(f"/review/approvals/{answer['id']}").status_code == 200
    decided = officer_client.post(f"/review/approvals/{answer['id']}",
                                  data={"decision": "approved", "note": "Fine."})
    assert decided.status_code == 303
    assert "Advisory board on dosing diaries" not in officer_client.get(
        "/review/approvals").get_data(as_text=True)

    page = advocate_client.get(f"/interactions/{answer['id']}").get_data(as_text=True)
    assert f"Approved by {officer_user.name}" in page
    assert advocate_client.get("/review/approvals").status_code == 403


def test_the_approval_page_shows_why_a_decision_was_refused(app, plan, officer_user):
    answer = plan(occurred_on=today() - timedelta(days=2),
                  purpose_shared_on=today() - timedelta(days=9))
    client = app.test_client()
    login(client, officer_user)
    response = client.post(f"/review/approvals/{answer['id']}", data={"decision": "approved"})
    assert response.status_code == 422
    assert "has passed" in response.get_data(as_text=True)


def test_the_form_logs_a_plan(app, advocate_user, partnership):
    client = app.test_client()
    login(client, advocate_user)
    form = {k: v for k, v in plan_values(partnership).items() if not isinstance(v, list)
            and v not in (None, False)}
    form.update(stages_represented=["early", "intermediate", "late"], stages_in_scope=["all"])
    response = client.post("/interactions/new", data=form)
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    stored = db.session.scalar(select(Interaction))
    assert stored.status == "planned"


# --- CSV import and export -----------------------------------------------------------------


def test_plans_are_imported_and_exported_with_their_status(app, advocate_user, partnership):
    import csv
    import io

    from .test_import import commit, csv_bytes, interaction_row

    client = app.test_client()
    login(client, advocate_user)
    rows = [interaction_row(partnership, 1, status="planned", occurred_on=next_week(),
                            purpose_shared_on=today(), summary=None, summary_recorded_on=None,
                            outcomes_shared_on=None, outcome_changes=None),
            interaction_row(partnership, 2, status="", format="workshop",
                            outcome_changes="Home visits added.")]
    response = commit(client, csv_bytes(rows))
    assert response.status_code in (200, 302, 303)
    stored = {i.external_id: i for i in db.session.scalars(select(Interaction))}
    assert stored["CRM-1"].status == "planned" and stored["CRM-2"].status == "held"
    assert stored["CRM-2"].outcome_changes == "Home visits added."

    exported = client.get("/exports/interactions.csv")
    assert exported.status_code == 200
    table = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert {row["external_id"]: row["status"] for row in table} == {"CRM-1": "planned",
                                                                   "CRM-2": "held"}


def test_a_cancelled_row_is_refused_on_import(app, advocate_user, partnership):
    from .test_import import csv_bytes, interaction_row, upload

    client = app.test_client()
    login(client, advocate_user)
    preview = upload(client, csv_bytes([interaction_row(partnership, 1, status="cancelled")]))
    assert preview.status_code == 422
    assert "a plan is cancelled afterwards" in preview.get_data(as_text=True)
    assert db.session.scalar(select(Interaction.id)) is None


def test_the_policy_page_names_the_formats_needing_approval(app, officer_user):
    client = app.test_client()
    login(client, officer_user)
    page = client.get("/review/policy").get_data(as_text=True)
    assert "Advisory board, Focus group" in page and "PLAN-NOT-APPROVED" in page
