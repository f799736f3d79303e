"""What must not be exposed: the unsaved-form keeper stores nothing for a client that never
signed in and is bounded for those who did; voided records stay hidden from those who may not
see them; an uploaded import file opens only for the person who uploaded it."""

import hashlib
import io
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select, update

from governance.auth.services import issue_token
from governance.database import utcnow
from governance.extensions import db
from governance.interactions.models import Interaction
from governance.main import submissions
from governance.main.submissions import UnsavedForm

from .conftest import GOOD_INTERACTION, login

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


# --- voided records -------------------------------------------------------------------------

PDF = (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
       b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")


@pytest.fixture
def voided(make_user, sponsor, patient_group, make_partnership, make_interaction):
    """One record of each kind, voided by the sponsor's advocate, and who looks at them."""
    from governance.agreements.services import record_agreement, void_agreement
    from governance.attachments.services import attach_file, void_attachment
    from governance.interactions.services import void_interaction
    from governance.partnerships.services import record_support, void_support
    from governance.payments.services import record_payment, void_payment

    advocate = make_user("advocate", sponsor)
    partnership = make_partnership("Registry partnership")
    agreement = record_agreement({
        "partnership_id": partnership.id, "kind": "grant", "objective": "Registry grant 2025",
        "parties_and_roles": "Helix funds; the Alliance runs the registry",
        "starts_on": "2025-01-01", "ends_on": "2025-12-31", "amount": "10000.00",
        "currency": "GBP", "signed_on": "2025-01-10", "signatories": "CFO; Chair"}, advocate)
    support = record_support({
        "partnership_id": partnership.id, "recipient_id": patient_group.id,
        "paid_on": date(2025, 4, 1), "kind": "grant", "amount": "5000.00", "currency": "GBP",
        "description": "Grant entered twice"}, advocate)
    interaction = make_interaction(partnership_id=partnership.id, title="Meeting logged twice")
    payment = record_payment({
        "payee_reference": "P-0042", "payee_kind": "patient", "service": "advisory_board",
        "hours": "4", "fee": "600.00", "expenses": "0", "currency": "GBP",
        "paid_on": "2025-03-20", "organisation_id": sponsor.id}, advocate)
    attachment = attach_file(partnership, "minutes", "draft-minutes.pdf", PDF, advocate)
    db.session.commit()
    void_support(support, advocate, "Entered twice")
    void_interaction(interaction, advocate, "Logged twice")
    void_payment(payment, advocate, "Paid by the other team")
    void_attachment(attachment, advocate, "Superseded")
    void_agreement(agreement, advocate, "Replaced by the 2025 framework")
    db.session.commit()
    return {
        "advocate": advocate, "partner": make_user("partner", patient_group),
        "compliance": make_user("compliance", sponsor), "auditor": make_user("auditor", sponsor),
        "support": support, "interaction": interaction, "payment": payment,
        "agreement": agreement, "attachment": attachment, "partnership": partnership,
    }


API_DETAILS = [("support", "/api/v1/supports/{}"), ("interaction", "/api/v1/interactions/{}"),
               ("agreement", "/api/v1/agreements/{}"),
               ("payment", "/api/v1/individual-payments/{}")]


@pytest.mark.parametrize(("kind", "path"), API_DETAILS)
def test_a_voided_record_is_unknown_through_the_api_to_advocates_and_partners(
        client, voided, kind, path):
    url = path.format(voided[kind].id)
    assert client.get(url, headers=bearer(voided["advocate"])).status_code == 404
    if kind in ("support", "interaction"):
        assert client.get(url, headers=bearer(voided["partner"])).status_code == 404


@pytest.mark.parametrize(("kind", "path"), API_DETAILS)
@pytest.mark.parametrize("reader", ["compliance", "auditor"])
def test_compliance_and_auditors_read_a_voided_record_marked_voided(
        client, voided, kind, path, reader):
    answer = client.get(path.format(voided[kind].id), headers=bearer(voided[reader]))
    assert answer.status_code == 200
    assert answer.get_json()["voided_at"] is not None and answer.get_json()["void_reason"]


def test_the_partner_confirmation_pages_neither_list_nor_open_voided_records(client, voided):
    login(client, voided["partner"])
    for kind in ("support", "interaction"):
        listing = client.get(f"/reports/confirmations?kind={kind}&state=all")
        assert listing.status_code == 200
        page = listing.get_data(as_text=True)
        assert "Grant entered twice" not in page and "Meeting logged twice" not in page
        record_id = voided[kind].id
        assert client.get(f"/reports/confirmations/{kind}/{record_id}").status_code == 404
        assert client.post(f"/reports/confirmations/{kind}/{record_id}",
                           data={"answer": "confirmed"}).status_code == 404
    for kind, path in (("support", "/api/v1/supports/{}/confirmation"),
                       ("interaction", "/api/v1/interactions/{}/confirmation")):
        answer = client.post(path.format(voided[kind].id), json={"answer": "confirmed"},
                             headers=bearer(voided["partner"]))
        assert answer.status_code == 404
    db.session.expire_all()
    assert voided["support"].confirmed_by_partner == "pending"


def test_a_voided_support_lines_pages_are_unknown_to_an_advocate(client, voided):
    support_id = voided["support"].id
    login(client, voided["advocate"])
    for page in ("edit", "void"):
        assert client.get(f"/partnerships/supports/{support_id}/{page}").status_code == 404
    client.post("/logout")
    login(client, voided["compliance"])
    assert client.get(f"/partnerships/supports/{support_id}/edit").status_code == 409


def test_a_voided_attachments_history_is_unknown_to_an_advocate(client, voided):
    url = f"/audit/attachment/{voided['attachment'].id}"
    login(client, voided["advocate"])
    assert client.get(url).status_code == 404
    client.post("/logout")
    login(client, voided["compliance"])
    assert "Superseded" in client.get(url).get_data(as_text=True)


# --- import uploads -------------------------------------------------------------------------


def interactions_csv(partnership, title: str) -> bytes:
    row = dict(GOOD_INTERACTION, partnership_id=partnership.id, external_id="CRM-1", title=title)
    values = [";".join(v) if isinstance(v, list) else str(v).lower() if isinstance(v, bool)
              else v.isoformat() if isinstance(v, date) else str(v) for v in row.values()]
    return (",".join(row) + "\n" + ",".join(f'"{v}"' for v in values) + "\n").encode()


def upload(client, data: bytes, filename="meetings.csv"):
    return client.post("/imports/", data={"kind": "interactions",
                                          "file": (io.BytesIO(data), filename)},
                       content_type="multipart/form-data")


def imported(title: str) -> int:
    return db.session.scalar(select(func.count()).select_from(Interaction)
                             .where(Interaction.title == title))


@pytest.fixture
def editors(make_user, sponsor, make_partnership):
    partnership = make_partnership()
    return make_user("advocate", sponsor), make_user("advocate", sponsor), partnership


def test_another_editor_with_the_files_hash_cannot_preview_or_commit_it(app, editors):
    uploader, other, partnership = editors
    data = interactions_csv(partnership, "Board from the uploader's file")
    digest = hashlib.sha256(data).hexdigest()
    mine, theirs = app.test_client(), app.test_client()
    login(mine, uploader)
    login(theirs, other)
    assert upload(mine, data).status_code == 200

    for url in (f"/imports/interactions/{digest}", f"/imports/interactions/{digest}/problems.csv"):
        assert theirs.get(url).status_code == 404
    assert theirs.post(f"/imports/interactions/{digest}/commit").status_code == 404
    assert imported("Board from the uploader's file") == 0

    assert mine.get(f"/imports/interactions/{digest}").status_code == 200
    assert mine.post(f"/imports/interactions/{digest}/commit").status_code == 303
    assert imported("Board from the uploader's file") == 1


def test_the_same_file_uploaded_by_two_editors_is_each_ones_own(app, editors):
    first, second, partnership = editors
    data = interactions_csv(partnership, "Board uploaded twice")
    digest = hashlib.sha256(data).hexdigest()
    clients = {first: app.test_client(), second: app.test_client()}
    for user, client in clients.items():
        login(client, user)
        assert upload(client, data, filename=f"from-{user.id}.csv").status_code == 200
    for user, client in clients.items():
        preview = client.get(f"/imports/interactions/{digest}")
        assert preview.status_code == 200 and f"from-{user.id}.csv" in preview.get_data(
            as_text=True)
    committed = clients[first].post(f"/imports/interactions/{digest}/commit")
    assert committed.status_code == 303
    assert imported("Board uploaded twice") == 1
