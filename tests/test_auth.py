"""Accounts: login, session invalidation, tokens, CSRF and security headers."""

import re

import pytest
from flask import Flask

from governance.auth import services as accounts
from governance.auth.models import ApiToken
from governance.extensions import db
from governance.security import hash_token

from .conftest import PASSWORD, login, make_config


def test_login_with_right_password_reaches_home(client, make_user):
    user = make_user("auditor")
    login(client, user)
    assert "Welcome, " + user.name in client.get("/home").get_data(as_text=True)


def test_wrong_password_shows_generic_message_and_logs(client, make_user, caplog):
    user = make_user("auditor")
    response = client.post("/login", data={"email": user.email, "password": "wrong password"})
    page = response.get_data(as_text=True)
    assert response.status_code == 401
    assert "do not match an active account" in page
    assert "failed login" in caplog.text
    assert client.get("/home").status_code == 302  # still a visitor


def test_unknown_email_gets_the_same_message_as_wrong_password(client):
    response = client.post("/login", data={"email": "nobody@example.org", "password": "x" * 12})
    assert response.status_code == 401
    assert "do not match an active account" in response.get_data(as_text=True)


def test_passwords_are_stored_as_argon2_hashes(make_user):
    user = make_user("auditor")
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash


def test_logout_invalidates_a_copied_session_cookie(app, make_user):
    user = make_user("auditor")
    first = app.test_client()
    login(first, user)
    cookie = first.get_cookie("session").value
    copy = app.test_client()
    copy.set_cookie("session", cookie)
    assert copy.get("/home").status_code == 200
    first.post("/logout")
    assert copy.get("/home").status_code == 302  # the copied cookie no longer works


def test_password_change_ends_every_session(app, make_user):
    user = make_user("auditor")
    other_device = app.test_client()
    login(other_device, user)
    this_device = app.test_client()
    login(this_device, user)
    response = this_device.post("/account", data={"pw-current_password": PASSWORD,
                                                  "pw-new_password": "a brand new password"})
    assert response.status_code == 302
    assert other_device.get("/home").status_code == 302
    login(this_device, user, "a brand new password")


def test_password_change_with_wrong_current_password_changes_nothing(client, make_user):
    user = make_user("auditor")
    login(client, user)
    before = user.password_hash
    response = client.post("/account", data={"pw-current_password": "not my password",
                                             "pw-new_password": "a brand new password"})
    assert response.status_code == 422
    assert "not your current password" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(type(user), user.id).password_hash == before


def test_only_a_hash_of_each_token_is_stored(app, make_user):
    user = make_user("auditor")
    token = accounts.issue_token(user, "script")
    db.session.commit()
    stored = db.session.scalars(db.select(ApiToken)).one()
    assert token not in (stored.token_hash, stored.prefix)
    assert stored.token_hash == hash_token(token)


def test_revoked_token_is_refused_with_401(app, client, make_user, log_in):
    user = make_user("auditor")
    token = accounts.issue_token(user, "script")
    db.session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/organisations", headers=headers).status_code == 200
    log_in(user)
    token_id = db.session.scalars(db.select(ApiToken.id)).one()
    client.post(f"/account/tokens/{token_id}/revoke")
    response = app.test_client().get("/api/v1/organisations", headers=headers)
    assert response.status_code == 401
    assert "token" in response.get_json()["error"]["message"]


