"""Policies co-created in the application, and history never rewritten (issue #21).

Compliance proposes a version on a page or through the API, patient partners sign it off, and it
comes into force on a date. Records are judged by the version in force when they are evaluated,
and a flag keeps the version that raised it: a rule that did not change carries its acknowledged
and dismissed flags over, and a flag that lapses because the policy changed closes as
superseded, never as remediated.
"""

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from governance.database import utcnow
from governance.extensions import db
from governance.rules.bulk import reevaluate_all
from governance.rules.models import Flag, PolicySignOff, PolicyVersion, ReevaluationRun
from governance.rules.versions import policy_in_force

from .conftest import PASSWORD


def today():
    return utcnow().date()


@pytest.fixture
def partnership(make_partnership):
    from datetime import date

    return make_partnership(agreement_signed_on=date(2024, 1, 1))


@pytest.fixture
def log(make_interaction, partnership):
    def do(**values):
        values.setdefault("partnership_id", partnership.id)
        return make_interaction(**values)

    return do


def parity(patients: int, staff: int) -> dict:
    """Participants giving a ratio of patients (and no caregivers) to staff."""
    return {"patient_participants": patients, "caregiver_participants": 0,
            "sponsor_staff": staff}


def flags_of(interaction, rule: str) -> list[Flag]:
    return list(db.session.scalars(select(Flag).where(
        Flag.interaction_id == interaction.id, Flag.rule_id == rule,
        Flag.voided_at.is_(None)).order_by(Flag.id)))


@pytest.fixture
def officer(compliance_user):
    return compliance_user


@pytest.fixture
def partners(make_user, patient_group, make_org):
    other_group = make_org("Parkinson's Voices", "patient_group", country="GB")
    return make_user("partner", patient_group), make_user("partner", other_group)


def propose(client, headers, **changes):
    body = {"version": "2026.1", "summary": "Patients asked for a lower parity ratio for "
                                            "small rare-disease panels.",
            "effective_from": today().isoformat(),
            "rules": {"WHO-PARITY": {"thresholds": {"min_ratio": 0.7}}}}
    body.update(changes)
    return client.post("/api/v1/policy/versions", json=body, headers=headers)


def sign(client, headers, version="2026.1", **values):
    body = {"password": PASSWORD, "meaning": "co_created"} | values
    return client.post(f"/api/v1/policy/versions/{version}/sign-offs", json=body,
                       headers=headers)


def acknowledge(client, headers, flag: Flag, note="Small rare-disease panel, agreed with the "
                                                  "group."):
    response = client.post(f"/api/v1/flags/{flag.id}/transition",
                           json={"state": "acknowledged", "note": note}, headers=headers)
    assert response.status_code == 200, response.get_json()


# --- the shipped policy's provenance is honest -----------------------------------------------


def test_the_shipped_policy_says_co_creation_is_not_yet_recorded(client, log_in, bearer, officer):
    answer = client.get("/api/v1/policy", headers=bearer(officer)).get_json()
    assert answer["version"] == "2025.1" and answer["co_creation"]["recorded"] is False
    assert answer["co_creation"]["statement"].startswith("Co-creation not yet recorded")
    log_in(officer)
    page = client.get("/review/policy").get_data(as_text=True)
    assert "Co-creation not yet recorded" in page
    assert "workshop" not in page.lower()  # no invented co-creation sessions


def test_a_passed_review_date_is_a_notice_for_compliance(client, log_in, officer):
    # The shipped policy was due for review on 31 December 2025.
    log_in(officer)
    page = client.get("/review/policy").get_data(as_text=True)
    assert "Review overdue" in page and "31 Dec 2025" in page
    assert 'href="/review/policy/propose"' in page


def test_the_policy_page_reads_as_a_document_grouped_by_dimension(client, log_in, make_user,
                                                                   sponsor):
    log_in(make_user("advocate", sponsor))
    page = client.get("/review/policy").get_data(as_text=True)
    headings = [page.index(f'id="dimension-{code}-heading">') for code in
                ("WHAT", "WHY", "WHEN", "WHO", "HOW", "WHERE", "DOC")]
    assert headings == sorted(headings)
    assert page.index('id="rule-WHO-PARITY"') > headings[3]
    assert "Good practice:" in page and "Poor practice it flags:" in page
    # thresholds in words with their unit; the expression folded away
    assert "Lowest acceptable (patients + caregivers) / sponsor staff.: <strong>1.0 patients " \
           "and caregivers per staff member</strong>" in page
    assert "<details class=\"small\"><summary>The condition, for those who want it" in page
    assert "Propose a change" not in page  # advocates do not change the policy


