"""Sessions with an end (idle and absolute limits, "keep me signed in"), a new CSRF token at
sign-in, no caching of what a signed-in user is answered, and links that never come from the
request's Host header."""

import re
import time
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import pytest
from flask_login.utils import encode_cookie
from sqlalchemy import select

from governance import create_app
from governance.auth import services as accounts
from governance.config import ConfigurationError
from governance.extensions import db
from governance.main.submissions import UnsavedForm
from governance.reports.models import Report
from governance.storage import REPORTS

from .conftest import PASSWORD, login, make_config

SITE = {"Origin": "http://localhost", "Referer": "http://localhost/interactions/new"}
IDLE_ENDED = "Your session ended after 30 minutes without activity; sign in again."


@pytest.fixture
def app_config(request):
    return getattr(request, "param", {})


@pytest.fixture
def advocate(make_user, sponsor):
    return make_user("advocate", organisation=sponsor)


def age_session(client, idle_seconds=0, signed_in_seconds=None) -> None:
    """Move the session's clocks back, as if that much time had passed."""
    now = int(time.time())
    with client.session_transaction() as session:
        session["active_at"] = now - idle_seconds
        session["signed_in_at"] = now - (signed_in_seconds or idle_seconds)


def clocks(client) -> tuple[int | None, int | None]:
    with client.session_transaction() as session:
        return session.get("signed_in_at"), session.get("active_at")


def sign_in_remembered(client, user):
    response = client.post("/login", data={"email": user.email, "password": PASSWORD,
                                           "remember": "y"})
    assert response.status_code == 302
    return response


def remember_cookie_of(response) -> str:
    return next(header for header in response.headers.getlist("Set-Cookie")
                if header.startswith("remember_token="))


# --- the idle and absolute limits ----------------------------------------------------------


def test_a_session_idle_for_longer_than_30_minutes_ends_and_says_so(client, advocate):
    login(client, advocate)
    age_session(client, idle_seconds=31 * 60)
    response = client.get("/interactions/")
    assert response.status_code == 302
    assert response.location.endswith("/login?next=/interactions/")
    assert IDLE_ENDED in client.get(response.location).get_data(as_text=True)
    assert client.get("/home").status_code == 302  # signed out, not just sent away once


def test_a_session_used_within_its_idle_limit_goes_on_and_its_activity_is_noted(
        client, advocate):
    login(client, advocate)
    age_session(client, idle_seconds=29 * 60, signed_in_seconds=2 * 3600)
    assert client.get("/home").status_code == 200
    signed_in_at, active_at = clocks(client)
    assert abs(active_at - time.time()) < 5
    assert time.time() - signed_in_at > 2 * 3600 - 5  # the sign-in's time stays


def test_activity_is_written_at_most_once_a_minute_and_not_by_probes(client, advocate):
    login(client, advocate)
    client.get("/home")  # the first page stores the form token
    again = client.get("/home")
    assert not any(h.startswith("session=") for h in again.headers.getlist("Set-Cookie"))
    age_session(client, idle_seconds=5 * 60)
    _, before = clocks(client)
    client.get("/health")
    assert clocks(client)[1] == before
    client.get("/home")
    assert clocks(client)[1] > before


def test_a_session_ends_12_hours_after_its_sign_in_however_active(client, advocate):
    login(client, advocate)
    age_session(client, idle_seconds=0, signed_in_seconds=12 * 3600 + 1)
    response = client.get("/home")
    assert response.status_code == 302 and "/login" in response.location
    page = client.get(response.location).get_data(as_text=True)
    assert "Your session ended 12 hours after you signed in; sign in again." in page


@pytest.mark.parametrize("app_config", [{"SESSION_IDLE_MINUTES": 5}], indirect=True)
def test_the_idle_limit_is_configurable(client, advocate):
    login(client, advocate)
    age_session(client, idle_seconds=4 * 60)
    assert client.get("/home").status_code == 200
    age_session(client, idle_seconds=6 * 60)
    assert client.get("/home").status_code == 302
    page = client.get("/login").get_data(as_text=True)
    assert "Your session ended after 5 minutes without activity" in page


@pytest.mark.parametrize(("setting", "value", "message"), [
    ("REMEMBER_COOKIE_DURATION", timedelta(days=31), "at most 30 days"),
    ("REMEMBER_COOKIE_DURATION", 31 * 86400, "at most 30 days"),
    ("SESSION_IDLE_MINUTES", 0, "SESSION_IDLE_MINUTES must be a whole number"),
    ("SESSION_ABSOLUTE_HOURS", "12", "SESSION_ABSOLUTE_HOURS must be a whole number"),
    ("PUBLIC_BASE_URL", "governance.example.org", "PUBLIC_BASE_URL must be the scheme"),
    ("PUBLIC_BASE_URL", "https://governance.example.org/app", "without a path"),
])
def test_the_application_refuses_to_start_with_a_limit_it_cannot_honour(tmp_path, setting,
                                                                         value, message):
    with pytest.raises(ConfigurationError, match=message):
        create_app(make_config(tmp_path, **{setting: value}))


