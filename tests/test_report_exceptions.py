"""The gate before a report's signature: its exceptions, acknowledged with a reason or fixed."""

import json
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from governance.agreements.models import Agreement
from governance.errors import Conflict, NotAllowed, ValidationFailed
from governance.extensions import db
from governance.reports import exceptions, services
from governance.reports.exceptions import ExceptionAcknowledgement, find_exceptions
from governance.reports.models import Report
from governance.rules.models import Flag

from .conftest import PASSWORD, login
from .test_reports import NOTE, YEAR, generate, record_support, stored

TODAY = date(2026, 3, 1)


@pytest.fixture
def app_config():
    return {"JOBS_INLINE": True}


@pytest.fixture
def clean_year(sponsor, patient_group, make_partnership, compliance_user):
    """A year whose one line is confirmed, under an agreement, within every date: no
    exception."""
    sponsor.methodology_note = NOTE
    partnership = make_partnership("Trial design advisory programme",
                                   started_on=date(2024, 1, 1))
    agreement = Agreement(partnership_id=partnership.id, kind="grant",
                          objective="Conference grant", starts_on=date(2025, 1, 1),
                          ends_on=date(2025, 12, 31), signed_on=date(2024, 12, 1))
    db.session.add(agreement)
    db.session.commit()
    line = under(agreement, confirmed(record_support(
        compliance_user, partnership, patient_group, date(2025, 3, 3), "1000.00")))
    return {"sponsor": sponsor, "partnership": partnership, "agreement": agreement,
            "line": line}


def confirmed(support):
    support.confirmed_by_partner = "confirmed"
    db.session.commit()
    return support


def under(agreement, support):
    support.agreement_id = agreement.id
    db.session.commit()
    return support


def kinds_of(found, subject=None) -> set[str]:
    return {item["kind"] for item in found if subject is None or item["subject"] == subject}


def add_line(clean_year, actor, recipient, paid_on=date(2025, 5, 1), amount="250.00",
             agreement=True, state="confirmed", **values):
    line = record_support(actor, clean_year["partnership"], recipient, paid_on, amount,
                          **values)
    line.confirmed_by_partner = state
    line.agreement_id = clean_year["agreement"].id if agreement else None
    db.session.commit()
    return line


# --- detection ------------------------------------------------------------------------------------


def test_a_clean_year_has_no_exception(clean_year):
    assert find_exceptions(clean_year["sponsor"], YEAR, TODAY) == []


def test_a_line_awaiting_the_partner_is_pending_then_not_answered(clean_year, compliance_user,
                                                                   patient_group):
    line = add_line(clean_year, compliance_user, patient_group, state="pending")
    subject = f"support-{line.id}"
    recorded = line.updated_at.date()  # when it was last put to the partner

    within = find_exceptions(clean_year["sponsor"], YEAR, recorded + timedelta(days=30))
    assert kinds_of(within, subject) == {"support_pending"}
    pending = next(item for item in within if item["subject"] == subject)
    assert pending["key"] == f"support_pending:{subject}"
    assert pending["id"] == f"exception-support_pending:{subject}"
    assert pending["message"] == ("The grant of GBP 250.00 to Rare Lung Alliance paid on "
                                  "1 May 2025 is still awaiting an answer from the partner.")
    assert pending["fix"] == {"endpoint": "partnerships.edit_support",
                              "values": {"support_id": line.id}}

    late = find_exceptions(clean_year["sponsor"], YEAR, recorded + timedelta(days=31))
    assert kinds_of(late, subject) == {"support_not_answered"}
    assert "within the review window of 30 days" in late[0]["message"]


def test_disputed_lines_and_lines_without_agreement(clean_year, compliance_user, patient_group):
    disputed = add_line(clean_year, compliance_user, patient_group, state="disputed")
    loose = add_line(clean_year, compliance_user, patient_group, paid_on=date(2025, 6, 1),
                     agreement=False)

    found = find_exceptions(clean_year["sponsor"], YEAR, TODAY)
    assert kinds_of(found, f"support-{disputed.id}") == {"support_disputed"}
    assert kinds_of(found, f"support-{loose.id}") == {"no_agreement"}


