"""People are told what needs them: the inbox, mail through a real SMTP server (aiosmtpd on
loopback), each user's settings, the daily digest, and the day's reminders."""

import email
import email.policy
import socket
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from governance.daily import DailyRun, run_job, start_if_due, the_days_run
from governance.database import utcnow
from governance.extensions import db
from governance.notifications import mail
from governance.notifications.models import Notification, NotificationSettings
from governance.partnerships.models import Support
from governance.partnerships.services import record_support

from .conftest import GOOD_INTERACTION, login


class Inbox:
    """What the SMTP server received, and a switch to refuse every mail."""

    def __init__(self):
        self.messages: list[email.message.Message] = []
        self.refusing = False

    async def handle_DATA(self, server, session, envelope):
        if self.refusing:
            return "451 4.3.0 Mailbox temporarily unavailable"
        self.messages.append(email.message_from_bytes(envelope.content,
                                                      policy=email.policy.default))
        return "250 OK"

    def to(self, address: str) -> list[email.message.Message]:
        return [m for m in self.messages if m["To"] == address]

    @staticmethod
    def subject(message) -> str:
        return str(message["Subject"])

    @staticmethod
    def text(message) -> str:
        return message.get_content()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    inbox.port = controller.port
    yield inbox
    controller.stop()


@pytest.fixture
def app_config(smtp_server):
    return {"JOBS_INLINE": True, "MAIL_BACKEND": "smtp", "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": smtp_server.port, "MAIL_TIMEOUT": 5,
            "PUBLIC_BASE_URL": "https://governance.example.org"}


@pytest.fixture
def people(sponsor, patient_group, make_partnership, make_user):
    partnership = make_partnership("Trial design advisory programme",
                                   agreement_signed_on=date(2024, 1, 1))
    return {
        "partnership": partnership,
        "partner": make_user("partner", patient_group, email="partner@rarelung.example"),
        "advocate": make_user("advocate", sponsor, email="advocate@helix.example"),
        "compliance": make_user("compliance", sponsor, email="officer@helix.example"),
    }


def lines(actor, partnership, recipient, count: int) -> list[Support]:
    recorded = [record_support({"partnership_id": partnership.id, "recipient_id": recipient.id,
                                "paid_on": date(2025, 1 + n % 12, 1 + n), "kind": "grant",
                                "amount": f"{1000 + n}.00", "currency": "GBP",
                                "description": f"Grant instalment {n + 1}"}, actor)
                for n in range(count)]
    db.session.commit()
    return recorded


def notifications_of(user) -> list[Notification]:
    db.session.expire_all()
    return list(db.session.scalars(select(Notification).where(Notification.user_id == user.id)
                                   .order_by(Notification.id)))


def test_a_dispute_answered_reaches_the_partner_by_mail(people, patient_group, client,
                                                        smtp_server):
    """The issue's journey: ten lines confirmed at once, one disputed, the dispute kept with a
    reason, the partner told by mail and reading the answer."""
    partner, compliance = people["partner"], people["compliance"]
    recorded = lines(people["advocate"], people["partnership"], patient_group, 11)

    asked = smtp_server.to(partner.email)
    assert len(asked) == 1  # eleven lines on one day: one mail, not eleven
    assert smtp_server.subject(asked[0]) == \
        "[Partnership Governance] New records for you to confirm"
    assert "https://governance.example.org/reports/confirmations" in smtp_server.text(asked[0])

    login(client, partner)
    response = client.post("/reports/confirmations/confirm-selected",
                           data={"kind": "support", "ids": [s.id for s in recorded[:10]],
                                 "note": "All received."})
    assert response.status_code == 303
    disputed = recorded[10]
    client.post(f"/reports/confirmations/support/{disputed.id}",
                data={"answer": "disputed", "note": "We received 1,000, not 1,010."})
    told = smtp_server.to(people["advocate"].email) + smtp_server.to(compliance.email)
    assert [smtp_server.subject(m) for m in told] == \
        [f"[Partnership Governance] A partner disputed support-{disputed.id}"] * 2
    assert "We received 1,000, not 1,010." in smtp_server.text(told[0])

    client.post("/logout")
    login(client, compliance)
    client.post(f"/reports/disputes/support/{disputed.id}/uphold",
                data={"reason": "The bank statement shows 1,010; a fee was deducted."})
    answer = smtp_server.to(partner.email)[-1]
    assert smtp_server.subject(answer) == \
        f"[Partnership Governance] Your dispute of support-{disputed.id} was answered: " \
        "kept unchanged"
    assert "a fee was deducted" in smtp_server.text(answer)

    client.post("/logout")
    login(client, partner)
    page = client.get("/notifications/").get_data(as_text=True)
    assert "was answered: kept unchanged" in page
    header = client.get("/home").get_data(as_text=True)
    assert "2<span class=\"visually-hidden\"> unread</span>" in header
    newest = notifications_of(partner)[-1]
    opened = client.post(f"/notifications/{newest.id}/open")
    assert opened.status_code == 303
    assert opened.headers["Location"] == f"/reports/confirmations/support/{disputed.id}"
    assert "a fee was deducted" in client.get(opened.headers["Location"]).get_data(
        as_text=True)
    assert notifications_of(partner)[-1].read_at is not None