def test_a_session_that_timed_out_while_typing_keeps_what_was_typed(client, advocate, sponsor):
    login(client, advocate)
    page = client.get("/interactions/new").get_data(as_text=True)
    token = re.search(r'name="form_token" value="([^"]+)"', page).group(1)
    age_session(client, idle_seconds=45 * 60)
    response = client.post("/interactions/new", headers=SITE, data={
        "title": "Typed while the session ran out", "occurred_on": "2025-03-14",
        "format": "advisory_board", "organisation_id": str(sponsor.id), "form_token": token})
    assert response.status_code == 302
    assert response.location.endswith("/login?next=/interactions/new")
    login_page = client.get(response.location).get_data(as_text=True)
    assert IDLE_ENDED in login_page and "what you typed will be filled back in" in login_page
    kept = db.session.scalars(select(UnsavedForm)).one()
    assert kept.user_id == advocate.id  # only this account gets it back

    login(client, advocate)
    form_page = client.get("/interactions/new").get_data(as_text=True)
    assert "has been filled back in" in form_page
    assert "Typed while the session ran out" in form_page


def test_a_request_for_json_after_the_session_ended_is_answered_401_in_json(client, advocate):
    login(client, advocate)
    age_session(client, idle_seconds=31 * 60)
    response = client.get("/home", headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert "sign in again" in response.get_json()["error"]["message"]
    api = client.get("/api/v1/organisations")  # the API never takes a session cookie
    assert api.status_code == 401 and "token" in api.get_json()["error"]["message"]


# --- "keep me signed in" -------------------------------------------------------------------


def test_keep_me_signed_in_lasts_30_days_from_the_sign_in(client, advocate):
    response = sign_in_remembered(client, advocate)
    cookie = remember_cookie_of(response)
    expires = parsedate_to_datetime(re.search(r"Expires=([^;]+)", cookie).group(1))
    lifetime = expires - datetime.now(UTC)
    assert timedelta(days=29, hours=23) < lifetime <= timedelta(days=30)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_a_remembered_browser_stays_signed_in_after_idling_and_after_a_restart(
        app, client, advocate):
    response = sign_in_remembered(client, advocate)
    age_session(client, idle_seconds=3 * 3600, signed_in_seconds=13 * 3600)
    assert client.get("/home").status_code == 200

    restarted = app.test_client()  # the browser closed: only the remember cookie is left
    value = re.match(r"remember_token=([^;]+)", remember_cookie_of(response)).group(1)
    restarted.set_cookie("remember_token", value)
    assert restarted.get("/home").status_code == 200
    assert restarted.get("/interactions/").status_code == 200


def test_a_remember_cookie_older_than_30_days_signs_nobody_in(app, advocate):
    signed_in = int(time.time()) - 30 * 86400 - 60
    browser = app.test_client()
    browser.set_cookie("remember_token", encode_cookie(f"{advocate.get_id()}:{signed_in}"))
    assert browser.get("/home").status_code == 302
    recent = app.test_client()
    recent.set_cookie("remember_token",
                      encode_cookie(f"{advocate.get_id()}:{signed_in + 86400}"))
    assert recent.get("/home").status_code == 200


def test_signing_in_without_keep_me_signed_in_forgets_an_earlier_remember_cookie(
        client, advocate):
    sign_in_remembered(client, advocate)
    response = client.post("/login", data={"email": advocate.email, "password": PASSWORD})
    assert any(h.startswith("remember_token=;") for h in response.headers.getlist("Set-Cookie"))


# --- sign-in renews the session and its CSRF token -------------------------------------------


def csrf_token_in(page: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)


def test_a_csrf_token_from_before_the_sign_in_is_refused_after_it(tmp_path, sqlite_template):
    config = make_config(tmp_path, WTF_CSRF_ENABLED=True)
    sqlite_template.copy_to(config["SQLALCHEMY_DATABASE_URI"])
    app = create_app(config)
    with app.app_context():
        accounts.create_user("auditor@example.org", "A", "auditor", PASSWORD)
        db.session.commit()
        client = app.test_client()
        before = csrf_token_in(client.get("/login").get_data(as_text=True))
        assert client.post("/login", data={"email": "auditor@example.org", "password": PASSWORD,
                                           "csrf_token": before}).status_code == 302
        refused = client.post("/logout", data={"csrf_token": before})
        assert refused.status_code == 400 and "security token" in refused.get_data(as_text=True)
        after = csrf_token_in(client.get("/home").get_data(as_text=True))
        assert after != before
        assert client.post("/logout", data={"csrf_token": after}).status_code == 302
        db.session.remove()
        db.engine.dispose()


def test_signing_in_starts_a_new_session(client, advocate):
    with client.session_transaction() as session:
        session["planted"] = "by someone else"
    login(client, advocate)
    with client.session_transaction() as session:
        assert "planted" not in session


# --- no caching of what a signed-in user is answered ---------------------------------------


@pytest.fixture
def stored_report(app, sponsor):
    """A report of the sponsor whose files are stored, in the given state."""

    def make(status):
        contents = {"pdf": b"pdf of the report", "csv": b"csv of the report",
                    "json": b'{"exceptions": []}'}  # the status reads the draft's exceptions
        hashes = {kind: REPORTS.store(content).sha256 for kind, content in contents.items()}
        report = Report(organisation_id=sponsor.id, year=2024, status=status, job="generate",
                        progress=100, generated_at=datetime(2025, 1, 10),
                        published_at=datetime(2025, 1, 11) if status == "published" else None,
                        **{f"{kind}_sha256": digest for kind, digest in hashes.items()})
        db.session.add(report)
        db.session.commit()
        return report

    return make


def bearer(user) -> dict:
    token = accounts.issue_token(user, "test")
    db.session.commit()
    return {"Authorization": f"Bearer {token}"}


def test_pages_answers_and_exports_for_a_signed_in_user_are_never_cached(
        client, make_user, sponsor, stored_report):
    compliance = make_user("compliance", organisation=sponsor)
    published = stored_report("published")
    api = client.get("/api/v1/organisations", headers=bearer(compliance))
    assert api.status_code == 200 and api.headers["Cache-Control"] == "no-store"
    login(client, compliance)
    for url in ("/home", "/exports/interactions.csv",
                f"/public/reports/{published.id}/pdf"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.headers["Cache-Control"] == "no-store", url
        assert response.headers["Pragma"] == "no-cache", url


def test_public_pages_and_published_files_keep_their_caching_for_visitors(
        client, stored_report):
    published = stored_report("published")
    download = client.get(f"/public/reports/{published.id}/pdf")
    assert download.status_code == 200
    assert download.headers["Cache-Control"] == "public, max-age=86400, immutable"
    assert download.headers["ETag"] == f'"{published.pdf_sha256}"'
    for url in ("/public/reports/", "/login"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "no-store" not in response.headers.get("Cache-Control", ""), url


# --- links never come from the request's Host ----------------------------------------------


def test_a_request_for_a_foreign_host_is_refused(client, advocate):
    assert client.get("/login", headers={"Host": "evil.example"}).status_code == 400
    for host in ("localhost", "127.0.0.1:5000", "127.0.0.1:5077", "localhost:8080"):
        assert client.get("/login", headers={"Host": host}).status_code == 200, host


def test_api_links_are_absolute_on_the_loopback_host_and_port_the_client_used(
        client, make_user, sponsor, stored_report):
    compliance = make_user("compliance", organisation=sponsor)
    report = stored_report("done")
    headers = {**bearer(compliance), "Host": "127.0.0.1:5077"}
    links = client.get(f"/api/v1/reports/{report.id}", headers=headers).get_json()["links"]
    assert links["pdf"] == f"http://127.0.0.1:5077/api/v1/reports/{report.id}/files/pdf"
    assert client.get(links["pdf"], headers=bearer(compliance)).data == b"pdf of the report"


@pytest.mark.parametrize("app_config", [{"PUBLIC_BASE_URL": "https://governance.example.org/"}],
                         indirect=True)
def test_with_a_public_base_url_every_link_is_built_on_it(
        client, make_user, sponsor, stored_report):
    compliance = make_user("compliance", organisation=sponsor)
    report = stored_report("published")
    headers = {**bearer(compliance), "Host": "127.0.0.1:5077"}
    links = client.get(f"/api/v1/reports/{report.id}", headers=headers).get_json()["links"]
    assert links["pdf"] == f"https://governance.example.org/public/reports/{report.id}/pdf"
    assert client.get("/login", headers={"Host": "governance.example.org"}).status_code == 200
    assert client.get("/login", headers={"Host": "evil.example"}).status_code == 400

    login(client, make_user("admin"))
    page = client.post("/users/new", data={
        "email": "newcomer@example.org", "name": "New Comer", "role": "advocate",
        "organisation_id": str(sponsor.id), "access": "invitation"}).get_data(as_text=True)
    assert re.search(r"https://governance\.example\.org/invitation/[\w-]+", page)
