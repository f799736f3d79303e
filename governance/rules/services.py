"""Evaluate records against the policy, keep their flags in step, and resolve flags.

Two paths share one decision (`plan_flags`): evaluating one record after it changes (ORM objects,
audited by the session listener) and re-evaluating every record after a policy change (columns
loaded in batches, flags and their audit events written in bulk).
"""

import functools
import gc
import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from flask import current_app
from sqlalchemy import and_, bindparam, event, func, insert, or_, select, text, update
from sqlalchemy.orm import Session, joinedload

from .. import audit
from ..audit import AuditEvent, acting_as
from ..database import utcnow
from ..errors import Conflict, NotAllowed, ValidationFailed
from ..extensions import db
from ..interactions.models import Interaction
from ..organisations.models import Organisation
from ..partnerships.models import Partnership, Support
from ..vocabulary import DIMENSIONS, FLAG_STATES, SIGNATURE_MEANINGS
from .engine import CompiledPolicy, PolicyError, last_good_policy, load_policy
from .facts import (
    INTERACTION_COLUMNS,
    PARTNERSHIP_COLUMNS,
    Concentration,
    GroupSupport,
    concentration,
    interaction_facts,
    partnership_facts,
)
from .models import Flag

RESOLUTIONS = {
    "acknowledged": "Give the justification for keeping this practice.",
    "remediated": None,
    "dismissed": "Say why this flag does not apply.",
}
RESOLVER_ROLES = frozenset({"compliance"})
IN_CHUNKS = 500  # ids per IN (...) list


def current_policy() -> CompiledPolicy:
    """Return the policy in force; a file broken after start-up leaves the last good one in use."""
    directory = current_app.config["POLICIES_DIR"]
    try:
        return load_policy(directory)
    except PolicyError as error:
        previous = last_good_policy(directory)
        if previous is None:
            raise
        current_app.logger.error("policy file changed but is not valid; still using version "
                                 "%s. %s", previous.version, error)
        return previous


def today_utc() -> date:
    return utcnow().date()


# --- the decision --------------------------------------------------------------------------


@dataclass
class FlagPlan:
    """What evaluation changes for one record's flags."""

    open: list = field(default_factory=list)  # (CompiledRule, message)
    close: list = field(default_factory=list)  # flags (ORM objects or rows) to mark remediated
    restate: list = field(default_factory=list)  # (flag, message): still applies, new wording


def plan_flags(existing, applying: dict, facts: dict, version: str) -> FlagPlan:
    """Decide which flags open, which close and which stand, for one record.

    An open flag that still applies stays open (its message follows the facts); one that no
    longer applies is closed as remediated. A rule that applies opens a flag unless one is already
    open, or the same rule was acknowledged or dismissed on this record under this policy version.
    """
    plan = FlagPlan()
    open_rules = set()
    settled = set()
    for flag in existing:
        if flag.state == "open":
            if flag.rule_id in applying and flag.rule_id not in open_rules:
                open_rules.add(flag.rule_id)
                message = applying[flag.rule_id].message(facts)
                if flag.message != message:
                    plan.restate.append((flag, message))
            else:
                plan.close.append(flag)
        elif flag.state in ("acknowledged", "dismissed") and \
                flag.resolved_policy_version == version:
            settled.add(flag.rule_id)
    for rule_id, rule in applying.items():
        if rule_id not in open_rules and rule_id not in settled:
            plan.open.append((rule, rule.message(facts)))
    return plan


def closing_note(version: str) -> str:
    return f"No longer applies under policy v{version}."


# --- one record at a time (after a change) -------------------------------------------------


def evaluate_interaction(interaction: Interaction, today: date | None = None,
                         partnership: bool = True, created: bool = False) -> None:
    """Re-check one interaction, and its partnership's partnership-level rules.
    `partnership=False` skips the partnership when the change cannot have moved its facts (a
    partnership it left is re-checked all the same); `created` says the interaction is new, so
    it has no flags yet."""
    policy = current_policy()
    today = today or today_utc()
    existing = [] if created else list(db.session.scalars(_live_flags_of_interaction(),
                                                          {"interaction_id": interaction.id}))
    with acting_as(reason=f"Evaluated under policy v{policy.version}"):
        if interaction.is_void:
            _void_open(existing, "The interaction was voided.")
        else:
            facts = interaction_facts(interaction, today)
            applying = {rule.spec.id: rule for rule in policy.applying("interaction", facts)}
            existing += _apply(plan_flags(existing, applying, facts, policy.version), policy,
                               interaction_id=interaction.id)
        db.session.flush()
    db.session.info.setdefault(SETTLED_FLAGS, {})[interaction.id] = existing
    touched = db.session.info.pop("rules_partnerships_touched", set())
    if partnership:
        touched.add(interaction.partnership_id)
    _evaluate_partnership_ids({pid for pid in touched if pid is not None}, policy, today,
                              moved=FACTS_MOVED_BY_INTERACTIONS)


