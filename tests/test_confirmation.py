"""Partner confirmation: the partner confirms or disputes support lines and interactions; disputes
reach the compliance queue and the transparency report."""

import json
from datetime import date

import pytest
from sqlalchemy import select

from governance.audit import AuditEvent
from governance.confirmations import services as confirmation
from governance.extensions import db
from governance.reports import jobs, services
from governance.storage import REPORTS as files

from .conftest import login


@pytest.fixture
def app_config():
    return {"JOBS_INLINE": True}


def support_for(actor, partnership, recipient, amount="5000.00", paid_on=date(2025, 4, 1)):
    from governance.partnerships.services import record_support

    support = record_support({"partnership_id": partnership.id, "recipient_id": recipient.id,
                              "paid_on": paid_on, "kind": "grant", "amount": amount,
                              "currency": "GBP",
                              "description": "Grant for the patient registry"}, actor)
    db.session.commit()
    return support


@pytest.fixture
def setting(make_org, sponsor, patient_group, make_partnership, make_interaction, make_user,
            compliance_user):
    """Our partnership with a support line and an interaction; another one we are not part of."""
    facilitator = make_org("Bridgewater Facilitation", "other", country="GB")
    other_group = make_org("Sickle Cell Collective", "patient_group", country="US")
    ours = make_partnership("Trial design advisory programme",
                            agreement_signed_on=date(2024, 1, 1))
    ours.other_organisations.append(facilitator)
    theirs = make_partnership("Access advocacy", patient_group_id=other_group.id,
                              agreement_signed_on=date(2024, 1, 1))
    db.session.commit()
    return {
        "partner": make_user("partner", patient_group),
        "facilitator_partner": make_user("partner", facilitator),
        "other_partner": make_user("partner", other_group),
        "advocate": make_user("advocate", sponsor),
        "ours": ours, "theirs": theirs,
        "support": support_for(compliance_user, ours, patient_group),
        "facilitator_support": support_for(compliance_user, ours, facilitator, "900.00"),
        "their_support": support_for(compliance_user, theirs, other_group),
        "interaction": make_interaction(partnership_id=ours.id),
        "their_interaction": make_interaction(partnership_id=theirs.id,
                                              title="Advocacy strategy meeting"),
    }


def test_partner_confirms_a_support_line_their_organisation_received(setting, client):
    support = setting["support"]
    login(client, setting["partner"])

    page = client.get(f"/reports/confirmations/support/{support.id}")
    assert page.status_code == 200 and "Grant for the patient registry" in page.get_data(
        as_text=True)
    response = client.post(f"/reports/confirmations/support/{support.id}",
                           data={"answer": "confirmed", "note": "Received on 3 April."})
    assert response.status_code == 303

    db.session.expire_all()
    assert support.confirmed_by_partner == "confirmed"
    assert support.confirmation_note == "Received on 3 April."
    event = db.session.scalars(select(AuditEvent).where(
        AuditEvent.entity == "support", AuditEvent.entity_id == support.id)
        .order_by(AuditEvent.id.desc())).first()
    assert event.actor_label == setting["partner"].email
    assert event.change_set["confirmed_by_partner"] == ["pending", "confirmed"]
    assert event.reason.startswith("Partner confirmed the support line")


def test_dispute_needs_a_note_and_changes_nothing_without_one(setting, client):
    support = setting["support"]
    login(client, setting["partner"])

    response = client.post(f"/reports/confirmations/support/{support.id}",
                           data={"answer": "disputed", "note": "  "})
    assert response.status_code == 422
    assert "Say what is wrong" in response.get_data(as_text=True)
    response = client.post(f"/reports/confirmations/support/{support.id}", data={})
    assert response.status_code == 422
    db.session.expire_all()
    assert support.confirmed_by_partner == "pending"


