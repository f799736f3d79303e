"""Enforcing access: authentication (session or token), the session's limits, each route's
declared permission (default-deny, see permissions.py), CSRF, security headers and the
addresses given to clients."""

import functools
import time
from datetime import timedelta
from urllib.parse import urlsplit

from flask import Flask, abort, current_app, flash, g, redirect, request, session, url_for
from flask_login import (
    AnonymousUserMixin,
    current_user,
    login_user,
    logout_user,
    user_loaded_from_cookie,
)
from flask_wtf.csrf import CSRFError
from sqlalchemy import bindparam, select
from werkzeug.exceptions import SecurityError
from werkzeug.middleware.proxy_fix import ProxyFix

from .auth.tokens import hash_token
from .config import ConfigurationError
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
    """The user a session (or remember cookie) names, unless they signed out everywhere since
    (a new session generation), stopped, or signed in with "remember me" longer ago than it
    lasts."""
    from .auth.models import User

    parts = _session_id_parts(session_id)
    if parts is None:
        return None
    user_id, generation, remembered_since = parts
    if remembered_since is not None and time.time() - remembered_since \
            > current_app.config["REMEMBER_COOKIE_DURATION"].total_seconds():
        return None
    user = db.session.get(User, user_id)
    if user is None or not user.is_active or user.session_generation != generation:
        return None
    return user


def _session_id_parts(session_id: str) -> tuple[int, int, int | None] | None:
    """(user id, session generation, remembered since) that a session names: `id:generation`,
    and `:time` of the sign-in when remembered. None when it is not one of ours."""
    parts = str(session_id).split(":")
    if len(parts) not in (2, 3) or not all(part.isdigit() for part in parts):
        return None
    user_id, generation, *remembered = map(int, parts)
    return user_id, generation, remembered[0] if remembered else None


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
            enforce_session_limits()


# --- sessions ------------------------------------------------------------------------------

# The session's clocks, in seconds since the epoch, kept in the signed session cookie.
SIGNED_IN_AT = "signed_in_at"
ACTIVE_AT = "active_at"
# Activity is written at most this often (each write is a new session cookie), so a session
# may end up to this much before its idle limit, never after.
ACTIVITY_RESOLUTION_SECONDS = 60
# Requests a page or a probe makes on its own: they are no activity of the person.
NOT_ACTIVITY = frozenset({"operations.health", "reports.status", "rules.reevaluation_status"})
MAX_REMEMBER = timedelta(days=30)


def begin_session(user, remember: bool = False) -> None:
    """Sign `user` in on this browser: a new session that keeps nothing of the one before but
    the messages to show and a form kept from an expired session (so a new CSRF token), its
    idle and absolute clocks started. With `remember`, a remember cookie signs this browser in
    for REMEMBER_COOKIE_DURATION from now, whatever the activity; without, an earlier one is
    forgotten."""
    from .main.submissions import SESSION_KEY as UNSAVED_FORM

    kept = {key: session[key] for key in ("_flashes", UNSAVED_FORM) if key in session}
    session.clear()
    session.update(kept)
    g.pop("csrf_token", None)  # flask-wtf's copy of the old token, for the rest of the request
    login_user(user, remember=remember)
    now = int(time.time())
    if remember:
        # The remember cookie is written from this id: it carries the time of the sign-in,
        # signed, so load_user refuses it after its duration even if a client kept it longer.
        session["_user_id"] = f"{user.get_id()}:{now}"
    else:
        session["_remember"] = "clear"
    session[SIGNED_IN_AT] = session[ACTIVE_AT] = now


def enforce_session_limits() -> None:
    """End a signed-in browser's session SESSION_IDLE_MINUTES after its last activity or
    SESSION_ABSOLUTE_HOURS after its sign-in, else note the activity (to the minute). A
    remembered session's limit is its remember cookie's (load_user)."""
    parts = _session_id_parts(session.get("_user_id", ""))
    if not current_user.is_authenticated or parts is None or parts[2] is not None:
        return
    now = int(time.time())
    # A session without clocks was begun from a remember cookie or before they existed.
    signed_in_at = session.setdefault(SIGNED_IN_AT, now)
    active_at = session.setdefault(ACTIVE_AT, now)
    idle_minutes = current_app.config["SESSION_IDLE_MINUTES"]
    absolute_hours = current_app.config["SESSION_ABSOLUTE_HOURS"]
    if now - active_at > idle_minutes * 60:
        _end_session(f"Your session ended after {_count(idle_minutes, 'minute')} without "
                     "activity; sign in again.")
    elif now - signed_in_at > absolute_hours * 3600:
        _end_session(f"Your session ended {_count(absolute_hours, 'hour')} after you signed "
                     "in; sign in again.")
    elif now - active_at >= ACTIVITY_RESOLUTION_SECONDS and request.endpoint not in NOT_ACTIVITY:
        session[ACTIVE_AT] = now


