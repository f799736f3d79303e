"""Unbound extensions, bound to the application in create_app."""

from flask_bootstrap import Bootstrap5
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
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
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
bootstrap = Bootstrap5()


def init_limiter(app) -> None:
    """Rate limits here are declared on the views that need them (the sign-in form) and
    checked by their decorators. Flask-Limiter also runs a check of application-wide limits
    before every request; with none configured that check finds nothing, at a cost every API
    request paid (3 % of a write's function calls), so it is not installed then."""
    limiter.init_app(app)
    if app.config["RATELIMIT_ENABLED"] and not (app.config.get("RATELIMIT_DEFAULT")
                                                or app.config.get("RATELIMIT_APPLICATION")):
        # ValueError here means a Flask-Limiter upgrade renamed its hook: fail at start-up.
        app.before_request_funcs[None].remove(limiter._check_request_limit)