def evaluate_partnership(partnership: Partnership, today: date | None = None) -> list[Flag]:
    """Re-check a partnership and the other partnerships of its patient group (their funding
    shares move together); return the partnership's open flags."""
    policy = current_policy()
    today = today or today_utc()
    siblings = set(db.session.scalars(
        select(Partnership.id).where(Partnership.patient_group_id == partnership.patient_group_id)
    ))
    _evaluate_partnership_ids(siblings | {partnership.id}, policy, today)
    return [flag for flag in _flags_where(Flag.partnership_id == partnership.id) if flag.is_open]


# The partnership facts a change to one of its interactions can move, and those that come from
# its support lines (and its patient group's): the rules reading none of the first need no
# re-check after an interaction changes, and the second need not be read for those that do not.
FACTS_MOVED_BY_INTERACTIONS = frozenset({"interactions_last_12_months"})
FACTS_FROM_SUPPORT = frozenset({"support_count", "sponsor_share_of_group_support_pct",
                                "support_share_year", "sponsor_share_of_group_income_pct",
                                "income_share_year"})


def _evaluate_partnership_ids(ids: set[int], policy: CompiledPolicy, today: date,
                              moved: frozenset[str] | None = None) -> None:
    """Re-check these partnerships against every partnership rule, or, when only the facts
    `moved` can have changed, against the rules that read them (the others' flags stay)."""
    rules = None if moved is None else policy.reading("partnership", moved)
    if not ids or rules == ():
        return
    db.session.flush()
    with_support = rules is None or any(rule.reads & FACTS_FROM_SUPPORT for rule in rules)
    facts_by_id, void_ids = partnership_facts_for(sorted(ids), today, with_support)
    condition = Flag.partnership_id.in_(ids)
    if rules is not None:
        condition &= Flag.rule_id.in_([rule.spec.id for rule in rules])
    existing = defaultdict(list)
    for flag in _flags_where(condition):
        existing[flag.partnership_id].append(flag)
    with acting_as(reason=f"Evaluated under policy v{policy.version}"):
        for pid in sorted(ids):
            if pid in void_ids:
                _void_open(existing[pid], "The partnership was voided.")
                continue
            facts = facts_by_id.get(pid)
            if facts is None:
                continue
            applying = {rule.spec.id: rule
                        for rule in policy.applying("partnership", facts, rules)}
            _apply(plan_flags(existing[pid], applying, facts, policy.version), policy,
                   partnership_id=pid)
        db.session.flush()


def _flags_where(condition) -> list[Flag]:
    return list(db.session.scalars(
        select(Flag).where(condition, Flag.voided_at.is_(None)).order_by(Flag.id)
    ))


@functools.cache
def _live_flags_of_interaction():
    """Built once: every change of an interaction runs it."""
    return (select(Flag).where(Flag.interaction_id == bindparam("interaction_id"),
                               Flag.voided_at.is_(None)).order_by(Flag.id))


def _apply(plan: FlagPlan, policy: CompiledPolicy, **subject) -> list[Flag]:
    """Carry out the plan; return the flags it opened."""
    now = utcnow()
    for flag in plan.close:
        flag.state = "remediated"
        flag.note = closing_note(policy.version)
        flag.resolved_at = now
        flag.resolved_by_id = None
        flag.resolved_policy_version = policy.version
    for flag, message in plan.restate:
        flag.message = message
    opened = [Flag(**subject, rule_id=rule.spec.id, dimension=rule.spec.dimension,
                   severity=rule.spec.severity, state="open", message=message,
                   policy_version=policy.version, raised_at=now) for rule, message in plan.open]
    db.session.add_all(opened)
    return opened


def _void_open(flags, reason: str) -> None:
    now = utcnow()
    for flag in flags:
        if flag.is_open:
            flag.voided_at = now
            flag.void_reason = reason


# --- partnership facts (shared by both paths) ------------------------------------------------


def _chunks(ids: list[int]):
    for start in range(0, len(ids), IN_CHUNKS):
        yield ids[start:start + IN_CHUNKS]


def partnership_facts_for(ids: list[int], today: date, with_support: bool = True
                          ) -> tuple[dict[int, dict], set[int]]:
    """Return the facts of the given partnerships (with a few grouped queries) and the void ones.
    Without support, the facts of FACTS_FROM_SUPPORT are left at nought (for rules that read
    none of them)."""
    columns = [Partnership.id, Partnership.voided_at,
               *(getattr(Partnership, name) for name in PARTNERSHIP_COLUMNS)]
    rows, counts, supports = [], Counter(), Counter()
    year_ago = today - timedelta(days=365)
    for chunk in _chunks(ids):
        rows.extend(db.session.execute(select(*columns).where(Partnership.id.in_(chunk))))
        counts.update(dict(db.session.execute(
            select(Interaction.partnership_id, func.count())
            .where(Interaction.partnership_id.in_(chunk), Interaction.voided_at.is_(None),
                   Interaction.occurred_on > year_ago, Interaction.occurred_on <= today)
            .group_by(Interaction.partnership_id)
        ).all()))
        if with_support:
            supports.update(dict(db.session.execute(
                select(Support.partnership_id, func.count())
                .where(Support.partnership_id.in_(chunk), Support.voided_at.is_(None))
                .group_by(Support.partnership_id)
            ).all()))
    void_ids = {row.id for row in rows if row.voided_at is not None}
    live = [row for row in rows if row.voided_at is None]
    groups = sorted({row.patient_group_id for row in live}) if with_support else []
    lines, incomes = _group_support_lines(groups)
    facts = {}
    for row in live:
        income, currency = incomes.get(row.patient_group_id, (None, None))
        shares = concentration(row.sponsor_id, lines.get(row.patient_group_id, []), income,
                               currency) if row.patient_group_id in lines else Concentration(
            income_pct=0.0 if income else None)
        facts[row.id] = partnership_facts(
            row, today=today, interactions_last_12_months=counts.get(row.id, 0),
            support_count=supports.get(row.id, 0), shares=shares)
    return facts, void_ids


