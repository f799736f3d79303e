"""The audit trail: content of create → edit → void, append-only storage, tamper detection."""

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from governance.audit import AuditEvent, HardDeleteRefused, acting_as, history_of, verify_chain
from governance.extensions import db

from .conftest import drop_audit_triggers


def test_create_edit_void_sequence_is_recorded_with_old_and_new_values(
        make_interaction, compliance_user):
    from governance.interactions import services

    interaction = make_interaction(title="First title")
    services.update_interaction(interaction, {"title": "Second title", "sponsor_staff": 4},
                                compliance_user, reason="typo in the title")
    db.session.commit()
    services.void_interaction(interaction, compliance_user, "logged twice by mistake")
    db.session.commit()

    events = history_of("interaction", interaction.id)
    assert [e.action for e in events] == ["create", "update", "void"]
    created, edited, voided = events
    assert created.change_set["title"] == [None, "First title"]
    assert created.actor_label == compliance_user.email
    assert edited.change_set["title"] == ["First title", "Second title"]
    assert edited.change_set["sponsor_staff"] == [3, 4]
    assert edited.reason == "typo in the title"
    assert voided.reason == "logged twice by mistake"
    assert voided.change_set["void_reason"] == [None, "logged twice by mistake"]
    assert all(e.occurred_at is not None and e.hash for e in events)


def test_records_are_never_hard_deleted(make_org):
    org = make_org("Doomed Org", "other")
    db.session.delete(org)
    with pytest.raises(HardDeleteRefused):
        db.session.flush()
    db.session.rollback()


def test_database_refuses_update_and_delete_of_audit_events(make_org):
    make_org("Some Org", "other")
    for statement in ("UPDATE audit_events SET actor_label = 'mallory'",
                      "DELETE FROM audit_events"):
        with pytest.raises(DatabaseError, match="append-only"):
            db.session.execute(text(statement))
        db.session.rollback()
    assert db.session.scalar(db.select(db.func.count(AuditEvent.id))) == 1


def test_verify_audit_reports_the_first_edited_event(runner, make_org):
    for name in ("One", "Two", "Three"):
        make_org(name, "other")
    assert runner.invoke(args=["verify-audit"]).exit_code == 0
    second = db.session.scalars(db.select(AuditEvent.id).order_by(AuditEvent.id)).all()[1]
    # Someone with file access drops the trigger and edits an event behind the app's back.
    drop_audit_triggers()
    db.session.execute(text("UPDATE audit_events SET actor_label = 'mallory' WHERE id = :id"),
                       {"id": second})
    db.session.commit()
    result = runner.invoke(args=["verify-audit"])
    assert result.exit_code == 1
    assert f"BROKEN at event {second}" in result.output
    assert verify_chain().broken_at == second


def test_verify_audit_reports_a_removed_event(runner, make_org):
    for name in ("One", "Two", "Three"):
        make_org(name, "other")
    ids = db.session.scalars(db.select(AuditEvent.id).order_by(AuditEvent.id)).all()
    drop_audit_triggers()
    db.session.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": ids[1]})
    db.session.commit()
    report = verify_chain()
    assert not report.intact and report.broken_at == ids[2]


def test_cli_changes_are_attributed_to_system_unless_an_actor_is_given(make_org, make_user):
    org = make_org("Org", "other")
    assert history_of("organisation", org.id)[0].actor_label == "system"
    user = make_user("admin")
    from governance.audit import Actor

    with acting_as(Actor(user.id, user.email), reason="rename"):
        org.name = "Renamed Org"
        db.session.commit()
    last = history_of("organisation", org.id)[-1]
    assert (last.actor_label, last.reason) == (user.email, "rename")


def test_passwords_never_reach_the_audit_trail(make_user):
    user = make_user("auditor")
    created = history_of("user", user.id)[0]
    assert created.change_set["password_hash"] == [None, "[redacted]"]
    assert user.password_hash not in created.changes


def test_changes_to_a_partnerships_other_organisations_are_audited(make_partnership, make_org):
    facilitator = make_org("Bridgewater Facilitation", "other")
    partnership = make_partnership()
    partnership.other_organisations.append(facilitator)
    db.session.commit()
    partnership.other_organisations.remove(facilitator)
    db.session.commit()
    changes = [e.change_set.get("other_organisations") for e in
               history_of("partnership", partnership.id)]
    assert changes[-2:] == [[[], [facilitator.id]], [[facilitator.id], []]]
