"""One record per form submission, and what was typed kept across an expired session.

A form that creates or changes records renders `{{ form_token() }}`: a hidden, random,
one-time `form_token`. The first POST that carries it claims it inside the request's own
transaction, so the claim commits together with whatever the view saves. A second POST with
the same token (a double click, a page brought back and sent again) finds it claimed and is sent
where the first one went, with a message, instead of saving twice. A submission the view does not
commit (a field error) leaves the token free, so the corrected form can be sent.

When a form is posted after its session ended (signed out on another device, a new password,
cookies cleared), the values typed are kept server-side for up to KEEP_UNSAVED_FOR and the person
is sent to log in; on the form's page after logging in, static/forms.js fills them back in for the
person to check and submit. Passwords and files are never kept; when something could not be kept
the message says so. Only a same-origin POST is kept (a cross-site form cannot plant values).
"""

import json
import re
import secrets
import time
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from flask import Flask, flash, g, has_request_context, redirect, request, session, url_for
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import ForeignKey, String, Text, delete, event, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column
from werkzeug.exceptions import RequestEntityTooLarge

from ..database import utcnow
from ..errors import is_api_request
from ..extensions import db

TOKEN_FIELD = "form_token"
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{20,64}")
NEVER_KEPT = frozenset({"csrf_token", TOKEN_FIELD, "password", "current_password",
                        "new_password"})
KEEP_UNSAVED_FOR = timedelta(hours=12)
UNSAVED_MAX_CHARS = 200_000
SESSION_KEY = "unsaved_form"
# How long a repeated submission waits for the first one to say where it went.
WAIT_FOR_FIRST_SECONDS = 5.0

ALREADY_SUBMITTED = ("This form had already been sent, so it was not saved a second time. "
                     "This is the result of the first submission.")
KEPT_MESSAGE = ("Your session ended before this form was saved, so nothing was saved. Log in "
                "again and what you typed will be filled back in for you to check and send.")
RESTORED_MESSAGE = ("What you typed before your session ended has been filled back in. "
                    "Nothing has been saved yet: check it and send the form again.")


class FormSubmission(db.Model):
    """A form token that has been used, and where its submission led."""

    __tablename__ = "form_submissions"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    path: Mapped[str] = mapped_column(String(500))
    # NULL while the first submission is still finishing; '' when it led to no new page.
    location: Mapped[str | None] = mapped_column(String(1000))
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class UnsavedForm(db.Model):
    """Values of a form posted after its session ended, waiting for the person to log in."""

    __tablename__ = "unsaved_forms"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The account whose session ended, when the old session still said; only it gets them back.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    page: Mapped[str] = mapped_column(String(1000))
    action: Mapped[str] = mapped_column(String(1000))
    values_json: Mapped[str] = mapped_column(Text)
    saved_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


# --- one-time form tokens -------------------------------------------------------------------


def form_token_field() -> Markup:
    """Render the hidden one-time token: the sent one again when a refused form is shown back
    (nothing was saved), a new one otherwise (also on a page rendered after a save)."""
    saved = g.get("form_token_state") in ("committed", "written-after-commit", "recorded")
    try:
        token = request.form.get(TOKEN_FIELD, "") if request.method == "POST" and not saved \
            else ""
    except RequestEntityTooLarge:  # the page that says so renders without the sent form
        token = ""
    if not TOKEN_PATTERN.fullmatch(token):
        token = secrets.token_urlsafe(24)
    return Markup('<input type="hidden" name="{}" value="{}">').format(TOKEN_FIELD, token)


def claim_form_token():
    """Claim this POST's token in the request's transaction, or send a repeat to the first."""
    if request.method != "POST" or is_api_request() or not current_user.is_authenticated:
        return None
    token = request.form.get(TOKEN_FIELD)
    if not token:
        return None
    if not TOKEN_PATTERN.fullmatch(token):
        return None  # not one of ours: the form is handled as if it had none
    user_id = current_user.id
    claim = FormSubmission(token=token, user_id=user_id, path=request.path[:500])
    db.session.add(claim)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        return _send_to_first_submission(token, user_id)
    g.form_token = token
    g.form_token_state = "pending"
    return None


def _send_to_first_submission(token: str, user_id: int):
    deadline = time.monotonic() + WAIT_FOR_FIRST_SECONDS
    location = None
    while True:
        row = db.session.execute(
            select(FormSubmission.user_id, FormSubmission.location)
            .where(FormSubmission.token == token)
        ).first()
        db.session.rollback()  # release SQLite's lock so the first request can finish
        if row is not None and row.user_id != user_id:
            row = None  # someone else's token: reveal nothing about it
            break
        if row is not None and row.location is not None:
            location = row.location
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    flash(ALREADY_SUBMITTED, "info")
    return redirect(location or _same_origin_path(request.referrer) or url_for("main.home"),
                    303)


def _on_commit(session: Session) -> None:
    if has_request_context() and g.get("form_token_state") == "pending":
        g.form_token_state = "committed"


def _on_rollback(session: Session) -> None:
    if has_request_context() and g.get("form_token_state") == "pending":
        g.form_token_state = "released"


def _on_flush(session: Session, _context) -> None:
    if has_request_context() and g.get("form_token_state") == "committed":
        # The view wrote more after committing; never commit that on its behalf.
        g.form_token_state = "written-after-commit"


