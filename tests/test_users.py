"""Users administered in the application by admins: create with a temporary password or an
invitation link, change role and organisations, deactivate and reactivate, every change
audited; nobody else reaches these pages."""

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from governance.audit import AuditEvent
from governance.auth import services as accounts
from governance.auth.models import AuditorGrant, User
from governance.auth.tokens import hash_token
from governance.database import utcnow
from governance.extensions import db
from governance.main.submissions import UnsavedForm
from governance.permissions import acting_organisation_ids
from governance.users.models import Invitation

from .conftest import PASSWORD, login

NEW_PASSWORD = "my very own password"


@pytest.fixture
def admin(make_user):
    return make_user("admin", email="admin@example.org")


@pytest.fixture
def admin_client(app, admin):
    client = app.test_client()
    login(client, admin)
    return client


def new_user(organisation, **values) -> dict:
    data = {"email": "new.person@example.org", "name": "New Person", "role": "advocate",
            "organisation_id": organisation.id, "access": "password"}
    data.update(values)
    return data


def shown_password(page: str) -> str:
    return re.search(r'<code class="user-select-all text-body fs-5">([^<]+)</code>', page).group(1)


def shown_link(page: str) -> str:
    return re.search(r'<code class="user-select-all text-body">(http[^<]+)</code>', page).group(1)


def counts() -> tuple[int, int, int, int]:
    """Users, grants, invitations and audit events: what a refused form must leave as it was."""
    db.session.expire_all()
    return tuple(db.session.scalar(select(func.count()).select_from(model))
                 for model in (User, AuditorGrant, Invitation, AuditEvent))


def reloaded(user: User) -> User:
    db.session.expire_all()
    return db.session.get(User, user.id)


# --- creating accounts -----------------------------------------------------------------------


def test_a_user_created_with_a_temporary_password_logs_in_and_must_choose_their_own(
        app, admin_client, sponsor):
    response = admin_client.post("/users/new", data=new_user(sponsor, access="password"))
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "shown only this once" in page
    assert response.headers["Cache-Control"] == "no-store"
    password = shown_password(page)
    user = accounts.find_user("new.person@example.org")
    assert (user.role, user.organisation_id, user.must_change_password) == \
        ("advocate", sponsor.id, True)
    assert password not in user.password_hash and user.password_hash.startswith("$argon2id$")

    client = app.test_client()
    answer = client.post("/login", data={"email": "New.Person@example.org",
                                         "password": password})
    assert answer.headers["Location"].startswith("/account/password")
    assert client.get("/home").headers["Location"].endswith("/account/password")
    assert client.get("/interactions/").status_code == 302
    chosen = client.post("/account/password", data={"password": NEW_PASSWORD,
                                                    "password_again": NEW_PASSWORD})
    assert chosen.status_code == 302
    assert client.get("/home").status_code == 200  # still signed in, free to go on
    assert reloaded(user).must_change_password is False
    assert client.post("/logout").status_code == 302
    login(client, user, NEW_PASSWORD)
    assert app.test_client().post("/login", data={"email": user.email, "password": password}) \
        .status_code == 401  # the temporary password is gone


def test_choosing_a_password_says_when_the_two_differ(app, admin_client, sponsor):
    password = shown_password(admin_client.post("/users/new", data=new_user(sponsor))
                              .get_data(as_text=True))
    client = app.test_client()
    client.post("/login", data={"email": "new.person@example.org", "password": password})
    response = client.post("/account/password", data={"password": NEW_PASSWORD,
                                                      "password_again": "something else"})
    assert response.status_code == 422
    assert "The two passwords differ." in response.get_data(as_text=True)
    assert accounts.find_user("new.person@example.org").must_change_password is True


def test_an_invitation_link_sets_the_password_once(app, admin_client, patient_group):
    response = admin_client.post("/users/new", data=new_user(
        patient_group, role="partner", access="invitation"))
    assert response.status_code == 200
    link = shown_link(response.get_data(as_text=True))
    token = link.rsplit("/", 1)[1]
    invitation = db.session.scalars(select(Invitation)).one()
    assert invitation.token_hash == hash_token(token) and token not in invitation.token_hash
    assert timedelta(days=6, hours=23) < invitation.expires_at - utcnow() <= timedelta(days=7)
    user = accounts.find_user("new.person@example.org")
    assert not accounts.password_matches(user, "")

    visitor = app.test_client()
    page = visitor.get(f"/invitation/{token}")
    assert page.status_code == 200 and "new.person@example.org" in page.get_data(as_text=True)
    accepted = visitor.post(f"/invitation/{token}", data={"password": NEW_PASSWORD,
                                                          "password_again": NEW_PASSWORD})
    assert accepted.status_code == 302 and accepted.headers["Location"] == "/home"
    assert visitor.get("/home").status_code == 200  # logged in
    login(app.test_client(), user, NEW_PASSWORD)
    assert db.session.scalar(select(func.count()).select_from(UnsavedForm)) == 0

    again = app.test_client()
    reused = again.get(f"/invitation/{token}")
    assert reused.status_code == 410
    assert "already been used" in reused.get_data(as_text=True)
    assert again.post(f"/invitation/{token}", data={"password": "another password!",
                                                    "password_again": "another password!"}) \
        .status_code == 410
    login(again, user, NEW_PASSWORD)  # the password set from the link still works


