"""The keyed audit chain: what someone with the database but not the audit key can do to it
shows at the next `verify-audit` (forged, rewritten, deleted, truncated, emptied), checked
against the chain's signed checkpoints and the heads published reports carry."""

import json
from datetime import date, datetime

import pytest
from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import DatabaseError

from governance import create_app
from governance.audit import (
    GENESIS_HASH,
    AuditCheckpoint,
    AuditEvent,
    Head,
    audit_keys,
    chain_head,
    event_hash,
    key_id_of,
    verify_chain,
    write_checkpoint,
)
from governance.extensions import db

from .conftest import drop_audit_triggers, empty_database_uri, make_config

WRONG_KEY = b"the attacker's guess at the audit key"


@pytest.fixture
def chain(make_org):
    """Five audited events, the head recorded by a checkpoint; their ids."""
    for name in ("One", "Two", "Three", "Four", "Five"):
        make_org(name, "other")
    write_checkpoint("periodic")
    db.session.commit()
    return event_ids()


def event_ids() -> list[int]:
    return db.session.scalars(select(AuditEvent.id).order_by(AuditEvent.id)).all()


def verify(runner, *args):
    result = runner.invoke(args=["verify-audit", *args])
    return result.exit_code, result.output


def forge_event(key: bytes | None, key_id: str | None, **values) -> int:
    """Append an event as someone with database access would: linked, hashed with `key`."""
    head = chain_head()
    row = {"occurred_at": head and db.session.get(AuditEvent, head.seq).occurred_at,
           "actor_id": None, "actor_label": "system", "action": "update",
           "entity": "organisation", "entity_id": 1, "changes": '{"name":["One","Mallory"]}',
           "reason": None, "prev_hash": head.hash if head else GENESIS_HASH,
           "key_id": key_id} | values
    row["hash"] = event_hash(row, key)
    db.session.execute(insert(AuditEvent.__table__), row)
    db.session.commit()
    return chain_head().seq


def rewrite_and_rehash(from_id: int, key: bytes | None, key_id: str | None) -> None:
    """Edit one event, then hash it and every later event again so the links hold."""
    drop_audit_triggers()
    table = AuditEvent.__table__
    rows = db.session.execute(select(table).where(table.c.id >= from_id)
                              .order_by(table.c.id)).mappings().all()
    prev = rows[0]["prev_hash"]
    for index, original in enumerate(rows):
        row = dict(original, prev_hash=prev, key_id=key_id)
        if index == 0:
            row["actor_label"] = "mallory"
        row["hash"] = prev = event_hash(row, key)
        db.session.execute(update(table).where(table.c.id == row["id"]).values(
            actor_label=row["actor_label"], prev_hash=row["prev_hash"], hash=row["hash"],
            key_id=key_id))
    db.session.commit()


# --- a chain that holds --------------------------------------------------------------------------


def test_a_clean_chain_passes_against_its_checkpoints(runner, chain):
    code, output = verify(runner)
    assert code == 0, output
    head = chain_head()
    assert (f"Audit chain intact: 5 events verified against 1 checkpoints, head {head}."
            in output)


def test_every_event_is_an_hmac_with_the_configured_key(chain):
    keys = audit_keys()
    events = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert {event.key_id for event in events} == {keys.current_id}
    for event in events:
        row = {column: getattr(event, column) for column in AuditEvent.__table__.columns.keys()}
        assert event.hash == event_hash(row, keys.current) != event_hash(row, None)


def test_the_database_refuses_to_change_or_delete_checkpoints(chain):
    for statement in ("UPDATE audit_checkpoints SET seq = 1", "DELETE FROM audit_checkpoints"):
        with pytest.raises(DatabaseError, match="append-only"):
            db.session.execute(text(statement))
        db.session.rollback()
    assert db.session.scalar(select(db.func.count(AuditCheckpoint.id))) == 1


# --- the five tamperings -------------------------------------------------------------------------


def test_a_forged_event_appended_with_a_valid_unkeyed_hash_is_detected(runner, chain):
    forged = forge_event(None, None)
    code, output = verify(runner)
    assert code == 1
    assert (f"BROKEN at event {forged}: carries an unkeyed hash after the chain was keyed"
            in output)