def test_nobody_is_told_of_what_they_did(people, patient_group, smtp_server):
    lines(people["advocate"], people["partnership"], patient_group, 1)
    assert notifications_of(people["advocate"]) == []
    assert smtp_server.to(people["advocate"].email) == []


def test_inbox_only_kinds_send_no_mail(people, patient_group, client, smtp_server):
    login(client, people["partner"])
    response = client.post("/notifications/settings", data={
        "by_mail": ["dispute_answered"]})  # confirmation requests: the inbox only
    assert response.status_code == 303
    lines(people["advocate"], people["partnership"], patient_group, 2)

    assert smtp_server.to(people["partner"].email) == []
    [notification] = notifications_of(people["partner"])
    assert notification.kind == "confirmation_requested" and notification.mail_state == "none"


def test_a_daily_digest_replaces_single_mails(people, patient_group, client, smtp_server,
                                              sponsor):
    login(client, people["partner"])
    client.post("/notifications/settings", data={
        "by_mail": ["confirmation_requested", "dispute_answered"], "daily_digest": "y"})
    recorded = lines(people["advocate"], people["partnership"], patient_group, 1)
    from governance.confirmations.services import uphold

    recorded[0].confirmed_by_partner = "disputed"
    db.session.commit()
    uphold(recorded[0], {"reason": "The amount is right."}, people["compliance"])
    db.session.commit()
    assert smtp_server.to(people["partner"].email) == []  # both wait for the digest

    start_if_due(utcnow().replace(hour=23))
    [digest] = smtp_server.to(people["partner"].email)
    assert smtp_server.subject(digest) == \
        "[Partnership Governance] Your daily digest: 2 notifications"
    text = smtp_server.text(digest)
    assert "New records for you to confirm" in text and "The amount is right." in text
    assert {n.mail_state for n in notifications_of(people["partner"])} == {"sent"}


def test_settings_refuse_an_unknown_kind_and_keep_the_old_ones(people, client):
    login(client, people["partner"])
    client.post("/notifications/settings", data={"by_mail": ["dispute_answered"]})
    response = client.post("/notifications/settings", data={"by_mail": ["lottery_win"]})
    assert response.status_code == 422
    assert "lottery_win&#39; is not a valid choice" in response.get_data(as_text=True)
    db.session.expire_all()
    settings = db.session.scalar(select(NotificationSettings))
    assert "confirmation_requested" in settings.inbox_only
    assert "dispute_answered" not in settings.inbox_only


def test_an_smtp_server_that_refuses_keeps_the_mail_waiting_and_fails_nothing(
        people, patient_group, smtp_server):
    smtp_server.refusing = True
    [support] = lines(people["advocate"], people["partnership"], patient_group, 1)

    assert db.session.get(Support, support.id) is not None  # the line is recorded
    [waiting] = notifications_of(people["partner"])
    assert waiting.mail_state == "waiting" and waiting.mail_attempts == 1
    assert "451" in waiting.mail_error
    assert waiting.mail_next_at > utcnow()  # tried again later, not in a loop

    smtp_server.refusing = False
    waiting.mail_next_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert mail.deliver_waiting() == 1
    assert len(smtp_server.to(people["partner"].email)) == 1
    assert notifications_of(people["partner"])[0].mail_state == "sent"


def test_an_smtp_server_that_is_down_keeps_the_mail_waiting(people, patient_group, app):
    app.config["MAIL_PORT"] = free_port()  # nothing listens there
    lines(people["advocate"], people["partnership"], patient_group, 1)
    [waiting] = notifications_of(people["partner"])
    assert waiting.mail_state == "waiting"
    assert "ConnectionRefusedError" in waiting.mail_error


def test_another_users_notification_is_not_found(people, patient_group, client):
    lines(people["advocate"], people["partnership"], patient_group, 1)
    [theirs] = notifications_of(people["partner"])
    login(client, people["compliance"])
    assert client.post(f"/notifications/{theirs.id}/open").status_code == 404
    assert notifications_of(people["partner"])[0].read_at is None


def log_held(advocate, sponsor, days_ago: int, **values):
    from governance.interactions.services import log_interaction

    held = date.today() - timedelta(days=days_ago)
    data = dict(GOOD_INTERACTION, organisation_id=sponsor.id, occurred_on=held,
                purpose_shared_on=held - timedelta(days=14), summary=None,
                summary_recorded_on=None, outcomes_shared_on=None)
    data.update(values)
    interaction = log_interaction(data, advocate)
    db.session.commit()
    return interaction