# --- the whole journey -----------------------------------------------------------------------


def test_compliance_changes_parity_two_partners_sign_off_and_history_stands(
        client, bearer, log, officer, partners):
    before = log(title="Panel before", **parity(1, 2))  # 0.5: flagged under either ratio
    lapsing = log(title="Panel that lapses", **parity(3, 4))  # 0.75: only under 1.0
    other_rule = log(title="No protocol", protocol_followed=False)
    ack = flags_of(before, "WHO-PARITY")[0]
    acknowledge(client, bearer(officer), ack)
    acknowledge(client, bearer(officer), flags_of(other_rule, "HOW-NO-PROTOCOL")[0],
                "An open conversation, run without a protocol on purpose.")
    assert flags_of(lapsing, "WHO-PARITY")[0].policy_version == "2025.1"

    proposed = propose(client, bearer(officer))
    assert proposed.status_code == 201, proposed.get_json()
    answer = proposed.get_json()
    assert answer["state"] == "proposed" and answer["based_on"] == "2025.1"
    assert {"rule": "WHO-PARITY", "what": "Threshold min_ratio",
            "before": "1.0 patients and caregivers per staff member",
            "after": "0.7 patients and caregivers per staff member"} in [
        {key: change[key] for key in ("rule", "what", "before", "after")}
        for change in answer["changes"]]
    assert answer["co_creation"]["recorded"] is False

    # Not in force without a sign-off; the version in force is unchanged.
    refused = client.post("/api/v1/policy/versions/2026.1/in-force",
                          json={"effective_from": today().isoformat()}, headers=bearer(officer))
    assert refused.status_code == 422 and "no sign-off" in refused.get_json()["error"]["message"]
    assert policy_in_force().version == "2025.1"

    for partner in partners:
        signed = sign(client, bearer(partner))
        assert signed.status_code == 201, signed.get_json()
    co_creation = signed.get_json()["co_creation"]
    assert co_creation["recorded"] is True and len(co_creation["sign_offs"]) == 2
    assert {s["organisation"] for s in co_creation["sign_offs"]} == {
        "Rare Lung Alliance", "Parkinson's Voices"}

    put = client.post("/api/v1/policy/versions/2026.1/in-force",
                      json={"effective_from": today().isoformat()}, headers=bearer(officer))
    assert put.status_code == 200, put.get_json()
    assert put.get_json()["in_force"] is True
    # In force today: a re-evaluation of every record was queued; the worker's part is done here.
    assert db.session.scalar(select(ReevaluationRun.state)) == "queued"
    reevaluate_all()
    db.session.commit()

    # The record fixed by nobody: its flag lapsed because the policy changed.
    lapsed = flags_of(lapsing, "WHO-PARITY")[0]
    assert lapsed.state == "superseded" and "policy v2026.1" in lapsed.note
    assert not db.session.scalar(select(func.count()).select_from(Flag).where(
        Flag.state == "remediated"))
    # The acknowledged flag stays acknowledged, under the version that raised it; the changed
    # rule asks for a fresh look with a flag of the new version beside it.
    kept, fresh = flags_of(before, "WHO-PARITY")
    assert (kept.id, kept.state, kept.policy_version) == (ack.id, "acknowledged", "2025.1")
    assert (fresh.state, fresh.policy_version) == ("open", "2026.1")
    # A rule that did not change carries its acknowledged flag over: nothing re-opened.
    assert [f.state for f in flags_of(other_rule, "HOW-NO-PROTOCOL")] == ["acknowledged"]

    after = log(title="Panel after", **parity(3, 4))  # judged by v2026.1: 0.75 is enough
    assert flags_of(after, "WHO-PARITY") == []
    assert {f.policy_version for f in db.session.scalars(
        select(Flag).where(Flag.interaction_id == after.id))} <= {"2026.1"}

    answer = client.get("/api/v1/policy", headers=bearer(officer)).get_json()
    assert answer["version"] == "2026.1" and answer["co_creation"]["recorded"] is True


