"""Mail: notifications handed to the SMTP server (flask-mailman), one at a time or as a user's
daily digest, by the task worker.

A batch is taken by moving its rows' `mail_next_at` on (so two workers never send the same
mail), sent on one SMTP connection, then marked: sent, or kept waiting with the server's answer
and a longer wait each time (1, 2, 4 … minutes, at most an hour). An SMTP server that refuses or
is down fails nothing else: the mail waits, the inbox has the notification, and the sweep tries
again. In `make run` mail goes to files in instance/outbox (MAIL_BACKEND "file").
"""

from dataclasses import dataclass
from datetime import timedelta

from flask import Flask, current_app
from sqlalchemy import select, update

from ..auth.models import User
from ..database import utcnow, writing
from ..extensions import db
from .models import Notification

BATCH = 500
CLAIM = timedelta(minutes=10)  # a worker that took a batch and died: it is sent again after
LONGEST_WAIT_MINUTES = 60
SIGNATURE = ("You receive this mail because of your notification settings: {settings}\n"
             "Partnership Governance")


@dataclass(frozen=True)
class Outgoing:
    notification_ids: list[int]
    to: str
    subject: str
    body: str
    attempts: int  # tries so far

    def next_try(self, now):
        return now + timedelta(minutes=min(2 ** self.attempts, LONGEST_WAIT_MINUTES))


def mailer(app: Flask):
    """The application's flask-mailman state, set up on first use."""
    if "mailman" not in app.extensions:
        from flask_mailman import Mail

        Mail().init_app(app)
    return app.extensions["mailman"]


def address(path: str) -> str:
    base = (current_app.config.get("PUBLIC_BASE_URL") or "http://localhost:5000").rstrip("/")
    return base + path


def deliver_waiting() -> int:
    """Send every single mail whose time has come; return how many were sent."""
    return _deliver("waiting", _single)


def deliver_digests() -> int:
    """Send each user's digest of the notifications that waited for it; return how many
    mails were sent."""
    return _deliver("digest", _digest)


def _deliver(state: str, compose) -> int:
    sent = 0
    while True:
        batch = _take(state)
        if not batch:
            return sent
        sent += _send(compose(batch))
        if len(batch) < BATCH:
            return sent


def _take(state: str) -> list[tuple[Notification, User]]:
    now = utcnow()
    with writing():
        ids = list(db.session.scalars(
            select(Notification.id).where(Notification.mail_state == state,
                                          Notification.mail_next_at <= now)
            .order_by(Notification.id).limit(BATCH).with_for_update(skip_locked=True)))
        if not ids:
            db.session.rollback()
            return []
        db.session.execute(update(Notification).where(Notification.id.in_(ids))
                           .values(mail_next_at=now + CLAIM))
        rows = db.session.execute(
            select(Notification, User).join(User, User.id == Notification.user_id)
            .where(Notification.id.in_(ids)).order_by(Notification.id)).all()
        db.session.commit()
    return [tuple(row) for row in rows]


def _single(batch) -> list[Outgoing]:
    settings = address("/notifications/settings")
    return [Outgoing([notification.id], user.email, notification.subject,
                     f"Hello {user.name},\n\n{notification.body}\n\n"
                     f"Open it: {address(notification.link)}\n\n--\n"
                     + SIGNATURE.format(settings=settings), notification.mail_attempts)
            for notification, user in batch]


def _digest(batch) -> list[Outgoing]:
    by_user: dict[int, list] = {}
    for notification, user in batch:
        by_user.setdefault(user.id, [user]).append(notification)
    settings = address("/notifications/settings")
    mails = []
    for user, *notifications in by_user.values():
        count = len(notifications)
        items = "\n\n".join(f"* {n.subject}\n  {n.body}\n  {address(n.link)}"
                            for n in notifications)
        mails.append(Outgoing(
            [n.id for n in notifications], user.email,
            f"Your daily digest: {count} notification{'s' if count != 1 else ''}",
            f"Hello {user.name},\n\nSince your last digest:\n\n{items}\n\n"
            f"Your inbox: {address('/notifications')}\n\n--\n"
            + SIGNATURE.format(settings=settings),
            max(n.mail_attempts for n in notifications)))
    return mails


def _send(mails: list[Outgoing]) -> int:
    from flask_mailman import EmailMessage

    app = current_app._get_current_object()
    mailer(app)
    sender = app.config.get("MAIL_DEFAULT_SENDER") or "governance@localhost"
    sent, failed = [], []
    connection = app.extensions["mailman"].get_connection()
    try:
        connection.open()
    except Exception as error:  # the server is down or refuses us: every mail waits
        failed = [(mail, _reason(error)) for mail in mails]
        app.logger.warning("SMTP: %s; %s mail(s) wait for the next try", _reason(error),
                           len(mails))
    else:
        try:
            for mail in mails:
                try:
                    connection.send_messages([EmailMessage(
                        f"[Partnership Governance] {mail.subject}", mail.body, sender,
                        [mail.to], connection=connection)])
                except Exception as error:  # this recipient refused, or the link broke
                    failed.append((mail, _reason(error)))
                    app.logger.warning("SMTP refused mail to user notification(s) %s: %s",
                                       mail.notification_ids, _reason(error))
                else:
                    sent.append(mail)
        finally:
            try:
                connection.close()
            except Exception:  # a connection that broke mid-way cannot say goodbye
                app.logger.info("SMTP connection closed uncleanly", exc_info=True)
    _record(sent, failed)
    return len(sent)


def _reason(error: Exception) -> str:
    return f"{type(error).__name__}: {str(error).strip()[:300]}"


def _record(sent: list[Outgoing], failed: list[tuple[Outgoing, str]]) -> None:
    now = utcnow()
    sent_ids = [i for mail in sent for i in mail.notification_ids]
    retries: dict[tuple, list[int]] = {}
    for mail, reason in failed:
        retries.setdefault((reason, mail.next_try(now)), []).extend(mail.notification_ids)
    with writing():
        if sent_ids:
            db.session.execute(update(Notification).where(Notification.id.in_(sent_ids))
                               .values(mail_state="sent", mailed_at=now, mail_error=None,
                                       mail_attempts=Notification.mail_attempts + 1))
        for (reason, next_try), ids in retries.items():
            db.session.execute(update(Notification).where(Notification.id.in_(ids)).values(
                mail_error=reason, mail_attempts=Notification.mail_attempts + 1,
                mail_next_at=next_try))
        db.session.commit()