def test_advocates_are_reminded_before_a_summary_is_due(people, sponsor, smtp_server):
    advocate = people["advocate"]
    due_soon = log_held(advocate, sponsor, 25, title="Focus group on fatigue")  # due in 5 days
    log_held(advocate, sponsor, 10, title="Too early to remind")  # due in 20 days

    run = start_if_due(utcnow().replace(hour=23))
    assert run.state == "done", run.error
    reminders = [m for m in smtp_server.to(advocate.email)
                 if "is due" in smtp_server.subject(m)]
    assert [smtp_server.subject(m) for m in reminders] == [
        "[Partnership Governance] The summary of Focus group on fatigue is due in 5 days"]
    text = smtp_server.text(reminders[0])
    assert f"/interactions/{due_soon.id}/edit" in text and "DOC-NO-SUMMARY" in text


def test_the_day_is_done_once(people, sponsor, smtp_server):
    log_held(people["advocate"], sponsor, 25)
    first = start_if_due(utcnow().replace(hour=23))
    assert first is not None and first.state == "done"

    assert start_if_due(utcnow().replace(hour=23)) is None  # a second worker, the same day
    assert run_job(first.id) is False
    assert db.session.scalar(select(func.count(DailyRun.id))) == 1
    reminders = [m for m in smtp_server.messages if "is due" in smtp_server.subject(m)]
    assert len(reminders) == 1


def test_the_day_waits_for_its_hour(app):
    early = datetime.combine(date.today(), datetime.min.time()).replace(hour=2)
    assert start_if_due(early) is None
    assert db.session.scalar(select(func.count(DailyRun.id))) == 0


def test_the_daily_run_raises_date_flags_and_tells_the_advocate(people, sponsor,
                                                                smtp_server):
    advocate = people["advocate"]
    late = log_held(advocate, sponsor, 29, title="Registry design workshop")
    day = date.today() + timedelta(days=2)  # two days on, the summary is late
    run_id = the_days_run(day)
    assert run_job(run_id)
    flagged = [m for m in smtp_server.to(advocate.email) if "new flag" in
               smtp_server.subject(m)]
    assert len(flagged) == 1
    from governance.rules.flags import flags_of_interaction

    assert "DOC-NO-SUMMARY" in {f.rule_id for f in flags_of_interaction(late.id)}


def test_a_plan_submitted_and_decided_tells_both_sides(people, sponsor, make_user,
                                                       smtp_server):
    from governance.interactions.services import log_interaction
    from governance.review.approvals import decide_plan, submit_plan

    advocate, compliance = people["advocate"], people["compliance"]
    plan = log_interaction(dict(GOOD_INTERACTION, organisation_id=sponsor.id,
                                status="planned", format="advisory_board",
                                occurred_on=date.today() + timedelta(days=20),
                                purpose_shared_on=date.today(), summary=None,
                                summary_recorded_on=None, outcomes_shared_on=None), advocate)
    db.session.commit()
    submit_plan(plan, advocate)
    db.session.commit()
    [asked] = smtp_server.to(compliance.email)
    assert "A plan awaits your approval" in smtp_server.subject(asked)

    decide_plan(plan, "rejected", "Invite patients from the late stage too.", compliance)
    db.session.commit()
    [decided] = smtp_server.to(advocate.email)
    assert "Your plan was rejected" in smtp_server.subject(decided)
    assert "late stage too" in smtp_server.text(decided)


def test_the_day_reminds_compliance_of_an_overdue_report_and_a_policy_past_its_review(
        people, patient_group, smtp_server):
    from governance.rules.evaluation import current_policy

    last_year = date.today().year - 1
    record_support({"partnership_id": people["partnership"].id,
                    "recipient_id": patient_group.id, "paid_on": date(last_year, 5, 1),
                    "kind": "grant", "amount": "5000.00", "currency": "GBP",
                    "description": "Registry grant"}, people["advocate"])
    db.session.commit()
    policy = current_policy().policy
    review_due = policy.provenance["review_due"]
    assert review_due < date.today()  # the shipped policy's review date has passed

    start_if_due(utcnow().replace(hour=23))
    subjects = [smtp_server.subject(m) for m in smtp_server.to(people["compliance"].email)]
    assert (f"[Partnership Governance] The {last_year} transparency report of Helix Pharma "
            "is overdue") in subjects
    assert (f"[Partnership Governance] The policy v{policy.version} was due for review on "
            f"{review_due:%-d %B %Y}") in subjects
    assert smtp_server.to(people["partner"].email)[-1:] and not any(
        "transparency report" in smtp_server.subject(m)
        for m in smtp_server.to(people["partner"].email))  # the partner is not the reporter

    start_if_due(utcnow().replace(hour=23) + timedelta(days=1))  # the next day: not again
    assert len([m for m in smtp_server.to(people["compliance"].email)
                if "transparency report" in smtp_server.subject(m)]) == 1
