"""Unbound extensions, bound to the application in create_app."""

import click
from flask import current_app
from flask_bootstrap import Bootstrap5
from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
login_manager = LoginManager()
csrf = CSRFProtect()
bootstrap = Bootstrap5()


class _MigrationCommands(click.Command):
    """`flask db …`: Flask-Migrate's command group, loaded when it is run."""

    def make_context(self, info_name, args, parent=None, **extra):
        load_migrations(current_app)
        from flask_migrate.cli import db as migration_commands

        return migration_commands.make_context(info_name, args, parent=parent, **extra)


def init_migrations(app) -> None:
    """Register `flask db`. Flask-Migrate imports Alembic, a third of a second that neither the
    web workers nor the other commands need: it is loaded by the first migration command."""
    app.cli.add_command(_MigrationCommands("db", help="Perform database migrations."))


def load_migrations(app) -> None:
    """Bind Flask-Migrate to the application (once), for Alembic's commands and init-db."""
    if "migrate" in app.extensions:
        return
    from flask_migrate import Migrate

    from .config import project_root

    Migrate(app, db, directory=str(project_root() / "migrations"), render_as_batch=True,
            compare_type=True)