def test_an_expired_or_unknown_invitation_link_is_refused_with_a_clear_message(
        app, admin_client, sponsor):
    page = admin_client.post("/users/new", data=new_user(sponsor, access="invitation"))
    token = shown_link(page.get_data(as_text=True)).rsplit("/", 1)[1]
    db.session.scalars(select(Invitation)).one().expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    visitor = app.test_client()
    expired = visitor.get(f"/invitation/{token}")
    assert expired.status_code == 410
    assert "has expired" in expired.get_data(as_text=True)
    refused = visitor.post(f"/invitation/{token}", data={"password": NEW_PASSWORD,
                                                         "password_again": NEW_PASSWORD})
    assert refused.status_code == 410
    user = accounts.find_user("new.person@example.org")
    assert not accounts.password_matches(reloaded(user), NEW_PASSWORD)
    unknown = visitor.get("/invitation/not-a-real-token")
    assert unknown.status_code == 404 and "not valid" in unknown.get_data(as_text=True)


@pytest.mark.parametrize("app_config", [{"INVITATION_VALID_DAYS": 2}])
def test_how_long_an_invitation_works_is_configurable(admin_client, sponsor):
    admin_client.post("/users/new", data=new_user(sponsor, access="invitation"))
    invitation = db.session.scalars(select(Invitation)).one()
    assert timedelta(days=1, hours=23) < invitation.expires_at - utcnow() <= timedelta(days=2)


def test_an_expired_invitation_is_replaced_by_a_new_link(app, admin_client, sponsor):
    first = admin_client.post("/users/new", data=new_user(sponsor, access="invitation"))
    old_token = shown_link(first.get_data(as_text=True)).rsplit("/", 1)[1]
    user = accounts.find_user("new.person@example.org")
    assert admin_client.get(f"/users/{user.id}/access").status_code == 200
    renewed = admin_client.post(f"/users/{user.id}/access", data={"access": "invitation"})
    assert renewed.status_code == 200
    new_token = shown_link(renewed.get_data(as_text=True)).rsplit("/", 1)[1]
    visitor = app.test_client()
    replaced = visitor.get(f"/invitation/{old_token}")
    assert replaced.status_code == 410 and "replaced" in replaced.get_data(as_text=True)
    assert visitor.get(f"/invitation/{new_token}").status_code == 200


def test_a_new_temporary_password_ends_the_users_sessions(app, admin_client, make_user,
                                                          sponsor):
    user = make_user("advocate", sponsor)
    device = app.test_client()
    login(device, user)
    renewed = admin_client.post(f"/users/{user.id}/access", data={"access": "password"})
    password = shown_password(renewed.get_data(as_text=True))
    assert device.get("/home").status_code == 302
    assert app.test_client().post("/login", data={"email": user.email, "password": PASSWORD}) \
        .status_code == 401
    fresh = app.test_client()
    assert fresh.post("/login", data={"email": user.email, "password": password}) \
        .headers["Location"].startswith("/account/password")


def test_an_auditor_is_created_with_further_organisations(admin_client, sponsor, patient_group,
                                                          make_org):
    other = make_org("Northwind Therapeutics", "sponsor")
    response = admin_client.post("/users/new", data=new_user(
        sponsor, role="auditor", email="auditor@example.org",
        granted_organisation_ids=[patient_group.id, other.id]))
    assert response.status_code == 200
    auditor = accounts.find_user("auditor@example.org")
    assert acting_organisation_ids(auditor) == (sponsor.id, patient_group.id, other.id)
    listing = admin_client.get("/users/?role=auditor").get_data(as_text=True)
    assert "Northwind Therapeutics" in listing and "Rare Lung Alliance" in listing


# --- bad input changes nothing ---------------------------------------------------------------


