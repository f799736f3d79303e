"""Append-only, hash-chained audit events written in the same transaction as the change."""

import functools
import hashlib
import json
import re
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import click
from flask import Flask, has_request_context
from flask.cli import with_appcontext
from sqlalchemy import DDL, ForeignKey, String, Text, event, insert, inspect, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from .database import utcnow
from .extensions import db

GENESIS_HASH = "0" * 64
CHAIN_LOCK_KEY = 724_311  # PostgreSQL advisory lock that serialises appends to the chain


class AuditEvent(db.Model):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    actor_label: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(20))
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[int] = mapped_column()
    changes: Mapped[str] = mapped_column(Text)  # canonical JSON, hashed as stored
    reason: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)

    __table_args__ = (db.Index("ix_audit_events_entity_entity_id", "entity", "entity_id"),)

    @property
    def change_set(self) -> dict:
        return json.loads(self.changes)


APPEND_ONLY_DDL = [
    DDL(
        "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
        "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END"
    ).execute_if(dialect="sqlite"),
    DDL(
        "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
        "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END"
    ).execute_if(dialect="sqlite"),
    DDL(
        "CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger AS $$ "
        "BEGIN RAISE EXCEPTION 'audit events are append-only'; END $$ LANGUAGE plpgsql"
    ).execute_if(dialect="postgresql"),
    DDL(
        "CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events "
        "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
    ).execute_if(dialect="postgresql"),
    DDL(
        "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()"
    ).execute_if(dialect="postgresql"),
]
for _ddl in APPEND_ONLY_DDL:
    event.listen(AuditEvent.__table__, "after_create", _ddl)


class Audited:
    """Mixin: every insert and update of the model is audited; deleting it is refused."""

    __audit_exclude__: frozenset[str] = frozenset({"version", "updated_at", "created_at"})
    __audit_redact__: frozenset[str] = frozenset()
    # Relationship collections audited as lists of ids (e.g. a partnership's other organisations)
    __audit_collections__: frozenset[str] = frozenset()

    @classmethod
    def audit_entity(cls) -> str:
        return re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()


class HardDeleteRefused(Exception):
    """Raised when code tries to delete an audited record instead of voiding it."""


# --- who and why ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    id: int | None
    label: str


SYSTEM = Actor(None, "system")


def current_actor(session: Session) -> Actor:
    for key in ("actor", "transaction_actor"):
        if key in session.info:
            return session.info[key]
    if has_request_context():
        from flask_login import current_user

        if current_user and current_user.is_authenticated:
            return Actor(current_user.id, current_user.email)
    return SYSTEM


@contextmanager
def acting_as(actor: Actor | None = None, reason: str | None = None):
    """Attribute the changes flushed inside the block to an actor and a reason."""
    info = db.session.info
    previous = {k: info.get(k) for k in ("actor", "audit_reason")}
    if actor is not None:
        info["actor"] = actor
    if reason is not None:
        info["audit_reason"] = reason
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                info.pop(key, None)
            else:
                info[key] = value


def set_actor(user) -> None:
    """Attribute the changes of the current transaction to a user (kept until commit)."""
    db.session.info["transaction_actor"] = Actor(user.id, user.email)


def set_reason(reason: str | None) -> None:
    """Record why the changes of the current transaction are made (kept until commit)."""
    if reason:
        db.session.info["audit_reason"] = reason


# --- capture ----------------------------------------------------------------------------------


