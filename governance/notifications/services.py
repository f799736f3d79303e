"""Who is told what: the one way to notify (`notify`), the people each event concerns, the
inbox and each user's settings.

A notification is written in the transaction of the change it tells of, so it exists exactly
when the change does. Mail waits in the notification's own row; once the transaction commits,
the task queue is asked to deliver it (notifications/mail.py), and the sweep retries what an
SMTP server refused. Reminders carry a key: the same reminder reaches a user once.
"""

from collections.abc import Iterable

from flask import current_app
from marshmallow import fields, validate
from sqlalchemy import event, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from .. import audit
from ..auth.models import User
from ..database import utcnow
from ..errors import NotFound
from ..extensions import db
from ..pagination import Page
from ..validation import Input, load
from ..vocabulary import NOTIFICATION_KINDS
from .models import Notification, NotificationSettings

RECORDING_ROLES = ("advocate", "compliance")


# --- telling people ------------------------------------------------------------------------


def notify(user_ids: Iterable[int], kind: str, subject: str, body: str, link: str,
           key: str | None = None) -> int:
    """Write one notification for each user (not flushed alone: inserted now, in the current
    transaction); with a key, a user who already has that key's notification gets nothing.
    Return how many were written."""
    assert kind in NOTIFICATION_KINDS, kind
    ids = sorted(set(user_ids))
    if not ids:
        return 0
    settings = _settings_of(ids)
    now = utcnow()
    rows = [{"user_id": user_id, "kind": kind, "subject": subject[:200], "body": body,
             "link": link[:500], "key": key, "created_at": now, "read_at": None,
             "mail_state": _mail_state(settings.get(user_id), kind), "mail_attempts": 0,
             "mail_next_at": now}
            for user_id in ids]
    insert = postgres_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
    statement = insert(Notification).values(rows)
    if key is not None:
        statement = statement.on_conflict_do_nothing(index_elements=["user_id", "key"])
    written = db.session.execute(statement).rowcount
    if any(row["mail_state"] == "waiting" for row in rows):
        db.session.info["mail_waiting"] = True
    return max(written, 0)


def _settings_of(user_ids: list[int]) -> dict[int, NotificationSettings]:
    return {settings.user_id: settings for settings in db.session.scalars(
        select(NotificationSettings).where(NotificationSettings.user_id.in_(user_ids)))}


def _mail_state(settings: NotificationSettings | None, kind: str) -> str:
    if settings is not None and kind in (settings.inbox_only or []):
        return "none"
    return "digest" if settings is not None and settings.daily_digest else "waiting"


def people_of(organisation_ids: Iterable[int | None], roles: Iterable[str]) -> list[int]:
    """The active users of these organisations with these roles."""
    wanted = [org_id for org_id in set(organisation_ids) if org_id is not None]
    if not wanted:
        return []
    return list(db.session.scalars(select(User.id).where(
        User.organisation_id.in_(wanted), User.role.in_(tuple(roles)),
        User.active.is_(True), User.voided_at.is_(None))))


def others(user_ids: Iterable[int]) -> list[int]:
    """The users, without the one acting now (nobody is told of what they did themselves)."""
    actor = audit.current_actor(db.session)
    return [user_id for user_id in user_ids if user_id != actor.id]


@event.listens_for(Session, "after_commit")
def _mail_committed(session: Session) -> None:
    if session.info.pop("mail_waiting", False):
        session.info["mail_committed"] = True


@event.listens_for(Session, "after_transaction_end")
def _deliver_committed(session: Session, transaction) -> None:
    # Once the transaction's connections are released (SQLite's write lock with them).
    if transaction.parent is None and session.info.pop("mail_committed", False):
        from .. import tasks

        try:
            tasks.enqueue("deliver-mail")
        except Exception:  # the change is committed: mail waits for the sweep, nothing fails
            current_app.logger.warning("mail waits for the task queue's next sweep",
                                       exc_info=True)


@event.listens_for(Session, "after_rollback")
def _forget_mail(session: Session) -> None:
    session.info.pop("mail_waiting", None)


# --- the inbox -----------------------------------------------------------------------------


def unread_count(user) -> int:
    return db.session.scalar(select(func.count(Notification.id)).where(
        Notification.user_id == user.id, Notification.read_at.is_(None))) or 0


def inbox(user, unread_only: bool, page: int, per_page: int = 25) -> Page:
    conditions = [Notification.user_id == user.id]
    if unread_only:
        conditions.append(Notification.read_at.is_(None))
    total = db.session.scalar(select(func.count(Notification.id)).where(*conditions)) or 0
    items = db.session.scalars(select(Notification).where(*conditions)
                               .order_by(Notification.id.desc())
                               .limit(per_page).offset((page - 1) * per_page)).all()
    return Page(list(items), total, page, per_page)


def own_notification(user, notification_id: int) -> Notification:
    notification = db.session.get(Notification, notification_id)
    if notification is None or notification.user_id != user.id:
        raise NotFound("No notification with this id.")
    return notification


def mark_read(notification: Notification) -> None:
    if notification.read_at is None:
        notification.read_at = utcnow()
        db.session.flush()


def mark_all_read(user) -> int:
    result = db.session.execute(update(Notification).where(
        Notification.user_id == user.id, Notification.read_at.is_(None))
        .values(read_at=utcnow()))
    return result.rowcount


# --- settings ------------------------------------------------------------------------------


def settings_for(user) -> NotificationSettings:
    """The user's settings (unsaved defaults when they chose nothing: every kind by mail, one
    mail each)."""
    found = db.session.scalar(select(NotificationSettings).where(
        NotificationSettings.user_id == user.id))
    return found or NotificationSettings(user_id=user.id, inbox_only=[], daily_digest=False)


class SettingsInput(Input):
    inbox_only = fields.List(fields.String(validate=validate.OneOf(
        list(NOTIFICATION_KINDS), error="Not a kind of notification.")), load_default=list)
    daily_digest = fields.Boolean(load_default=False)


_settings_schema = SettingsInput()


def save_settings(user, values: dict) -> NotificationSettings:
    clean = load(_settings_schema, values)
    settings = settings_for(user)
    audit.set_actor(user)
    audit.set_reason("Notification settings changed")
    settings.inbox_only = sorted(set(clean["inbox_only"]))
    settings.daily_digest = clean["daily_digest"]
    db.session.add(settings)
    db.session.flush()
    return settings