def test_disputes_appear_in_the_compliance_queue(setting, client, compliance_user):
    login(client, setting["partner"])
    client.post(f"/reports/confirmations/support/{setting['support'].id}",
                data={"answer": "disputed", "note": "We received 4,500, not 5,000."})
    client.post(f"/reports/confirmations/interaction/{setting['interaction'].id}",
                data={"answer": "disputed", "note": "Only four patients attended."})
    client.post("/logout")

    login(client, compliance_user)
    page = client.get("/reports/disputes")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert f"support-{setting['support'].id}" in body
    assert "We received 4,500, not 5,000." in body
    assert f"interaction-{setting['interaction'].id}" in body
    assert "Only four patients attended." in body
    assert setting["partner"].email in body
    # Each disputed line links to where it is corrected, not to its partnership.
    assert f'href="/partnerships/supports/{setting["support"].id}/edit"' in body
    assert 'href="/reports/disputes"' in client.get("/reports/").get_data(as_text=True)

    queue = confirmation.disputes(compliance_user)
    assert {item.stable_id for item in queue} == {f"support-{setting['support'].id}",
                                                  f"interaction-{setting['interaction'].id}"}
    assert all(item.disputed_at is not None for item in queue)


def test_partner_confirms_an_interaction_of_their_partnership(setting, client):
    interaction = setting["interaction"]
    login(client, setting["partner"])

    response = client.post(f"/reports/confirmations/interaction/{interaction.id}",
                           data={"answer": "confirmed"})
    assert response.status_code == 303
    db.session.expire_all()
    assert interaction.confirmed_by_partner == "confirmed"
    assert interaction.confirmation_note is None


def test_an_interaction_changed_after_the_partner_answered_goes_back_to_them(
        setting, client, compliance_user):
    from governance.interactions.services import update_interaction

    interaction = setting["interaction"]
    login(client, setting["partner"])
    client.post(f"/reports/confirmations/interaction/{interaction.id}",
                data={"answer": "disputed", "note": "There were 4 of us, not 6"})
    db.session.expire_all()
    assert interaction.confirmed_by_partner == "disputed"

    update_interaction(interaction, {"external_id": "CRM-0042"}, compliance_user)
    db.session.commit()
    assert interaction.confirmed_by_partner == "disputed"  # our own reference only

    update_interaction(interaction, {"patient_participants": 4}, compliance_user,
                       reason="Corrected after the partner's dispute")
    db.session.commit()
    assert (interaction.confirmed_by_partner, interaction.confirmation_note) == ("pending", None)
    last = db.session.scalars(select(AuditEvent).where(
        AuditEvent.entity == "interaction", AuditEvent.entity_id == interaction.id)
        .order_by(AuditEvent.id.desc())).first()
    assert last.change_set["confirmed_by_partner"] == ["disputed", "pending"]
    assert last.change_set["patient_participants"][1] == 4
    assert last.reason == "Corrected after the partner's dispute"


def test_partner_gets_404_for_records_of_other_partnerships(setting, client):
    login(client, setting["partner"])

    for url in (f"/reports/confirmations/support/{setting['their_support'].id}",
                f"/reports/confirmations/interaction/{setting['their_interaction'].id}",
                "/reports/confirmations/support/999999"):
        assert client.get(url).status_code == 404, url
        assert client.post(url, data={"answer": "confirmed"}).status_code == 404, url
    db.session.expire_all()
    assert setting["their_support"].confirmed_by_partner == "pending"
    assert setting["their_interaction"].confirmed_by_partner == "pending"


def test_partner_cannot_answer_for_another_organisations_support_line(setting, client):
    login(client, setting["facilitator_partner"])
    support = setting["support"]  # received by the patient group, not the facilitator

    response = client.post(f"/reports/confirmations/support/{support.id}",
                           data={"answer": "disputed", "note": "Not ours to say"})
    assert response.status_code == 403
    assert "Only the organisation that received this support" in response.get_data(
        as_text=True)
    db.session.expire_all()
    assert support.confirmed_by_partner == "pending"
    own = setting["facilitator_support"]
    assert client.post(f"/reports/confirmations/support/{own.id}",
                       data={"answer": "confirmed"}).status_code == 303


def test_partner_cannot_confirm_what_their_own_organisation_recorded(setting, make_interaction,
                                                                     patient_group, client):
    own = make_interaction(partnership_id=setting["ours"].id, organisation_id=patient_group.id,
                           title="Members' meeting we organised")
    login(client, setting["partner"])

    response = client.post(f"/reports/confirmations/interaction/{own.id}",
                           data={"answer": "confirmed"})
    assert response.status_code == 403
    db.session.expire_all()
    assert own.confirmed_by_partner == "pending"


