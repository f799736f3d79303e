"""Evaluate many records at once: every record after a policy change, or a batch just imported.

Records are read as columns in batches, never as ORM objects; their flags are written with Core
statements and audited with one append to the chain per batch (audit.append_changed).
"""

import gc
from collections import Counter, defaultdict
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

from sqlalchemy import bindparam, func, select, update

from .. import audit
from ..database import insert_returning_ids, utcnow
from ..extensions import db
from ..interactions.models import Interaction
from ..partnerships.models import Partnership
from .engine import CompiledPolicy
from .evaluation import (
    CANCELLED,
    FlagPlan,
    current_policy,
    evaluate_agreement_ids,
    evaluate_partnership_ids,
    forget_settled_flags,
    in_chunks,
    partnership_facts_for,
    plan_flags,
    today_utc,
)
from .facts import INTERACTION_COLUMNS, interaction_facts
from .models import Flag
from .versions import History, keep_version_of, policy_in_force


@contextmanager
def gc_paused():
    """Pause the cyclic garbage collector around a bulk pass, for the job and command that run
    one: the pass allocates millions of objects and makes no cycles to collect."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


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
    """Re-check every interaction and partnership under the policy in force; flush, not commit.

    `after_batch(done, total)` is called after each batch of records has been written (the
    background job commits there, so other writers get their turn, and reports progress).
    Raises PolicyError when the policy files are not valid.
    """
    after_batch = after_batch or (lambda _done, _total: None)
    today = today or today_utc()
    policy = policy_in_force(today, strict=True)
    keep_version_of(policy)  # flags raised now can always be told from a later version's
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

    _reevaluate_individual_payments()
    # Agreements are few beside interactions: the ORM path checks them, audited by the listener.
    from ..agreements.models import Agreement

    agreement_ids = list(db.session.scalars(select(Agreement.id).order_by(Agreement.id)))
    for start in range(0, len(agreement_ids), batch_size):
        evaluate_agreement_ids(agreement_ids[start:start + batch_size], policy, today)

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
    policy = current_policy()
    today = today or today_utc()
    db.session.flush()
    writer = BulkFlagWriter(policy, f"Evaluated under policy v{policy.version}")
    partnership_ids = set()
    for chunk in in_chunks(sorted(set(interaction_ids))):
        rows = db.session.execute(
            select(*_INTERACTION_ROW).where(Interaction.id.in_(chunk))).all()
        existing = _existing_flags(Flag.interaction_id.in_(chunk), "interaction_id")
        _evaluate_interaction_rows(rows, existing, policy, writer, today)
        partnership_ids.update(row.partnership_id for row in rows
                               if row.partnership_id is not None)
        writer.write()
    _expire_flags()
    evaluate_partnership_ids(partnership_ids, policy, today)


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
        if row.status == "cancelled":
            writer.withdraw(flags, CANCELLED)
            continue
        facts = interaction_facts(row, today, policy.approval_formats)
        applying = {rule.spec.id: rule for rule in applying_for("interaction", facts)}
        writer.add(plan_flags(flags, applying, facts, writer.history, "interaction"),
                   interaction_id=row.id)


def _evaluate_partnership_rows(ids: list[int], policy: CompiledPolicy,
                               writer: "BulkFlagWriter", today: date) -> None:
    facts_by_id, void_ids = partnership_facts_for(ids, today)
    existing = defaultdict(list)
    for part in in_chunks(ids):
        for pid, flags in _existing_flags(Flag.partnership_id.in_(part),
                                          "partnership_id").items():
            existing[pid].extend(flags)
    for pid in ids:
        if pid in void_ids:
            writer.withdraw(existing[pid], "The partnership was voided.")
            continue
        facts = facts_by_id[pid]
        applying = {rule.spec.id: rule for rule in policy.applying("partnership", facts)}
        writer.add(plan_flags(existing[pid], applying, facts, writer.history, "partnership"),
                   partnership_id=pid)


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

    def __init__(self, policy: CompiledPolicy, reason: str):
        self.policy = policy
        self.version = policy.version
        self.history = History(policy)  # the versions the old flags were raised under
        self.reason = reason
        self.now = utcnow()  # one instant for the whole evaluation
        self.inserts: list[dict] = []
        self.updates: list[tuple[dict, dict]] = []  # (row values, audit changes)
        self.counts = Counter()

    def add(self, plan: FlagPlan, **subject) -> None:
        now = self.now
        for flag, (state, note) in plan.close:
            self.updates.append((
                {"b_id": flag.id, "state": state, "note": note, "resolved_at": now,
                 "resolved_policy_version": self.version, "message": flag.message,
                 "voided_at": None, "void_reason": None, "updated_at": now},
                {"state": [flag.state, state], "note": [flag.note, note],
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

    def write(self) -> None:
        forget_settled_flags(db.session)
        table = Flag.__table__
        events = []
        if self.inserts:
            ids = insert_returning_ids(table, self.inserts)
            for flag_id, values in zip(ids, self.inserts, strict=True):
                events.append(("create", flag_id,
                               audit.creation_changes(Flag, values | {"id": flag_id})))
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
        audit.append_changed("flag", events, self.reason)
        self.inserts, self.updates = [], []


def _reevaluate_individual_payments() -> None:
    """Re-check the live individual payments (governance/payments) one by one: they are few
    beside interactions."""
    from ..payments.models import IndividualPayment
    from .evaluation import evaluate_individual_payment

    payments = db.session.scalars(select(IndividualPayment).where(
        IndividualPayment.voided_at.is_(None)).order_by(IndividualPayment.id)).all()
    for payment in payments:
        evaluate_individual_payment(payment)
