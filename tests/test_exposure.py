"""What must not be exposed: the unsaved-form keeper stores nothing for a client that never
signed in and is bounded for those who did; voided records stay hidden from those who may not
see them; an uploaded import file opens only for the person who uploaded it."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from governance.auth.services import issue_token
from governance.database import utcnow
from governance.extensions import db
from governance.main import submissions
from governance.main.submissions import UnsavedForm

from .conftest import login

SITE = {"Origin": "http://localhost"}


def bearer(user) -> dict:
    token = issue_token(user, "exposure tests")
    db.session.commit()
    return {"Authorization": f"Bearer {token}"}


def kept_forms(user_id=None) -> int:
    query = select(func.count()).select_from(UnsavedForm)
    if user_id is not None:
        query = query.where(UnsavedForm.user_id == user_id)
    return db.session.scalar(query)


# --- the unsaved-form keeper ----------------------------------------------------------------


@pytest.fixture
def advocate(make_user, sponsor):
    return make_user("advocate", organisation=sponsor)


def session_ended_elsewhere(app, client, user) -> None:
    """Log in here, then sign out on another device: this browser's session stops working."""
    login(client, user)
    elsewhere = app.test_client()
    login(elsewhere, user)
    elsewhere.post("/logout")


def post_interaction(client, title="Advisory board on trial burden", **extra):
    return client.post("/interactions/new", data={"title": title, "occurred_on": "2025-03-14",
                                                  **extra},
                       headers={**SITE, "Referer": "http://localhost/interactions/new"})


def test_posts_from_a_client_that_never_signed_in_keep_nothing(client):
    for number in range(50):
        response = post_interaction(client, title=f"Filler {number}", summary="x" * 60_000)
        assert response.status_code == 302 and "/login" in response.location
    assert kept_forms() == 0
    assert "filled back in" not in client.get("/login").get_data(as_text=True)


def test_a_session_that_timed_out_keeps_the_form_for_whoever_signed_in(app, client, advocate):
    login(client, advocate)
    with client.session_transaction() as session:  # flask-login's own sign-out, as a timeout
        for key in ("_user_id", "_fresh", "_id"):
            session.pop(key, None)
    response = post_interaction(client, title="Typed before the timeout")
    assert response.location.endswith("/login?next=/interactions/new")
    assert kept_forms(advocate.id) == 1

    client.post("/login", data={"email": advocate.email, "password": "correct horse battery"})
    page = client.get("/interactions/new").get_data(as_text=True)
    assert "has been filled back in" in page and "Typed before the timeout" in page
    assert kept_forms() == 0


def test_a_form_too_large_to_keep_is_not_kept_and_says_so(app, client, advocate):
    session_ended_elsewhere(app, client, advocate)
    response = post_interaction(client, summary="x" * 70_000)  # more than 64 KB
    assert kept_forms() == 0
    assert "too long to keep" in client.get(response.location).get_data(as_text=True)
    assert post_interaction(client, summary="x" * 60_000).status_code == 302
    assert kept_forms(advocate.id) == 1


def test_each_account_keeps_only_its_newest_forms(app, client, advocate):
    session_ended_elsewhere(app, client, advocate)
    for number in range(submissions.UNSAVED_PER_USER + 3):
        post_interaction(client, title=f"Draft {number}")
    kept = db.session.scalars(select(UnsavedForm.values_json)).all()
    assert len(kept) == submissions.UNSAVED_PER_USER
    assert not any("Draft 0" in values or "Draft 2" in values for values in kept)
    assert any(f"Draft {submissions.UNSAVED_PER_USER + 2}" in values for values in kept)


def test_a_kept_form_expires_and_is_never_filled_back_in_after(app, client, advocate):
    session_ended_elsewhere(app, client, advocate)
    post_interaction(client, title="Typed long ago")
    db.session.execute(update(UnsavedForm).values(
        saved_at=utcnow() - submissions.KEEP_UNSAVED_FOR - timedelta(minutes=1)))
    db.session.commit()
    login(client, advocate)
    page = client.get("/interactions/new").get_data(as_text=True)
    assert "Typed long ago" not in page and "has been filled back in" not in page
    assert kept_forms() == 0