@pytest.mark.parametrize("role", ["advocate", "compliance", "auditor"])
def test_only_partners_confirm(setting, client, make_user, sponsor, role):
    user = setting["advocate"] if role == "advocate" else make_user(role)
    login(client, user)

    url = f"/reports/confirmations/support/{setting['support'].id}"
    assert client.post(url, data={"answer": "confirmed"}).status_code == 403
    assert client.get("/reports/confirmations").status_code == 403
    db.session.expire_all()
    assert setting["support"].confirmed_by_partner == "pending"


def test_partner_list_shows_only_what_they_answer_for(setting, client):
    login(client, setting["partner"])

    supports = client.get("/reports/confirmations?kind=support").get_data(as_text=True)
    assert f"support-{setting['support'].id}" in supports
    assert f"support-{setting['facilitator_support'].id}" not in supports
    assert f"support-{setting['their_support'].id}" not in supports
    interactions = client.get("/reports/confirmations?kind=interaction").get_data(as_text=True)
    assert setting["interaction"].title in interactions
    assert "Advocacy strategy meeting" not in interactions

    client.post(f"/reports/confirmations/support/{setting['support'].id}",
                data={"answer": "confirmed"})
    pending = client.get("/reports/confirmations?kind=support").get_data(as_text=True)
    assert f"support-{setting['support'].id}" not in pending
    confirmed = client.get("/reports/confirmations?kind=support&state=confirmed")
    assert f"support-{setting['support'].id}" in confirmed.get_data(as_text=True)
    home = client.get("/home").get_data(as_text=True)
    assert f"/reports/confirmations/interaction/{setting['interaction'].id}" in home


def test_changed_support_goes_back_to_the_partner(setting, compliance_user):
    from governance.partnerships.services import update_support

    support = setting["support"]
    confirmation.answer_support(support, {"answer": "confirmed"}, setting["partner"])
    db.session.commit()
    update_support(support, {"amount": "6000.00"}, compliance_user, reason="Top-up added")
    db.session.commit()

    assert support.confirmed_by_partner == "pending"


def internal_snapshot(sponsor, compliance_user) -> dict:
    """The sponsor's 2025 report, generated now: its internal JSON."""
    sponsor.methodology_note = services.DEFAULT_METHODOLOGY
    db.session.commit()
    report = services.request_report({"organisation_id": sponsor.id, "year": 2025},
                                     compliance_user)
    db.session.commit()
    jobs.start(report.id)
    db.session.expire_all()
    return json.loads(files.read(report.internal_json_sha256))


def test_report_shows_each_lines_partner_answer(setting, compliance_user, sponsor):
    confirmation.answer_support(setting["support"], {"answer": "disputed",
                                                     "note": "Amount differs"},
                                setting["partner"])
    confirmation.answer_interaction(setting["interaction"], {"answer": "confirmed"},
                                    setting["partner"])
    data = internal_snapshot(sponsor, compliance_user)

    lines = {line["id"]: line for recipient in data["recipients"]
             for line in recipient["lines"]}
    assert lines[f"support-{setting['support'].id}"]["confirmation"] == {
        "state": "disputed", "note": "Amount differs", "answer": None}
    assert lines[f"support-{setting['facilitator_support'].id}"]["confirmation"]["state"] == \
        "pending"
    interactions = {line["id"]: line for group in data["interactions"]["partnerships"]
                    for line in group["lines"]}
    assert interactions[f"interaction-{setting['interaction'].id}"]["confirmation"][
        "state"] == "confirmed"
    assert data["confirmation"]["support"]["disputed"]["lines"] == 1
    assert data["confirmation"]["interactions"]["confirmed"] == 1