@pytest.mark.parametrize("values, field, message", [
    ({"organisation_id": 9999}, "organisation_id", "Choose one of the organisations listed."),
    ({"organisation_id": ""}, "organisation_id", "Choose the organisation this"),
    ({"organisation_id": "", "role": "compliance"}, "organisation_id",
     "Choose the organisation this compliance officer belongs to."),
    ({"organisation_id": "", "role": "partner"}, "organisation_id",
     "Choose the organisation this partner representative belongs to."),
    ({"organisation_id": "", "role": "auditor"}, "organisation_id",
     "Choose the organisation this auditor belongs to."),
    ({"role": "superuser"}, "role", "Choose one of"),
    ({"role": ""}, "role", "Choose one of"),
    ({"email": "Taken@Example.org"}, "email", "An account with this email already exists."),
    ({"email": "not an email"}, "email", "Invalid email address."),
    ({"access": "carrier pigeon"}, "access", "Choose how the user signs in the first time."),
    ({"granted_organisation_ids": ["1"]}, "granted_organisation_ids",
     "Only auditors are granted further organisations"),
    ({"role": "auditor", "granted_organisation_ids": ["9999"]}, "granted_organisation_ids",
     "Choose among the organisations listed."),
])
def test_a_refused_new_user_says_what_is_wrong_on_the_field_and_creates_nothing(
        admin_client, make_user, sponsor, patient_group, values, field, message):
    make_user("advocate", sponsor, email="taken@example.org")
    values = {key: str(patient_group.id) if value == ["1"] else value
              for key, value in values.items()}
    before = counts()
    response = admin_client.post("/users/new", data=new_user(sponsor, **values))
    page = response.get_data(as_text=True)
    assert response.status_code == 422, page[:2000]
    error = re.search(rf'id="{field}-error"[^>]*>([^<]*)<', page)
    assert error and message in error.group(1), page[:3000]
    assert counts() == before


def test_an_administrator_may_have_no_organisation(admin_client):
    response = admin_client.post("/users/new", data={
        "email": "second.admin@example.org", "name": "Second Admin", "role": "admin",
        "organisation_id": "", "access": "invitation"})
    assert response.status_code == 200
    assert accounts.find_user("second.admin@example.org").organisation_id is None


def test_the_command_line_still_creates_a_compliance_officer_without_an_organisation(runner):
    result = runner.invoke(args=["create-user", "c@example.org", "--role", "compliance",
                                 "--password", "long enough pw"])
    assert result.exit_code == 0, result.output
    user = accounts.find_user("c@example.org")
    assert user.organisation_id is None and user.must_change_password is False
    refused = runner.invoke(args=["create-user", "a@example.org", "--role", "advocate",
                                  "--password", "long enough pw"])
    assert refused.exit_code == 1
    assert "Advocates and partners belong to an organisation." in refused.output


# --- changing accounts -----------------------------------------------------------------------


def test_an_administrator_changes_role_organisation_and_grants(admin_client, make_user,
                                                                sponsor, patient_group,
                                                                make_org):
    other = make_org("Northwind Therapeutics", "sponsor")
    user = make_user("advocate", sponsor)
    response = admin_client.post(f"/users/{user.id}", data={
        "name": "Renamed Person", "role": "auditor", "organisation_id": patient_group.id,
        "granted_organisation_ids": [sponsor.id, other.id], "reason": "Now audits for us",
        "version": user.version})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    user = reloaded(user)
    assert (user.name, user.role, user.organisation_id) == \
        ("Renamed Person", "auditor", patient_group.id)
    assert set(acting_organisation_ids(user)) == {patient_group.id, sponsor.id, other.id}

    admin_client.post(f"/users/{user.id}", data={
        "name": "Renamed Person", "role": "auditor", "organisation_id": patient_group.id,
        "granted_organisation_ids": [other.id], "reason": "Audit of Helix ended",
        "version": user.version})
    ended = db.session.scalars(select(AuditorGrant).where(
        AuditorGrant.organisation_id == sponsor.id)).one()
    assert ended.voided_at is not None and ended.void_reason == "Audit of Helix ended"
    assert set(acting_organisation_ids(reloaded(user))) == {patient_group.id, other.id}

    # No longer an auditor: the remaining grant ends with the role.
    admin_client.post(f"/users/{user.id}", data={
        "name": "Renamed Person", "role": "compliance", "organisation_id": patient_group.id,
        "version": reloaded(user).version})
    assert db.session.scalar(select(func.count()).select_from(AuditorGrant)
                             .where(AuditorGrant.voided_at.is_(None))) == 0
    assert acting_organisation_ids(reloaded(user)) == (patient_group.id,)


