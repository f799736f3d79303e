"""Two-step sign-in: setting it up with a code, the code asked after the password (once each,
slowed down, never locking), recovery codes, the grace compliance officers and admins have
before it is required, resets by an administrator or the command line, and e-signatures."""

import json
import re
from datetime import date, timedelta

import pyotp
import pytest
from sqlalchemy import select

from governance.agreements.models import Agreement
from governance.audit import AuditEvent, history_of
from governance.auth import mfa, throttle
from governance.auth import services as accounts
from governance.auth.models import ApiToken, User
from governance.database import utcnow
from governance.extensions import db
from governance.interactions.models import Interaction

from .conftest import PASSWORD, login

FREE = 5  # SIGN_IN_FREE_FAILURES


class Clock:
    """The authenticator app's and the server's time, moved on by hand."""

    def __init__(self):
        self.seconds = 1_900_000_000.0

    def time(self) -> float:
        return self.seconds

    def advance(self, seconds: float) -> None:
        self.seconds += seconds


@pytest.fixture
def clock(monkeypatch):
    moved = Clock()
    monkeypatch.setattr(mfa, "time", moved)
    return moved


def app_code(user: User, clock: Clock, steps_on: int = 0) -> str:
    """The code the user's authenticator app shows (`steps_on` periods of 30 s later)."""
    return pyotp.TOTP(user.mfa_secret).at(clock.time() + 30 * steps_on)


@pytest.fixture
def enrol(clock):
    """Switch two-step sign-in on for a user, as its set-up does; answer the recovery codes."""
    def do(user: User) -> list[str]:
        mfa.start_enrolment(user)
        codes = mfa.confirm_enrolment(user, app_code(user, clock))
        db.session.commit()
        clock.advance(30)  # the next code is another one
        return codes

    return do


def sign_in_with_code(client, user, code, password=PASSWORD):
    response = client.post("/login", data={"email": user.email, "password": password})
    assert response.headers["Location"] == "/login/code"
    return client.post("/login/code", data={"code": code})


def events_with_reason(user: User, reason: str) -> list[AuditEvent]:
    return [event for event in history_of("user", user.id) if event.reason == reason]


# --- setting it up ------------------------------------------------------------------------------


def test_setting_up_needs_a_code_from_the_new_secret_then_shows_recovery_codes_once(
        client, log_in, make_user, sponsor, clock):
    user = make_user("advocate", sponsor)
    log_in(user)
    assert "Set up two-step sign-in" in client.get("/account").get_data(as_text=True)
    started = client.post("/account/two-step/start", follow_redirects=True)
    page = started.get_data(as_text=True)
    db.session.refresh(user)
    assert user.mfa_secret in page and "otpauth://totp/" in page and "<svg" in page
    assert started.headers["Cache-Control"] == "no-store"

    refused = client.post("/account/two-step/confirm", data={"code": "000000"})
    assert refused.status_code == 422
    assert mfa.WRONG_CODE in refused.get_data(as_text=True)
    db.session.refresh(user)
    assert not user.mfa_enabled

    confirmed = client.post("/account/two-step/confirm", data={"code": app_code(user, clock)})
    assert confirmed.status_code == 200
    page = confirmed.get_data(as_text=True)
    codes = re.findall(r"<li>([a-z2-9]{4}(?:-[a-z2-9]{4}){3})</li>", page)
    assert len(codes) == 10 and "shown only once" in page
    db.session.refresh(user)
    assert user.mfa_enabled
    assert not any(code in (user.mfa_recovery_hashes or "") for code in codes)
    assert codes[0] not in client.get("/account/two-step").get_data(as_text=True)
    [event] = events_with_reason(user, "Two-step sign-in switched on")
    assert event.actor_id == user.id
    assert user.mfa_secret not in event.changes
    assert all(code not in event.changes for code in codes)
    assert json.loads(event.changes)["mfa_recovery_hashes"] == ["[redacted]"] * 2


# --- signing in ---------------------------------------------------------------------------------


