"""Append-only, hash-chained audit events written in the same transaction as the change.

Each event's hash is an HMAC-SHA256, with the audit key of the instance's configuration (never
the database), over its content and the previous event's hash; checkpoints record the chain's
head (sequence and hash) under the same key, so rewriting, appending or truncating the chain
without the key shows at the next `verify-audit`.
"""

import functools
import hashlib
import hmac
import json
import os
import re
import secrets
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import click
from flask import Flask, current_app, has_request_context
from flask.cli import with_appcontext
from sqlalchemy import (
    DDL,
    ForeignKey,
    String,
    Text,
    event,
    func,
    insert,
    inspect,
    select,
    text,
)
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
    # The audit key its hash is an HMAC with (key_id); None: a plain SHA-256 of before keys.
    key_id: Mapped[str | None] = mapped_column(String(16))

    __table_args__ = (db.Index("ix_audit_events_entity_entity_id", "entity", "entity_id"),)

    @property
    def change_set(self) -> dict:
        return json.loads(self.changes)


CHECKPOINT_REASONS = ("periodic", "report-signed", "report-published", "upgrade")


class AuditCheckpoint(db.Model):
    """The chain's head (the event `seq` and its hash) at a moment, with an HMAC of its own."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(index=True)
    hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(String(20))
    key_id: Mapped[str] = mapped_column(String(16))
    mac: Mapped[str] = mapped_column(String(64))


def append_only_ddl(table: str) -> list[DDL]:
    """The triggers by which the database refuses to change or delete the table's rows."""
    return [
        DDL(
            f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
            "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END"
        ).execute_if(dialect="sqlite"),
        DDL(
            f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
            "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END"
        ).execute_if(dialect="sqlite"),
        DDL(
            "CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger AS $$ "
            "BEGIN RAISE EXCEPTION 'audit events are append-only'; END $$ LANGUAGE plpgsql"
        ).execute_if(dialect="postgresql"),
        DDL(
            f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
        ).execute_if(dialect="postgresql"),
        DDL(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()"
        ).execute_if(dialect="postgresql"),
    ]


for _table in (AuditEvent.__table__, AuditCheckpoint.__table__):
    for _ddl in append_only_ddl(_table.name):
        event.listen(_table, "after_create", _ddl)


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


def current_reason() -> str | None:
    """The reason set for the current transaction, if any."""
    return db.session.info.get("audit_reason")


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
_CHECKPOINTS = AuditCheckpoint.__table__
_HEAD = select(_EVENTS.c.id, _EVENTS.c.hash).order_by(_EVENTS.c.id.desc()).limit(1)
_INSERT_EVENTS = insert(_EVENTS)
_INSERT_CHECKPOINT = insert(_CHECKPOINTS)
_LOCK_CHAIN = text("SELECT pg_advisory_xact_lock(:key)")