def test_a_refused_change_says_why_and_changes_nothing(admin_client, make_user, sponsor):
    user = make_user("advocate", sponsor)
    before = counts()
    response = admin_client.post(f"/users/{user.id}", data={
        "name": "Someone", "role": "partner", "organisation_id": "", "version": user.version})
    assert response.status_code == 422
    assert "Choose the organisation this partner representative belongs to." in \
        response.get_data(as_text=True)
    assert counts() == before
    assert (reloaded(user).role, reloaded(user).organisation_id) == ("advocate", sponsor.id)


# --- deactivating ----------------------------------------------------------------------------


def test_deactivation_stops_a_signed_in_session_and_an_api_token_at_once(
        app, admin_client, make_user, sponsor):
    user = make_user("advocate", sponsor)
    token = accounts.issue_token(user, "script")
    db.session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    device = app.test_client()
    login(device, user)
    assert device.get("/home").status_code == 200
    assert app.test_client().get("/api/v1/interactions", headers=headers).status_code == 200

    assert admin_client.get(f"/users/{user.id}/deactivate").status_code == 200
    response = admin_client.post(f"/users/{user.id}/deactivate",
                                 data={"reason": "Left the organisation"})
    assert response.status_code == 302

    assert device.get("/home").headers["Location"].startswith("/login")
    assert app.test_client().get("/api/v1/interactions", headers=headers).status_code == 401
    assert app.test_client().post("/login", data={"email": user.email, "password": PASSWORD}) \
        .status_code == 401
    assert "Deactivated" in admin_client.get("/users/?state=deactivated").get_data(as_text=True)
    assert user.name not in admin_client.get("/users/?state=active").get_data(as_text=True)


def test_deactivation_needs_a_reason(admin_client, make_user, sponsor):
    user = make_user("advocate", sponsor)
    before = counts()
    response = admin_client.post(f"/users/{user.id}/deactivate", data={"reason": ""})
    assert response.status_code == 422
    assert counts() == before and reloaded(user).active


def test_a_reactivated_user_logs_in_again(app, admin_client, make_user, sponsor):
    user = make_user("advocate", sponsor)
    admin_client.post(f"/users/{user.id}/deactivate", data={"reason": "On leave"})
    response = admin_client.post(f"/users/{user.id}/reactivate", data={"reason": "Back"})
    assert response.status_code == 302
    assert reloaded(user).active
    login(app.test_client(), user)


def test_a_deactivated_users_invitation_stops_working(app, admin_client, sponsor):
    page = admin_client.post("/users/new", data=new_user(sponsor, access="invitation"))
    token = shown_link(page.get_data(as_text=True)).rsplit("/", 1)[1]
    user = accounts.find_user("new.person@example.org")
    admin_client.post(f"/users/{user.id}/deactivate", data={"reason": "Invited by mistake"})
    assert app.test_client().get(f"/invitation/{token}").status_code == 410


def test_the_last_active_administrator_can_be_neither_demoted_nor_deactivated(
        app, admin_client, admin, make_user, sponsor):
    before = counts()
    demoted = admin_client.post(f"/users/{admin.id}", data={
        "name": admin.name, "role": "compliance", "organisation_id": sponsor.id,
        "version": admin.version})
    assert demoted.status_code == 422
    assert "last active administrator" in demoted.get_data(as_text=True)
    deactivated = admin_client.post(f"/users/{admin.id}/deactivate",
                                    data={"reason": "Leaving"})
    assert deactivated.status_code == 422
    assert "last active administrator" in deactivated.get_data(as_text=True)
    assert counts() == before
    assert reloaded(admin).role == "admin" and reloaded(admin).active

    # A deactivated administrator does not count: the guard still holds.
    other = make_user("admin", email="other.admin@example.org")
    login(app.test_client(), other)
    admin_client.post(f"/users/{other.id}/deactivate", data={"reason": "Left"})
    assert admin_client.post(f"/users/{admin.id}/deactivate",
                             data={"reason": "Leaving"}).status_code == 422

    # With another active administrator, one may step down.
    admin_client.post(f"/users/{other.id}/reactivate", data={})
    response = admin_client.post(f"/users/{admin.id}/deactivate", data={"reason": "Leaving"})
    assert response.status_code == 302
    assert not reloaded(admin).active
    assert admin_client.get("/users/").status_code == 302  # signed out at once


