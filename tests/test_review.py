"""The compliance review: the queue of open flags, the electronic sign-off of an interaction's
review, and the dashboard."""

import re
from datetime import date, timedelta

import pytest
from sqlalchemy import select, update

from governance.audit import history_of
from governance.database import utcnow
from governance.errors import Conflict, NotAllowed, ValidationFailed
from governance.extensions import db
from governance.interactions import services as interactions
from governance.interactions.models import Interaction
from governance.review.dashboard import adherence
from governance.review.services import sign_off_review, signature_line, transition_flag
from governance.rules.evaluation import current_policy
from governance.rules.flags import flags_of_interaction
from governance.rules.models import Flag
from governance.vocabulary import SIGNATURE_MEANINGS

from .conftest import PASSWORD


@pytest.fixture
def partnership(make_partnership):
    return make_partnership(agreement_signed_on=date(2024, 1, 1))


@pytest.fixture
def log(make_interaction, partnership):
    def do(**values):
        values.setdefault("partnership_id", partnership.id)
        return make_interaction(**values)

    return do


def resolve_all(interaction, user):
    for flag in flags_of_interaction(interaction.id, include_closed=False):
        transition_flag(flag, "acknowledged", "Accepted for this pilot", user)
    db.session.commit()


# --- the electronic signature ----------------------------------------------------------------


def test_compliance_signs_off_a_review_with_password_and_meaning(log, compliance_user):
    interaction = log()
    sign_off_review(interaction, compliance_user, PASSWORD, "review")
    db.session.commit()
    assert interaction.signed_off_by_id == compliance_user.id
    assert interaction.signature_meaning == SIGNATURE_MEANINGS["review"]
    line = signature_line(interaction)
    assert line.startswith(f"Signed by {compliance_user.name} on "
                           f"{interaction.signed_off_at:%Y-%m-%d %H:%M} UTC — Reviewed:")
    event = history_of("interaction", interaction.id)[-1]
    assert event.actor_id == compliance_user.id
    assert "Electronic signature by" in event.reason


@pytest.mark.parametrize("password, meaning, field", [
    ("wrong password!", "review", "password"),
    ("", "review", "password"),
    (PASSWORD, "", "meaning"),
    (PASSWORD, "I guess so", "meaning"),
])
def test_signature_is_refused_without_the_right_password_and_a_meaning(
        log, compliance_user, password, meaning, field):
    interaction = log()
    with pytest.raises(ValidationFailed) as refused:
        sign_off_review(interaction, compliance_user, password, meaning)
    assert field in refused.value.fields
    db.session.rollback()
    assert db.session.get(Interaction, interaction.id).signed_off_at is None


def test_open_flags_must_be_resolved_before_signing(log, compliance_user):
    interaction = log(protocol_followed=False)
    with pytest.raises(Conflict, match="Resolve the 1 open flag"):
        sign_off_review(interaction, compliance_user, PASSWORD, "review")
    resolve_all(interaction, compliance_user)
    sign_off_review(interaction, compliance_user, PASSWORD, "approval")
    assert interaction.signed_off_at is not None


@pytest.mark.parametrize("role", ["advocate", "auditor", "partner"])
def test_only_compliance_signs_reviews(log, make_user, sponsor, role):
    user = make_user(role, sponsor if role in ("advocate", "partner") else None)
    with pytest.raises(NotAllowed):
        sign_off_review(log(), user, PASSWORD, "review")


def test_editing_a_signed_interaction_returns_it_to_review(log, compliance_user):
    interaction = log()
    sign_off_review(interaction, compliance_user, PASSWORD, "review")
    db.session.commit()
    with pytest.raises(ValidationFailed) as refused:
        interactions.update_interaction(interaction, {"sponsor_staff": 2}, compliance_user)
    assert "reason" in refused.value.fields
    db.session.rollback()
    interactions.update_interaction(interaction, {"sponsor_staff": 2}, compliance_user,
                                    reason="Corrected the staff count")
    db.session.commit()
    assert interaction.signed_off_at is None and interaction.signature_meaning is None
    event = history_of("interaction", interaction.id)[-1]
    assert event.change_set["signed_off_at"][1] is None
    assert event.change_set["sponsor_staff"] == [3, 2]
    assert event.reason == "Corrected the staff count"


