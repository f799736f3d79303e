"""Evaluate records against the policy and keep their flags in step.

Two paths share one decision (`plan_flags`): evaluating one record after it changes (here: ORM
objects, audited by the session listener) and re-evaluating many records at once (bulk.py:
columns loaded in batches, flags and their audit events written in bulk).
"""

import functools
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

from flask import current_app
from sqlalchemy import bindparam, event, func, select
from sqlalchemy.orm import Session

from .. import audit
from ..audit import acting_as
from ..database import utcnow
from ..extensions import db
from ..interactions.models import Interaction
from ..notifications import events
from ..organisations.models import Organisation
from ..partnerships.models import Partnership, Support
from .engine import CompiledPolicy, PolicyError, last_good_policy, load_policy
from .facts import (
    PARTNERSHIP_COLUMNS,
    Concentration,
    GroupSupport,
    PaidLine,
    agreement_facts,
    concentration,
    interaction_facts,
    partnership_facts,
)
from .models import Flag

IN_CHUNKS = 500  # ids per IN (...) list
# The flags evaluate_interaction has just settled, by interaction id, so the answer to the same
# request shows them without reading them again. Forgotten when the transaction ends, when a
# flag of that interaction is added some other way, and when flags are written in bulk.
SETTLED_FLAGS = "rules_settled_interaction_flags"
# The partnerships that interactions flushed in this transaction left (they lose the facts).
PARTNERSHIPS_LEFT = "rules_partnerships_touched"


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


# A cancelled interaction never took place: its open flags are withdrawn, none is raised.
CANCELLED = "The interaction was cancelled."


def closing_note(version: str) -> str:
    return f"No longer applies under policy v{version}."


def closing(rule_id: str, policy: CompiledPolicy) -> tuple[str, str]:
    """The state and note an open flag closes with: `superseded` when its rule was switched off
    (the policy changed, not the record), `remediated` otherwise."""
    rule = policy.rules.get(rule_id)
    if rule is not None and rule.spec.retired:
        return "superseded", f"Superseded under policy v{policy.version}: {rule.spec.retired}"
    return "remediated", closing_note(policy.version)


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
        elif interaction.status == "cancelled":
            _void_open(existing, CANCELLED)
        else:
            facts = interaction_facts(interaction, today, policy.approval_formats)
            applying = {rule.spec.id: rule for rule in policy.applying("interaction", facts)}
            opened = _apply(plan_flags(existing, applying, facts, policy.version), policy,
                            interaction_id=interaction.id)
            existing += opened
            if opened and not created:
                events.flags_raised_on(interaction, len(opened))
        db.session.flush()
    db.session.info.setdefault(SETTLED_FLAGS, {})[interaction.id] = existing
    touched = db.session.info.pop(PARTNERSHIPS_LEFT, set())
    if partnership:
        touched.add(interaction.partnership_id)
    evaluate_partnership_ids({pid for pid in touched if pid is not None}, policy, today,
                             moved=FACTS_MOVED_BY_INTERACTIONS)


def evaluate_partnership(partnership: Partnership, today: date | None = None) -> list[Flag]:
    """Re-check a partnership and the other partnerships of its patient group (their funding
    shares move together); return the partnership's open flags."""
    policy = current_policy()
    today = today or today_utc()
    siblings = set(db.session.scalars(
        select(Partnership.id).where(Partnership.patient_group_id == partnership.patient_group_id)
    ))
    evaluate_partnership_ids(siblings | {partnership.id}, policy, today)
    return [flag for flag in _flags_where(Flag.partnership_id == partnership.id) if flag.is_open]


# The partnership facts a change to one of its interactions can move, and those that come from
# its support lines (and its patient group's): the rules reading none of the first need no
# re-check after an interaction changes, and the second need not be read for those that do not.
FACTS_MOVED_BY_INTERACTIONS = frozenset({"interactions_last_12_months"})
FACTS_FROM_SUPPORT = frozenset({"support_count", "sponsor_share_of_group_support_pct",
                                "support_share_year", "sponsor_share_of_group_income_pct",
                                "income_share_year", "lines_without_agreement",
                                "lines_without_agreement_list"})


def evaluate_partnership_ids(ids: set[int], policy: CompiledPolicy, today: date,
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
        flag.state, flag.note = closing(flag.rule_id, policy)
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


def in_chunks(ids: list[int]):
    """Yield the ids in lists short enough for one IN (...) each."""
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
    unpaid_under = defaultdict(list)  # support lines naming no agreement, by partnership
    year_ago = today - timedelta(days=365)
    for chunk in in_chunks(ids):
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
            for line in db.session.execute(
                select(Support.partnership_id, Support.id, Support.paid_on, Support.currency,
                       Support.amount)
                .where(Support.partnership_id.in_(chunk), Support.voided_at.is_(None),
                       Support.agreement_id.is_(None))
                .order_by(Support.paid_on, Support.id)
            ):
                unpaid_under[line.partnership_id].append(
                    PaidLine(line.id, line.paid_on, line.currency, line.amount))
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
            support_count=supports.get(row.id, 0), shares=shares,
            lines_without_agreement=tuple(unpaid_under.get(row.id, ())))
    return facts, void_ids


