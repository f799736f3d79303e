"""Wrong passwords slow down, never lock: nobody can keep an owner out of their account, the
answer does not tell known from unknown emails, and every worker shares the counts."""

from datetime import timedelta

import pytest

from governance import create_app
from governance.auth import throttle
from governance.database import utcnow
from governance.extensions import db

from .conftest import PASSWORD, login, make_config

FREE = 5  # SIGN_IN_FREE_FAILURES


@pytest.fixture
def app_config():
    return {"SIGN_IN_THROTTLE": True}


@pytest.fixture
def clock(monkeypatch):
    """The throttle's clock, moved on by hand."""
    class Clock:
        now = utcnow()

        def advance(self, seconds):
            self.now += timedelta(seconds=seconds)

    moved = Clock()
    monkeypatch.setattr(throttle, "utcnow", lambda: moved.now)
    return moved


def attempt(client, email, password="wrong password", forwarded_for=None):
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return client.post("/login", data={"email": email, "password": password},
                       headers=headers)


def test_repeated_wrong_passwords_make_the_account_wait_without_locking_it(
        client, make_user, clock):
    user = make_user("auditor")
    codes = [attempt(client, user.email).status_code for _ in range(FREE + 1)]
    assert codes == [401] * (FREE + 1)
    refused = attempt(client, user.email, PASSWORD)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    assert "try again in 1 second." in refused.get_data(as_text=True)
    clock.advance(2)
    assert attempt(client, user.email, PASSWORD).status_code == 302


def test_the_wait_doubles_and_never_exceeds_half_a_minute(client, make_user, clock):
    user = make_user("auditor")
    waits = []
    for _ in range(FREE + 8):
        response = attempt(client, user.email)
        if response.status_code == 429:
            waits.append(int(response.headers["Retry-After"]))
            clock.advance(waits[-1])
            attempt(client, user.email)
    assert waits[:5] == [1, 2, 4, 8, 16] and max(waits) == 30


def test_a_stranger_guessing_cannot_keep_the_owner_out_of_a_browser_they_used_before(
        app, make_user, clock):
    owner = make_user("compliance")
    owners_browser, strangers_browser = app.test_client(), app.test_client()
    login(owners_browser, owner)
    owners_browser.post("/logout")
    for _ in range(FREE + 10):
        attempt(strangers_browser, owner.email)
        clock.advance(1)
    assert attempt(strangers_browser, owner.email, PASSWORD).status_code == 429
    assert attempt(owners_browser, owner.email, PASSWORD).status_code == 302


def test_a_device_cookie_of_another_account_or_forged_gives_no_way_round(
        app, make_user, clock):
    owner, other = make_user("auditor"), make_user("auditor")
    browser = app.test_client()
    login(browser, other)  # a device cookie, but for the other account
    for _ in range(FREE + 1):
        attempt(browser, owner.email)
    assert attempt(browser, owner.email, PASSWORD).status_code == 429
    forger = app.test_client()
    forger.set_cookie(throttle.DEVICE_COOKIE, "WzEsICJhYmMiXQ.forged")
    assert attempt(forger, owner.email, PASSWORD).status_code == 429


def test_known_and_unknown_emails_are_answered_alike(client, make_user, clock):
    user = make_user("auditor")

    def answers(email):
        return [(response.status_code, response.headers.get("Retry-After"))
                for response in (attempt(client, email) for _ in range(FREE + 2))]

    assert answers(user.email) == answers("nobody-here@example.org")


def test_one_address_guessing_at_many_accounts_waits(client, clock):
    codes = [attempt(client, f"guess{n}@example.org").status_code for n in range(21)]
    assert codes == [401] * 21
    assert attempt(client, "guess99@example.org").status_code == 429


def test_every_worker_shares_the_counts(tmp_path, make_user, clock):
    email = make_user("auditor").email
    db.session.rollback()  # the test's own session must not hold SQLite's write lock
    config = make_config(tmp_path, SIGN_IN_THROTTLE=True)
    first, second = create_app(config), create_app(config)
    for _ in range(FREE + 1):
        attempt(first.test_client(), email)
    with second.app_context():
        refused = attempt(second.test_client(), email, PASSWORD)
        db.session.remove()
        db.engine.dispose()
    assert refused.status_code == 429


@pytest.mark.parametrize("proxies, throttled", [(0, True), (1, False)])
def test_the_forwarded_address_counts_only_behind_a_trusted_proxy(
        tmp_path, app, clock, proxies, throttled):
    db.session.rollback()  # the test's own session must not hold SQLite's write lock
    app = create_app(make_config(tmp_path, SIGN_IN_THROTTLE=True, TRUSTED_PROXIES=proxies))
    client = app.test_client()
    for n in range(21):
        attempt(client, f"guess{n}@example.org", forwarded_for="203.0.113.5")
    other_client = attempt(client, "guess99@example.org", forwarded_for="198.51.100.7")
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    assert (other_client.status_code == 429) is throttled


def test_typing_a_wrong_current_password_again_and_again_waits(client, make_user, clock):
    user = make_user("auditor")
    login(client, user)

    def change(current):
        return client.post("/account", data={"pw-current_password": current,
                                             "pw-new_password": "a new long passphrase"})

    for _ in range(FREE):
        assert "This is not your current password." in change("wrong").get_data(as_text=True)
    change("wrong")
    assert "Too many wrong passwords: try again in 1 second." in \
        change(PASSWORD).get_data(as_text=True)
    clock.advance(2)
    assert change(PASSWORD).status_code in (302, 303)