def test_a_forged_event_appended_with_the_wrong_key_is_detected(runner, chain):
    forged = forge_event(WRONG_KEY, audit_keys().current_id)
    code, output = verify(runner)
    assert code == 1
    assert f"BROKEN at event {forged}: content does not match its hash" in output


def test_a_truncated_tail_is_detected_by_the_checkpoint(runner, chain):
    drop_audit_triggers()
    db.session.execute(text("DELETE FROM audit_events WHERE id > :id"), {"id": chain[2]})
    db.session.commit()
    code, output = verify(runner)
    assert code == 1
    assert (f"BROKEN at event {chain[-1]}: the chain ends at event {chain[2]}, but checkpoint"
            in output)
    assert "truncated" in output


def test_an_emptied_audit_trail_is_detected(runner, chain):
    drop_audit_triggers()
    db.session.execute(text("DELETE FROM audit_events"))
    db.session.commit()
    code, output = verify(runner)
    assert code == 1
    assert f"BROKEN at event {chain[-1]}: the audit trail is empty" in output
    assert "emptied" in output


@pytest.mark.parametrize("key, key_id", [(WRONG_KEY, "current"), (None, None)],
                         ids=["wrong key", "unkeyed"])
def test_one_event_rewritten_and_the_rest_rehashed_without_the_key_is_detected(
        runner, chain, key, key_id):
    rewrite_and_rehash(chain[1], key, audit_keys().current_id if key_id else None)
    code, output = verify(runner)
    assert code == 1
    assert f"BROKEN at event {chain[1]}:" in output
    assert verify_chain().broken_at == chain[1]


def test_rewriting_with_the_key_is_still_caught_by_an_earlier_checkpoint(runner, chain):
    rewrite_and_rehash(chain[1], audit_keys().current, audit_keys().current_id)
    code, output = verify(runner)
    assert code == 1
    assert (f"BROKEN at event {chain[-1]}: is not the event checkpoint" in output
            and "rewritten" in output)


def test_an_event_deleted_from_the_middle_is_detected(runner, chain):
    drop_audit_triggers()
    db.session.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": chain[2]})
    db.session.commit()
    code, output = verify(runner)
    assert code == 1
    assert f"BROKEN at event {chain[3]}: does not link to the event before it" in output


# --- checkpoints and anchors ---------------------------------------------------------------------


def test_a_forged_checkpoint_is_detected(runner, chain):
    head = chain_head()
    db.session.execute(insert(AuditCheckpoint.__table__), {
        "seq": head.seq, "hash": head.hash, "created_at": datetime(2026, 1, 1),
        "reason": "periodic", "key_id": audit_keys().current_id, "mac": "0" * 64})
    db.session.commit()
    code, output = verify(runner)
    assert code == 1
    assert f"BROKEN at event {head.seq}: checkpoint" in output and "is forged" in output


def test_a_checkpoint_is_written_every_so_many_events(app, make_org):
    app.config["AUDIT_CHECKPOINT_EVERY"] = 3
    for name in ("One", "Two", "Three", "Four"):
        make_org(name, "other")
    checkpoints = db.session.scalars(select(AuditCheckpoint)).all()
    assert [(c.seq, c.reason) for c in checkpoints] == [(event_ids()[2], "periodic")]
    assert verify_chain().intact


def test_audit_checkpoint_command_records_the_head(runner, make_org):
    assert "The audit trail is empty" in runner.invoke(args=["audit-checkpoint"]).output
    make_org("One", "other")
    result = runner.invoke(args=["audit-checkpoint"])
    assert result.exit_code == 0
    assert f"Checkpoint recorded at head {chain_head()}." in result.output