def _group_support_lines(groups: list[int]):
    lines: dict[int, list[GroupSupport]] = defaultdict(list)
    incomes = {}
    for chunk in _chunks(groups):
        for row in db.session.execute(
            select(Support.recipient_id, Partnership.sponsor_id, Support.paid_on,
                   Support.currency, Support.amount)
            .join(Partnership, Support.partnership_id == Partnership.id)
            .where(Support.recipient_id.in_(chunk), Support.voided_at.is_(None),
                   Support.amount.is_not(None), Partnership.voided_at.is_(None))
        ):
            lines[row.recipient_id].append(
                GroupSupport(row.sponsor_id, row.paid_on.year, row.currency, row.amount))
        for row in db.session.execute(
            select(Organisation.id, Organisation.annual_income, Organisation.income_currency)
            .where(Organisation.id.in_(chunk))
        ):
            incomes[row.id] = (row.annual_income, row.income_currency)
    return lines, incomes


# --- every record (after a policy change) ----------------------------------------------------


@dataclass
class Reevaluation:
    policy_version: str
    interactions: int = 0
    partnerships: int = 0
    opened: int = 0
    closed: int = 0
    restated: int = 0
    withdrawn: int = 0
    still_open: int = 0

    def summary(self) -> str:
        return (f"Re-evaluated {self.interactions} interactions and {self.partnerships} "
                f"partnerships under policy v{self.policy_version}: {self.opened} flags opened, "
                f"{self.closed} closed as no longer applying, {self.still_open} still open.")


_FLAG_ROW = (Flag.id, Flag.interaction_id, Flag.partnership_id, Flag.rule_id, Flag.state,
             Flag.policy_version, Flag.resolved_policy_version, Flag.message, Flag.note)
_INTERACTION_ROW = (Interaction.id, Interaction.voided_at,
                    *(getattr(Interaction, name) for name in INTERACTION_COLUMNS))


def reevaluate_all(today: date | None = None, batch_size: int = 5000,
                   after_batch: Callable[[int, int], None] | None = None) -> Reevaluation:
    """Re-check every interaction and partnership under the policy on disk; flush, not commit.

    `after_batch(done, total)` is called after each batch of records has been written (the
    background job commits there, so other writers get their turn, and reports progress).
    Raises PolicyError when the policy files are not valid.
    """
    with _gc_paused():
        return _reevaluate_all(today, batch_size, after_batch or (lambda _done, _total: None))


def _reevaluate_all(today: date | None, batch_size: int,
                    after_batch: Callable[[int, int], None]) -> Reevaluation:
    policy = load_policy(current_app.config["POLICIES_DIR"])
    today = today or today_utc()
    db.session.flush()
    writer = BulkFlagWriter(policy, f"Re-evaluation of all records under policy v"
                                    f"{policy.version}")
    result = Reevaluation(policy.version)
    total = (db.session.scalar(select(func.count()).select_from(Interaction))
             + db.session.scalar(select(func.count()).select_from(Partnership)))
    last_id = 0
    while True:
        rows = db.session.execute(
            select(*_INTERACTION_ROW).where(Interaction.id > last_id).order_by(Interaction.id)
            .limit(batch_size)
        ).all()
        if not rows:
            break
        existing = _existing_flags(Flag.interaction_id.between(rows[0].id, rows[-1].id),
                                   "interaction_id")
        _evaluate_interaction_rows(rows, existing, policy, writer, today)
        result.interactions += len(rows)
        writer.write()
        last_id = rows[-1].id
        after_batch(result.interactions, total)

    ids = list(db.session.scalars(select(Partnership.id).order_by(Partnership.id)))
    for start in range(0, len(ids), batch_size):
        chunk = ids[start:start + batch_size]
        _evaluate_partnership_rows(chunk, policy, writer, today)
        result.partnerships += len(chunk)
        writer.write()
        after_batch(result.interactions + result.partnerships, total)

    _expire_flags()
    counts = writer.counts
    result.opened, result.closed = counts["opened"], counts["closed"]
    result.restated, result.withdrawn = counts["restated"], counts["withdrawn"]
    result.still_open = db.session.scalar(
        select(func.count()).select_from(Flag).where(Flag.state == "open",
                                                     Flag.voided_at.is_(None)))
    return result