def test_partners_answer_through_the_api_and_bad_answers_change_nothing(setting, client,
                                                                      compliance_user):
    from governance.auth import services as accounts

    def bearer(user):
        token = accounts.issue_token(user, "tests")
        db.session.commit()
        return {"Authorization": f"Bearer {token}"}

    partner = bearer(setting["partner"])
    interaction, support = setting["interaction"], setting["support"]
    url = f"/api/v1/interactions/{interaction.id}/confirmation"

    refused = client.post(url, json={"answer": "disputed"}, headers=partner)
    assert refused.status_code == 422
    assert "note" in refused.get_json()["error"]["fields"]
    unknown = client.post(url, json={"answer": "confirmed", "by": "me"}, headers=partner)
    assert unknown.status_code == 400 and "by" in unknown.get_json()["error"]["fields"]
    assert client.post(url, json={"answer": "confirmed"},
                       headers=bearer(setting["advocate"])).status_code == 403
    assert client.post(f"/api/v1/interactions/{setting['their_interaction'].id}/confirmation",
                       json={"answer": "confirmed"}, headers=partner).status_code == 404
    db.session.expire_all()
    assert interaction.confirmed_by_partner == "pending"

    answered = client.post(url, json={"answer": "disputed", "note": "It was held online"},
                           headers=partner)
    assert answered.status_code == 200, answered.get_json()
    assert (answered.get_json()["confirmed_by_partner"],
            answered.get_json()["confirmation_note"]) == ("disputed", "It was held online")

    not_theirs = client.post(f"/api/v1/supports/{support.id}/confirmation",
                             json={"answer": "confirmed"},
                             headers=bearer(setting["facilitator_partner"]))
    assert not_theirs.status_code == 403
    confirmed = client.post(f"/api/v1/supports/{support.id}/confirmation",
                            json={"answer": "confirmed"}, headers=partner)
    assert confirmed.status_code == 200
    assert confirmed.get_json()["confirmed_by_partner"] == "confirmed"
    db.session.expire_all()
    assert support.confirmed_by_partner == "confirmed"
    assert [d.record.id for d in confirmation.disputes(compliance_user)] == [interaction.id]

    from governance.interactions.services import void_interaction

    void_interaction(interaction, setting["advocate"], "Logged twice")
    db.session.commit()
    voided = client.post(url, json={"answer": "confirmed"}, headers=partner)
    assert voided.status_code == 404  # a voided record is hidden from partners, as unknown
    db.session.expire_all()
    assert interaction.confirmed_by_partner == "disputed"


def test_partner_confirms_several_lines_at_once_with_one_note(setting, client, compliance_user,
                                                               patient_group):
    first = setting["support"]
    second = support_for(compliance_user, setting["ours"], patient_group, "1200.00")
    login(client, setting["partner"])
    page = client.get("/reports/confirmations?kind=support").get_data(as_text=True)
    assert f'value="{first.id}"' in page and f'value="{second.id}"' in page
    assert "Confirm the selected lines" in page

    response = client.post("/reports/confirmations/confirm-selected",
                           data={"kind": "support", "ids": [first.id, second.id],
                                 "note": "Both received; checked against our bank statement."})
    assert response.status_code == 303
    assert "2 support lines confirmed" in client.get(response.location).get_data(as_text=True)
    db.session.expire_all()
    for line in (first, second):
        assert line.confirmed_by_partner == "confirmed"
        assert line.confirmation_note == "Both received; checked against our bank statement."
        event = db.session.scalars(select(AuditEvent).where(
            AuditEvent.entity == "support", AuditEvent.entity_id == line.id)
            .order_by(AuditEvent.id.desc())).first()
        assert event.actor_label == setting["partner"].email
        assert event.reason.startswith("Partner confirmed 2 support lines at once")