def record_where_it_went(response):
    """Store the first submission's result page so a repeat can be sent there."""
    if g.get("form_token_state") != "committed":
        return response
    location = ""
    if response.status_code in (301, 302, 303) and response.location:
        location = _same_origin_path(response.location) or ""
    db.session.execute(update(FormSubmission).where(FormSubmission.token == g.form_token)
                       .values(location=location[:1000]))
    db.session.commit()
    g.form_token_state = "recorded"
    return response


# --- forms sent after the session ended -----------------------------------------------------


def keep_unsaved_form(response):
    """Keep what was typed when a POST was refused for want of a session, and say so."""
    if (request.method != "POST" or is_api_request() or current_user.is_authenticated
            or response.status_code not in (302, 303)
            or urlsplit(response.location or "").path != url_for("auth.login")
            or not _is_same_origin_post()):
        return response
    values = {name: request.form.getlist(name) for name in request.form
              if name not in NEVER_KEPT and "password" not in name}
    if not any(v for vs in values.values() for v in vs):
        return response  # nothing typed (a log-out button, say): the usual login page
    page = _same_origin_path(request.referrer) or request.full_path.rstrip("?")
    problems = []
    if any(f.filename for f in request.files.values()):
        problems.append("files must be attached again")
    encoded = json.dumps(values)
    if len(encoded) > UNSAVED_MAX_CHARS:
        flash("Your session ended before this form was saved, so nothing was saved, and what "
              "you typed was too long to keep. Log in and enter it again.", "warning")
    else:
        _purge_unsaved()
        key = secrets.token_urlsafe(24)
        db.session.add(UnsavedForm(key=key, user_id=_expired_user_id(), page=page[:1000],
                                   action=request.path[:1000], values_json=encoded))
        db.session.commit()
        session[SESSION_KEY] = key
        message = KEPT_MESSAGE
        if problems:
            message += " Not everything could be kept: " + "; ".join(problems) + "."
        flash(message, "warning")
    response.location = url_for("auth.login", next=page)
    return response


def restore_unsaved_form():
    """On the form's page after logging in, hand the kept values to the template once."""
    key = session.get(SESSION_KEY)
    if not key or request.method != "GET" or not current_user.is_authenticated:
        return None
    kept = db.session.get(UnsavedForm, key)
    if kept is None or kept.saved_at < utcnow() - KEEP_UNSAVED_FOR:
        session.pop(SESSION_KEY, None)
        return None
    if kept.user_id is not None and kept.user_id != current_user.id:
        _discard(kept)  # another account logged in: the values are not theirs to see
        return None
    if request.full_path.rstrip("?") != kept.page and request.path != kept.page:
        return None
    g.restored_form = {"action": kept.action, "values": json.loads(kept.values_json)}
    _discard(kept)
    flash(RESTORED_MESSAGE, "info")
    return None


def restored_form():
    return g.get("restored_form")


def _discard(kept: UnsavedForm) -> None:
    session.pop(SESSION_KEY, None)
    db.session.execute(delete(UnsavedForm).where(UnsavedForm.key == kept.key))
    db.session.commit()


def _purge_unsaved() -> None:
    cutoff = utcnow() - KEEP_UNSAVED_FOR
    db.session.execute(delete(UnsavedForm).where(UnsavedForm.saved_at < cutoff))
    db.session.execute(delete(FormSubmission).where(FormSubmission.submitted_at
                                                    < utcnow() - timedelta(days=30)))


def _expired_user_id() -> int | None:
    # A session that reached its time limit in this request was signed out (security.py).
    remembered = str(g.get("session_ended_user_id") or session.get("_user_id") or "")
    user_id = remembered.partition(":")[0]
    return int(user_id) if user_id.isdigit() else None


def _is_same_origin_post() -> bool:
    origin = request.headers.get("Origin")
    if origin:
        return origin.rstrip("/") == request.host_url.rstrip("/")
    return _same_origin_path(request.referrer) is not None


def _same_origin_path(url: str | None) -> str | None:
    """The path (and query) of a URL on this site, or None for any other site."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.netloc and f"{parts.scheme}://{parts.netloc}/" != request.host_url:
        return None
    if not parts.path.startswith("/") or parts.path.startswith("//"):
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _forget_previous_request() -> None:
    # `g` lives as long as the app context, which a test (or a CLI command) may share between
    # requests: nothing of another request's submission may leak into this one.
    for name in ("form_token", "form_token_state", "restored_form"):
        g.pop(name, None)


def init_app(app: Flask) -> None:
    # Registered after security's access check, so the user is known and CSRF was checked.
    app.before_request(_forget_previous_request)
    app.before_request(claim_form_token)
    app.before_request(restore_unsaved_form)
    app.after_request(record_where_it_went)
    app.after_request(keep_unsaved_form)
    app.jinja_env.globals.update(form_token=form_token_field, restored_form=restored_form)
    if not getattr(Session, "_form_token_events", False):
        event.listen(Session, "after_commit", _on_commit)
        event.listen(Session, "after_rollback", _on_rollback)
        event.listen(Session, "after_flush", _on_flush)
        Session._form_token_events = True