def evaluate_interactions_in_bulk(interaction_ids: list[int], today: date | None = None) -> None:
    """Evaluate many interactions at once (e.g. an import), then their partnerships."""
    if not interaction_ids:
        return
    with _gc_paused():
        _evaluate_interactions_in_bulk(interaction_ids, today)


def _evaluate_interactions_in_bulk(interaction_ids: list[int], today: date | None) -> None:
    policy = current_policy()
    today = today or today_utc()
    db.session.flush()
    writer = BulkFlagWriter(policy, f"Evaluated under policy v{policy.version}")
    partnership_ids = set()
    for chunk in _chunks(sorted(set(interaction_ids))):
        rows = db.session.execute(
            select(*_INTERACTION_ROW).where(Interaction.id.in_(chunk))).all()
        existing = _existing_flags(Flag.interaction_id.in_(chunk), "interaction_id")
        _evaluate_interaction_rows(rows, existing, policy, writer, today)
        partnership_ids.update(row.partnership_id for row in rows
                               if row.partnership_id is not None)
        writer.write()
    _expire_flags()
    _evaluate_partnership_ids(partnership_ids, policy, today)


def _existing_flags(condition, key: str) -> dict[int, list]:
    existing = defaultdict(list)
    for flag in db.session.execute(select(*_FLAG_ROW).where(condition,
                                                            Flag.voided_at.is_(None))):
        existing[getattr(flag, key)].append(flag)
    return existing


def _evaluate_interaction_rows(rows, existing: dict, policy: CompiledPolicy,
                               writer: "BulkFlagWriter", today: date) -> None:
    applying_for = policy.applying
    for row in rows:
        flags = existing.get(row.id, ())
        if row.voided_at is not None:
            writer.withdraw(flags, "The interaction was voided.")
            continue
        facts = interaction_facts(row, today)
        applying = {rule.spec.id: rule for rule in applying_for("interaction", facts)}
        writer.add(plan_flags(flags, applying, facts, policy.version), interaction_id=row.id)


def _evaluate_partnership_rows(ids: list[int], policy: CompiledPolicy,
                               writer: "BulkFlagWriter", today: date) -> None:
    facts_by_id, void_ids = partnership_facts_for(ids, today)
    existing = defaultdict(list)
    for part in _chunks(ids):
        for pid, flags in _existing_flags(Flag.partnership_id.in_(part),
                                          "partnership_id").items():
            existing[pid].extend(flags)
    for pid in ids:
        if pid in void_ids:
            writer.withdraw(existing[pid], "The partnership was voided.")
            continue
        facts = facts_by_id[pid]
        applying = {rule.spec.id: rule for rule in policy.applying("partnership", facts)}
        writer.add(plan_flags(existing[pid], applying, facts, policy.version), partnership_id=pid)


def _expire_flags() -> None:
    """Flags written with Core statements: make loaded Flag objects read them again."""
    for obj in list(db.session.identity_map.values()):
        if isinstance(obj, Flag):
            db.session.expire(obj)