def test_confirming_at_once_is_all_or_nothing(setting, client, compliance_user, patient_group):
    ours, theirs = setting["support"], setting["their_support"]
    login(client, setting["partner"])
    response = client.post("/reports/confirmations/confirm-selected",
                           data={"kind": "support", "ids": [ours.id, theirs.id]})
    assert response.status_code == 303
    page = client.get(response.location).get_data(as_text=True)
    assert f"Not among the records you answer for: support-{theirs.id}" in page
    assert "Nothing was confirmed" in page
    for data in ({"kind": "support"}, {"kind": "support", "ids": ["x"]}):
        assert client.post("/reports/confirmations/confirm-selected",
                           data=data).status_code == 303
    db.session.expire_all()
    assert ours.confirmed_by_partner == "pending" and theirs.confirmed_by_partner == "pending"

    with pytest.raises(confirmation.ValidationFailed) as refused:
        confirmation.confirm_many("support", {"ids": []}, setting["partner"])
    assert refused.value.fields["ids"] == ["Select from 1 to 500 lines."]
    with pytest.raises(confirmation.NotAllowed):
        confirmation.confirm_many("support", {"ids": [ours.id]}, setting["advocate"])


def test_partner_confirms_several_interactions_at_once(setting, client):
    interaction = setting["interaction"]
    login(client, setting["partner"])
    response = client.post("/reports/confirmations/confirm-selected",
                           data={"kind": "interaction", "ids": [interaction.id]})
    assert response.status_code == 303
    assert "1 interaction confirmed" in client.get(response.location).get_data(as_text=True)
    db.session.expire_all()
    assert interaction.confirmed_by_partner == "confirmed"


# --- the end of a dispute ---------------------------------------------------------------------


def dispute(client, setting, kind="support", note="We received 4,500, not 5,000."):
    record = setting["support"] if kind == "support" else setting["interaction"]
    login(client, setting["partner"])
    client.post(f"/reports/confirmations/{kind}/{record.id}",
                data={"answer": "disputed", "note": note})
    client.post("/logout")
    db.session.expire_all()
    assert record.confirmed_by_partner == "disputed"
    return record


def test_the_sponsor_keeps_a_disputed_line_with_a_reason_the_partner_reads(
        setting, client, compliance_user, bearer):
    support = dispute(client, setting)
    login(client, compliance_user)
    queue = client.get("/reports/disputes").get_data(as_text=True)
    assert f"Keep support-{support.id}" in queue
    # A reason is required: nothing changes without one.
    response = client.post(f"/reports/disputes/support/{support.id}/uphold", data={})
    assert response.status_code == 303
    assert "Nothing was changed" in client.get(response.location).get_data(as_text=True)
    db.session.expire_all()
    assert support.confirmed_by_partner == "disputed"

    reason = "Our bank confirms 5,000 was paid on 1 April; the 500 was a bank fee."
    response = client.post(f"/reports/disputes/support/{support.id}/uphold",
                           data={"reason": reason})
    assert response.status_code == 303
    db.session.expire_all()
    assert (support.confirmed_by_partner, support.dispute_answer) == ("upheld", reason)
    assert support.confirmation_note == "We received 4,500, not 5,000."  # the partner's note stays
    event = db.session.scalars(select(AuditEvent).where(
        AuditEvent.entity == "support", AuditEvent.entity_id == support.id)
        .order_by(AuditEvent.id.desc())).first()
    assert event.actor_label == compliance_user.email
    assert event.change_set["confirmed_by_partner"] == ["disputed", "upheld"]
    assert f"Keep support-{support.id}" not in client.get("/reports/disputes").get_data(
        as_text=True)
    # Only a disputed record is upheld.
    client.post(f"/reports/disputes/support/{support.id}/uphold", data={"reason": "again"})
    db.session.expire_all()
    assert support.dispute_answer == reason
    client.post("/logout")

    login(client, setting["partner"])
    page = client.get(f"/reports/confirmations/support/{support.id}").get_data(as_text=True)
    assert "Kept unchanged after your dispute" in page and reason in page
    api = client.get(f"/api/v1/supports/{support.id}", headers=bearer(setting["partner"]))
    assert api.status_code == 200
    assert api.get_json()["confirmed_by_partner"] == "upheld"
    assert api.get_json()["dispute_answer"] == reason


def test_only_the_recording_side_upholds(setting, client, make_user, make_org):
    support = dispute(client, setting)
    from governance.confirmations.services import NotAllowed, uphold

    with pytest.raises(NotAllowed):
        uphold(support, {"reason": "It is right."}, setting["facilitator_partner"])
    other = make_org("Northwind Therapeutics", "sponsor", country="US")
    with pytest.raises(NotAllowed):
        uphold(support, {"reason": "It is right."}, make_user("compliance", other))
    db.session.rollback()
    db.session.expire_all()
    assert support.confirmed_by_partner == "disputed"