def test_expired_token_is_refused(app, make_user):
    from datetime import timedelta

    from governance.database import utcnow

    user = make_user("auditor")
    token = accounts.issue_token(user, "script", expires_in_days=1)
    db.session.scalars(db.select(ApiToken)).one().expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    response = app.test_client().get("/api/v1/organisations",
                                     headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def token_state() -> tuple:
    """(last used, version, last change) of the one token, read in a transaction that is then
    ended, so the next request starts without one of the test's open."""
    db.session.expire_all()
    state = db.session.execute(db.select(ApiToken.last_used_at, ApiToken.version,
                                         ApiToken.updated_at)).one()
    db.session.commit()
    return tuple(state)


def test_a_tokens_use_is_recorded_once_an_hour_unaudited_and_shown_on_the_account_page(
        app, client, make_user, log_in):
    from datetime import timedelta

    from governance.audit import AuditEvent
    from governance.presentation import human_datetime

    user = make_user("auditor")
    token = accounts.issue_token(user, "Monthly export script")
    db.session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    events = db.session.scalar(db.select(db.func.count(AuditEvent.id)))
    never_used, version, updated_at = token_state()
    assert never_used is None

    assert client.get("/api/v1/organisations", headers=headers).status_code == 200
    first_use, *unchanged = token_state()
    assert first_use is not None
    # Usage, not an edit: the version, the last change and the audit trail stay as they were.
    assert unchanged == [version, updated_at]
    assert db.session.scalar(db.select(db.func.count(AuditEvent.id))) == events

    assert client.get("/api/v1/organisations", headers=headers).status_code == 200
    assert token_state()[0] == first_use  # within the hour: not written again

    db.session.execute(db.update(ApiToken).values(last_used_at=first_use - timedelta(hours=2)))
    db.session.commit()
    assert client.get("/api/v1/organisations", headers=headers).status_code == 200
    latest = token_state()[0]
    assert latest >= first_use

    log_in(user)
    page = client.get("/account").get_data(as_text=True)
    assert "Last used" in page and human_datetime(latest) in page


def test_create_token_command_prints_the_token_alone_on_the_last_line(runner, make_user):
    user = make_user("auditor")
    result = runner.invoke(args=["create-token", user.email])
    assert result.exit_code == 0
    token = result.output.strip().splitlines()[-1]
    assert re.fullmatch(r"gov_[A-Za-z0-9_-]+", token)


def test_create_user_command_refuses_unknown_organisation(runner):
    result = runner.invoke(args=["create-user", "a@example.org", "--role", "partner",
                                 "--password", "long enough pw", "--organisation", "Nowhere"])
    assert result.exit_code == 1
    assert "No organisation is called 'Nowhere'" in result.output


@pytest.fixture
def csrf_app(tmp_path):
    from governance import create_app

    app = create_app(make_config(tmp_path, WTF_CSRF_ENABLED=True))
    with app.app_context():
        db.create_all()
        yield app
        db.session.remove()


def test_forged_csrf_token_is_refused_and_changes_nothing(csrf_app, caplog):
    with csrf_app.app_context():
        accounts.create_user("auditor@example.org", "A", "auditor", PASSWORD)
        db.session.commit()
    client = csrf_app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    assert client.post("/login", data={"email": "auditor@example.org", "password": PASSWORD,
                                       "csrf_token": token}).status_code == 302
    response = client.post("/logout", data={"csrf_token": "forged"})
    assert response.status_code == 400
    assert "security token" in response.get_data(as_text=True)
    assert "refused CSRF" in caplog.text
    assert client.get("/home").status_code == 200  # still logged in: logout did not happen


def test_json_posts_from_a_session_need_the_csrf_header_too(csrf_app):
    with csrf_app.app_context():
        accounts.create_user("auditor@example.org", "A", "auditor", PASSWORD)
        db.session.commit()
    client = csrf_app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    client.post("/login", data={"email": "auditor@example.org", "password": PASSWORD,
                                "csrf_token": token})
    page = client.get("/home").get_data(as_text=True)  # signing in renewed the token
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert client.post("/logout", json={}).status_code == 400
    assert client.post("/logout", json={}, headers={"X-CSRFToken": token}).status_code == 302


def test_every_response_carries_security_headers(client):
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "base-uri 'none'" in csp
    assert "'unsafe-inline'" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"]


def test_session_cookie_is_secure_httponly_lax_outside_development(tmp_path):
    from governance import create_app

    config = make_config(tmp_path)
    for key in ("SESSION_COOKIE_SECURE", "REMEMBER_COOKIE_SECURE"):
        config.pop(key)
    app: Flask = create_app(config)
    assert app.config["SESSION_COOKIE_SECURE"] and app.config["REMEMBER_COOKIE_SECURE"]
    assert app.config["SESSION_COOKIE_HTTPONLY"] and app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    development = create_app(make_config(tmp_path, DEVELOPMENT=True,
                                         SESSION_COOKIE_SECURE=True))
    assert development.config["SESSION_COOKIE_SECURE"] is False




@pytest.mark.parametrize("new_password, reason", [
    ("eleven char", "Use at least 12 characters."),
    ("password1234", "This is a very common password. Choose a longer phrase"),
    ("qwertyuiop[]", "Choose a longer phrase of unrelated words."),
    ("Auditor1@example.org!", "Do not use your email address in your password."),
    ("my auditor1 passphrase", "Do not use your email address in your password."),
])
def test_a_short_common_or_email_based_password_is_refused_with_its_reason(
        client, make_user, new_password, reason):
    user = make_user("auditor")
    login(client, user)
    before = user.password_hash
    response = client.post("/account", data={"pw-current_password": PASSWORD,
                                             "pw-new_password": new_password})
    assert response.status_code == 422
    assert reason in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(type(user), user.id).password_hash == before


def test_create_user_refuses_a_common_password(runner):
    result = runner.invoke(args=["create-user", "new@example.org", "--role", "auditor",
                                 "--password", "iloveyou1234"])
    assert result.exit_code != 0
    assert "commonly used password" in result.output


def test_a_token_stops_working_when_its_owners_password_changes(app, client, make_user):
    user = make_user("auditor")
    token = accounts.issue_token(user, "script")
    db.session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    assert app.test_client().get("/api/v1/organisations", headers=headers).status_code == 200
    login(client, user)
    client.post("/account", data={"pw-current_password": PASSWORD,
                                  "pw-new_password": "a brand new password"})
    assert app.test_client().get("/api/v1/organisations", headers=headers).status_code == 401


def test_every_token_expires_within_a_year(app, make_user):
    from datetime import timedelta

    from governance.database import utcnow
    from governance.errors import ValidationFailed

    user = make_user("auditor")
    accounts.issue_token(user, "script")
    db.session.flush()
    expires = db.session.scalars(db.select(ApiToken.expires_at)).one()
    assert utcnow() + timedelta(days=89) < expires < utcnow() + timedelta(days=91)
    with pytest.raises(ValidationFailed) as refused:
        accounts.issue_token(user, "forever", expires_in_days=366)
    assert "1 to 365 days" in refused.value.fields["expires_in_days"][0]


def test_create_token_takes_days_and_refuses_more_than_a_year(runner, make_user):
    user = make_user("auditor")
    assert runner.invoke(args=["create-token", user.email, "--days", "7"]).exit_code == 0
    expires = db.session.scalars(db.select(ApiToken.expires_at)).one()
    from governance.database import utcnow
    assert (expires - utcnow()).days == 6
    assert runner.invoke(args=["create-token", user.email, "--days", "400"]).exit_code != 0