def _lock_chain(connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(_LOCK_CHAIN, {"key": CHAIN_LOCK_KEY})


def _append(session, events: list[dict], reason: str | None = None) -> None:
    """Append events (action, entity, entity_id, canonical changes) to the chain, with the
    transaction's actor, its reason (unless one is given) and one UTC time; every
    AUDIT_CHECKPOINT_EVERY events, a periodic checkpoint of the new head."""
    if not events:
        return
    connection = session.connection()
    _lock_chain(connection)
    last = connection.execute(_HEAD).first()
    prev = last.hash if last else GENESIS_HASH
    keys = audit_keys()
    actor = current_actor(session)
    common = {"occurred_at": utcnow(), "actor_id": actor.id, "actor_label": actor.label,
              "reason": reason or session.info.get("audit_reason"), "key_id": keys.current_id}
    rows = []
    for item in events:
        row = common | item | {"prev_hash": prev}
        row["hash"] = prev = event_hash(row, keys.current)
        rows.append(row)
    connection.execute(_INSERT_EVENTS, rows)
    every = current_app.config["AUDIT_CHECKPOINT_EVERY"]
    before = last.id if last else 0
    if every and (before + len(rows)) // every > before // every:
        _insert_checkpoint(connection, "periodic", chain_head(connection))


def event_hash(row: dict, key: bytes | None) -> str:
    """Return the HMAC-SHA256 with the key (a plain SHA-256 without one: the events of before
    audit keys) of an event's content together with the previous event's hash."""
    content = canonical(
        {k: row[k] for k in ("occurred_at", "actor_id", "actor_label", "action", "entity",
                             "entity_id", "changes", "reason", "prev_hash")}
    ).encode()
    if key is None:
        return hashlib.sha256(content).hexdigest()
    return hmac.digest(key, content, "sha256").hex()


# --- the audit key ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditKeys:
    """The key new events and checkpoints are signed with, and every key that verifies."""

    current_id: str
    current: bytes
    by_id: dict[str, bytes]


MIN_KEY_LENGTH = 32


def key_id_of(key: bytes) -> str:
    """A key's public name: tells which key signed, reveals nothing of the key."""
    return hmac.digest(key, b"governance audit key id", "sha256").hex()[:16]


def keys_from_config(app: Flask) -> AuditKeys:
    """AUDIT_KEY (instance/config.py or GOVERNANCE_AUDIT_KEY) signs; AUDIT_PREVIOUS_KEYS, the
    keys it replaced, still verify. Without AUDIT_KEY a production instance uses the key file
    (AUDIT_KEY_FILE, by default instance/audit.key), written with a new random key the first
    time; in development and
    tests the key is derived from SECRET_KEY, with a warning."""
    configured = app.config.get("AUDIT_KEY")
    if configured:
        current = str(configured).encode()
        if len(current) < MIN_KEY_LENGTH and not app.config.get("TESTING"):
            raise RuntimeError(f"AUDIT_KEY must be at least {MIN_KEY_LENGTH} characters long.")
    elif app.config.get("DEVELOPMENT") or app.config.get("TESTING"):
        current = hmac.digest(str(app.config["SECRET_KEY"]).encode(), b"governance audit key",
                              "sha256").hex().encode()
        app.logger.warning("No AUDIT_KEY configured: the audit chain is keyed with a key derived "
                           "from SECRET_KEY (development only).")
    else:
        current = instance_key(Path(app.config.get("AUDIT_KEY_FILE")
                                    or Path(app.instance_path) / "audit.key"), app.logger)
    keys = [current] + [str(key).encode() for key in app.config.get("AUDIT_PREVIOUS_KEYS", ())]
    return AuditKeys(key_id_of(current), current, {key_id_of(key): key for key in keys})


def instance_key(path: Path, logger) -> bytes:
    """The key in the instance folder's key file; the first process to need one writes it (a
    new random key, readable by its owner only), and every other process reads that one."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        draft.write_text(secrets.token_hex(32) + "\n")
        draft.chmod(0o600)
        try:
            os.link(draft, path)  # atomic: of processes starting together, one key wins
        except FileExistsError:
            logger.info("Another process wrote the audit key %s first; using it.", path)
        else:
            logger.warning("No AUDIT_KEY configured: wrote a new audit key to %s. Keep a copy of "
                           "it apart from the database: without it the audit trail cannot be "
                           "verified.", path)
        finally:
            draft.unlink()
    return path.read_text().strip().encode()


def audit_keys() -> AuditKeys:
    return current_app.extensions["audit_keys"]


# --- checkpoints: the chain's head, signed --------------------------------------------------


@dataclass(frozen=True)
class Head:
    """The last event of the chain at a moment: its sequence (the event's id) and hash."""

    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"

    def as_json(self) -> dict:
        return {"sequence": self.seq, "hash": self.hash}

    @classmethod
    def parse(cls, value: str) -> "Head":
        """Read SEQ:HASH (as a published report prints it); ValueError if it is not one."""
        seq, _, digest = value.strip().partition(":")
        if not seq.isdigit() or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise ValueError(f"{value!r} is not SEQUENCE:HASH (a number, a colon and 64 hex "
                             "digits).")
        return cls(int(seq), digest)


def chain_head(connection=None) -> Head | None:
    """The chain's last event now, or None while the chain is empty."""
    last = (connection or db.session.connection()).execute(_HEAD).first()
    return Head(last.id, last.hash) if last else None


def checkpoint_mac(key: bytes, seq: int, digest: str, created_at: datetime, reason: str) -> str:
    content = canonical({"seq": seq, "hash": digest, "created_at": created_at, "reason": reason})
    return hmac.digest(key, content.encode(), "sha256").hex()


def _insert_checkpoint(connection, reason: str, head: Head) -> None:
    keys = audit_keys()
    created_at = utcnow().replace(microsecond=0)
    connection.execute(_INSERT_CHECKPOINT, {
        "seq": head.seq, "hash": head.hash, "created_at": created_at, "reason": reason,
        "key_id": keys.current_id,
        "mac": checkpoint_mac(keys.current, head.seq, head.hash, created_at, reason)})


def write_checkpoint(reason: str, head: Head | None = None, connection=None) -> Head | None:
    """Record the chain's head now (or a head read earlier in the chain) as a checkpoint;
    return it (None, and nothing written, while the chain is empty)."""
    if reason not in CHECKPOINT_REASONS:
        raise ValueError(f"A checkpoint's reason is one of {', '.join(CHECKPOINT_REASONS)}.")
    connection = connection or db.session.connection()
    _lock_chain(connection)
    head = head or chain_head(connection)
    if head is not None:
        _insert_checkpoint(connection, reason, head)
    return head


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
    checkpoints_checked: int = 0
    head: Head | None = None

    @property
    def intact(self) -> bool:
        return self.broken_at is None


class ChainBroken(Exception):
    """The chain does not hold at an event (its sequence) for the reason given."""

    def __init__(self, seq: int, problem: str):
        super().__init__(problem)
        self.seq, self.problem = seq, problem


def verify_chain(since: int | None = None, expected: tuple[Head, ...] = (),
                 batch: int = 5000) -> ChainReport:
    """Check every checkpoint's own HMAC, then walk the events in order (from the checkpoint at
    `since`, if given): each one's link and HMAC, the hash each checkpoint and expected head
    records at its sequence, and that the chain reaches every one of them. Report the first
    thing that does not hold."""
    checkpoints = db.session.scalars(
        select(AuditCheckpoint).order_by(AuditCheckpoint.seq, AuditCheckpoint.id)).all()
    checked = 0
    try:
        _check_checkpoints(checkpoints)
        anchors = _anchors(checkpoints, expected)
        prev, last_id = _starting_point(checkpoints, since)
        upgraded_to = max((c.seq for c in checkpoints if c.reason == "upgrade"), default=0)
        keys = audit_keys().by_id
        table = AuditEvent.__table__
        while True:
            rows = db.session.execute(
                select(table).where(table.c.id > last_id).order_by(table.c.id).limit(batch)
            ).mappings().all()
            if not rows:
                break
            for row in rows:
                _check_event(row, prev, upgraded_to, anchors, keys)
                prev, last_id = row["hash"], row["id"]
                checked += 1
        _check_reached(anchors, last_id, checked, since)
    except ChainBroken as broken:
        return ChainReport(checked, broken.seq, broken.problem, len(checkpoints))
    head = Head(last_id, prev) if last_id else None
    return ChainReport(checked, checkpoints_checked=len(checkpoints), head=head)


def _check_checkpoints(checkpoints) -> None:
    by_id = audit_keys().by_id
    for checkpoint in checkpoints:
        key = by_id.get(checkpoint.key_id)
        if key is None:
            raise ChainBroken(checkpoint.seq, f"checkpoint {checkpoint.id} is signed with a key "
                              f"this installation does not hold (key id {checkpoint.key_id})")
        mac = checkpoint_mac(key, checkpoint.seq, checkpoint.hash, checkpoint.created_at,
                             checkpoint.reason)
        if not hmac.compare_digest(mac, checkpoint.mac):
            raise ChainBroken(checkpoint.seq, f"checkpoint {checkpoint.id} is forged or altered "
                              "(its HMAC does not match)")


def _anchors(checkpoints, expected) -> dict[int, list[tuple[str, str]]]:
    """The hash each checkpoint and expected head says the chain has at a sequence."""
    anchors: dict[int, list[tuple[str, str]]] = {}
    for checkpoint in checkpoints:
        anchors.setdefault(checkpoint.seq, []).append(
            (checkpoint.hash, f"checkpoint {checkpoint.id} ({checkpoint.reason})"))
    for head in expected:
        anchors.setdefault(head.seq, []).append((head.hash, f"the expected head {head}"))
    return anchors


def _starting_point(checkpoints, since: int | None) -> tuple[str, int]:
    if since is None:
        return GENESIS_HASH, 0
    for checkpoint in checkpoints:
        if checkpoint.seq == since:
            return checkpoint.hash, checkpoint.seq
    raise ChainBroken(since, f"there is no checkpoint at event {since} to verify from")


def _check_event(row, prev: str, upgraded_to: int, anchors, keys: dict[str, bytes]) -> None:
    seq = row["id"]
    if row["prev_hash"] != prev:
        raise ChainBroken(seq, "does not link to the event before it "
                               "(an event before it was removed or changed)")
    if row["key_id"] is None:
        if seq > upgraded_to:
            raise ChainBroken(seq, "carries an unkeyed hash after the chain was keyed "
                                   "(appended without the audit key)")
        key = None
    else:
        key = keys.get(row["key_id"])
        if key is None:
            raise ChainBroken(seq, "is signed with a key this installation does not hold "
                                   f"(key id {row['key_id']})")
    if event_hash(row, key) != row["hash"]:
        raise ChainBroken(seq, "content does not match its hash "
                               "(rewritten or appended without the audit key)")
    for digest, source in anchors.get(seq, ()):
        if digest != row["hash"]:
            raise ChainBroken(seq, f"is not the event {source} records "
                                   "(the chain was rewritten from here or before)")


def _check_reached(anchors, last_id: int, walked: int, since: int | None) -> None:
    beyond = [seq for seq in anchors if seq > last_id]
    if not beyond:
        return
    seq = max(beyond)
    source = anchors[seq][0][1]
    if walked == 0 and since is None:
        raise ChainBroken(seq, f"the audit trail is empty, but {source} records event {seq} "
                               "(the table was emptied)")
    raise ChainBroken(seq, f"the chain ends at event {last_id}, but {source} records event "
                           f"{seq} (events were removed from its end: truncated)")


@click.command("verify-audit")
@click.option("--since", metavar="SEQ|last",
              help="Verify from the checkpoint at event SEQ (or the last checkpoint) onwards.")
@click.option("--expect", "expected", metavar="SEQ:HASH", multiple=True,
              help="A head copied from a published report: the chain must hold it.")
@with_appcontext
def verify_audit_command(since: str | None, expected: tuple[str, ...]):
    """Walk the audit chain against its checkpoints and report the first broken link."""
    try:
        heads = tuple(Head.parse(value) for value in expected)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--expect") from None
    report = verify_chain(since=_since(since), expected=heads)
    if report.intact:
        head = f", head {report.head}" if report.head else ""
        click.echo(f"Audit chain intact: {report.events_checked} events verified against "
                   f"{report.checkpoints_checked} checkpoints{head}.")
        return
    click.echo(
        f"Audit chain BROKEN at event {report.broken_at}: {report.problem} "
        f"({report.events_checked} events verified before it).",
        err=True,
    )
    raise SystemExit(1)


def _since(value: str | None) -> int | None:
    if value is None:
        return None
    if value == "last":
        last = db.session.scalar(select(func.max(AuditCheckpoint.seq)))
        if last is None:
            raise click.BadParameter("there is no checkpoint yet.", param_hint="--since")
        return last
    if not value.isdigit():
        raise click.BadParameter("an event's sequence number, or 'last'.", param_hint="--since")
    return int(value)


@click.command("audit-checkpoint")
@with_appcontext
def audit_checkpoint_command():
    """Record the audit chain's head now as a checkpoint (e.g. daily, from cron)."""
    head = write_checkpoint("periodic")
    db.session.commit()
    click.echo(f"Checkpoint recorded at head {head}." if head else
               "The audit trail is empty: nothing to record.")


def init_app(app: Flask) -> None:
    app.extensions["audit_keys"] = keys_from_config(app)
    _install_listeners()
    app.cli.add_command(verify_audit_command)
    app.cli.add_command(audit_checkpoint_command)