def test_with_two_step_sign_in_on_the_account_is_out_of_reach_until_the_code(
        client, make_user, sponsor, enrol, clock):
    user = make_user("advocate", sponsor)
    enrol(user)
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 302 and response.headers["Location"] == "/login/code"
    assert client.get("/account").headers["Location"].startswith("/login")
    wrong = client.post("/login/code", data={"code": "123456"})
    assert wrong.status_code == 401 and mfa.WRONG_CODE in wrong.get_data(as_text=True)
    assert client.get("/account").status_code == 302
    right = client.post("/login/code", data={"code": app_code(user, clock)})
    assert right.status_code == 302 and right.headers["Location"] == "/home"
    assert client.get("/account").status_code == 200


def test_a_wrong_password_does_not_tell_whether_two_step_sign_in_is_on(
        client, make_user, sponsor, enrol):
    with_it, without = make_user("advocate", sponsor), make_user("advocate", sponsor)
    enrol(with_it)
    answers = [client.post("/login", data={"email": user.email, "password": "not the one"})
               for user in (with_it, without)]
    assert [answer.status_code for answer in answers] == [401, 401]
    first, second = (answer.get_data(as_text=True) for answer in answers)
    assert first.replace(with_it.email, "") == second.replace(without.email, "")


def test_the_code_page_waits_five_minutes_after_the_password(client, make_user, sponsor, enrol,
                                                             clock, monkeypatch):
    user = make_user("advocate", sponsor)
    enrol(user)
    client.post("/login", data={"email": user.email, "password": PASSWORD})
    from governance.auth import views

    later = utcnow() + timedelta(minutes=6)
    monkeypatch.setattr(views, "utcnow", lambda: later)
    response = client.post("/login/code", data={"code": app_code(user, clock)})
    assert response.status_code == 422
    assert "Log in again: this page asks for your code within 5 minutes" in \
        response.get_data(as_text=True)
    assert client.get("/account").status_code == 302


def test_a_code_is_accepted_once(client, make_user, sponsor, enrol, clock):
    user = make_user("advocate", sponsor)
    enrol(user)
    code = app_code(user, clock)
    assert sign_in_with_code(client, user, code).status_code == 302
    client.post("/logout")
    assert sign_in_with_code(client, user, code).status_code == 401
    assert client.post("/login/code", data={"code": app_code(user, clock, 1)}).status_code == 302


@pytest.mark.parametrize("app_config", [{"SIGN_IN_THROTTLE": True}])
def test_wrong_codes_slow_down_and_never_lock_out_the_right_code(client, make_user, sponsor, enrol,
                                                                 clock, monkeypatch):
    user = make_user("advocate", sponsor)
    enrol(user)
    client.post("/login", data={"email": user.email, "password": PASSWORD})
    statuses = [client.post("/login/code", data={"code": "111111"}).status_code
                for _ in range(FREE + 1)]
    assert statuses == [401] * (FREE + 1)
    refused = client.post("/login/code", data={"code": app_code(user, clock)})
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    assert "Too many wrong codes: try again in 1 second." in refused.get_data(as_text=True)
    later = utcnow() + timedelta(seconds=2)
    monkeypatch.setattr(throttle, "utcnow", lambda: later)
    right = client.post("/login/code", data={"code": app_code(user, clock)})
    assert right.status_code == 302
    assert db.session.get(throttle.SignInThrottle, f"code:{user.id}") is None


def test_a_recovery_code_signs_in_once_and_its_use_is_audited(client, make_user, sponsor, enrol):
    user = make_user("advocate", sponsor)
    codes = enrol(user)
    assert sign_in_with_code(client, user, codes[3].upper()).status_code == 302
    client.post("/logout")
    assert sign_in_with_code(client, user, codes[3]).status_code == 401
    [event] = events_with_reason(user, "Recovery code used (9 left)")
    assert event.actor_id == user.id and codes[3] not in event.changes


# --- required of compliance officers and admins -------------------------------------------------


def test_compliance_within_the_grace_sees_a_banner_and_can_work(client, log_in,
                                                                compliance_user):
    log_in(compliance_user)
    db.session.refresh(compliance_user)
    deadline = compliance_user.first_sign_in_at + timedelta(days=7)
    banner = f"Set up two-step sign-in by {deadline:%-d %b %Y}"
    assert banner in client.get("/home").get_data(as_text=True)
    review = client.get("/review/")
    assert review.status_code == 200 and banner in review.get_data(as_text=True)


