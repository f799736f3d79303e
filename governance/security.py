"""Who may do what: declared roles per route (default-deny), CSRF, tokens, headers, scopes."""

import functools

from flask import Flask, abort, current_app, g, redirect, request, url_for
from flask_login import AnonymousUserMixin, current_user
from flask_wtf.csrf import CSRFError
from sqlalchemy import bindparam, or_, select, true

from .auth.tokens import hash_token
from .database import SAFE_METHODS, end_read_transaction, read_before_writing, utcnow
from .errors import is_api_request, json_error
from .extensions import csrf, db, login_manager

EVERYONE = frozenset({"*"})
ALL_ROLES = frozenset({"advocate", "compliance", "auditor", "partner", "admin"})
STAFF = frozenset({"advocate", "compliance", "auditor", "admin"})
READERS = frozenset({"advocate", "compliance", "auditor"})
EDITORS = frozenset({"advocate", "compliance"})
ALWAYS_PUBLIC_ENDPOINTS = frozenset({"static", "bootstrap.static"})

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)


def allow(*roles: str):
    """Declare the roles that may use a view; a view that declares nothing refuses everyone."""
    unknown = set(roles) - ALL_ROLES - {"*"}
    if unknown:
        raise ValueError(f"unknown roles: {sorted(unknown)}")

    def decorate(view):
        view.allowed_roles = frozenset(roles)
        return view

    return decorate


public = allow("*")


def allowed_roles_for(endpoint: str, method: str):
    view = current_app.view_functions.get(endpoint)
    if view is None:
        return None
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        handler = getattr(view_class, method.lower(), None)
        if handler is None and method == "HEAD":
            handler = getattr(view_class, "get", None)
        return getattr(handler, "allowed_roles", getattr(view_class, "allowed_roles", None))
    return getattr(view, "allowed_roles", None)


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
                   or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > bindparam("now"))))


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
    allowed = allowed_roles_for(endpoint, request.method)
    if allowed != EVERYONE:
        refusal = _refusal(allowed)
        if refusal is not None:
            return refusal
    if request.method not in SAFE_METHODS and not is_api_request() \
            and current_app.config.get("WTF_CSRF_ENABLED", True):
        csrf.protect()
    return None


def _refusal(allowed):
    if not current_user.is_authenticated:
        if is_api_request():
            return json_error(401, "A valid API token is required (Authorization: Bearer ...).")
        if allowed is None:
            abort(403)
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    if allowed is None or current_user.role not in allowed:
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


def init_app(app: Flask) -> None:
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to see that page."
    login_manager.session_protection = "strong"
    app.before_request(enforce_access)
    app.after_request(add_security_headers)
    app.register_error_handler(CSRFError, _csrf_refused)


# --- what a user may see --------------------------------------------------------------------


def sees_everything(user) -> bool:
    return user.role in ("compliance", "auditor")


def partnership_scope(user):
    """SQL condition: the partnerships this user may see."""
    from .partnerships.models import Partnership, partnership_members

    if sees_everything(user):
        return true()
    org = user.organisation_id
    if org is None or user.role not in ("advocate", "partner"):
        return Partnership.id.is_(None)
    member_of = select(partnership_members.c.partnership_id).where(
        partnership_members.c.organisation_id == org
    )
    return (
        or_(Partnership.sponsor_id == org, Partnership.patient_group_id == org,
            Partnership.id.in_(member_of))
        & Partnership.voided_at.is_(None)
    )


def interaction_scope(user):
    """SQL condition: the interactions this user may see."""
    from .interactions.models import Interaction
    from .partnerships.models import Partnership

    if sees_everything(user):
        return true()
    visible_partnerships = select(Partnership.id).where(partnership_scope(user))
    in_partnership = Interaction.partnership_id.in_(visible_partnerships)
    if user.role == "advocate" and user.organisation_id is not None:
        in_partnership = or_(in_partnership, Interaction.organisation_id == user.organisation_id)
    elif user.role != "partner":
        return Interaction.id.is_(None)
    return in_partnership & Interaction.voided_at.is_(None)


def organisation_scope(user):
    """SQL condition: the organisations this user may see (voided ones only for those who see
    everything, and for administrators)."""
    from .organisations.models import Organisation

    if sees_everything(user) or user.role == "admin":
        return true()
    return Organisation.voided_at.is_(None)


def _plainly_visible_interaction(user, interaction) -> bool:
    """What interaction_scope lets through, where it is plain without a query: everything for
    compliance and auditors, an advocate's own organisation's live interactions."""
    return sees_everything(user) or (
        user.role == "advocate" and user.organisation_id is not None
        and interaction.organisation_id == user.organisation_id and interaction.voided_at is None)


def _plainly_open_partnership(user, partnership) -> bool:
    """What partnership_scope lets through, where it is plain without a query: everything for
    compliance and auditors, the live partnerships of which an advocate's or partner's
    organisation is the sponsor or the patient group."""
    return sees_everything(user) or (
        user.role in ("advocate", "partner") and user.organisation_id is not None
        and user.organisation_id in (partnership.sponsor_id, partnership.patient_group_id)
        and partnership.voided_at is None)


def _plainly_visible_organisation(user, organisation) -> bool:
    return organisation.voided_at is None or sees_everything(user) or user.role == "admin"


# A scope's shortcut may only say "visible"; when it cannot, the scope's query decides.
PLAIN_SCOPES = {interaction_scope: _plainly_visible_interaction,
                partnership_scope: _plainly_open_partnership,
                organisation_scope: _plainly_visible_organisation}


def visible_record(model, record_id: int, scope, user, options=()):
    """Load a record the user may see, or None (when it does not exist or is not theirs).
    `options`: loader options (what to load with it)."""
    plainly_visible = PLAIN_SCOPES.get(scope)
    if plainly_visible is not None:
        record = db.session.get(model, record_id, options=options)
        if record is None or plainly_visible(user, record):
            return record
    return db.session.scalar(
        select(model).options(*options).where(model.id == record_id, scope(user)))


def visible_or_404(model, record_id: int, scope, options=()):
    """Load a record the current user may see, or answer 404 (never reveal that it exists)."""
    record = visible_record(model, record_id, scope, current_user, options)
    if record is None:
        abort(404)
    return record

