"""Password attempts slowed down, never locked out: a backoff per account, per client address,
per signed-in user re-entering their password and per account's second-factor codes, counted
in the database so that every worker and every server shares the counts.

A key's first failures are free; after them each failure makes the key wait 1 s, then 2, 4, …
up to `SIGN_IN_MAX_WAIT_SECONDS`, and an attempt while it waits is refused before its password
is looked at. Failures are forgotten after `SIGN_IN_FORGET_AFTER_MINUTES` without one. Nothing
locks: the owner of an account under attack waits at most the longest wait, and not at all on a
browser they signed in from before, whose device cookie gives its attempts a key of their own.
"""

import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Flask, current_app, g, request
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import DateTime, Integer, String, case, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, mapped_column

from ..database import utcnow, writing
from ..extensions import db

DEVICE_COOKIE = "governance_device"
DEVICE_COOKIE_DAYS = 365


class SignInThrottle(db.Model):
    """A throttled key's recent failures (not a record: counts, not audited)."""

    __tablename__ = "sign_in_throttles"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failure_at: Mapped[datetime] = mapped_column(DateTime)


@dataclass(frozen=True)
class Key:
    """What is counted (`account:…`, `address:…`, `device:…`, `reentry:…`, `code:…`) and how many
    failures it has free before it waits."""

    name: str
    free: int


def account_key(email: str) -> Key:
    """The account as typed, known or not: an unknown email is slowed down exactly as a known
    one, so the answer never tells which accounts exist. Hashed: the table holds no emails."""
    digest = hashlib.sha256((email or "").strip().lower().encode()).hexdigest()[:40]
    return Key(f"account:{digest}", current_app.config["SIGN_IN_FREE_FAILURES"])


def address_key() -> Key:
    """The client's address (behind `TRUSTED_PROXIES` proxies, the one they forwarded)."""
    return Key(f"address:{request.remote_addr}",
               current_app.config["SIGN_IN_FREE_FAILURES_PER_ADDRESS"])


def reentry_key(user) -> Key:
    """A signed-in user typing their password again: a password change or an e-signature."""
    return Key(f"reentry:{user.id}", current_app.config["SIGN_IN_FREE_FAILURES"])


def code_key(user) -> Key:
    """A second-factor code, at sign-in or typed again: only a right code clears it, so knowing
    the password never buys more guesses at the code."""
    return Key(f"code:{user.id}", current_app.config["SIGN_IN_FREE_FAILURES"])


def sign_in_keys(user) -> list[Key]:
    """The keys a sign-in attempt counts against: the device's own when this browser signed in
    to this account before, otherwise the account's and the address's."""
    device = _device_of(user)
    if device:
        return [Key(f"device:{device}", current_app.config["SIGN_IN_FREE_FAILURES"])]
    return [account_key(request.form.get("email", "")), address_key()]


def seconds_to_wait(keys: list[Key]) -> int:
    """How long the slowest of the keys must still wait (0: the attempt may be checked)."""
    if not _enabled():
        return 0
    now = utcnow()
    rows = db.session.execute(select(SignInThrottle).where(
        SignInThrottle.key.in_([key.name for key in keys]))).scalars()
    free = {key.name: key.free for key in keys}
    wait = 0.0
    for row in rows:
        until = _wait_until(row, free[row.key])
        if until is not None and until > now:
            wait = max(wait, (until - now).total_seconds())
    return math.ceil(wait)


def failed(keys: list[Key]) -> None:
    """Count a failed attempt against the keys, once the request is answered (in a transaction
    of its own: the request's own changes are usually rolled back with the failure)."""
    if _enabled():
        g.setdefault("throttle_failures", []).extend(key.name for key in keys)


def succeeded(keys: list[Key]) -> None:
    """Forget the keys' failures: the right password was given. An address's stay (one good
    password must not wipe the count of whoever else guesses from there)."""
    if _enabled():
        g.setdefault("throttle_successes", []).extend(
            key.name for key in keys if not key.name.startswith("address:"))


def _wait_until(row: SignInThrottle, free: int) -> datetime | None:
    forget_after = timedelta(minutes=current_app.config["SIGN_IN_FORGET_AFTER_MINUTES"])
    if row.failures <= free or row.last_failure_at < utcnow() - forget_after:
        return None
    seconds = min(2 ** (row.failures - free - 1), current_app.config["SIGN_IN_MAX_WAIT_SECONDS"])
    return row.last_failure_at + timedelta(seconds=seconds)


def _enabled() -> bool:
    return current_app.config["SIGN_IN_THROTTLE"]


def _record_counts(response):
    """After the answer is built: write the request's failures and successes, whatever became of
    its own transaction; a database that refuses the write costs the count only."""
    failures, successes = g.pop("throttle_failures", []), g.pop("throttle_successes", [])
    if not (failures or successes):
        return response
    try:
        with writing():
            db.session.rollback()  # the view committed what it keeps; nothing else is written
            if successes:
                db.session.execute(SignInThrottle.__table__.delete().where(
                    SignInThrottle.key.in_(successes)))
            for key in failures:
                _count_failure(key)
            db.session.commit()
    except SQLAlchemyError as error:
        db.session.rollback()
        current_app.logger.warning("failed sign-in attempts were not counted: %s", error)
    return response


def _count_failure(key: str) -> None:
    """Add one failure to the key (atomically: two workers counting at once both count), or
    start it again at one when its failures were forgotten."""
    now = utcnow()
    forgotten = now - timedelta(minutes=current_app.config["SIGN_IN_FORGET_AFTER_MINUTES"])
    table = SignInThrottle.__table__
    insert = postgresql_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
    statement = insert(table).values(key=key, failures=1, last_failure_at=now)
    statement = statement.on_conflict_do_update(index_elements=[table.c.key], set_={
        "failures": case((table.c.last_failure_at < forgotten, 1), else_=table.c.failures + 1),
        "last_failure_at": now,
    })
    db.session.execute(statement)


# --- the device cookie ------------------------------------------------------------------------


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.secret_key, salt="sign-in-device")


def _device_of(user) -> str | None:
    """The device id this browser was given when it signed in to the user's account, if any."""
    if user is None:
        return None
    try:
        user_id, device = _serializer().loads(request.cookies.get(DEVICE_COOKIE, ""))
    except (BadSignature, ValueError, TypeError):
        return None
    return device if user_id == user.id else None


def remember_device(response, user):
    """Give the browser that just signed in a device cookie for this account."""
    value = _serializer().dumps([user.id, _device_of(user) or secrets.token_urlsafe(16)])
    response.set_cookie(DEVICE_COOKIE, value, max_age=DEVICE_COOKIE_DAYS * 86400, httponly=True,
                        secure=current_app.config["SESSION_COOKIE_SECURE"], samesite="Lax")
    return response


def init_app(app: Flask) -> None:
    app.after_request(_record_counts)