def test_partner_confirmation_does_not_undo_the_sign_off(log, compliance_user):
    interaction = log()
    sign_off_review(interaction, compliance_user, PASSWORD, "review")
    db.session.commit()
    interaction.confirmed_by_partner = "confirmed"
    db.session.commit()
    assert interaction.signed_off_at is not None


def test_signature_shows_name_time_and_meaning_on_the_pages(client, log_in, log,
                                                           compliance_user):
    interaction = log()
    log_in(compliance_user)
    page = client.get(f"/review/interactions/{interaction.id}").get_data(as_text=True)
    assert "Sign off the review" in page and "Awaiting review" in page
    response = client.post(f"/review/interactions/{interaction.id}",
                           data={"meaning": "review", "password": "not my password"})
    assert response.status_code == 422
    assert "This is not your password; the review was not signed." in \
        response.get_data(as_text=True)
    response = client.post(f"/review/interactions/{interaction.id}",
                           data={"meaning": "review", "password": PASSWORD})
    assert response.status_code == 303
    signed = db.session.get(Interaction, interaction.id)
    stamp = f"{signed.signed_off_at:%Y-%m-%d %H:%M} UTC"
    for url in (f"/review/interactions/{interaction.id}", f"/interactions/{interaction.id}"):
        page = client.get(url).get_data(as_text=True)
        assert compliance_user.name in page and stamp in page
        assert "Reviewed: I have reviewed this interaction" in page


def test_advocate_cannot_open_the_review_or_sign(client, log_in, log, make_user, sponsor):
    interaction = log()
    log_in(make_user("advocate", sponsor))
    assert client.get(f"/review/interactions/{interaction.id}").status_code == 403
    response = client.post(f"/review/interactions/{interaction.id}",
                           data={"meaning": "review", "password": PASSWORD})
    assert response.status_code == 403
    assert db.session.get(Interaction, interaction.id).signed_off_at is None


def test_interaction_page_lists_its_flags(client, log_in, log, compliance_user):
    interaction = log(protocol_followed=False)
    log_in(compliance_user)
    page = client.get(f"/interactions/{interaction.id}").get_data(as_text=True)
    assert "HOW-NO-PROTOCOL" in page and "No standard protocol was followed" in page


# --- the queue -------------------------------------------------------------------------------


@pytest.fixture
def queue_data(log, make_partnership, compliance_user):
    other = make_partnership("Other partnership", agreement_signed_on=date(2024, 1, 1))
    old = log(title="Old one", protocol_followed=False)  # HOW, low
    log(title="Venue one", venue_type="sponsor_site", venue_agreed_by_patients=False)  # WHERE
    log(title="Other one", partnership_id=other.id, modality="in_person",
        accessibility_reviewed=False)  # WHERE, high
    db.session.execute(update(Flag).where(Flag.interaction_id == old.id)
                       .values(raised_at=utcnow() - timedelta(days=40)))
    db.session.commit()
    return other


@pytest.mark.parametrize("query, expected", [
    ("", {"Old one", "Venue one", "Other one"}),
    ("dimension=WHERE", {"Venue one", "Other one"}),
    ("severity=high", {"Other one"}),
    ("min_age_days=30", {"Old one"}),
    ("rule=HOW-NO-PROTOCOL", {"Old one"}),
])
def test_queue_filters_open_flags(client, log_in, compliance_user, queue_data, query, expected):
    log_in(compliance_user)
    page = client.get(f"/review/?{query}").get_data(as_text=True)
    shown = {title for title in ("Old one", "Venue one", "Other one") if title in page}
    assert shown == expected


def test_queue_filters_by_partnership(client, log_in, compliance_user, queue_data):
    log_in(compliance_user)
    page = client.get(f"/review/?partnership_id={queue_data.id}").get_data(as_text=True)
    assert "Other one" in page and "Venue one" not in page