def test_a_version_put_in_force_from_a_later_date_waits_for_it(client, bearer, log, officer,
                                                               partners):
    assert propose(client, bearer(officer), effective_from=None).status_code == 201
    sign(client, bearer(partners[0]))
    tomorrow = today() + timedelta(days=1)
    put = client.post("/api/v1/policy/versions/2026.1/in-force",
                      json={"effective_from": tomorrow.isoformat()}, headers=bearer(officer))
    assert put.status_code == 200 and put.get_json()["in_force"] is False
    db.session.expire_all()
    assert policy_in_force(today()).version == "2025.1"
    assert policy_in_force(tomorrow).version == "2026.1"
    judged_today = log(**parity(3, 4))
    assert [f.policy_version for f in flags_of(judged_today, "WHO-PARITY")] == ["2025.1"]


def test_a_record_put_right_after_a_policy_change_is_remediated(log, officer, partners, app):
    from governance.rules import versions

    flagged = log(**parity(3, 4))
    row = versions.propose_version(officer, {
        "version": "2026.1", "summary": "Lower ratio.",
        "rules": {"WHO-PARITY": {"thresholds": {"min_ratio": 0.5}}}})
    versions.sign_off_version(row, partners[0], PASSWORD, "reviewed")
    versions.put_in_force(row, officer, today())
    db.session.commit()
    # Under the new ratio it lapses: superseded. A second panel fixed by its record: remediated.
    fixed = log(**parity(1, 4))  # 0.25: flagged under v2026.1 too
    from governance.interactions import services

    services.update_interaction(fixed, {"patient_participants": 8}, officer,
                                reason="Counted the patients again")
    reevaluate_all()
    db.session.commit()
    assert flags_of(flagged, "WHO-PARITY")[0].state == "superseded"
    assert flags_of(fixed, "WHO-PARITY")[0].state == "remediated"


def test_switching_a_rule_off_closes_its_open_flags_as_superseded(log, officer, partners):
    from governance.rules import versions

    flagged = log(protocol_followed=False)
    row = versions.propose_version(officer, {
        "version": "2026.1", "summary": "Protocols are agreed per partnership now.",
        "rules": {"HOW-NO-PROTOCOL": {"enabled": False,
                                      "retired": "Each partnership agrees its own protocol."}}})
    versions.sign_off_version(row, partners[0], PASSWORD, "reviewed")
    versions.put_in_force(row, officer, today())
    reevaluate_all()
    db.session.commit()
    flag = flags_of(flagged, "HOW-NO-PROTOCOL")[0]
    assert flag.state == "superseded"
    assert flag.note == ("Superseded by policy v2026.1: Each partnership agrees its own "
                         "protocol.")


def test_a_reworded_rule_carries_its_dismissed_flags_over(client, bearer, log, officer,
                                                          partners):
    flagged = log(protocol_followed=False)
    client.post(f"/api/v1/flags/{flags_of(flagged, 'HOW-NO-PROTOCOL')[0].id}/transition",
                json={"state": "dismissed", "note": "It was a social evening."},
                headers=bearer(officer))
    propose(client, bearer(officer), rules={"HOW-NO-PROTOCOL": {
        "message": "No standard protocol guided this interaction.", "severity": "medium"}})
    sign(client, bearer(partners[0]))
    client.post("/api/v1/policy/versions/2026.1/in-force",
                json={"effective_from": today().isoformat()}, headers=bearer(officer))
    reevaluate_all()
    db.session.commit()
    assert [f.state for f in flags_of(flagged, "HOW-NO-PROTOCOL")] == ["dismissed"]


# --- proposing on the page -------------------------------------------------------------------


def test_compliance_proposes_on_the_page_and_sees_the_difference(client, log_in, officer):
    log_in(officer)
    form = client.get("/review/policy/propose")
    assert form.status_code == 200
    page = form.get_data(as_text=True)
    assert 'name="rules.WHO-PARITY.thresholds.min_ratio"' in page and 'value="1.0"' in page
    data = {"version": "2026.1", "summary": "Parity raised at the panel's request.",
            "effective_from": "", "review_due": (today() + timedelta(days=365)).isoformat()}
    data |= default_form_values(page)
    data["rules.WHO-PARITY.thresholds.min_ratio"] = "1.5"
    saved = client.post("/review/policy/propose", data=data)
    assert saved.status_code == 303, saved.get_data(as_text=True)[:2000]
    assert saved.headers["Location"].endswith("/review/policy/versions/2026.1")
    version_page = client.get("/review/policy/versions/2026.1").get_data(as_text=True)
    assert "Threshold min_ratio" in version_page and "<strong>1.5 patients" in version_page
    assert "Next review due" in version_page
    row = db.session.scalar(select(PolicyVersion).where(PolicyVersion.policy_version == "2026.1"))
    text = client.get("/review/policy/versions/2026.1/rules.toml")
    assert hashlib.sha256(text.data).hexdigest() == row.digest
    assert "min_ratio" in text.get_data(as_text=True)


