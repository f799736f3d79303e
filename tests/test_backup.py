"""Backups and restores: the data comes back as it was, and the audit chain is verified."""

import sqlite3

import pytest
from sqlalchemy import func, select

from governance import create_app
from governance.audit import AuditEvent, verify_chain
from governance.extensions import db
from governance.interactions import services
from governance.interactions.models import Interaction
from governance.organisations.models import Organisation

from .conftest import make_config


def snapshot() -> dict:
    return {
        "interactions": sorted(db.session.execute(
            select(Interaction.id, Interaction.title, Interaction.version)).all()),
        "organisations": sorted(db.session.scalars(select(Organisation.name)).all()),
        "audit_events": db.session.scalar(select(func.count(AuditEvent.id))),
        "chain_head": db.session.scalar(
            select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)),
    }


def test_restore_brings_back_the_data_as_at_backup_time_with_an_intact_audit_chain(
        runner, tmp_path, make_interaction, make_org, compliance_user):
    interaction = make_interaction(title="Advisory board on trial burden")
    before = snapshot()
    db.session.commit()
    backup_file = tmp_path / "backups" / "governance.backup"

    made = runner.invoke(args=["backup", str(backup_file)])
    assert made.exit_code == 0, made.output
    assert f"{before['audit_events']} audit events" in made.output

    services.update_interaction(interaction, {"title": "Changed after the backup"},
                                compliance_user)
    make_org("Created after the backup", "other")
    db.session.commit()
    assert snapshot() != before
    db.session.commit()  # end the read: outside a request SQLite transactions take the lock

    refused = runner.invoke(args=["restore", str(backup_file)])
    assert refused.exit_code != 0
    assert "already holds records" in refused.output and "--force" in refused.output
    assert snapshot()["organisations"] != before["organisations"]  # nothing was replaced
    db.session.commit()

    restored = runner.invoke(args=["restore", "--force", str(backup_file)])
    assert restored.exit_code == 0, restored.output
    assert f"Audit chain intact: {before['audit_events']} events verified." in restored.output
    db.session.remove()
    assert snapshot() == before
    assert verify_chain().intact


def test_a_backup_restores_into_an_empty_database(app, runner, tmp_path, make_interaction):
    make_interaction(title="Kept in the backup")
    expected = snapshot()
    db.session.commit()
    backup_file = tmp_path / "governance.backup"
    assert runner.invoke(args=["backup", str(backup_file)]).exit_code == 0

    empty = create_app(make_config(tmp_path / "elsewhere"))
    with empty.app_context():
        if db.engine.dialect.name == "sqlite":
            (tmp_path / "elsewhere").mkdir(exist_ok=True)
        result = empty.test_cli_runner().invoke(args=["restore", str(backup_file)])
        assert result.exit_code == 0, result.output
        assert "Audit chain intact" in result.output
        assert snapshot() == expected
        db.session.remove()
        db.engine.dispose()


def test_backup_keeps_an_existing_file_unless_forced(runner, tmp_path, make_org):
    make_org("Org", "other")
    db.session.commit()
    existing = tmp_path / "precious.backup"
    existing.write_text("an older backup")
    result = runner.invoke(args=["backup", str(existing)])
    assert result.exit_code != 0 and "already exists" in result.output
    assert existing.read_text() == "an older backup"
    assert runner.invoke(args=["backup", "--force", str(existing)]).exit_code == 0
    assert existing.read_text(errors="replace") != "an older backup"


def test_restore_refuses_a_file_that_is_not_a_backup(runner, tmp_path, make_org):
    make_org("Org", "other")
    before = snapshot()
    db.session.commit()
    junk = tmp_path / "notes.txt"
    junk.write_text("not a database " * 100)
    result = runner.invoke(args=["restore", "--force", str(junk)])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    db.session.remove()
    assert snapshot() == before


@pytest.mark.sqlite_only
def test_restore_reports_a_backup_whose_audit_trail_was_tampered_with(runner, tmp_path,
                                                                      make_org):
    for name in ("One", "Two", "Three"):
        make_org(name, "other")
    db.session.commit()
    backup_file = tmp_path / "governance.backup"
    assert runner.invoke(args=["backup", str(backup_file)]).exit_code == 0
    with sqlite3.connect(backup_file) as copy:
        copy.execute("DROP TRIGGER audit_events_no_update")
        copy.execute("UPDATE audit_events SET actor_label = 'mallory' WHERE id = 2")
    copy.close()

    result = runner.invoke(args=["restore", "--force", str(backup_file)])
    assert result.exit_code == 1
    assert "Audit chain BROKEN at event 2" in result.output
