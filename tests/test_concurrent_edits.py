"""Two people editing the same interaction: the second save is refused, never silently applied."""

import re
import threading
from datetime import date

import pytest
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from governance.audit import history_of
from governance.auth import services as accounts
from governance.errors import Conflict
from governance.extensions import db
from governance.interactions import services
from governance.interactions.models import Interaction
from governance.operations.failures import CHANGED

from .conftest import GOOD_INTERACTION, login

STALE = "changed since you opened it"


def edit_form_of(page: str) -> dict:
    """The values a browser would send back from the edit page, as the person left them."""
    values = {}
    for tag in re.findall(r"<input[^>]*>", page):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        kind = re.search(r'type="([^"]+)"', tag)
        if not name or (kind and kind.group(1) in ("submit", "button")):
            continue
        if kind and kind.group(1) in ("checkbox", "radio") and "checked" not in tag:
            continue
        values.setdefault(name.group(1), []).append(value.group(1) if value else "")
    for select in re.finditer(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', page, re.S):
        chosen = re.findall(r'<option[^>]*value="([^"]*)"[^>]*selected', select.group(2))
        if chosen:
            values[select.group(1)] = chosen
    for area in re.finditer(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', page, re.S):
        values[area.group(1)] = [area.group(2).strip()]
    return values


@pytest.fixture
def two_editors(app, make_user, sponsor):
    first, second = app.test_client(), app.test_client()
    ana = make_user("advocate", sponsor, email="ana@example.org")
    ben = make_user("compliance", email="ben@example.org")
    login(first, ana)
    login(second, ben)
    return first, second


def test_the_second_browser_save_is_refused_with_changed_since_you_opened_it(
        two_editors, make_interaction):
    first, second = two_editors
    interaction = make_interaction(title="Advisory board")
    url = f"/interactions/{interaction.id}/edit"
    ana_form = edit_form_of(first.get(url).get_data(as_text=True))
    ben_form = edit_form_of(second.get(url).get_data(as_text=True))
    assert ana_form["version"] == ben_form["version"] == ["1"]

    ana_form["title"] = ["Advisory board on visit burden"]
    assert first.post(url, data=ana_form).status_code == 302
    ben_form["title"] = ["Advisory board (Ben's wording)"]
    refused = second.post(url, data=ben_form)

    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    assert STALE in page and "Traceback" not in page
    db.session.expire_all()
    stored = db.session.get(Interaction, interaction.id)
    assert (stored.title, stored.version) == ("Advisory board on visit burden", 2)
    assert [e.action for e in history_of("interaction", interaction.id)] == ["create", "update"]


def test_after_reloading_the_second_person_saves_on_top_of_the_first(two_editors,
                                                                      make_interaction):
    first, second = two_editors
    interaction = make_interaction(sponsor_staff=3)
    url = f"/interactions/{interaction.id}/edit"
    ben_stale = edit_form_of(second.get(url).get_data(as_text=True))
    ana_form = edit_form_of(first.get(url).get_data(as_text=True))
    ana_form["sponsor_staff"] = ["2"]
    assert first.post(url, data=ana_form).status_code == 302
    ben_stale["title"] = ["Renamed"]
    assert second.post(url, data=ben_stale).status_code == 422

    ben_fresh = edit_form_of(second.get(url).get_data(as_text=True))
    assert ben_fresh["sponsor_staff"] == ["2"] and ben_fresh["version"] == ["2"]
    ben_fresh["title"] = ["Renamed"]
    assert second.post(url, data=ben_fresh).status_code == 302
    db.session.expire_all()
    stored = db.session.get(Interaction, interaction.id)
    assert (stored.title, stored.sponsor_staff, stored.version) == ("Renamed", 2, 3)


@pytest.mark.parametrize("version", [None, "", "two"])
def test_an_edit_form_sent_without_its_version_is_refused_and_changes_nothing(
        two_editors, make_interaction, version):
    first, _second = two_editors
    interaction = make_interaction(title="Advisory board")
    url = f"/interactions/{interaction.id}/edit"
    form = edit_form_of(first.get(url).get_data(as_text=True))
    form.pop("version")
    if version is not None:
        form["version"] = [version]
    form["title"] = ["Overwritten blindly"]
    refused = first.post(url, data=form)

    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    assert "did not say which version of the record it changes" in page
    assert "Traceback" not in page
    db.session.expire_all()
    stored = db.session.get(Interaction, interaction.id)
    assert (stored.title, stored.version) == ("Advisory board", 1)


def test_an_organisation_form_without_its_version_answers_428(app, compliance_user, sponsor):
    browser = app.test_client()
    login(browser, compliance_user)
    url = f"/organisations/{sponsor.id}/edit"
    form = edit_form_of(browser.get(url).get_data(as_text=True))
    assert form.pop("version") == [str(sponsor.version)]
    form["name"] = ["Renamed blindly"]
    refused = browser.post(url, data=form)
    assert refused.status_code == 428
    assert "did not say which version" in refused.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(type(sponsor), sponsor.id).name != "Renamed blindly"


def test_two_api_clients_patching_the_same_version_one_wins_one_gets_409(
        app, client, make_interaction, compliance_user, make_user, sponsor):
    interaction = make_interaction()
    ana = {"Authorization": "Bearer " + accounts.issue_token(
        make_user("advocate", sponsor), "tests")}
    ben = {"Authorization": "Bearer " + accounts.issue_token(compliance_user, "tests")}
    db.session.commit()
    url = f"/api/v1/interactions/{interaction.id}"
    version = client.get(url, headers=ana).get_json()["version"]

    won = client.patch(url, headers=ana, json={"sponsor_staff": 2, "version": version})
    lost = client.patch(url, headers=ben, json={"sponsor_staff": 9, "version": version})

    assert won.status_code == 200 and won.get_json()["version"] == version + 1
    assert lost.status_code == 409
    assert STALE in lost.get_json()["error"]["message"]
    assert client.get(url, headers=ben).get_json()["sponsor_staff"] == 2


def test_concurrent_edits_lose_no_acknowledged_update(app, make_interaction, compliance_user):
    """Each worker re-reads and retries when refused; every acknowledged edit is kept."""
    interaction_id = make_interaction(patient_participants=0).id
    actor_id = compliance_user.id
    db.session.commit()  # end this session's transaction: SQLite would hold its write lock
    workers, per_worker, errors = 4, 10, []

    def bump():
        try:
            with app.app_context():
                actor = db.session.get(type(compliance_user), actor_id)
                done = 0
                while done < per_worker:
                    record = db.session.get(Interaction, interaction_id)
                    try:
                        services.update_interaction(
                            record, {"patient_participants": record.patient_participants + 1},
                            actor, expected_version=record.version)
                        db.session.commit()
                        done += 1
                    except Conflict:
                        db.session.rollback()
                    except Exception as error:  # StaleDataError on a lost race: retry
                        if type(error).__name__ != "StaleDataError":
                            raise
                        db.session.rollback()
                db.session.remove()
        except Exception as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=bump) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    db.session.expire_all()
    final = db.session.get(Interaction, interaction_id)
    assert final.patient_participants == workers * per_worker
    updates = [e for e in history_of("interaction", interaction_id) if e.action == "update"]
    assert len(updates) == workers * per_worker


@pytest.mark.postgres_only
def test_a_write_that_loses_a_race_after_the_version_check_is_a_clear_409(
        app, client, make_interaction, compliance_user):
    """PostgreSQL lets two transactions read the same version; the database decides the race."""
    interaction = make_interaction(title="Before")
    token = accounts.issue_token(compliance_user, "tests")
    db.session.commit()
    url = f"/api/v1/interactions/{interaction.id}"
    interleaved = []

    def other_person_saves_first(session, _context, _instances):
        if interleaved or not any(isinstance(o, Interaction) for o in session.dirty):
            return
        interleaved.append(True)
        with db.engine.connect() as other:  # another worker commits between check and write
            other.execute(text("UPDATE interactions SET title = 'Theirs', version = version + 1 "
                               "WHERE id = :id"), {"id": interaction.id})
            other.commit()

    event.listen(Session, "before_flush", other_person_saves_first)
    try:
        answer = client.patch(url, headers={"Authorization": f"Bearer {token}"},
                              json={"title": "Mine", "version": 1})
    finally:
        event.remove(Session, "before_flush", other_person_saves_first)
    assert answer.status_code == 409
    assert answer.get_json()["error"]["message"] == CHANGED
    db.session.expire_all()
    assert db.session.get(Interaction, interaction.id).title == "Theirs"


def test_interaction_form_carries_the_version_it_was_opened_at(two_editors, make_interaction):
    first, _second = two_editors
    interaction = make_interaction(occurred_on=date(2025, 1, 9), **{
        "title": GOOD_INTERACTION["title"]})
    page = first.get(f"/interactions/{interaction.id}/edit").get_data(as_text=True)
    assert re.search(r'<input[^>]*name="version"[^>]*type="hidden"|'
                     r'<input[^>]*type="hidden"[^>]*name="version"', page)