def test_lines_outside_the_agreement_term_or_the_partnership_dates(clean_year, compliance_user,
                                                                   patient_group):
    clean_year["agreement"].ends_on = date(2025, 6, 30)
    clean_year["partnership"].ended_on = date(2025, 9, 30)
    db.session.commit()
    after_term = add_line(clean_year, compliance_user, patient_group, paid_on=date(2025, 8, 1))
    after_both = add_line(clean_year, compliance_user, patient_group, paid_on=date(2025, 10, 1))

    found = find_exceptions(clean_year["sponsor"], YEAR, TODAY)
    assert kinds_of(found, f"support-{after_term.id}") == {"outside_agreement_term"}
    assert kinds_of(found, f"support-{after_both.id}") == {"outside_agreement_term",
                                                           "outside_partnership_dates"}
    term = next(item for item in found if item["key"] ==
                f"outside_agreement_term:support-{after_term.id}")
    assert "1 Jan 2025 to 30 Jun 2025" in term["message"]


def test_likely_duplicates_are_every_line_of_a_group_after_the_first(clean_year, compliance_user,
                                                                     patient_group):
    first = clean_year["line"]
    copies = [add_line(clean_year, compliance_user, patient_group, paid_on=first.paid_on,
                       amount="1000.00") for _ in range(2)]
    other_amount = add_line(clean_year, compliance_user, patient_group, paid_on=first.paid_on,
                            amount="999.00")

    found = find_exceptions(clean_year["sponsor"], YEAR, TODAY)
    duplicates = [item["subject"] for item in found if item["kind"] == "likely_duplicate"]
    assert duplicates == [f"support-{line.id}" for line in copies]
    assert f"support-{other_amount.id}" not in duplicates
    assert f"as support-{first.id}" in found[0]["message"]


def test_in_kind_support_with_neither_value_nor_description(clean_year, compliance_user,
                                                            patient_group):
    vague = add_line(clean_year, compliance_user, patient_group, amount=None, kind="in_kind",
                     description="Room")
    described = add_line(clean_year, compliance_user, patient_group, amount=None,
                         kind="in_kind", description="Meeting room and catering for a workshop")
    valued = add_line(clean_year, compliance_user, patient_group, amount="80.00",
                      kind="in_kind", description="Printing")

    found = find_exceptions(clean_year["sponsor"], YEAR, TODAY)
    assert kinds_of(found) == {"in_kind_undescribed"}
    assert [item["subject"] for item in found] == [f"support-{vague.id}"]
    assert {described.id, valued.id}.isdisjoint(
        int(item["subject"].split("-")[1]) for item in found)


def test_interactions_with_an_open_high_severity_flag(clean_year, make_interaction):
    flagged = make_interaction(partnership_id=clean_year["partnership"].id)
    calm = make_interaction(partnership_id=clean_year["partnership"].id,
                            title="Workshop on recruitment", occurred_on=date(2025, 4, 2))
    for interaction, severity, state in ((flagged, "high", "open"), (calm, "high", "dismissed"),
                                         (calm, "medium", "open")):
        db.session.add(Flag(interaction_id=interaction.id, rule_id="WHO-TEST", dimension="WHO",
                            severity=severity, state=state, message="No patient co-chair.",
                            policy_version="2025.1"))
    db.session.commit()
    flag = db.session.scalar(select(Flag).where(Flag.interaction_id == flagged.id,
                                                Flag.rule_id == "WHO-TEST"))

    found = [item for item in find_exceptions(clean_year["sponsor"], YEAR, TODAY)
             if item["kind"] == "open_high_flag"]
    assert [item["subject"] for item in found] == [f"interaction-{flagged.id}"]
    assert "Advisory board on trial burden" in found[0]["message"]
    assert "14 Mar 2025" in found[0]["message"]
    assert found[0]["fix"] == {"endpoint": "review.flag", "values": {"flag_id": flag.id}}


def test_a_missing_or_incomplete_methodology_note(clean_year):
    sponsor = clean_year["sponsor"]
    sponsor.methodology_note = "Amounts are in pounds."
    found = find_exceptions(sponsor, YEAR, TODAY)
    assert [item["key"] for item in found] == [f"no_methodology_note:organisation-{sponsor.id}"]
    assert "VAT" in found[0]["message"]
    assert found[0]["fix"]["endpoint"] == "reports.methodology"


