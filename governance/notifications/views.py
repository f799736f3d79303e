"""The inbox (every signed-in user's own notifications) and each user's notification
settings."""

from flask import Blueprint, Flask, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from ..errors import DomainError
from ..extensions import db
from ..forms import attach_errors, form_status
from ..permissions import allow, can_use_account
from ..vocabulary import NOTIFICATION_KINDS
from . import services
from .forms import SettingsForm

bp = Blueprint("notifications", __name__, url_prefix="/notifications")


@bp.route("/")
@allow(can_use_account)
def inbox():
    unread_only = request.args.get("show") == "unread"
    page_number = max(1, request.args.get("page", 1, type=int) or 1)
    page = services.inbox(current_user, unread_only, page_number)
    return render_template("notifications/inbox.html", page=page, unread_only=unread_only,
                           kinds=NOTIFICATION_KINDS)


@bp.route("/<int:notification_id>/open", methods=["POST"])
@allow(can_use_account)
def open_notification(notification_id: int):
    """Mark the notification read and go to the record it is about."""
    try:
        notification = services.own_notification(current_user, notification_id)
    except DomainError:
        abort(404)
    services.mark_read(notification)
    db.session.commit()
    return redirect(notification.link, 303)


@bp.route("/read-all", methods=["POST"])
@allow(can_use_account)
def read_all():
    count = services.mark_all_read(current_user)
    db.session.commit()
    flash(f"{count} notification{'s' if count != 1 else ''} marked read.", "success")
    return redirect(url_for(".inbox"), 303)


@bp.route("/settings", methods=["GET", "POST"])
@allow(can_use_account)
def settings():
    saved = services.settings_for(current_user)
    form = SettingsForm()
    if request.method == "GET":
        form.by_mail.data = [kind for kind in NOTIFICATION_KINDS
                             if kind not in (saved.inbox_only or [])]
        form.daily_digest.data = saved.daily_digest
    if form.validate_on_submit():
        chosen = set(form.by_mail.data or [])
        try:
            services.save_settings(current_user, {
                "inbox_only": [kind for kind in NOTIFICATION_KINDS if kind not in chosen],
                "daily_digest": form.daily_digest.data})
        except DomainError as error:
            db.session.rollback()
            attach_errors(form, error)
        else:
            db.session.commit()
            flash("Your notification settings are saved.", "success")
            return redirect(url_for(".settings"), 303)
    return render_template("notifications/settings.html", form=form), form_status(form)


def unread_notifications() -> int:
    """The signed-in user's unread count, for the header."""
    if not current_user.is_authenticated:
        return 0
    return services.unread_count(current_user)


def init_app(app: Flask) -> None:
    app.jinja_env.globals["unread_notifications"] = unread_notifications