def test_the_partner_withdraws_a_dispute_and_confirms_later(setting, client):
    interaction = dispute(client, setting, "interaction", "Only four patients attended.")
    login(client, setting["partner"])
    page = client.get(f"/reports/confirmations/interaction/{interaction.id}")
    assert "Withdraw my dispute" in page.get_data(as_text=True)
    response = client.post(f"/reports/confirmations/interaction/{interaction.id}/withdraw")
    assert response.status_code == 303
    assert "is withdrawn" in client.get(response.location).get_data(as_text=True)
    db.session.expire_all()
    assert interaction.confirmed_by_partner == "withdrawn"
    awaiting = client.get("/reports/confirmations?kind=interaction").get_data(as_text=True)
    assert f"interaction-{interaction.id}" in awaiting  # it waits for their answer again
    # Withdrawing twice changes nothing and says why.
    again = client.post(f"/reports/confirmations/interaction/{interaction.id}/withdraw")
    assert "is not disputed" in client.get(again.location).get_data(as_text=True)
    client.post(f"/reports/confirmations/interaction/{interaction.id}",
                data={"answer": "confirmed"})
    db.session.expire_all()
    assert interaction.confirmed_by_partner == "confirmed"


def test_another_partner_cannot_withdraw(setting, client):
    support = dispute(client, setting)
    login(client, setting["other_partner"])
    assert client.post(f"/reports/confirmations/support/{support.id}/withdraw"
                       ).status_code == 404
    login(client, setting["facilitator_partner"])
    client.post(f"/reports/confirmations/support/{support.id}/withdraw")
    db.session.expire_all()
    assert support.confirmed_by_partner == "disputed"


def test_correcting_a_kept_line_sends_it_back_to_the_partner(setting, client,
                                                            compliance_user):
    from governance.confirmations.services import uphold
    from governance.partnerships.services import update_support

    support = dispute(client, setting)
    uphold(support, {"reason": "Paid in full."}, compliance_user)
    db.session.commit()
    update_support(support, {"amount": "4500.00"}, compliance_user)
    db.session.commit()
    assert (support.confirmed_by_partner, support.dispute_answer) == ("pending", None)
    last = db.session.scalars(select(AuditEvent).where(
        AuditEvent.entity == "support", AuditEvent.entity_id == support.id)
        .order_by(AuditEvent.id.desc())).first()
    assert last.reason == "Corrected after the partner's dispute"


def test_a_kept_line_is_an_exception_of_the_report_and_counted_as_disputed(
        setting, client, compliance_user, sponsor):
    from governance.confirmations.services import uphold
    from governance.reports.exceptions import find_exceptions

    support = dispute(client, setting)
    uphold(support, {"reason": "Paid in full."}, compliance_user)
    db.session.commit()
    found = {item["key"]: item for item in find_exceptions(sponsor, 2025, date(2026, 1, 10))}
    kept = found[f"support_upheld:support-{support.id}"]
    assert kept["message"].endswith("was disputed by the partner and kept unchanged: "
                                    "“Paid in full.”.")


def test_a_line_unanswered_past_the_review_window_is_reported_as_not_answered(
        setting, compliance_user, sponsor):
    from datetime import timedelta

    from governance.database import utcnow

    old = setting["support"]
    old.updated_at = utcnow() - timedelta(days=31)  # last put to the partner 31 days ago
    data = internal_snapshot(sponsor, compliance_user)
    lines = {line["id"]: line for recipient in data["recipients"]
             for line in recipient["lines"]}
    assert lines[f"support-{old.id}"]["confirmation"]["state"] == "not_answered"
    recent = lines[f"support-{setting['facilitator_support'].id}"]["confirmation"]
    assert recent["state"] == "pending"
    # Counted with the lines awaiting an answer (the sponsor has three this year).
    assert data["confirmation"]["support"]["pending"]["lines"] == 3
    assert data["confirmation"]["support"]["confirmed"]["lines"] == 0