def test_an_advocate_is_never_asked_to_set_it_up(client, log_in, make_user, sponsor):
    log_in(make_user("advocate", sponsor))
    assert "Set up two-step sign-in by" not in client.get("/home").get_data(as_text=True)


def test_after_the_grace_compliance_sets_it_up_before_anything_else(client, log_in,
                                                                    compliance_user, clock):
    compliance_user.first_sign_in_at = utcnow() - timedelta(days=8)
    token = accounts.issue_token(compliance_user, "script")
    db.session.commit()
    log_in(compliance_user)
    confined = client.get("/review/")
    assert confined.status_code == 302 and confined.headers["Location"] == "/account/two-step"
    assert client.get("/account").headers["Location"] == "/account/two-step"
    assert "your role must use it" in client.get("/account/two-step").get_data(as_text=True)
    api = client.get("/api/v1/organisations", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 200

    client.post("/account/two-step/start")
    db.session.refresh(compliance_user)
    client.post("/account/two-step/confirm", data={"code": app_code(compliance_user, clock)})
    assert client.get("/review/").status_code == 200


def test_compliance_officers_cannot_switch_it_off(client, log_in, compliance_user, enrol,
                                                  clock):
    enrol(compliance_user)
    client.post("/login", data={"email": compliance_user.email, "password": PASSWORD})
    client.post("/login/code", data={"code": app_code(compliance_user, clock)})
    response = client.post("/account/two-step/off", data={
        "off-password": PASSWORD, "off-code": app_code(compliance_user, clock, 1)})
    assert response.status_code == 409
    assert "Your role must use two-step sign-in, so it stays on." in response.get_data(as_text=True)
    db.session.refresh(compliance_user)
    assert compliance_user.mfa_enabled


def test_an_advocate_switches_it_off_with_password_and_code(client, make_user, sponsor, enrol,
                                                            clock):
    user = make_user("advocate", sponsor)
    enrol(user)
    sign_in_with_code(client, user, app_code(user, clock))
    refused = client.post("/account/two-step/off", data={"off-password": PASSWORD,
                                                         "off-code": "000000"})
    assert refused.status_code == 422 and mfa.WRONG_CODE in refused.get_data(as_text=True)
    response = client.post("/account/two-step/off", data={
        "off-password": PASSWORD, "off-code": app_code(user, clock, 1)})
    assert response.status_code == 302
    db.session.refresh(user)
    assert not user.mfa_enabled and user.mfa_secret is None
    assert events_with_reason(user, "Two-step sign-in switched off by its user")
    client.post("/logout")
    assert login(client, user).headers["Location"] == "/home"


def test_new_recovery_codes_need_password_and_code_and_replace_the_old(client, make_user, sponsor,
                                                                       enrol, clock):
    user = make_user("advocate", sponsor)
    old = enrol(user)
    sign_in_with_code(client, user, app_code(user, clock))
    refused = client.post("/account/two-step/recovery-codes", data={
        "codes-password": "not my password", "codes-code": app_code(user, clock, 1)})
    assert refused.status_code == 422
    response = client.post("/account/two-step/recovery-codes", data={
        "codes-password": PASSWORD, "codes-code": app_code(user, clock, 1)})
    new = re.findall(r"<li>([a-z2-9]{4}(?:-[a-z2-9]{4}){3})</li>", response.get_data(as_text=True))
    assert len(new) == 10 and not set(new) & set(old)
    assert events_with_reason(user, "Recovery codes regenerated")
    client.post("/logout")
    assert sign_in_with_code(client, user, old[0]).status_code == 401
    assert client.post("/login/code", data={"code": new[0]}).status_code == 302


def test_creating_a_token_on_the_account_page_needs_the_code(client, make_user, sponsor, enrol,
                                                             clock):
    user = make_user("advocate", sponsor)
    enrol(user)
    sign_in_with_code(client, user, app_code(user, clock))
    refused = client.post("/account", data={"token-name": "script", "token-expires_in_days": 30})
    assert refused.status_code == 422 and mfa.NO_CODE in refused.get_data(as_text=True)
    assert db.session.scalars(select(ApiToken)).first() is None
    created = client.post("/account", data={"token-name": "script", "token-expires_in_days": 30,
                                            "token-code": app_code(user, clock, 1)})
    assert created.status_code == 200 and "gov_" in created.get_data(as_text=True)


# --- resets ---------------------------------------------------------------------------------------


def test_an_administrators_reset_is_audited_and_requires_setting_it_up_again(
        app, client, log_in, make_user, sponsor, enrol, clock):
    user = make_user("advocate", sponsor)
    enrol(user)
    their_browser = app.test_client()
    sign_in_with_code(their_browser, user, app_code(user, clock))
    admin = make_user("admin")
    log_in(admin)
    unexplained = client.post(f"/users/{user.id}/two-step/reset", data={"reason": ""})
    assert unexplained.status_code == 422
    db.session.refresh(user)
    assert user.mfa_enabled
    response = client.post(f"/users/{user.id}/two-step/reset", data={"reason": "Lost phone"})
    assert response.status_code == 302
    [event] = events_with_reason(user, "Two-step sign-in reset by an administrator: Lost phone")
    assert event.actor_id == admin.id and event.entity == "user"
    assert "[redacted]" in event.changes
    assert their_browser.get("/account").status_code == 302  # their session ended
    response = their_browser.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.headers["Location"] == "/home"
    assert their_browser.get("/home").headers["Location"] == "/account/two-step"
    their_browser.post("/account/two-step/start")
    db.session.refresh(user)
    their_browser.post("/account/two-step/confirm", data={"code": app_code(user, clock)})
    assert their_browser.get("/home").status_code == 200


def test_the_command_line_resets_it_audited_as_the_command_line(runner, make_user, enrol):
    user = make_user("compliance")
    enrol(user)
    result = runner.invoke(args=["reset-mfa", user.email])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert not user.mfa_enabled and user.must_enrol_mfa
    [event] = events_with_reason(user, "Two-step sign-in reset on the command line")
    assert event.actor_label == "command line" and event.actor_id is None
    assert runner.invoke(args=["reset-mfa", "nobody@example.org"]).exit_code == 1


# --- e-signatures ---------------------------------------------------------------------------------


def test_signing_off_a_review_needs_the_code_too(client, make_user, make_interaction, enrol,
                                                 compliance_user, clock, make_partnership):
    enrol(compliance_user)
    interaction = make_interaction(
        partnership_id=make_partnership(agreement_signed_on=date(2024, 1, 1)).id)
    sign_in_with_code(client, compliance_user, app_code(compliance_user, clock))
    url = f"/review/interactions/{interaction.id}"
    assert "Code from your authenticator app" in client.get(url).get_data(as_text=True)
    for code, problem in (("", mfa.NO_CODE), ("000000", mfa.WRONG_CODE)):
        response = client.post(url, data={"meaning": "review", "password": PASSWORD,
                                          "code": code})
        assert response.status_code == 422 and problem in response.get_data(as_text=True)
        assert db.session.get(Interaction, interaction.id).signed_off_at is None
    signed = client.post(url, data={"meaning": "review", "password": PASSWORD,
                                    "code": app_code(compliance_user, clock, 1)})
    assert signed.status_code == 303
    assert db.session.get(Interaction, interaction.id).signed_off_by_id == compliance_user.id


def test_certifying_an_agreement_through_the_api_needs_the_code(client, make_user, sponsor,
                                                                make_partnership, enrol,
                                                                clock):
    from governance.agreements.services import record_agreement

    officer = make_user("compliance", sponsor)
    advocate = make_user("advocate", sponsor)
    agreement = record_agreement({
        "partnership_id": make_partnership().id, "kind": "grant", "objective": "Research",
        "signed_on": date(2025, 1, 10)}, advocate)
    db.session.commit()
    enrol(officer)
    headers = {"Authorization": f"Bearer {accounts.issue_token(officer, 'script')}"}
    db.session.commit()
    url = f"/api/v1/agreements/{agreement.id}/certification"
    response = client.post(url, headers=headers, json={"password": PASSWORD,
                                                       "meaning": "certified", "code": "1"})
    assert response.status_code == 422
    assert response.get_json()["error"]["fields"] == {"code": [mfa.WRONG_CODE]}
    assert db.session.get(Agreement, agreement.id).certified_at is None
    response = client.post(url, headers=headers, json={
        "password": PASSWORD, "meaning": "certified", "code": app_code(officer, clock)})
    assert response.status_code == 200, response.get_json()
    assert db.session.get(Agreement, agreement.id).certified_by_id == officer.id
