"""Enforcing access: authentication (session or token), each route's declared permission
(default-deny, see permissions.py), CSRF and security headers."""

import functools

from flask import Flask, abort, current_app, g, redirect, request, url_for
from flask_login import AnonymousUserMixin, current_user
from flask_wtf.csrf import CSRFError
from sqlalchemy import bindparam, select
from werkzeug.middleware.proxy_fix import ProxyFix

from .auth.tokens import hash_token
from .database import SAFE_METHODS, end_read_transaction, read_before_writing, utcnow
from .errors import is_api_request, json_error
from .extensions import csrf, db, login_manager
from .permissions import EVERYONE, permission_for

ALWAYS_PUBLIC_ENDPOINTS = frozenset({"static", "bootstrap.static"})

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)


# --- authentication ------------------------------------------------------------------------


def user_from_bearer_token():
    """The user whose live, unexpired API token the request carries, else None."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    # A transaction already open (a command's, a test's shared context) may hold the write
    # lock that recording the use would wait for: the use is then not recorded.
    session = db.session()
    outer_transaction = session.in_transaction()
    now = utcnow()
    found = session.execute(_token_owner_query(),
                            {"token_hash": hash_token(token.strip()), "now": now}).first()
    if found is None or not found.User.is_active:
        return None
    if not outer_transaction:
        from .auth.services import note_token_use

        if note_token_use(found.token_id, found.last_used_at, now):
            # What the request reads next is read after the stamp (on SQLite, a transaction
            # that read before another's write can no longer write).
            end_read_transaction(session)
    return found.User


@functools.cache
def _token_owner_query():
    """Built once: every API request runs it."""
    from .auth.models import ApiToken, User

    return (select(User, ApiToken.id.label("token_id"), ApiToken.last_used_at)
            .join(ApiToken, ApiToken.user_id == User.id)
            .where(ApiToken.token_hash == bindparam("token_hash"),
                   ApiToken.revoked_at.is_(None), ApiToken.voided_at.is_(None),
                   ApiToken.expires_at > bindparam("now")))


@login_manager.user_loader
def load_user(session_id: str):
    from .auth.models import User

    user_id, _, generation = session_id.partition(":")
    if not user_id.isdigit() or not generation.isdigit():
        return None
    user = db.session.get(User, int(user_id))
    if user is None or not user.is_active or user.session_generation != int(generation):
        return None
    return user


def authenticate_request() -> None:
    """API requests authenticate by bearer token only; pages by their session cookie. Either
    is read before a write request takes the database's write lock."""
    # Never reuse a user remembered by an application context that outlives the request
    # (tests keep one context across many requests).
    g.pop("_login_user", None)
    with read_before_writing():
        if is_api_request():
            user = user_from_bearer_token()
            g._login_user = user or AnonymousUserMixin()
            if request.headers.get("Authorization") and user is None:
                current_app.logger.warning("refused API token from %s", request.remote_addr)
        else:
            current_user._get_current_object()  # Flask-Login loads it from the session cookie


def enforce_access():
    """Refuse every request that its route did not declare, then check CSRF centrally."""
    endpoint = request.endpoint
    if endpoint is None or endpoint in ALWAYS_PUBLIC_ENDPOINTS:
        return None
    authenticate_request()
    needed = permission_for(endpoint, request.method)
    if needed != EVERYONE:
        refusal = _refusal(needed)
        if refusal is not None:
            return refusal
    if request.method not in SAFE_METHODS and not is_api_request() \
            and current_app.config.get("WTF_CSRF_ENABLED", True):
        csrf.protect()
    return None


def _refusal(needed):
    if not current_user.is_authenticated:
        if is_api_request():
            return json_error(401, "A valid API token is required (Authorization: Bearer ...).")
        if needed is None:
            abort(403)
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    if needed is None or not needed(current_user):
        current_app.logger.warning(
            "refused %s %s to %s (%s)", request.method, request.path, current_user.email,
            current_user.role,
        )
        abort(403)
    return None


def add_security_headers(response):
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    if current_app.config["SESSION_COOKIE_SECURE"]:
        response.headers["Strict-Transport-Security"] = "max-age=31536000"
    return response


def _csrf_refused(error: CSRFError):
    current_app.logger.warning("refused CSRF on %s %s: %s", request.method, request.path,
                               error.description)
    from flask import render_template

    return render_template("errors/error.html", code=400, title="Form expired or forged",
                           message="This form could not be accepted because its security token "
                           "is missing or wrong. Nothing was saved. Reload the page and try "
                           "again."), 400


def _trust_proxies(app: Flask) -> None:
    """Behind `TRUSTED_PROXIES` reverse proxies, take the client's address and scheme from what
    they forwarded (never the Host: absolute links come from `SERVER_NAME`)."""
    proxies = app.config["TRUSTED_PROXIES"]
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=0)


def init_app(app: Flask) -> None:
    _trust_proxies(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to see that page."
    login_manager.session_protection = "strong"
    app.before_request(enforce_access)
    app.after_request(add_security_headers)
    app.register_error_handler(CSRFError, _csrf_refused)