def default_form_values(page: str) -> dict:
    """What a browser sends for the proposal form untouched: its inputs, text areas, selected
    options and ticked boxes."""
    import html
    import re

    values = {}
    for name, value in re.findall(r'<input[^>]*?name="(rules\.[^"]+)"[^>]*?value="([^"]*)"',
                                  page):
        values[html.unescape(name)] = html.unescape(value)
    for name in re.findall(r'<input[^>]*?checked[^>]*?name="(rules\.[^"]+)"', page) + \
            re.findall(r'<input[^>]*?name="(rules\.[^"]+)"[^>]*?checked', page):
        values[html.unescape(name)] = "y"
    for name, body in re.findall(r'<textarea[^>]*?name="(rules\.[^"]+)"[^>]*>(.*?)</textarea>',
                                 page, re.S):
        values[html.unescape(name)] = html.unescape(body).lstrip("\r\n")
    for name, body in re.findall(r'<select[^>]*?name="(rules\.[^"]+)"[^>]*>(.*?)</select>',
                                 page, re.S):
        chosen = re.search(r'<option selected value="([^"]*)"|<option value="([^"]*)" selected',
                           body)
        if chosen:
            values[html.unescape(name)] = chosen.group(1) or chosen.group(2)
    return values


# --- bad input changes nothing ---------------------------------------------------------------

BAD_PROPOSALS = [
    ("unknown fact", {"rules": {"WHY-VAGUE": {"message": "Only $purpose_words words."}}},
     "rules.WHY-VAGUE.message", "unknown value"),
    ("unknown fact in a condition", {"rules": {"WHY-VAGUE": {
        "condition": "purpose_words < min_words"}}},
     "rules.WHY-VAGUE.condition", "unknown field 'purpose_words'"),
    ("wrong type", {"rules": {"WHO-PARITY": {"thresholds": {"min_ratio": "lots"}}}},
     "rules.WHO-PARITY.thresholds.min_ratio", "Must be a number"),
    ("whole number", {"rules": {"WHY-VAGUE": {"thresholds": {"min_words": 7.5}}}},
     "rules.WHY-VAGUE.thresholds.min_words", "whole number"),
    ("out of range", {"rules": {"DOC-NO-SUMMARY": {"thresholds": {"max_days": 0}}}},
     "rules.DOC-NO-SUMMARY.thresholds.max_days", "outside its range: from 1 to 3650 days"),
    ("percentage over 100", {"rules": {"FEE-ABOVE-FMV": {"thresholds": {"tolerance_pct": 150}}}},
     "rules.FEE-ABOVE-FMV.thresholds.tolerance_pct", "from 0 to 100 %"),
    ("past effective date", {"effective_from": "2020-01-01"}, "effective_from",
     "in the past"),
    ("unknown rule", {"rules": {"WHO-NOBODY": {"severity": "low"}}}, "rules.WHO-NOBODY",
     "There is no rule"),
    ("bad severity", {"rules": {"WHO-PARITY": {"severity": "urgent"}}},
     "rules.WHO-PARITY.severity", "Choose one of low, medium, high"),
    ("switched off without a reason", {"rules": {"WHO-PARITY": {"enabled": False}}},
     "rules.WHO-PARITY.retired", "Say why"),
    ("existing name", {"version": "2025.1"}, "version", "already exists"),
    ("no change", {"rules": {}}, "rules", "Nothing changes"),
]


@pytest.mark.parametrize("name, changes, field, expected", BAD_PROPOSALS,
                         ids=[case[0] for case in BAD_PROPOSALS])
def test_a_proposal_that_fails_the_checks_is_refused_and_saves_nothing(
        client, bearer, officer, name, changes, field, expected):
    answer = propose(client, bearer(officer), **changes)
    assert answer.status_code == 422, answer.get_json()
    fields = answer.get_json()["error"]["fields"]
    assert field in fields and expected in " ".join(fields[field]), fields
    assert db.session.scalar(select(func.count()).select_from(PolicyVersion)) == 0
    assert policy_in_force().version == "2025.1"


