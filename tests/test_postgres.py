"""PostgreSQL: the URL a host hands out works, and the audit trail cannot be rewritten."""

import itertools
import os

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from governance import create_app
from governance.audit import AuditEvent
from governance.database import prepare_config
from governance.extensions import db
from governance.interactions import services
from governance.interactions.models import Interaction

from .conftest import make_config


@pytest.mark.parametrize("given", ["postgresql://app:secret@db.internal:5432/governance",
                                   "postgres://app:secret@db.internal:5432/governance"])
def test_a_plain_postgresql_url_is_served_by_psycopg_3_with_connection_checks(given):
    config = {"SQLALCHEMY_DATABASE_URI": given, "SQLALCHEMY_ENGINE_OPTIONS": {}}
    prepare_config(config)
    url = make_url(config["SQLALCHEMY_DATABASE_URI"])
    assert url.drivername == "postgresql+psycopg"
    assert (url.username, url.password, url.host, url.database) == (
        "app", "secret", "db.internal", "governance")
    assert config["SQLALCHEMY_ENGINE_OPTIONS"]["pool_pre_ping"] is True


def test_a_sqlite_url_is_left_alone_and_keeps_its_files_in_a_folder():
    config = {"SQLALCHEMY_DATABASE_URI": "sqlite:////srv/governance.sqlite"}
    prepare_config(config)
    assert config == {"SQLALCHEMY_DATABASE_URI": "sqlite:////srv/governance.sqlite",
                      "FILE_STORE": "folder"}


def test_postgresql_keeps_files_in_the_database_where_every_server_reaches_them():
    config = {"SQLALCHEMY_DATABASE_URI": "postgresql://app:secret@db.internal/governance"}
    prepare_config(config)
    assert config["FILE_STORE"] == "database"
    folder = {"SQLALCHEMY_DATABASE_URI": "postgresql://app@db.internal/g", "FILE_STORE": "folder"}
    prepare_config(folder)
    assert folder["FILE_STORE"] == "folder"  # a shared folder, if the deployment has one


def test_files_in_a_sqlite_database_are_refused_with_the_reason():
    from governance.config import ConfigurationError

    config = {"SQLALCHEMY_DATABASE_URI": "sqlite:////srv/g.sqlite", "FILE_STORE": "database"}
    with pytest.raises(ConfigurationError, match="'database' on PostgreSQL"):
        prepare_config(config)


_roles = itertools.count(1)


@pytest.fixture
def application_role(app):
    """A login role that does not own the tables, as production's application role."""
    name = f"governance_app_{os.getpid()}_{next(_roles)}"
    db.session.execute(text(f"CREATE ROLE {name} LOGIN PASSWORD 'app-password'"))
    db.session.commit()
    url = db.engine.url.set(username=name, password="app-password")
    yield name, url.render_as_string(hide_password=False)
    db.session.remove()
    db.session.execute(text(f"DROP OWNED BY {name}"))
    db.session.commit()
    db.session.remove()
    db.engine.dispose()
    with db.engine.connect() as connection:
        connection.execute(text(f"DROP ROLE {name}"))
        connection.commit()


@pytest.mark.postgres_only
def test_audit_events_refuse_truncate(make_org):
    make_org("Some Org", "other")
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.execute(text("TRUNCATE audit_events"))
    db.session.rollback()
    assert db.session.scalar(db.select(db.func.count(AuditEvent.id))) == 1


@pytest.mark.postgres_only
def test_the_application_role_writes_records_but_may_not_rewrite_audit_events_or_checkpoints(
        app, runner, tmp_path, application_role, make_interaction, compliance_user):
    role, url = application_role
    make_interaction(title="Logged by the owner")
    db.session.commit()
    granted = runner.invoke(args=["grant-app-role", role])
    assert granted.exit_code == 0, granted.output
    assert "REVOKE UPDATE, DELETE, TRUNCATE ON" in granted.output

    as_app = create_app(make_config(tmp_path, SQLALCHEMY_DATABASE_URI=url))
    with as_app.app_context():
        actor = db.session.get(type(compliance_user), compliance_user.id)
        logged = services.log_interaction(
            {"title": "Logged by the application role", "occurred_on": "2025-05-02",
             "format": "survey", "organisation_id": actor.organisation_id or 1}, actor)
        db.session.commit()
        services.update_interaction(logged, {"title": "Edited by the application role"}, actor)
        db.session.commit()
        for statement in ("UPDATE audit_events SET actor_label = 'mallory'",
                          "DELETE FROM audit_events", "TRUNCATE audit_events",
                          "UPDATE audit_checkpoints SET reason = 'periodic'",
                          "DELETE FROM audit_checkpoints", "TRUNCATE audit_checkpoints"):
            with pytest.raises(DBAPIError, match="permission denied"):
                db.session.execute(text(statement))
            db.session.rollback()
        assert db.session.scalar(text("SELECT current_user")) == role
        db.session.remove()
        db.engine.dispose()
    titles = set(db.session.scalars(db.select(Interaction.title)))
    assert titles == {"Logged by the owner", "Edited by the application role"}


@pytest.mark.postgres_only
def test_granting_refuses_a_role_that_owns_the_tables(runner, make_org):
    make_org("Org", "other")
    owner = db.session.scalar(text("SELECT current_user"))
    db.session.commit()
    result = runner.invoke(args=["grant-app-role", owner])
    assert result.exit_code != 0
    assert "owns the tables" in result.output


@pytest.mark.sqlite_only
def test_granting_roles_is_refused_on_sqlite_with_a_clear_message(runner):
    result = runner.invoke(args=["grant-app-role", "anyone"])
    assert result.exit_code != 0
    assert "PostgreSQL only" in result.output


def test_ids_past_what_a_postgresql_integer_holds_are_a_clear_answer_not_a_crash(
        client, make_user, sponsor):
    from governance.auth import services as accounts

    token = accounts.issue_token(make_user("advocate", sponsor), "tests")
    db.session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    just_past = 2**31  # one more than PostgreSQL's integer columns hold
    created = client.post("/api/v1/partnerships", headers=headers, json={
        "title": "Too far", "sponsor_id": just_past, "patient_group_id": str(just_past),
        "kind": "advocacy"})
    assert created.status_code == 422
    assert set(created.get_json()["error"]["fields"]) >= {"sponsor_id", "patient_group_id"}
    for path in (f"/api/v1/partnerships/{just_past}", f"/api/v1/interactions/{just_past}"):
        assert client.get(path, headers=headers).status_code == 404
    assert client.post(f"/api/v1/flags/{just_past}/transition", headers=headers,
                       json={"state": "dismissed"}).status_code == 404
