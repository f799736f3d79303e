"""SQLite is safe under concurrent writers; constraints hold in the database itself."""

import threading
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from governance.extensions import db
from governance.interactions.models import Interaction
from governance.partnerships.models import Partnership, Support


@pytest.mark.sqlite_only
def test_sqlite_runs_in_wal_mode_with_foreign_keys_and_a_busy_timeout(app):
    assert db.session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    assert db.session.execute(text("PRAGMA foreign_keys")).scalar() == 1
    assert db.session.execute(text("PRAGMA busy_timeout")).scalar() >= 5000


@pytest.mark.sqlite_only
def test_write_transactions_begin_immediate(app):
    statements = []
    from sqlalchemy import event

    @event.listens_for(db.engine, "before_cursor_execute")
    def remember(_conn, _cursor, statement, *_args):
        statements.append(statement)

    db.session.execute(text("SELECT 1"))
    db.session.commit()
    event.remove(db.engine, "before_cursor_execute", remember)
    assert "BEGIN IMMEDIATE" in statements


@pytest.mark.sqlite_only  # PostgreSQL refuses the losing write instead: test_concurrent_edits
def test_concurrent_edits_of_the_same_record_lose_no_update(app, make_interaction,
                                                             compliance_user):
    from governance.interactions import services

    interaction_id = make_interaction(patient_participants=0).id
    actor_id = compliance_user.id
    db.session.remove()  # the test's own session must not hold SQLite's write lock
    threads, per_thread, errors = 6, 15, []

    def bump():
        try:
            with app.app_context():
                actor = db.session.get(type(compliance_user), actor_id)
                for _ in range(per_thread):
                    record = db.session.get(Interaction, interaction_id)
                    services.update_interaction(
                        record, {"patient_participants": record.patient_participants + 1}, actor)
                    db.session.commit()
                db.session.remove()
        except Exception as error:  # collected and asserted below
            errors.append(error)

    workers = [threading.Thread(target=bump) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    db.session.expire_all()
    final = db.session.get(Interaction, interaction_id)
    assert final.patient_participants == threads * per_thread
    assert final.version == 1 + threads * per_thread


def test_database_refuses_negative_counts(make_interaction):
    interaction = make_interaction()
    with pytest.raises(IntegrityError):
        db.session.execute(text("UPDATE interactions SET sponsor_staff = -1 WHERE id = :id"),
                           {"id": interaction.id})
    db.session.rollback()


def test_database_refuses_unknown_enumeration_values(make_interaction):
    interaction = make_interaction()
    with pytest.raises(IntegrityError):
        db.session.execute(text("UPDATE interactions SET format = 'picnic' WHERE id = :id"),
                           {"id": interaction.id})
    db.session.rollback()


def test_database_refuses_partnership_that_ends_before_it_starts(sponsor, patient_group):
    db.session.add(Partnership(title="Backwards", sponsor_id=sponsor.id,
                               patient_group_id=patient_group.id, kind="advocacy",
                               started_on=date(2025, 5, 1), ended_on=date(2025, 1, 1)))
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()


def test_money_is_stored_and_read_as_decimal(make_partnership, patient_group):
    partnership = make_partnership()
    db.session.add(Support(partnership_id=partnership.id, recipient_id=patient_group.id,
                           paid_on=date(2025, 2, 1), kind="grant", amount=Decimal("1250.10"),
                           currency="GBP", description="Helpline grant"))
    db.session.commit()
    db.session.expire_all()
    stored = db.session.scalars(db.select(Support)).one()
    assert stored.amount == Decimal("1250.10") and isinstance(stored.amount, Decimal)


def test_foreign_keys_are_enforced(app):
    with pytest.raises(IntegrityError):
        db.session.add(Interaction(title="x", occurred_on=date(2025, 1, 1), format="survey",
                                   organisation_id=4242))
        db.session.flush()
    db.session.rollback()


def _statements_of(request) -> list[str]:
    """The SQL statements a request runs, whitespace-normalised, in order."""
    from sqlalchemy import event

    statements = []

    def remember(_conn, _cursor, statement, *_args):
        statements.append(" ".join(statement.split()))

    event.listen(db.engine, "before_cursor_execute", remember)
    try:
        answer = request()
    finally:
        event.remove(db.engine, "before_cursor_execute", remember)
    return answer, statements


@pytest.mark.sqlite_only
def test_a_write_request_reads_who_asks_and_what_it_edits_before_it_takes_the_write_lock(
        client, compliance_user, make_interaction):
    """The token lookup, and the interaction an edit changes, are read in read transactions of
    their own, so the write lock covers only the request's own writes (other writers are not
    kept waiting by authentication or by loading and validating the record)."""
    from governance.auth import services as accounts

    token = accounts.issue_token(compliance_user, "tests")
    interaction = make_interaction()
    interaction_id, version = interaction.id, interaction.version
    db.session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    # Used once already this hour, so its use is not recorded again (a write of its own).
    assert client.get("/api/v1/organisations", headers=headers).status_code == 200
    db.session.rollback()
    answer, statements = _statements_of(lambda: client.post(
        "/api/v1/organisations", json={"name": "Orbit Bio", "kind": "sponsor"}, headers=headers))
    assert answer.status_code == 201, answer.get_json()
    lookup = next(i for i, s in enumerate(statements) if "api_tokens" in s)
    locked = statements.index("BEGIN IMMEDIATE")
    assert statements[lookup - 1] == "BEGIN" and lookup < locked
    assert not any("api_tokens" in s for s in statements[locked:])
    assert db.session.scalar(text("SELECT count(*) FROM organisations WHERE name = 'Orbit Bio'"))
    db.session.rollback()

    answer, statements = _statements_of(lambda: client.patch(
        f"/api/v1/interactions/{interaction_id}", headers=headers,
        json={"title": "Edited outside the lock", "version": version}))
    assert answer.status_code == 200, answer.get_json()
    locked = statements.index("BEGIN IMMEDIATE")
    loaded = next(i for i, s in enumerate(statements) if s.startswith("SELECT interactions."))
    assert loaded < locked
    assert statements[locked + 1].startswith("UPDATE interactions SET")
    assert not any(s.startswith(("SELECT interactions.", "SELECT partnerships."))
                   for s in statements[locked:])


def test_an_edit_read_before_another_request_saved_the_record_is_refused_not_lost(
        app, client, compliance_user, make_interaction, monkeypatch):
    """The record an edit changes is read before the write lock is taken: when another request
    saves the same record in between, the edit's UPDATE finds another version and is refused
    with "changed since you opened it"; the other request's change stays."""
    from governance.auth import services as accounts
    from governance.interactions import services

    token = accounts.issue_token(compliance_user, "tests")
    interaction = make_interaction(title="Before")
    interaction_id, version = interaction.id, interaction.version
    db.session.commit()
    validate = services.validate_interaction

    def validate_while_another_request_saves(values, actor, preloaded=None):
        with db.engine.begin() as other:
            other.execute(text("UPDATE interactions SET title = 'Saved in between', "
                               "version = version + 1 WHERE id = :id"), {"id": interaction_id})
        return validate(values, actor, preloaded)

    monkeypatch.setattr(services, "validate_interaction", validate_while_another_request_saves)
    answer = client.patch(f"/api/v1/interactions/{interaction_id}",
                          headers={"Authorization": f"Bearer {token}"},
                          json={"title": "Edited", "version": version})
    assert answer.status_code == 409
    assert "changed since you opened it" in answer.get_json()["error"]["message"]
    db.session.remove()
    saved = db.session.get(Interaction, interaction_id)
    assert (saved.title, saved.version) == ("Saved in between", version + 1)


@pytest.mark.sqlite_only

def test_an_edit_that_lost_the_race_answers_the_version_to_retry_with_at_once(
        app, client, compliance_user, make_interaction, monkeypatch):
    """When another request saves the record while an edit waits for the write lock, the 409
    gives the version saved meanwhile (body and ETag) and Retry-After: 0, and the same change
    sent again with that version goes through."""
    from governance.auth import services as accounts
    from governance.interactions import services

    headers = {"Authorization": f"Bearer {accounts.issue_token(compliance_user, 'tests')}"}
    interaction = make_interaction(title="Before")
    interaction_id = interaction.id
    db.session.commit()
    validate = services.validate_interaction
    saves = []

    def validate_while_another_request_saves(values, actor, preloaded=None):
        if not saves:
            saves.append(True)
            with db.engine.begin() as other:
                other.execute(text("UPDATE interactions SET title = 'Saved in between', "
                                   "version = version + 1 WHERE id = :id"), {"id": interaction_id})
        return validate(values, actor, preloaded)

    monkeypatch.setattr(services, "validate_interaction", validate_while_another_request_saves)
    url = f"/api/v1/interactions/{interaction_id}"
    lost = client.patch(url, headers=headers, json={"sponsor_staff": 4, "version": 1})
    assert lost.status_code == 409
    assert lost.get_json()["error"]["current_version"] == 2
    assert lost.headers["ETag"] == f'"interaction-{interaction_id}-v2"'
    assert lost.headers["Retry-After"] == "0"
    retried = client.patch(url, headers={**headers, "If-Match": lost.headers["ETag"]},
                           json={"sponsor_staff": 4})
    assert retried.status_code == 200, retried.get_json()
    assert (retried.get_json()["title"], retried.get_json()["sponsor_staff"]) == (
        "Saved in between", 4)

def test_writers_of_one_process_queue_and_a_writer_kept_waiting_too_long_is_told_so(tmp_path):
    from sqlalchemy.exc import OperationalError

    from governance.database import WriteQueue

    path = str(tmp_path / "db.sqlite-writers")
    first, second = WriteQueue(path), WriteQueue(path)
    first.enter(timeout=1)
    with pytest.raises(OperationalError, match="database is locked"):
        second.enter(timeout=0.05)
    entered = threading.Event()
    waiter = threading.Thread(target=lambda: (second.enter(timeout=5), entered.set()))
    waiter.start()
    assert not entered.wait(0.1)  # still queued behind the first writer
    first.leave()
    assert entered.wait(5)  # and let in as soon as the first one left
    waiter.join()
    second.leave()
    first.close()
    second.close()