def test_detection_reads_a_busy_year_in_a_few_queries(clean_year, compliance_user,
                                                      patient_group, app):
    from sqlalchemy import event

    from governance.partnerships.models import Support

    db.session.add_all(Support(partnership_id=clean_year["partnership"].id,
                               recipient_id=patient_group.id, paid_on=date(2025, 7, 1),
                               kind="grant", amount=Decimal(n), currency="GBP",
                               description="Grant") for n in range(1, 201))
    db.session.commit()
    statements = []

    def count(_connection, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        found = find_exceptions(clean_year["sponsor"], YEAR, TODAY)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert len([item for item in found if item["kind"] == "no_agreement"]) == 200
    # A few grouped reads, whatever the number of lines (and one for the policy in force, whose
    # review window it applies: a version put in force in the application may set it).
    assert len(statements) <= 5


# --- the gate -------------------------------------------------------------------------------------


@pytest.fixture
def draft(clean_year, compliance_user, patient_group):
    """A generated draft with two exceptions: a disputed line and one without agreement."""
    disputed = add_line(clean_year, compliance_user, patient_group, state="disputed")
    loose = add_line(clean_year, compliance_user, patient_group, paid_on=date(2025, 6, 1),
                     agreement=False)
    report = generate(compliance_user, clean_year["sponsor"])
    assert report.status == "done", report.error
    return {"report": report, "keys": [f"support_disputed:support-{disputed.id}",
                                       f"no_agreement:support-{loose.id}"]}


def test_the_draft_lists_its_exceptions_on_the_report_page(draft, compliance_user, client):
    login(client, compliance_user)
    page = client.get(f"/reports/{draft['report'].id}").get_data(as_text=True)

    assert "2 of 2 exceptions are neither fixed nor acknowledged" in page
    assert "is disputed by the partner" in page
    support_id = draft["keys"][1].split("-")[-1]
    assert f'href="/partnerships/supports/{support_id}/edit"' in page
    action = f'action="/reports/{draft["report"].id}/exceptions/acknowledge"'
    assert page.count(action) == 2


def test_signing_is_refused_while_an_exception_is_open(draft, compliance_user):
    report = draft["report"]
    exceptions.acknowledge(report, draft["keys"][0], "The partner's note is answered.",
                           compliance_user)
    db.session.commit()

    with pytest.raises(ValidationFailed) as refused:
        services.publish_report(report, compliance_user, PASSWORD, "approval")
    message = refused.value.fields["exceptions"][0]
    assert message.startswith("1 exception is neither fixed nor acknowledged:")
    assert "is not linked to a written agreement" in message
    db.session.rollback()
    report = db.session.get(Report, report.id)
    assert report.status == "done" and report.job == "generate"
    assert report.signed_at is None and report.signature_name is None


def test_the_page_refuses_the_signature_and_says_why(draft, compliance_user, client):
    login(client, compliance_user)
    response = client.post(f"/reports/{draft['report'].id}/publish",
                           data={"meaning": "approval", "password": PASSWORD})

    assert response.status_code == 422
    assert "2 exceptions are neither fixed nor acknowledged" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Report, draft["report"].id).signed_at is None


def test_acknowledged_exceptions_let_the_report_be_signed_and_are_published(
        draft, compliance_user, client):
    login(client, compliance_user)
    report = draft["report"]
    for key in draft["keys"]:
        response = client.post(f"/reports/{report.id}/exceptions/acknowledge",
                               data={"key": key, "reason": "  Agreed with the partner.  "})
        assert response.status_code == 303
    page = client.get(f"/reports/{report.id}").get_data(as_text=True)
    assert "Every exception is acknowledged" in page
    assert f"Acknowledged by {compliance_user.name}" in page

    response = client.post(f"/reports/{report.id}/publish",
                           data={"meaning": "approval", "password": PASSWORD})
    assert response.status_code == 303
    db.session.expire_all()
    report = db.session.get(Report, report.id)
    assert report.is_published, report.error
    published = json.loads(stored(report, "json"))
    assert [item["key"] for item in published["exceptions"]] == draft["keys"]
    for item in published["exceptions"]:
        assert item["acknowledgement"]["reason"] == "Agreed with the partner."
        assert item["acknowledgement"]["by"] == compliance_user.name
        assert item["acknowledgement"]["at"].endswith("Z")


def test_a_bad_key_or_an_empty_reason_is_refused_on_its_field(draft, compliance_user, client):
    report = draft["report"]
    with pytest.raises(ValidationFailed) as refused:
        exceptions.acknowledge(report, "no_agreement:support-999999", "Fine.", compliance_user)
    assert "key" in refused.value.fields
    with pytest.raises(ValidationFailed) as refused:
        exceptions.acknowledge(report, draft["keys"][0], "   ", compliance_user)
    assert "reason" in refused.value.fields
    with pytest.raises(ValidationFailed) as refused:
        exceptions.acknowledge(report, draft["keys"][0], "x" * 1001, compliance_user)
    assert "reason" in refused.value.fields

    login(client, compliance_user)
    response = client.post(f"/reports/{report.id}/exceptions/acknowledge",
                           data={"key": draft["keys"][0], "reason": ""})
    assert response.status_code == 422
    assert "Say why the report may be published" in response.get_data(as_text=True)
    db.session.rollback()
    assert db.session.scalars(select(ExceptionAcknowledgement)).all() == []