def test_verify_since_the_last_checkpoint_walks_only_what_follows(runner, chain, make_org):
    make_org("Six", "other")
    assert verify_chain(since=chain[-1]).events_checked == 1
    code, output = verify(runner, "--since", "last")
    assert code == 0 and "1 events verified" in output
    # What --since skips, a whole walk still finds.
    drop_audit_triggers()
    db.session.execute(text("UPDATE audit_events SET actor_label = 'mallory' WHERE id = :id"),
                       {"id": chain[1]})
    db.session.commit()
    assert verify(runner, "--since", str(chain[-1]))[0] == 0
    assert verify(runner)[0] == 1
    code, output = verify(runner, "--since", str(chain[1]))
    assert code == 1 and f"there is no checkpoint at event {chain[1]}" in output


def test_a_head_copied_from_a_report_anchors_the_chain_when_everything_is_emptied(
        runner, chain):
    copied = str(chain_head())
    assert verify(runner, "--expect", copied)[0] == 0
    drop_audit_triggers()
    db.session.execute(text("DELETE FROM audit_events WHERE id > :id"), {"id": chain[0]})
    if db.engine.dialect.name == "sqlite":
        db.session.execute(text("DROP TRIGGER audit_checkpoints_no_delete"))
    else:
        db.session.execute(text("DROP TRIGGER audit_checkpoints_no_change ON audit_checkpoints"))
    db.session.execute(text("DELETE FROM audit_checkpoints"))
    db.session.commit()
    assert verify(runner)[0] == 0  # nothing in the database tells
    code, output = verify(runner, "--expect", copied)
    assert code == 1 and f"but the expected head {copied} records event {chain[-1]}" in output


def test_a_malformed_expected_head_is_refused_naming_the_option(runner, chain):
    result = runner.invoke(args=["verify-audit", "--expect", "12:not-a-hash"])
    assert result.exit_code == 2 and "--expect" in result.output
    assert "SEQUENCE:HASH" in result.output


# --- reports carry the head ----------------------------------------------------------------------


@pytest.fixture
def published(app, sponsor, patient_group, make_partnership, compliance_user):
    from governance.reports import services

    from .test_reports import YEAR, generate, publish, record_support

    app.config["JOBS_INLINE"] = True
    sponsor.methodology_note = services.DEFAULT_METHODOLOGY
    db.session.commit()
    partnership = make_partnership(agreement_signed_on=date(YEAR, 1, 5))
    record_support(compliance_user, partnership, patient_group, date(YEAR, 2, 3), "100.00")
    report = generate(compliance_user, sponsor)
    assert report.status == "done", report.error
    report = publish(compliance_user, report)
    assert report.is_published, report.error
    return report


def test_signing_and_publishing_a_report_record_the_head(runner, published):
    from governance.storage import REPORTS

    from .test_reports import pdf_text

    reasons = [c.reason for c in db.session.scalars(
        select(AuditCheckpoint).order_by(AuditCheckpoint.id))]
    assert reasons == ["report-signed", "report-published"]
    at_publication = db.session.scalars(select(AuditCheckpoint).where(
        AuditCheckpoint.reason == "report-published")).one()
    head = Head(at_publication.seq, at_publication.hash)

    data = json.loads(REPORTS.read(published.json_sha256))
    assert data["approval"]["audit_head"] == {"sequence": head.seq, "hash": head.hash}
    csv_text = REPORTS.read(published.csv_sha256).decode()
    assert f"report-{published.id}-audit-head,audit_head" in csv_text and head.hash in csv_text
    text_of_pdf = pdf_text(REPORTS.read(published.pdf_sha256))
    assert f"Audit trail at publication: event {head.seq}" in text_of_pdf
    assert verify(runner, "--expect", str(head))[0] == 0


# --- the key --------------------------------------------------------------------------------------


def test_a_production_instance_without_an_audit_key_writes_one_to_its_key_file(tmp_path,
                                                                             caplog):
    key_file = tmp_path / "instance" / "audit.key"
    first = create_app(make_config(tmp_path, TESTING=False, AUDIT_KEY=None,
                                   AUDIT_KEY_FILE=str(key_file)))
    assert "wrote a new audit key" in caplog.text
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert first.extensions["audit_keys"].current == key_file.read_text().strip().encode()
    caplog.clear()
    second = create_app(make_config(tmp_path, TESTING=False, AUDIT_KEY=None,
                                    AUDIT_KEY_FILE=str(key_file)))
    assert second.extensions["audit_keys"].current == first.extensions["audit_keys"].current
    assert "wrote a new audit key" not in caplog.text
    with pytest.raises(RuntimeError, match="at least 32 characters"):
        create_app(make_config(tmp_path, TESTING=False, AUDIT_KEY="short"))


