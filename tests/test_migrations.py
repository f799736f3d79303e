"""The Alembic migrations build exactly the schema the models describe, triggers included."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from governance import create_app
from governance.extensions import db

from .conftest import make_config


def test_init_db_builds_the_models_schema_with_append_only_triggers(tmp_path):
    app = create_app(make_config(tmp_path))
    result = app.test_cli_runner().invoke(args=["init-db"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        engine = db.engine
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, db.metadata)
            triggers = {row[0] for row in connection.execute(
                text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))}
        db.engine.dispose()
    assert differences == [], differences
    assert {"audit_events_no_update", "audit_events_no_delete"} <= triggers


def test_init_db_twice_is_harmless(tmp_path):
    app = create_app(make_config(tmp_path))
    runner = app.test_cli_runner()
    assert runner.invoke(args=["init-db"]).exit_code == 0
    assert runner.invoke(args=["init-db"]).exit_code == 0
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    assert "interactions" in inspect(engine).get_table_names()
    engine.dispose()