def _plain(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _json_default(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"{type(value).__name__} is not audit-serialisable")


def canonical(value) -> str:
    # json calls the default only for the values _plain converts, so the text (and so every
    # hash) is the same as json.dumps(_plain(value)), without walking the value twice.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=_json_default)


def _changes_of(obj, created: bool) -> dict:
    state = inspect(obj)
    excluded = type(obj).__audit_exclude__
    redacted = type(obj).__audit_redact__
    if created:
        loaded = state.dict  # read directly what is loaded; getattr only for what is not
        changes = creation_changes(type(obj), {
            attr.key: loaded[attr.key] if attr.key in loaded else getattr(obj, attr.key)
            for attr in state.mapper.column_attrs if attr.key not in excluded})
    else:
        changes = {}
    for key in () if created else changed_columns(state):
        if key in excluded:
            continue
        history = state.attrs[key].history
        old = history.deleted[0] if history.deleted else None
        new = history.added[0] if history.added else None
        if _plain(old) != _plain(new):
            changes[key] = ["[redacted]", "[redacted]"] if key in redacted else [old, new]
    for key in type(obj).__audit_collections__:
        history = state.attrs[key].history
        if created:
            ids = sorted(item.id for item in getattr(obj, key))
            if ids:
                changes[key] = [None, ids]
        elif history.has_changes():
            kept = list(history.unchanged)
            old = sorted(item.id for item in kept + list(history.deleted))
            new = sorted(item.id for item in kept + list(history.added))
            changes[key] = [old, new]
    return changes


def changed_columns(state) -> list[str]:
    """The column attributes of a loaded record (its InstanceState) set to another value since
    it was loaded. Only the attributes that were set at all are looked at."""
    columns = _column_keys(state.mapper)
    return [key for key in state.committed_state
            if key in columns and state.attrs[key].history.has_changes()]


@functools.cache
def _column_keys(mapper) -> frozenset[str]:
    return frozenset(attr.key for attr in mapper.column_attrs)


def creation_changes(model, values: dict) -> dict:
    """The change set of a record created with these column values: [None, value] for each
    audited column that holds something."""
    changes = {}
    for key, redacted in _audited_columns(model):
        value = values.get(key)
        if value is None or value == [] or value == "":
            continue
        changes[key] = [None, "[redacted]" if redacted else value]
    return changes


@functools.cache
def _audited_columns(model) -> tuple[tuple[str, bool], ...]:
    """The model's audited column attributes, and whether each is redacted."""
    return tuple((attr.key, attr.key in model.__audit_redact__)
                 for attr in inspect(model).column_attrs
                 if attr.key not in model.__audit_exclude__)


def append_created(model, rows: list[dict]) -> None:
    """Audit records inserted with one Core statement (a bulk path) exactly as the listener
    audits records created through the session: same change sets, actor, reason and chain.

    `rows` hold every column's value, the new `id` included.
    """
    if model.__audit_collections__:
        raise ValueError(f"{model.__name__} audits collections; create it through the session.")
    entity = model.audit_entity()
    _append(db.session(), [
        {"action": "create", "entity": entity, "entity_id": values["id"],
         "changes": canonical(creation_changes(model, values))} for values in rows])


def append_changed(entity: str, events: list[tuple[str, int, dict]], reason: str) -> None:
    """Audit changes written with Core statements (a bulk path) as the listener audits changes
    made through the session: (action, entity id, change set) each, in the same chain."""
    _append(db.session(), [
        {"action": action, "entity": entity, "entity_id": entity_id,
         "changes": canonical(changes)} for action, entity_id, changes in events], reason)


def _action_of(created: bool, changes: dict) -> str:
    if created:
        return "create"
    voided = changes.get("voided_at")
    if voided and voided[0] is None:
        return "void"
    if voided and voided[1] is None:
        return "restore"
    return "update"


def _refuse_hard_deletes(session, _flush_context, _instances):
    for obj in session.deleted:
        if isinstance(obj, Audited):
            raise HardDeleteRefused(
                f"{type(obj).__name__} records are never deleted; void them with a reason."
            )


def _collect_pending(session, _flush_context, _instances):
    pending = session.info.setdefault("audit_pending", [])
    for obj in session.new:
        if isinstance(obj, Audited):
            pending.append((obj, True, None))
    for obj in session.dirty:
        if isinstance(obj, Audited):
            changes = _changes_of(obj, created=False)
            if changes:
                pending.append((obj, False, changes))


def _write_events(session, _flush_context):
    pending = session.info.pop("audit_pending", [])
    if not pending:
        return
    events = []
    for obj, created, changes in pending:
        if created:
            changes = _changes_of(obj, created=True)
        if changes:
            events.append({"action": _action_of(created, changes),
                           "entity": type(obj).audit_entity(), "entity_id": obj.id,
                           "changes": canonical(changes)})
    _append(session, events)


# Built once: every audited write runs them.
_EVENTS = AuditEvent.__table__
_LAST_HASH = select(_EVENTS.c.hash).order_by(_EVENTS.c.id.desc()).limit(1)
_INSERT_EVENTS = insert(_EVENTS)
_LOCK_CHAIN = text("SELECT pg_advisory_xact_lock(:key)")


def _append(session, events: list[dict], reason: str | None = None) -> None:
    """Append events (action, entity, entity_id, canonical changes) to the chain, with the
    transaction's actor, its reason (unless one is given) and one UTC time."""
    if not events:
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(_LOCK_CHAIN, {"key": CHAIN_LOCK_KEY})
    prev = connection.execute(_LAST_HASH).scalar() or GENESIS_HASH
    actor = current_actor(session)
    common = {"occurred_at": utcnow(), "actor_id": actor.id, "actor_label": actor.label,
              "reason": reason or session.info.get("audit_reason")}
    rows = []
    for item in events:
        row = common | item | {"prev_hash": prev}
        row["hash"] = prev = event_hash(row)
        rows.append(row)
    connection.execute(_INSERT_EVENTS, rows)


def event_hash(row: dict) -> str:
    """Return the SHA-256 of an event's content together with the previous event's hash."""
    content = canonical(
        {k: row[k] for k in ("occurred_at", "actor_id", "actor_label", "action", "entity",
                             "entity_id", "changes", "reason", "prev_hash")}
    )
    return hashlib.sha256(content.encode()).hexdigest()


def _forget_transaction_info(session, *_args):
    for key in ("audit_reason", "audit_pending", "transaction_actor"):
        session.info.pop(key, None)


def _install_listeners() -> None:
    if event.contains(Session, "after_flush", _write_events):
        return
    event.listen(Session, "before_flush", _refuse_hard_deletes)
    event.listen(Session, "before_flush", _collect_pending)
    event.listen(Session, "after_flush", _write_events)
    event.listen(Session, "after_commit", _forget_transaction_info)
    event.listen(Session, "after_soft_rollback", _forget_transaction_info)


# --- reading and verifying --------------------------------------------------------------------


def history_of(entity: str, entity_id: int) -> list[AuditEvent]:
    return db.session.scalars(
        select(AuditEvent)
        .where(AuditEvent.entity == entity, AuditEvent.entity_id == entity_id)
        .order_by(AuditEvent.id)
    ).all()


@dataclass(frozen=True)
class ChainReport:
    events_checked: int
    broken_at: int | None = None
    problem: str | None = None

    @property
    def intact(self) -> bool:
        return self.broken_at is None


def verify_chain(batch: int = 5000) -> ChainReport:
    """Walk every event in order and report the first whose hash or link does not hold."""
    prev = GENESIS_HASH
    checked = 0
    last_id = 0
    table = AuditEvent.__table__
    while True:
        rows = db.session.execute(
            select(table).where(table.c.id > last_id).order_by(table.c.id).limit(batch)
        ).mappings().all()
        if not rows:
            return ChainReport(checked)
        for row in rows:
            if row["prev_hash"] != prev:
                return ChainReport(checked, row["id"], "does not link to the event before it")
            if event_hash(dict(row)) != row["hash"]:
                return ChainReport(checked, row["id"], "content does not match its hash")
            prev = row["hash"]
            checked += 1
            last_id = row["id"]


@click.command("verify-audit")
@with_appcontext
def verify_audit_command():
    """Walk the audit chain and report the first broken link."""
    report = verify_chain()
    if report.intact:
        click.echo(f"Audit chain intact: {report.events_checked} events verified.")
        return
    click.echo(
        f"Audit chain BROKEN at event {report.broken_at}: {report.problem} "
        f"({report.events_checked} events verified before it).",
        err=True,
    )
    raise SystemExit(1)


def init_app(app: Flask) -> None:
    _install_listeners()
    app.cli.add_command(verify_audit_command)