def test_the_proposal_page_shows_the_error_on_its_field(client, log_in, officer):
    log_in(officer)
    page = client.get("/review/policy/propose").get_data(as_text=True)
    data = default_form_values(page) | {"version": "2026.1", "summary": "Stricter."}
    data["rules.WHO-PARITY.thresholds.min_ratio"] = "-2"
    refused = client.post("/review/policy/propose", data=data)
    assert refused.status_code == 422
    body = refused.get_data(as_text=True)
    assert "Nothing was saved" in body and "outside its range: from 0 to 100" in body
    assert db.session.scalar(select(func.count()).select_from(PolicyVersion)) == 0


def test_only_a_partner_representative_signs_off(client, bearer, officer, make_user, sponsor,
                                                 partners):
    propose(client, bearer(officer))
    for role in ("advocate", "compliance", "auditor"):
        refused = sign(client, bearer(make_user(role, sponsor)))
        assert refused.status_code == 403
    wrong = sign(client, bearer(partners[0]), password="not my password")
    assert wrong.status_code == 422 and "password" in wrong.get_json()["error"]["fields"]
    no_meaning = sign(client, bearer(partners[0]), meaning="whatever")
    assert "meaning" in no_meaning.get_json()["error"]["fields"]
    assert db.session.scalar(select(func.count()).select_from(PolicySignOff)) == 0
    assert sign(client, bearer(partners[0])).status_code == 201
    twice = sign(client, bearer(partners[0]))
    assert twice.status_code == 422 and "already signed" in twice.get_json()["error"]["message"]


def test_a_version_cannot_come_into_force_in_the_past(client, bearer, officer, partners):
    propose(client, bearer(officer))
    sign(client, bearer(partners[0]))
    yesterday = (today() - timedelta(days=1)).isoformat()
    refused = client.post("/api/v1/policy/versions/2026.1/in-force",
                          json={"effective_from": yesterday}, headers=bearer(officer))
    assert refused.status_code == 422
    assert "in the past" in refused.get_json()["error"]["fields"]["effective_from"][0]
    db.session.expire_all()
    row = db.session.scalar(select(PolicyVersion).where(PolicyVersion.policy_version == "2026.1"))
    assert row.state == "proposed" and policy_in_force().version == "2025.1"


def test_partners_sign_off_on_the_version_page(client, log_in, officer, partners, bearer):
    propose(client, bearer(officer))
    log_in(partners[0])
    page = client.get("/review/policy/versions/2026.1").get_data(as_text=True)
    assert "Sign off this version for your organisation" in page
    assert "Threshold min_ratio" in page
    refused = client.post("/review/policy/versions/2026.1/sign-off",
                          data={"meaning": "co_created", "password": "wrong"})
    assert refused.status_code == 422
    signed = client.post("/review/policy/versions/2026.1/sign-off",
                         data={"meaning": "co_created", "password": PASSWORD})
    assert signed.status_code == 303
    page = client.get("/review/policy/versions/2026.1").get_data(as_text=True)
    assert "Co-created with and signed off by 1 patient partner (Rare Lung Alliance)" in page


def test_the_shipped_version_can_be_signed_off_to_record_its_co_creation(client, bearer,
                                                                         partners, officer):
    assert sign(client, bearer(partners[0]), version="2025.1").status_code == 201
    answer = client.get("/api/v1/policy", headers=bearer(officer)).get_json()
    assert answer["co_creation"]["recorded"] is True


def test_a_proposal_is_withdrawn_with_a_reason_and_stays_on_record(client, bearer, officer):
    propose(client, bearer(officer))
    refused = client.post("/api/v1/policy/versions/2026.1/withdrawal", json={},
                          headers=bearer(officer))
    assert refused.status_code == 422
    done = client.post("/api/v1/policy/versions/2026.1/withdrawal",
                       json={"reason": "The partners asked for a different ratio."},
                       headers=bearer(officer))
    assert done.status_code == 200 and done.get_json()["state"] == "withdrawn"
    listed = client.get("/api/v1/policy/versions", headers=bearer(officer)).get_json()
    assert [item["version"] for item in listed["items"]] == ["2026.1", "2025.1"]


def test_a_proposal_reviews_an_overdue_policy_and_sets_the_next_review(client, bearer, officer):
    answer = propose(client, bearer(officer)).get_json()
    next_year = today() + timedelta(days=365)
    assert answer["review_due"] == next_year.isoformat() and answer["review_overdue"] is False
    assert {"what": "Next review due", "before": "31 December 2025",
            "after": f"{next_year:%-d %B %Y}"} in [
        {key: change[key] for key in ("what", "before", "after")}
        for change in answer["changes"]]