def _end_session(message: str) -> None:
    """Sign the browser out; the request goes on as a visitor's (a page that needs a user
    sends to the login, a form's values are kept for after it)."""
    current_app.logger.info("session of %s ended: %s", current_user.email, message)
    logout_user()
    session.pop(SIGNED_IN_AT, None)
    session.pop(ACTIVE_AT, None)
    flash(message, "warning")


def _count(number: int, unit: str) -> str:
    return f"{number} {unit}{'' if number == 1 else 's'}"


def _restored_from_cookie(_app, user) -> None:
    """A browser signed in by its remember cookie: its new session is bound to this client as a
    sign-in's is (Flask-Login's strong protection would otherwise end it at the next request)."""
    session["_id"] = login_manager._session_identifier_generator()


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
        if request.accept_mimetypes.best == "application/json":
            return json_error(401, "You are not signed in (or your session ended): sign in "
                                   "again.")
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
    # Whom the request authenticated, if anyone (asked without reading the user's row again:
    # the request's transaction may have ended).
    user = g.get("_login_user")
    if user is not None and not isinstance(user, AnonymousUserMixin) \
            and request.endpoint not in ALWAYS_PUBLIC_ENDPOINTS \
            and "no-store" not in response.headers.get("Cache-Control", ""):
        # What a signed-in user (or token) was answered stays out of every cache.
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
    return response


def _csrf_refused(error: CSRFError):
    current_app.logger.warning("refused CSRF on %s %s: %s", request.method, request.path,
                               error.description)
    from flask import render_template

    return render_template("errors/error.html", code=400, title="Form expired or forged",
                           message="This form could not be accepted because its security token "
                           "is missing or wrong. Nothing was saved. Reload the page and try "
                           "again."), 400


# --- addresses -----------------------------------------------------------------------------


def external_url(endpoint: str, **values) -> str:
    """The absolute address of a route, for links handed to clients: on PUBLIC_BASE_URL when it
    is set, else on the request's host (one of TRUSTED_HOSTS, Flask refuses any other)."""
    base = current_app.config["PUBLIC_BASE_URL"]
    if not base:
        return url_for(endpoint, _external=True, **values)
    return base + url_for(endpoint, **values)


def _foreign_host_refused(error: SecurityError):
    """A Host outside TRUSTED_HOSTS: 400 with a plain answer (no page: no link can be built)."""
    current_app.logger.warning("refused %s %s for host %r", request.method, request.path,
                               request.headers.get("Host"))
    message = "This server does not answer for that host name."
    if is_api_request():
        return json_error(400, message)
    return message, 400, {"Content-Type": "text/plain; charset=utf-8"}


def _check_settings(config) -> None:
    """Refuse to start on session limits or addresses that could not be honoured; keep them in
    the form the requests read."""
    for key in ("SESSION_IDLE_MINUTES", "SESSION_ABSOLUTE_HOURS"):
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigurationError(f"{key} must be a whole number, at least 1 (got {value!r}).")
    duration = config["REMEMBER_COOKIE_DURATION"]
    if isinstance(duration, int) and not isinstance(duration, bool):
        duration = timedelta(seconds=duration)
    if not isinstance(duration, timedelta) or not timedelta(0) < duration <= MAX_REMEMBER:
        raise ConfigurationError(
            "REMEMBER_COOKIE_DURATION must be at most 30 days (a timedelta, or seconds): a "
            f"remembered browser signs in again at least every 30 days (got {duration!r}).")
    config["REMEMBER_COOKIE_DURATION"] = duration
    base = config["PUBLIC_BASE_URL"]
    hosts = config["TRUSTED_HOSTS"]
    if isinstance(hosts, str):
        hosts = hosts.split(",")
    if base:
        parts = urlsplit(str(base))
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.username \
                or parts.path.strip("/") or parts.query or parts.fragment:
            raise ConfigurationError(
                "PUBLIC_BASE_URL must be the scheme and host the site is reached at, such as "
                f"https://governance.example.org, without a path (got {base!r}).")
        config["PUBLIC_BASE_URL"] = f"{parts.scheme}://{parts.netloc}"
        if hosts is not None:
            hosts = [*hosts, parts.hostname]
    config["TRUSTED_HOSTS"] = None if hosts is None else [host.strip() for host in hosts]


def _trust_proxies(app: Flask) -> None:
    """Behind `TRUSTED_PROXIES` reverse proxies, take the client's address and scheme from what
    they forwarded (never the Host: absolute links come from `PUBLIC_BASE_URL`)."""
    proxies = app.config["TRUSTED_PROXIES"]
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=0)


def init_app(app: Flask) -> None:
    _check_settings(app.config)
    _trust_proxies(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to see that page."
    login_manager.session_protection = "strong"
    app.before_request(enforce_access)
    app.after_request(add_security_headers)
    app.register_error_handler(CSRFError, _csrf_refused)
    app.register_error_handler(SecurityError, _foreign_host_refused)
    user_loaded_from_cookie.connect(_restored_from_cookie, app)