class BulkFlagWriter:
    """Write planned flag changes with Core statements and their audit events in one go.

    The audit events have exactly the shape the session listener writes for ORM changes, and
    extend the same hash chain.
    """

    EXCLUDED = Flag.__audit_exclude__

    def __init__(self, policy: CompiledPolicy, reason: str):
        self.policy = policy
        self.version = policy.version
        self.reason = reason
        self.now = utcnow()  # one instant for the whole evaluation
        self.inserts: list[dict] = []
        self.updates: list[tuple[dict, dict]] = []  # (row values, audit changes)
        self.counts = Counter()

    def add(self, plan: FlagPlan, **subject) -> None:
        now = self.now
        note = closing_note(self.version)
        for flag in plan.close:
            self.updates.append((
                {"b_id": flag.id, "state": "remediated", "note": note, "resolved_at": now,
                 "resolved_policy_version": self.version, "message": flag.message,
                 "voided_at": None, "void_reason": None, "updated_at": now},
                {"state": [flag.state, "remediated"], "note": [flag.note, note],
                 "resolved_at": [None, now],
                 "resolved_policy_version": [flag.resolved_policy_version, self.version]},
            ))
            self.counts["closed"] += 1
        for flag, message in plan.restate:
            self.updates.append((
                {"b_id": flag.id, "state": flag.state, "note": flag.note, "resolved_at": None,
                 "resolved_policy_version": flag.resolved_policy_version, "message": message,
                 "voided_at": None, "void_reason": None, "updated_at": now},
                {"message": [flag.message, message]},
            ))
            self.counts["restated"] += 1
        for rule, message in plan.open:
            self.inserts.append({
                "interaction_id": subject.get("interaction_id"),
                "partnership_id": subject.get("partnership_id"),
                "rule_id": rule.spec.id, "dimension": rule.spec.dimension,
                "severity": rule.spec.severity, "state": "open", "message": message,
                "policy_version": self.version, "resolved_policy_version": None, "note": None,
                "resolved_by_id": None, "resolved_at": None, "raised_at": now,
                "created_at": now, "updated_at": now, "voided_at": None, "void_reason": None,
                "version": 1,
            })
            self.counts["opened"] += 1

    def withdraw(self, flags, reason: str) -> None:
        now = self.now
        for flag in flags:
            if flag.state != "open":
                continue
            self.updates.append((
                {"b_id": flag.id, "state": flag.state, "note": flag.note, "resolved_at": None,
                 "resolved_policy_version": flag.resolved_policy_version,
                 "message": flag.message, "voided_at": now, "void_reason": reason,
                 "updated_at": now},
                {"voided_at": [None, now], "void_reason": [None, reason]},
            ))
            self.counts["withdrawn"] += 1

    def _insert_flags(self) -> list[int]:
        """Insert the new flags with one executemany; return their ids in order."""
        table = Flag.__table__
        before = db.session.scalar(select(func.max(table.c.id))) or 0
        db.session.execute(insert(table), self.inserts)
        count = len(self.inserts)
        # Under SQLite's write lock rows get consecutive ids; when n new rows all lie in
        # (before, before + n] they are exactly those ids, in the order inserted. Otherwise
        # (another database, or a gap) read them back. (Asking SQLite to RETURN ids in parameter
        # order would make SQLAlchemy insert one row per statement.)
        new_rows = db.session.execute(
            select(func.max(table.c.id), func.count()).where(table.c.id > before)).one()
        if new_rows[0] == before + count and new_rows[1] == count:
            return list(range(before + 1, before + count + 1))
        ids = {(row.interaction_id, row.partnership_id, row.rule_id): row.id
               for row in db.session.execute(
                   select(table.c.id, table.c.interaction_id, table.c.partnership_id,
                          table.c.rule_id)
                   .where(table.c.id > before, table.c.raised_at == self.now,
                          table.c.state == "open"))}
        return [ids[(values["interaction_id"], values["partnership_id"], values["rule_id"])]
                for values in self.inserts]

    def write(self) -> None:
        _forget_settled_flags(db.session)
        table = Flag.__table__
        events = []
        if self.inserts:
            # Plain executemany, then read the new ids back: asking SQLite to RETURN ids in
            # parameter order would make SQLAlchemy insert one row per statement.
            for flag_id, values in zip(self._insert_flags(), self.inserts, strict=True):
                changes = {key: [None, value] for key, value in values.items()
                           if key not in self.EXCLUDED and value is not None}
                changes["id"] = [None, flag_id]
                events.append(("create", flag_id, changes))
        if self.updates:
            db.session.execute(
                update(table).where(table.c.id == bindparam("b_id")).values(
                    state=bindparam("state"), note=bindparam("note"),
                    resolved_at=bindparam("resolved_at"),
                    resolved_policy_version=bindparam("resolved_policy_version"),
                    message=bindparam("message"),
                    voided_at=bindparam("voided_at"), void_reason=bindparam("void_reason"),
                    updated_at=bindparam("updated_at"), version=table.c.version + 1,
                ).execution_options(synchronize_session=False),
                [values for values, _changes in self.updates],
            )
            for values, changes in self.updates:
                if changes:
                    action = "void" if "voided_at" in changes else "update"
                    events.append((action, values["b_id"], changes))
        append_audit_events("flag", events, self.reason)
        self.inserts, self.updates = [], []


def _json_changes(changes: dict) -> str:
    """The canonical JSON of a change set (as audit.canonical writes it) for flat values."""
    plain = {key: [value.isoformat() if isinstance(value, datetime) else value
                   for value in pair] for key, pair in changes.items()}
    return json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def append_audit_events(entity: str, events: list[tuple[str, int, dict]], reason: str) -> None:
    """Append events for changes written with Core statements, extending the hash chain."""
    if not events:
        return
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                           {"key": audit.CHAIN_LOCK_KEY})
    prev = connection.execute(
        select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)
    ).scalar() or audit.GENESIS_HASH
    actor = audit.current_actor(db.session)
    now = utcnow()
    stamp = now.isoformat()
    direct = None  # whether hashing the plain row directly gives audit.event_hash's result
    rows = []
    for action, entity_id, changes in events:
        row = {"occurred_at": stamp, "actor_id": actor.id, "actor_label": actor.label,
               "action": action, "entity": entity, "entity_id": entity_id,
               "changes": _json_changes(changes), "reason": reason, "prev_hash": prev}
        if direct is None:
            row["hash"] = audit.event_hash(row)
            direct = row["hash"] == _plain_row_hash(row)
        else:
            row["hash"] = _plain_row_hash(row) if direct else audit.event_hash(row)
        prev = row["hash"]
        row["occurred_at"] = now
        rows.append(row)
    connection.execute(insert(AuditEvent.__table__), rows)


