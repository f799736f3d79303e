"""The home page of each role, one record per form submission, and forms kept across an
expired session (the server side; tests/browser drives the same in a real browser)."""

import re

import pytest
from sqlalchemy import func, select

from governance.extensions import db
from governance.interactions.models import Interaction
from governance.main.submissions import FormSubmission, UnsavedForm

from .conftest import login

SITE = {"Origin": "http://localhost"}


def count(title: str) -> int:
    return db.session.scalar(select(func.count(Interaction.id))
                             .where(Interaction.title == title))


def token_of(page: str) -> str:
    return re.search(r'name="form_token" value="([^"]+)"', page).group(1)


@pytest.fixture
def advocate(make_user, sponsor):
    return make_user("advocate", organisation=sponsor)


def end_session_elsewhere(app, user) -> None:
    """Sign the user out on another device: every session cookie issued before stops working."""
    elsewhere = app.test_client()
    login(elsewhere, user)
    elsewhere.post("/logout")


def new_interaction(client, sponsor, title="Advisory board on trial burden", **extra):
    page = client.get("/interactions/new").get_data(as_text=True)
    data = {"title": title, "occurred_on": "2025-03-14", "format": "advisory_board",
            "organisation_id": str(sponsor.id), "form_token": token_of(page)}
    data.update(extra)
    return data


@pytest.mark.parametrize(("role", "expected"), [
    ("advocate", "Recent interactions and their open flags"),
    ("compliance", "Review queue"),
    ("auditor", "Search the audit trail"),
    ("partner", "Support lines awaiting your confirmation"),
    ("admin", "User accounts"),
])
def test_each_role_has_its_own_home_page(client, make_user, sponsor, patient_group, role,
                                        expected):
    login(client, make_user(role, organisation=patient_group if role == "partner" else sponsor))
    page = client.get("/home").get_data(as_text=True)
    assert expected in page


def test_the_advocate_home_shows_each_interactions_open_flags_with_a_word_and_a_shape(
        client, advocate, make_interaction, make_partnership):
    make_interaction(title="Meeting at the sponsor's office", venue_type="sponsor_site",
                     venue_agreed_by_patients=False,
                     partnership_id=make_partnership().id)
    login(client, advocate)
    page = client.get("/home").get_data(as_text=True)
    assert "Meeting at the sponsor&#39;s office" in page
    assert "Held at a sponsor site" in page
    # Severity is never colour alone: the word, a shape, and "severity" for screen readers.
    assert re.search(r'<span aria-hidden="true">[▲◆●]</span> (High|Medium|Low)'
                     r'<span class="visually-hidden"> severity</span>', page)


def test_empty_lists_say_what_to_do_next(client, advocate):
    login(client, advocate)
    page = client.get("/home").get_data(as_text=True)
    assert "You have no interactions yet. Log the first" in page


def test_a_form_sent_twice_with_one_token_saves_one_record(client, advocate, sponsor):
    login(client, advocate)
    data = new_interaction(client, sponsor, title="Sent twice")
    first = client.post("/interactions/new", data=data)
    second = client.post("/interactions/new", data=data)
    assert first.status_code == 302 and second.status_code == 303
    assert second.location == first.location  # the repeat lands on the first one's record
    assert count("Sent twice") == 1
    page = client.get(second.location).get_data(as_text=True)
    assert "already been sent, so it was not saved a second time" in page


def test_a_refused_form_keeps_its_token_so_the_corrected_form_can_be_sent(
        client, advocate, sponsor):
    login(client, advocate)
    data = new_interaction(client, sponsor, title="Corrected")
    refused = client.post("/interactions/new", data=dict(data, occurred_on=""))
    assert refused.status_code == 422
    assert token_of(refused.get_data(as_text=True)) == data["form_token"]
    db.session.rollback()  # as at the end of a real request (the test shares one app context)
    assert db.session.get(FormSubmission, data["form_token"]) is None
    assert client.post("/interactions/new", data=data).status_code == 302
    assert count("Corrected") == 1


def test_each_form_page_gets_a_new_token(client, advocate):
    login(client, advocate)
    first = token_of(client.get("/interactions/new").get_data(as_text=True))
    second = token_of(client.get("/interactions/new").get_data(as_text=True))
    assert first != second


def test_a_token_of_another_user_reveals_nothing_and_saves_nothing(
        client, app, advocate, make_user, sponsor):
    login(client, advocate)
    data = new_interaction(client, sponsor, title="Mine")
    client.post("/interactions/new", data=data)
    other = app.test_client()
    login(other, make_user("advocate", organisation=sponsor))
    response = other.post("/interactions/new", data=dict(data, title="Theirs"))
    assert response.status_code == 303
    mine = db.session.scalar(select(Interaction.id).where(Interaction.title == "Mine"))
    assert not response.location.endswith(f"/interactions/{mine}")
    assert count("Theirs") == 0


def test_a_form_sent_after_the_session_ended_is_kept_and_filled_back_in(
        client, app, advocate, sponsor):
    login(client, advocate)
    data = new_interaction(client, sponsor, title="Typed before the end",
                           accommodations=["interpretation", "remote_option"])
    end_session_elsewhere(app, advocate)
    response = client.post("/interactions/new", data=data,
                           headers={**SITE, "Referer": "http://localhost/interactions/new"})
    assert response.status_code == 302
    assert response.location.endswith("/login?next=/interactions/new")
    assert count("Typed before the end") == 0
    login_page = client.get(response.location).get_data(as_text=True)
    assert "what you typed will be filled back in" in login_page

    client.post("/login?next=/interactions/new",
                data={"email": advocate.email, "password": "correct horse battery"})
    form_page = client.get("/interactions/new").get_data(as_text=True)
    assert "has been filled back in" in form_page
    kept = re.search(r"data-values='([^']+)'", form_page).group(1)
    assert "Typed before the end" in kept and "remote_option" in kept
    assert "form_token" not in kept and "csrf_token" not in kept
    assert db.session.scalar(select(func.count()).select_from(UnsavedForm)) == 0
    # Only once: the next visit is an ordinary empty form.
    assert "data-values" not in client.get("/interactions/new").get_data(as_text=True)


def test_a_cross_site_post_cannot_plant_values_in_a_form(client, advocate, sponsor):
    response = client.post("/interactions/new", data={"title": "Planted"},
                           headers={"Origin": "https://evil.example"})
    assert response.status_code == 302
    assert db.session.scalar(select(func.count()).select_from(UnsavedForm)) == 0


def test_kept_values_are_not_shown_to_another_account(
        client, app, advocate, make_user, sponsor):
    login(client, advocate)
    data = new_interaction(client, sponsor, title="Private notes")
    end_session_elsewhere(app, advocate)
    client.post("/interactions/new", data=data, headers=SITE)
    login(client, make_user("advocate", organisation=sponsor))
    page = client.get("/interactions/new").get_data(as_text=True)
    assert "Private notes" not in page
    assert db.session.scalar(select(func.count()).select_from(UnsavedForm)) == 0


def test_passwords_are_never_kept(client, app, advocate):
    login(client, advocate)
    end_session_elsewhere(app, advocate)
    client.post("/account", data={"pw-current_password": "secret one",
                                  "pw-new_password": "secret two!!", "token-name": "x"},
                headers=SITE)
    kept = db.session.scalars(select(UnsavedForm)).all()
    assert kept and all("secret" not in row.values_json for row in kept)
