"""A notification is a message to one user about one record; a user's settings say how each
kind reaches them. Notifications are messages, not records: they are never audited, edited or
voided, only read and mailed. Settings are a user's choices, and audited."""

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from ..database import utcnow
from ..extensions import db
from ..records import Record

# How a notification's mail stands: none to send (inbox only), one waiting to be sent alone,
# one waiting for the day's digest, sent.
MAIL_STATES = ("none", "waiting", "digest", "sent")


class Notification(db.Model):
    __tablename__ = "notifications"
    __table_args__ = (
        # A reminder is sent once: the same key for the same user is the same notification.
        UniqueConstraint("user_id", "key", name="uq_notifications_user_key"),
        Index("ix_notifications_user_unread", "user_id", "read_at"),
        Index("ix_notifications_mail_state", "mail_state", "mail_next_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    link: Mapped[str] = mapped_column(String(500))  # a path in the application
    key: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None]
    mail_state: Mapped[str] = mapped_column(String(10), default="none")
    mail_attempts: Mapped[int] = mapped_column(default=0)
    mail_error: Mapped[str | None] = mapped_column(Text)
    # When the mail may be tried (again): a failed attempt waits longer each time; a worker
    # that takes a batch moves it on, so two workers never send the same mail.
    mail_next_at: Mapped[datetime | None]
    mailed_at: Mapped[datetime | None]


class NotificationSettings(Record, db.Model):
    """A user's choices: the kinds that reach them in the inbox only (the others by mail as
    well), and whether their mail comes as one daily digest instead of one mail each."""

    __tablename__ = "notification_settings"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), unique=True)
    inbox_only: Mapped[list] = mapped_column(JSON, default=list)
    daily_digest: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