def _plain_row_hash(row: dict) -> str:
    """audit.event_hash for a row whose values are already plain (skips its conversions)."""
    content = {key: value for key, value in row.items() if key != "hash"}
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":"),
                                     ensure_ascii=False).encode()).hexdigest()


@contextmanager
def _gc_paused():
    """Pause the cyclic garbage collector during a bulk pass (it only allocates, never cycles)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# --- resolving flags -----------------------------------------------------------------------


def flag_json(flag: Flag) -> dict:
    """Return a flag as the API shows it."""
    return {"id": flag.id, "rule": flag.rule_id, "dimension": flag.dimension,
            "severity": flag.severity, "state": flag.state, "message": flag.message}


def can_resolve(user) -> bool:
    return user.is_authenticated and user.role in RESOLVER_ROLES


def transition_flag(flag: Flag, state: str, note: str | None, actor) -> Flag:
    """Acknowledge (with a justification), mark remediated, or dismiss (with a reason) an open
    flag; only compliance officers may."""
    if actor.role not in RESOLVER_ROLES:
        raise NotAllowed("Only compliance officers can resolve flags.")
    if state not in RESOLUTIONS:
        raise ValidationFailed({"state": ["Choose acknowledged, remediated or dismissed."]})
    if flag.is_void:
        raise Conflict("This flag was withdrawn with its record and cannot change.")
    if flag.state != "open":
        raise Conflict(f"This flag is already {FLAG_STATES[flag.state].lower()}; a closed flag "
                       "cannot change state.")
    note = (note or "").strip()
    if RESOLUTIONS[state] and not note:
        raise ValidationFailed({"note": [RESOLUTIONS[state]]})
    if state == "remediated" and still_applies(flag):
        raise Conflict(f"The record still breaks rule {flag.rule_id}. Edit the record first "
                       "(re-evaluation then closes the flag), or acknowledge the flag with a "
                       "justification.")
    audit.set_actor(actor)
    audit.set_reason(note or "Marked remediated after the record was fixed.")
    flag.state = state
    flag.note = note or None
    flag.resolved_by_id = actor.id
    flag.resolved_at = utcnow()
    flag.resolved_policy_version = current_policy().version
    db.session.flush()
    return flag


def still_applies(flag: Flag, today: date | None = None) -> bool:
    """Return whether the flag's rule holds for its record today under the current policy."""
    policy = current_policy()
    rule = policy.rules.get(flag.rule_id)
    if rule is None:
        return False
    today = today or today_utc()
    if flag.interaction_id is not None:
        interaction = db.session.get(Interaction, flag.interaction_id)
        return not interaction.is_void and rule.applies(interaction_facts(interaction, today))
    facts, _void = partnership_facts_for([flag.partnership_id], today)
    return flag.partnership_id in facts and rule.applies(facts[flag.partnership_id])


# The flags evaluate_interaction has just settled, by interaction id, so the answer to the same
# request shows them without reading them again. Forgotten when the transaction ends, when a
# flag of that interaction is added some other way, and when flags are written in bulk.
SETTLED_FLAGS = "rules_settled_interaction_flags"


def flags_of_interaction(interaction_id: int, include_closed: bool = True) -> list[Flag]:
    settled = db.session.info.get(SETTLED_FLAGS, {}).get(interaction_id)
    if settled is not None:
        return sorted((flag for flag in settled
                       if not flag.is_void and (include_closed or flag.is_open)),
                      key=lambda flag: (not flag.is_open, flag.raised_at, flag.id))
    conditions = [Flag.interaction_id == interaction_id, Flag.voided_at.is_(None)]
    if not include_closed:
        conditions.append(Flag.state == "open")
    return list(db.session.scalars(
        select(Flag).options(joinedload(Flag.resolved_by)).where(*conditions)
        .order_by((Flag.state != "open"), Flag.raised_at, Flag.id)
    ))


def flags_of_interactions(interaction_ids: list[int]) -> dict[int, list[Flag]]:
    """The live flags of many interactions (a page of them) in one query, open ones first."""
    found: dict[int, list[Flag]] = {interaction_id: [] for interaction_id in interaction_ids}
    for chunk in _chunks(list(interaction_ids)):
        for flag in db.session.scalars(
            select(Flag).where(Flag.interaction_id.in_(chunk), Flag.voided_at.is_(None))
            .order_by(Flag.interaction_id, (Flag.state != "open"), Flag.raised_at, Flag.id)
        ):
            found[flag.interaction_id].append(flag)
    return found


def flags_of_partnership(partnership_id: int, include_closed: bool = True) -> list[Flag]:
    conditions = [Flag.partnership_id == partnership_id, Flag.voided_at.is_(None)]
    if not include_closed:
        conditions.append(Flag.state == "open")
    return list(db.session.scalars(
        select(Flag).options(joinedload(Flag.resolved_by)).where(*conditions)
        .order_by((Flag.state != "open"), Flag.raised_at, Flag.id)
    ))