def test_the_audit_key_can_come_from_the_environment(tmp_path, monkeypatch):
    key = "an-audit-key-from-the-environment-0123"
    monkeypatch.setenv("GOVERNANCE_AUDIT_KEY", key)
    config = make_config(tmp_path, TESTING=False)
    del config["AUDIT_KEY"]
    app = create_app(config)
    assert app.extensions["audit_keys"].current_id == key_id_of(key.encode())


def test_development_falls_back_to_a_derived_key_with_a_warning(tmp_path, caplog):
    app = create_app(make_config(tmp_path, TESTING=False, DEVELOPMENT=True, AUDIT_KEY=None))
    assert app.extensions["audit_keys"].current
    assert "No AUDIT_KEY configured" in caplog.text


def test_a_rotated_key_still_verifies_the_events_it_signed(app, tmp_path, chain):
    old_key = app.config["AUDIT_KEY"]
    db.session.rollback()  # this application's transaction would hold the write lock
    rotated = create_app(make_config(tmp_path, AUDIT_KEY="the-next-audit-key-0123456789abcdef",
                                     AUDIT_PREVIOUS_KEYS=[old_key]))
    forgotten = create_app(make_config(tmp_path, AUDIT_KEY="the-next-audit-key-0123456789abcdef"))
    with rotated.app_context():
        write_checkpoint("periodic")
        db.session.commit()
        assert verify_chain().intact
        db.session.remove()
    with forgotten.app_context():
        report = verify_chain()
        assert not report.intact and "a key this installation does not hold" in report.problem
        db.session.remove()
        db.engine.dispose()
    with rotated.app_context():
        db.engine.dispose()


# --- an existing chain of before keys -------------------------------------------------------------


def test_an_existing_unkeyed_chain_still_verifies_after_the_upgrade(tmp_path):
    from flask_migrate import upgrade

    from governance.extensions import load_migrations

    app = create_app(make_config(tmp_path, SQLALCHEMY_DATABASE_URI=empty_database_uri(tmp_path)))
    with app.app_context():
        load_migrations(app)
        upgrade(revision="e6a1b3c5d7f9")
        legacy = []
        with db.engine.begin() as connection:
            prev = GENESIS_HASH
            for number in (1, 2, 3):
                row = {"occurred_at": f"2025-01-0{number} 10:00:00", "actor_id": None,
                       "actor_label": "system", "action": "create", "entity": "organisation",
                       "entity_id": number, "changes": f'{{"name":[null,"Org {number}"]}}',
                       "reason": None, "prev_hash": prev}
                # The hash of before keys: a plain SHA-256 over the same content.
                row["hash"] = prev = event_hash(
                    row | {"occurred_at": row["occurred_at"].replace(" ", "T")}, None)
                connection.execute(text(
                    "INSERT INTO audit_events (occurred_at, actor_id, actor_label, action, "
                    "entity, entity_id, changes, reason, prev_hash, hash) VALUES (:occurred_at, "
                    ":actor_id, :actor_label, :action, :entity, :entity_id, :changes, :reason, "
                    ":prev_hash, :hash)"), row)
                legacy.append(prev)
        upgrade()
        checkpoint = db.session.scalars(select(AuditCheckpoint)).one()
        assert (checkpoint.reason, checkpoint.hash) == ("upgrade", legacy[-1])
        assert verify_chain().intact and verify_chain().events_checked == 3

        from governance.organisations.models import Organisation

        db.session.add(Organisation(name="After the upgrade", kind="other"))
        db.session.commit()
        newest = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
        assert newest.key_id == audit_keys().current_id and newest.prev_hash == legacy[-1]
        assert verify_chain().intact and verify_chain().events_checked == 4

        forged = forge_event(None, None)
        assert verify_chain().broken_at == forged
        db.session.remove()
        db.engine.dispose()