def test_queue_hides_resolved_flags_unless_asked(client, log_in, compliance_user, queue_data):
    flag = db.session.scalar(select(Flag).where(Flag.rule_id == "HOW-NO-PROTOCOL"))
    transition_flag(flag, "acknowledged", "Accepted", compliance_user)
    db.session.commit()
    log_in(compliance_user)
    assert "Old one" not in client.get("/review/").get_data(as_text=True)
    assert "Old one" in client.get("/review/?state=acknowledged").get_data(as_text=True)


@pytest.mark.parametrize("url", ["/review/", "/review/dashboard", "/review/dashboard/adherence.svg",
                                 "/review/dashboard/flags-over-time.svg"])
def test_partners_and_advocates_cannot_see_the_review(client, log_in, make_user,
                                                      patient_group, url):
    log_in(make_user("partner", patient_group))
    assert client.get(url).status_code == 403


def test_auditor_reads_the_queue_but_cannot_resolve(client, log_in, make_user, queue_data):
    log_in(make_user("auditor"))
    assert client.get("/review/").status_code == 200
    flag = db.session.scalar(select(Flag).where(Flag.rule_id == "HOW-NO-PROTOCOL"))
    page = client.get(f"/review/flags/{flag.id}").get_data(as_text=True)
    assert "Only compliance officers resolve flags." in page
    response = client.post(f"/review/flags/{flag.id}",
                           data={"state": "acknowledged", "note": "fine"})
    assert response.status_code == 403


# --- the dashboard -----------------------------------------------------------------------------


def test_adherence_counts_interactions_without_an_open_flag_per_dimension(
        log, make_partnership, compliance_user):
    log()
    log(protocol_followed=False)
    log(venue_type="sponsor_site", venue_agreed_by_patients=False, protocol_followed=False)
    rows = {row.dimension: row for row in adherence(compliance_user)}
    assert (rows["HOW"].interactions, rows["HOW"].flagged) == (3, 2)
    assert rows["WHERE"].share == pytest.approx(2 / 3)
    assert rows["WHY"].share == 1.0
    # GOOD_INTERACTION dates are over a year old, so the partnership is transactional (WHAT).
    assert rows["WHAT"].flagged == 3
    assert adherence(compliance_user, date_from=date.today())[0].share is None


def test_dashboard_shows_charts_as_images_with_a_table_alternative(
        client, log_in, compliance_user, log):
    log(protocol_followed=False)
    log_in(compliance_user)
    page = client.get("/review/dashboard?date_from=2025-01-01&date_to=2025-12-31")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'src="/review/dashboard/adherence.svg?' in html and "alt=" in html
    assert "<caption>Adherence per dimension</caption>" in html
    assert "2025-03" in html  # flags by month of interaction
    assert "Oldest open flags" in html and "HOW-NO-PROTOCOL" in html
    assert ' style="' not in html  # CSP: no inline style, no inline script
    assert re.search(r"<script(?![^>]*\bsrc=)", html) is None
    for chart in ("adherence.svg", "flags-over-time.svg"):
        svg = client.get(f"/review/dashboard/{chart}?date_from=2025-01-01&date_to=2025-12-31")
        assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
        assert svg.data.lstrip().startswith(b"<?xml") and b"<svg" in svg.data
        assert "script-src 'none'" in svg.headers["Content-Security-Policy"]


def test_policy_page_shows_rules_thresholds_and_provenance(client, log_in, make_user, sponsor):
    log_in(make_user("advocate", sponsor))
    page = client.get("/review/policy").get_data(as_text=True)
    assert "Version 2025.1" in page and "Co-creation not yet recorded" in page
    assert "WHY-VAGUE" in page and "min_words" in page and "purpose_word_count" in page
    assert "Re-evaluate all records" not in page


# --- demo data --------------------------------------------------------------------------------


def test_demo_data_shows_a_flag_of_every_rule(app):
    from governance.demo import seed_demo

    seed_demo()
    db.session.commit()
    raised = set(db.session.scalars(select(Flag.rule_id).where(Flag.voided_at.is_(None))))
    in_force = {rule_id for rule_id, rule in current_policy().rules.items()
                if not rule.spec.retired}  # a rule switched off raises nothing
    assert raised == in_force