def interactions_with_flags(rule: str | None = None, state: str | None = None):
    """Return a SELECT of the ids of interactions holding a flag of this rule and/or state."""
    query = select(Flag.interaction_id).where(Flag.interaction_id.is_not(None),
                                              Flag.voided_at.is_(None))
    if rule:
        query = query.where(Flag.rule_id == rule)
    if state:
        query = query.where(Flag.state == state)
    return query


# --- the review sign-off (electronic signature) -------------------------------------------


def is_signed_off(interaction: Interaction) -> bool:
    return interaction.signed_off_at is not None


def open_flag_count(interaction_id: int) -> int:
    return db.session.scalar(
        select(func.count()).select_from(Flag).where(
            Flag.interaction_id == interaction_id, Flag.state == "open", Flag.voided_at.is_(None))
    )


def sign_off_review(interaction: Interaction, actor, password: str, meaning: str) -> Interaction:
    """Sign the interaction's compliance review: the signer re-enters their password and states
    the meaning of the signature."""
    from ..auth.services import password_matches

    if actor.role not in RESOLVER_ROLES:
        raise NotAllowed("Only compliance officers sign off reviews.")
    if interaction.is_void:
        raise Conflict("This interaction has been voided; there is nothing to sign off.")
    if is_signed_off(interaction):
        raise Conflict("This review is already signed off.")
    errors = {}
    if meaning not in SIGNATURE_MEANINGS:
        errors["meaning"] = ["State what your signature means."]
    if not password or not password_matches(actor, password):
        errors["password"] = ["This is not your password; the review was not signed."]
        current_app.logger.warning("refused signature of interaction %s by %s: wrong password",
                                   interaction.id, actor.email)
    if errors:
        raise ValidationFailed(errors, "The review was not signed.")
    pending = open_flag_count(interaction.id)
    if pending:
        raise Conflict(f"Resolve the {pending} open flag{'s' if pending != 1 else ''} of this "
                       "interaction before signing off its review.")
    statement = SIGNATURE_MEANINGS[meaning]
    audit.set_actor(actor)
    audit.set_reason(f"Electronic signature by {actor.name}: {statement}")
    interaction.signed_off_at = utcnow().replace(microsecond=0)
    interaction.signed_off_by_id = actor.id
    interaction.signature_meaning = statement
    db.session.flush()
    return interaction


def signature_line(interaction: Interaction) -> str | None:
    """Return the printed form of the review signature: name, UTC date-time and meaning."""
    if not is_signed_off(interaction):
        return None
    signer = interaction.signed_off_by
    name = signer.name if signer else "unknown user"
    return (f"Signed by {name} on {interaction.signed_off_at:%Y-%m-%d %H:%M} UTC — "
            f"{interaction.signature_meaning}")


# Edits to any of these return a signed interaction to review.
SIGNATURE_FIELDS = frozenset({"signed_off_at", "signed_off_by_id", "signature_meaning"})
NOT_CONTENT = SIGNATURE_FIELDS | {"version", "updated_at", "created_at", "confirmed_by_partner",
                                  "confirmation_note"}


def _before_flush(session: Session, _context, _instances) -> None:
    """Return edited signed interactions to review; note partnerships an interaction left;
    forget the settled flags of an interaction that gets a flag some other way."""
    settled = session.info.get(SETTLED_FLAGS)
    if settled:
        for obj in session.new:
            if isinstance(obj, Flag) and obj.interaction_id in settled:
                settled.pop(obj.interaction_id)
    for obj in list(session.dirty):
        if not isinstance(obj, Interaction):
            continue
        state = db.inspect(obj)
        changed = set(audit.changed_columns(state))
        if "partnership_id" in changed:
            old = state.attrs.partnership_id.history.deleted
            if old and old[0] is not None:
                session.info.setdefault("rules_partnerships_touched", set()).add(old[0])
        if obj.signed_off_at is not None and changed - NOT_CONTENT \
                and not changed & SIGNATURE_FIELDS:
            obj.signed_off_at = None
            obj.signed_off_by_id = None
            obj.signature_meaning = None


def _forget_settled_flags(session: Session, *_args) -> None:
    session.info.pop(SETTLED_FLAGS, None)


def install_listeners() -> None:
    if not event.contains(Session, "before_flush", _before_flush):
        # insert=True: run before the audit listener collects the changes, so the audit event
        # of the edit also records that the sign-off was cleared.
        event.listen(Session, "before_flush", _before_flush, insert=True)
        event.listen(Session, "after_commit", _forget_settled_flags)
        event.listen(Session, "after_soft_rollback", _forget_settled_flags)


# --- the review queue and the dashboard ----------------------------------------------------


@dataclass(frozen=True)
class QueueFilter:
    dimension: str | None = None
    severity: str | None = None
    partnership_id: int | None = None
    rule: str | None = None
    state: str = "open"
    min_age_days: int | None = None
    page: int = 1
    per_page: int = 25


