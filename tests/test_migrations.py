"""The Alembic migrations build exactly the schema the models describe, triggers included."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from governance import create_app
from governance.extensions import db

from .conftest import empty_database_uri, make_config, trigger_names


def test_init_db_builds_the_models_schema_with_append_only_triggers(tmp_path):
    app = create_app(make_config(tmp_path, SQLALCHEMY_DATABASE_URI=empty_database_uri(tmp_path)))
    result = app.test_cli_runner().invoke(args=["init-db"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        engine = db.engine
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, db.metadata)
            triggers = trigger_names(connection)
        db.engine.dispose()
    assert differences == [], differences
    if engine.dialect.name == "postgresql":
        assert {"audit_events_no_change", "audit_events_no_truncate"} <= triggers
    else:
        assert {"audit_events_no_update", "audit_events_no_delete"} <= triggers


def test_init_db_twice_is_harmless(tmp_path):
    app = create_app(make_config(tmp_path, SQLALCHEMY_DATABASE_URI=empty_database_uri(tmp_path)))
    runner = app.test_cli_runner()
    assert runner.invoke(args=["init-db"]).exit_code == 0
    assert runner.invoke(args=["init-db"]).exit_code == 0
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    assert "interactions" in inspect(engine).get_table_names()
    engine.dispose()