# --- who may ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["advocate", "compliance", "auditor", "partner"])
def test_only_administrators_reach_the_users_pages(app, make_user, sponsor, role):
    user = make_user(role, sponsor)
    client = app.test_client()
    login(client, user)
    before = counts()
    assert client.get("/users/").status_code == 403
    assert client.get("/users/new").status_code == 403
    assert client.get(f"/users/{user.id}").status_code == 403
    assert client.post("/users/new", data=new_user(sponsor, role="admin")).status_code == 403
    assert client.post(f"/users/{user.id}", data={
        "name": user.name, "role": "admin", "organisation_id": ""}).status_code == 403
    assert client.post(f"/users/{user.id}/deactivate", data={"reason": "x"}).status_code == 403
    assert counts() == before


def test_the_admin_home_page_links_to_the_users_pages(admin_client):
    page = admin_client.get("/home").get_data(as_text=True)
    assert 'href="/users/"' in page and 'href="/users/new"' in page


def test_the_list_shows_each_account_and_filters_by_role_organisation_and_status(
        admin_client, make_user, sponsor, patient_group):
    advocate = make_user("advocate", sponsor)
    partner = make_user("partner", patient_group)
    accounts.authenticate(advocate.email, PASSWORD)
    db.session.commit()
    page = admin_client.get("/users/").get_data(as_text=True)
    assert advocate.email in page and partner.email in page and "never" in page
    by_role = admin_client.get("/users/?role=partner").get_data(as_text=True)
    assert partner.email in by_role and advocate.email not in by_role
    by_organisation = admin_client.get(f"/users/?organisation_id={sponsor.id}") \
        .get_data(as_text=True)
    assert advocate.email in by_organisation and partner.email not in by_organisation


# --- the audit trail -------------------------------------------------------------------------


def events_of(entity: str, entity_id: int | None = None) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.entity == entity)
    if entity_id is not None:
        query = query.where(AuditEvent.entity_id == entity_id)
    return db.session.scalars(query.order_by(AuditEvent.id)).all()


def test_every_change_to_an_account_is_audited_with_its_administrator(
        admin_client, admin, sponsor, patient_group):
    admin_client.post("/users/new", data=new_user(sponsor, role="auditor",
                                                  granted_organisation_ids=[patient_group.id]))
    user = accounts.find_user("new.person@example.org")
    admin_client.post(f"/users/{user.id}", data={
        "name": user.name, "role": "compliance", "organisation_id": sponsor.id,
        "reason": "Joined compliance", "version": user.version})
    admin_client.post(f"/users/{user.id}/deactivate", data={"reason": "Left the company"})
    admin_client.post(f"/users/{user.id}/reactivate", data={"reason": "Came back"})

    user_events = events_of("user", user.id)
    assert [event.action for event in user_events][0] == "create"
    created = user_events[0].change_set
    assert created["password_hash"] == [None, "[redacted]"]
    assert created["must_change_password"] == [None, True]
    role_change = next(e for e in user_events[1:] if "role" in e.change_set)
    assert role_change.change_set["role"] == ["auditor", "compliance"]
    assert role_change.reason == "Joined compliance"
    deactivation = next(e for e in user_events if e.change_set.get("active") == [True, False])
    assert deactivation.reason == "Left the company"
    assert "session_generation" in deactivation.change_set
    reactivation = next(e for e in user_events if e.change_set.get("active") == [False, True])
    assert reactivation.reason == "Came back"
    assert {event.actor_id for event in user_events} == {admin.id}

    grant_events = events_of("auditor_grant")
    assert [event.action for event in grant_events] == ["create", "void"]
    assert {event.actor_id for event in grant_events} == {admin.id}


def test_an_accepted_invitation_is_audited_without_its_token(app, admin_client, sponsor):
    page = admin_client.post("/users/new", data=new_user(sponsor, access="invitation"))
    token = shown_link(page.get_data(as_text=True)).rsplit("/", 1)[1]
    app.test_client().post(f"/invitation/{token}", data={"password": NEW_PASSWORD,
                                                         "password_again": NEW_PASSWORD})
    user = accounts.find_user("new.person@example.org")
    invitation_events = events_of("invitation")
    assert [event.action for event in invitation_events] == ["create", "update"]
    assert invitation_events[0].change_set["token_hash"] == [None, "[redacted]"]
    assert invitation_events[1].actor_id == user.id
    assert all(token not in event.changes and hash_token(token) not in event.changes
               for event in invitation_events)
    assert events_of("user", user.id)[-1].reason == "Invitation accepted: password chosen"