def _group_support_lines(groups: list[int]):
    lines: dict[int, list[GroupSupport]] = defaultdict(list)
    incomes = {}
    for chunk in in_chunks(groups):
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


# --- agreements (the AGR-* rules judge the written agreement a line is paid under) ---------


def evaluate_agreement_ids(ids, policy: CompiledPolicy | None = None,
                           today: date | None = None) -> int:
    """Re-check these agreements against the agreement rules (with a few grouped queries);
    return how many were checked."""
    from ..agreements.models import Agreement

    ids = sorted(set(ids))
    if not ids:
        return 0
    policy = policy or current_policy()
    db.session.flush()
    for chunk in in_chunks(ids):
        agreements = list(db.session.scalars(select(Agreement).where(Agreement.id.in_(chunk))))
        lines = defaultdict(list)
        for row in db.session.execute(
            select(Support.agreement_id, Support.id, Support.paid_on, Support.currency,
                   Support.amount)
            .where(Support.agreement_id.in_(chunk), Support.voided_at.is_(None))
        ):
            lines[row.agreement_id].append(PaidLine(row.id, row.paid_on, row.currency,
                                                    row.amount))
        existing = defaultdict(list)
        for flag in _flags_where(Flag.agreement_id.in_(chunk)):
            existing[flag.agreement_id].append(flag)
        with acting_as(reason=f"Evaluated under policy v{policy.version}"):
            for agreement in agreements:
                if agreement.is_void:
                    _void_open(existing[agreement.id], "The agreement was voided.")
                    continue
                facts = agreement_facts(agreement, lines[agreement.id])
                applying = {rule.spec.id: rule for rule in policy.applying("agreement", facts)}
                _apply(plan_flags(existing[agreement.id], applying, facts, policy.version),
                       policy, agreement_id=agreement.id)
            db.session.flush()
    return len(ids)


def evaluate_agreements_of(partnership_ids) -> None:
    """Re-check every agreement of these partnerships (after one of their lines changed)."""
    from ..agreements.models import Agreement

    partnership_ids = list(partnership_ids)
    if partnership_ids:
        evaluate_agreement_ids(db.session.scalars(
            select(Agreement.id).where(Agreement.partnership_id.in_(partnership_ids))))


# --- what the session tells evaluation -------------------------------------------------------


def _note_changes(session: Session, _context, _instances) -> None:
    """Note the partnerships an interaction left; forget the settled flags of an interaction
    that gets a flag some other way."""
    settled = session.info.get(SETTLED_FLAGS)
    if settled:
        for obj in session.new:
            if isinstance(obj, Flag) and obj.interaction_id in settled:
                settled.pop(obj.interaction_id)
    for obj in session.dirty:
        if not isinstance(obj, Interaction):
            continue
        state = db.inspect(obj)
        if "partnership_id" in audit.changed_columns(state):
            old = state.attrs.partnership_id.history.deleted
            if old and old[0] is not None:
                session.info.setdefault(PARTNERSHIPS_LEFT, set()).add(old[0])


def forget_settled_flags(session: Session, *_args) -> None:
    session.info.pop(SETTLED_FLAGS, None)


# --- individual payments (governance/payments) ---------------------------------------------


def fair_value_of(payment):
    """What the rate card in force allows for the payment (None: the card has no rate)."""
    from ..payments.ratecard import current_rate_card, fair_value

    return fair_value(current_rate_card(), payment.service, payment.currency, payment.paid_on,
                      payment.hours)


def evaluate_individual_payment(payment, created: bool = False) -> list[Flag]:
    """Re-check one individual payment (fee at fair market value, agreement); return its open
    flags."""
    from .facts import individual_payment_facts

    policy = current_policy()
    existing = [] if created else _flags_where(Flag.individual_payment_id == payment.id)
    with acting_as(reason=f"Evaluated under policy v{policy.version}"):
        if payment.is_void:
            _void_open(existing, "The payment was voided.")
        else:
            facts = individual_payment_facts(payment, fair_value_of(payment))
            applying = {rule.spec.id: rule
                        for rule in policy.applying("individual_payment", facts)}
            existing += _apply(plan_flags(existing, applying, facts, policy.version), policy,
                               individual_payment_id=payment.id)
        db.session.flush()
    return [flag for flag in existing if flag.is_open and not flag.is_void]


def install_listeners() -> None:
    if not event.contains(Session, "before_flush", _note_changes):
        event.listen(Session, "before_flush", _note_changes)
        event.listen(Session, "after_commit", forget_settled_flags)
        event.listen(Session, "after_soft_rollback", forget_settled_flags)