def test_another_organisations_compliance_officer_cannot_acknowledge(draft, make_org, make_user,
                                                                     client, bearer):
    other = make_org("Northwind Therapeutics", "sponsor", methodology_note=NOTE)
    outsider = make_user("compliance", other)
    report = draft["report"]

    with pytest.raises(NotAllowed):
        exceptions.acknowledge(report, draft["keys"][0], "Not mine.", outsider)
    login(client, outsider)
    assert client.post(f"/reports/{report.id}/exceptions/acknowledge",
                       data={"key": draft["keys"][0], "reason": "Not mine."}).status_code == 404
    response = client.post(f"/api/v1/reports/{report.id}/exceptions/{draft['keys'][0]}"
                           "/acknowledgement", json={"reason": "Not mine."},
                           headers=bearer(outsider))
    assert response.status_code == 404
    db.session.rollback()
    assert db.session.scalars(select(ExceptionAcknowledgement)).all() == []


def test_the_api_acknowledges_and_the_status_lists_the_exceptions(draft, compliance_user,
                                                                  client, bearer):
    report, key = draft["report"], draft["keys"][1]
    headers = bearer(compliance_user)
    status = client.get(f"/api/v1/reports/{report.id}", headers=headers).get_json()
    assert [(item["key"], item["acknowledged"]) for item in status["exceptions"]] == [
        (draft["keys"][0], False), (key, False)]

    response = client.post(f"/api/v1/reports/{report.id}/exceptions/{key}/acknowledgement",
                           json={"reason": "The agreement is being signed."}, headers=headers)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["key"] == key and body["kind"] == "no_agreement"
    assert body["acknowledgement"]["reason"] == "The agreement is being signed."
    assert body["acknowledgement"]["by"] == compliance_user.name

    empty = client.post(f"/api/v1/reports/{report.id}/exceptions/{key}/acknowledgement",
                        json={"reason": ""}, headers=headers)
    assert empty.status_code == 422 and "reason" in empty.get_json()["error"]["fields"]
    status = client.get(f"/api/v1/reports/{report.id}", headers=headers).get_json()
    assert [item["acknowledged"] for item in status["exceptions"]] == [False, True]


def test_withdrawing_voids_the_acknowledgement_and_closes_the_gate_again(draft,
                                                                         compliance_user):
    report = draft["report"]
    exceptions.acknowledge_all(report, compliance_user)
    exceptions.withdraw_acknowledgement(report, draft["keys"][0], compliance_user)
    db.session.commit()

    rows = db.session.scalars(select(ExceptionAcknowledgement).order_by(
        ExceptionAcknowledgement.id)).all()
    assert len(rows) == 2 and rows[0].is_void and not rows[1].is_void
    with pytest.raises(ValidationFailed):
        services.publish_report(report, compliance_user, PASSWORD, "approval")


def test_regenerating_keeps_the_acknowledgements_still_needed(draft, compliance_user):
    report = draft["report"]
    exceptions.acknowledge_all(report, compliance_user, "Checked.")
    db.session.commit()
    loose_id = int(draft["keys"][1].split("-")[-1])
    from governance.partnerships.models import Support

    db.session.get(Support, loose_id).agreement_id = db.session.scalar(select(Agreement.id))
    db.session.commit()

    report = generate(compliance_user, report.organisation)
    listed = exceptions.gate(report, exceptions.draft_snapshot(report))
    assert [(item["key"], item["acknowledgement"]["reason"]) for item in listed] == [
        (draft["keys"][0], "Checked.")]


def test_exceptions_are_acknowledged_on_a_draft_only(draft, compliance_user):
    report = draft["report"]
    exceptions.acknowledge_all(report, compliance_user)
    services.publish_report(report, compliance_user, PASSWORD, "approval")
    db.session.commit()

    with pytest.raises(Conflict):
        exceptions.withdraw_acknowledgement(report, draft["keys"][0], compliance_user)


def test_a_report_of_the_current_year_cannot_be_published(clean_year, compliance_user,
                                                          monkeypatch):
    report = generate(compliance_user, clean_year["sponsor"])
    monkeypatch.setattr(services, "utcnow", lambda: datetime(YEAR, 11, 2, 10, 0))

    with pytest.raises(ValidationFailed) as refused:
        services.publish_report(report, compliance_user, PASSWORD, "approval")
    assert refused.value.fields == {"year": [
        "The year is not over: a report of 2025 can be published from 1 January 2026."]}
