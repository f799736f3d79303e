"""Partnership governance and interaction logging for sponsor–patient collaborations."""

import secrets
from pathlib import Path

from flask import Flask

from .config import Defaults, env_overrides, project_root

BLUEPRINTS = (
    "governance.auth.views",
    "governance.main.views",
    "governance.organisations.views",
    "governance.partnerships.views",
    "governance.agreements.views",
    "governance.interactions.views",
    "governance.rules.views",
    "governance.review.views",
    "governance.activities.views",
    "governance.attachments.views",
    "governance.auditing.views",
    "governance.operations.views",
    "governance.reports.views",
    "governance.confirmations.views",
    "governance.api.views",
    "governance.transfer.views",
    "governance.users.views",
    "governance.payments.views",
    "governance.notifications.views",
)


def create_app(test_config: dict | None = None) -> Flask:
    """Build the application: configuration layers, extensions, blueprints."""
    root = project_root()
    app = Flask(
        __name__,
        instance_path=str(root / "instance"),
        instance_relative_config=True,
        template_folder=str(root / "templates"),
    )
    app.config.from_object(Defaults)
    app.config.from_pyfile("config.py", silent=True)
    app.config.update(env_overrides())
    if test_config:
        app.config.update(test_config)
    _fill_defaults(app, root)

    from . import audit, database, errors, security
    from .extensions import bootstrap, csrf, db, init_migrations, login_manager

    database.prepare_config(app.config)
    db.init_app(app)
    init_migrations(app)
    login_manager.init_app(app)
    csrf.init_app(app)
    bootstrap.init_app(app)
    database.init_app(app)
    audit.init_app(app)
    security.init_app(app)
    errors.init_app(app)

    from importlib import import_module

    from .validation import RecordId

    app.url_map.converters["int"] = RecordId  # every id in a path: 1 to 2^31-1, else 404
    for module_name in BLUEPRINTS:
        module = import_module(module_name)
        app.register_blueprint(module.bp)
        if hasattr(module, "init_app"):
            module.init_app(app)

    from . import cli, presentation

    cli.init_app(app)
    presentation.init_app(app)
    return app


def _fill_defaults(app: Flask, root: Path) -> None:
    if not app.config["SQLALCHEMY_DATABASE_URI"]:
        app.config["SQLALCHEMY_DATABASE_URI"] = (
            f"sqlite:///{Path(app.instance_path) / 'governance.sqlite'}"
        )
    if not app.config["DATA_DIR"]:
        app.config["DATA_DIR"] = app.instance_path
    if not app.config["POLICIES_DIR"]:
        app.config["POLICIES_DIR"] = str(root / "policies")
    if app.config.get("DEVELOPMENT"):
        for key in ("SESSION_COOKIE_SECURE", "REMEMBER_COOKIE_SECURE"):
            app.config[key] = False
    if not app.config["MAIL_BACKEND"]:
        # `make run` needs no mail server: mail is written to files in instance/outbox.
        app.config["MAIL_BACKEND"] = "file" if app.config.get("DEVELOPMENT") else "smtp"
    app.config.setdefault("MAIL_FILE_PATH", str(Path(app.instance_path) / "outbox"))
    if not app.config["SECRET_KEY"]:
        # Sessions then last only as long as this process; `make run` writes a lasting key.
        app.config["SECRET_KEY"] = secrets.token_hex(32)
        app.logger.warning("No SECRET_KEY configured: using a temporary one for this process.")