@dataclass
class QueuePage:
    items: list
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def flag_queue(criteria: QueueFilter) -> QueuePage:
    """Return one page of flags (open ones by default), oldest first."""
    conditions = [Flag.voided_at.is_(None)]
    if criteria.state:
        conditions.append(Flag.state == criteria.state)
    if criteria.dimension:
        conditions.append(Flag.dimension == criteria.dimension)
    if criteria.severity:
        conditions.append(Flag.severity == criteria.severity)
    if criteria.rule:
        conditions.append(Flag.rule_id == criteria.rule)
    if criteria.partnership_id:
        in_partnership = select(Interaction.id).where(
            Interaction.partnership_id == criteria.partnership_id)
        conditions.append(or_(Flag.partnership_id == criteria.partnership_id,
                              Flag.interaction_id.in_(in_partnership)))
    if criteria.min_age_days:
        conditions.append(Flag.raised_at <= utcnow() - timedelta(days=criteria.min_age_days))
    total = db.session.scalar(select(func.count()).select_from(Flag).where(*conditions))
    items = list(db.session.scalars(
        select(Flag)
        .options(joinedload(Flag.interaction).joinedload(Interaction.partnership),
                 joinedload(Flag.partnership), joinedload(Flag.resolved_by))
        .where(*conditions)
        .order_by(Flag.raised_at, Flag.id)
        .limit(criteria.per_page).offset((criteria.page - 1) * criteria.per_page)
    ))
    return QueuePage(items, total, criteria.page, criteria.per_page)


def _period_conditions(date_from: date | None, date_to: date | None,
                       partnership_id: int | None) -> list:
    conditions = [Interaction.voided_at.is_(None)]
    if date_from:
        conditions.append(Interaction.occurred_on >= date_from)
    if date_to:
        conditions.append(Interaction.occurred_on <= date_to)
    if partnership_id:
        conditions.append(Interaction.partnership_id == partnership_id)
    return conditions


@dataclass(frozen=True)
class Adherence:
    dimension: str
    label: str
    interactions: int
    flagged: int

    @property
    def share(self) -> float | None:
        """Share of interactions with no open flag in this dimension (None without any)."""
        if not self.interactions:
            return None
        return (self.interactions - self.flagged) / self.interactions


def adherence(date_from: date | None = None, date_to: date | None = None,
              partnership_id: int | None = None) -> list[Adherence]:
    """Per dimension, how many interactions of the period carry no open flag in it.

    An interaction counts as flagged in a dimension when it, or its partnership, has an open
    flag of that dimension (partnership-level rules judge the relationship it belongs to).
    """
    conditions = _period_conditions(date_from, date_to, partnership_id)
    total = db.session.scalar(select(func.count()).select_from(Interaction).where(*conditions))
    open_flag = and_(Flag.state == "open", Flag.voided_at.is_(None))
    own = select(Flag.interaction_id.label("iid"), Flag.dimension.label("dim")).where(
        open_flag, Flag.interaction_id.is_not(None))
    via_partnership = (
        select(Interaction.id.label("iid"), Flag.dimension.label("dim"))
        .join(Flag, Flag.partnership_id == Interaction.partnership_id)
        .where(open_flag)
    )
    union = own.union(via_partnership).subquery()
    flagged = dict(db.session.execute(
        select(union.c.dim, func.count(func.distinct(union.c.iid)))
        .join(Interaction, Interaction.id == union.c.iid)
        .where(*conditions)
        .group_by(union.c.dim)
    ).all())
    return [Adherence(key, label, total, flagged.get(key, 0)) for key, label in DIMENSIONS.items()]


def flags_over_time(date_from: date | None = None, date_to: date | None = None,
                    partnership_id: int | None = None) -> list[tuple[str, dict[str, int]]]:
    """Flags on the period's interactions per month of the interaction, by state."""
    conditions = _period_conditions(date_from, date_to, partnership_id)
    month = func.strftime("%Y-%m", Interaction.occurred_on) \
        if db.engine.dialect.name == "sqlite" else func.to_char(Interaction.occurred_on,
                                                                 "YYYY-MM")
    rows = db.session.execute(
        select(month.label("month"), Flag.state, func.count())
        .join(Interaction, Interaction.id == Flag.interaction_id)
        .where(*conditions, Flag.voided_at.is_(None))
        .group_by("month", Flag.state).order_by("month")
    ).all()
    series: dict[str, dict[str, int]] = {}
    for month_key, state, count in rows:
        series.setdefault(month_key, dict.fromkeys(FLAG_STATES, 0))[state] = count
    return sorted(series.items())


def oldest_open_flags(limit: int = 10, partnership_id: int | None = None) -> list[Flag]:
    return flag_queue(QueueFilter(partnership_id=partnership_id, per_page=limit)).items


def open_flag_counts_by_severity() -> dict[str, int]:
    return dict(db.session.execute(
        select(Flag.severity, func.count()).where(Flag.state == "open",
                                                  Flag.voided_at.is_(None))
        .group_by(Flag.severity)
    ).all())


def age_in_days(flag: Flag, now: datetime | None = None) -> int:
    return ((now or utcnow()) - flag.raised_at).days


