"""Evaluate records against the policy and keep their flags in step.

Two paths share one decision (`plan_flags`): evaluating one record after it changes (here: ORM
objects, audited by the session listener) and re-evaluating many records at once (bulk.py:
columns loaded in batches, flags and their audit events written in bulk).
"""

import functools
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import and_, bindparam, case, event, func, or_, select
from sqlalchemy.orm import Session

from .. import audit
from ..audit import acting_as
from ..database import utcnow
from ..extensions import db
from ..interactions.models import Interaction
from ..notifications import events
from ..organisations.models import GroupYearlyFigures, Organisation
from ..partnerships.models import Partnership, Support
from .engine import CompiledPolicy
from .facts import (
    LATE_STAGES,
    PARTNERSHIP_COLUMNS,
    Concentration,
    DeclaredFigures,
    GroupFunding,
    GroupSupport,
    PaidLine,
    agreement_facts,
    concentration,
    interaction_facts,
    partnership_facts,
)
from .models import Flag
from .versions import History, forget_policy_in_force, policy_in_force

IN_CHUNKS = 500  # ids per IN (...) list
# The flags evaluate_interaction has just settled, by interaction id, so the answer to the same
# request shows them without reading them again. Forgotten when the transaction ends, when a
# flag of that interaction is added some other way, and when flags are written in bulk.
SETTLED_FLAGS = "rules_settled_interaction_flags"
# The partnerships that interactions flushed in this transaction left (they lose the facts).
PARTNERSHIPS_LEFT = "rules_partnerships_touched"


def current_policy() -> CompiledPolicy:
    """Return the policy in force today (governance/rules/versions.py)."""
    return policy_in_force()


def today_utc() -> date:
    return utcnow().date()


# --- the decision --------------------------------------------------------------------------


@dataclass
class FlagPlan:
    """What evaluation changes for one record's flags."""

    open: list = field(default_factory=list)  # (CompiledRule, message)
    close: list = field(default_factory=list)  # (flag (ORM object or row), (state, note))
    restate: list = field(default_factory=list)  # (flag, message): still applies, new wording


def plan_flags(existing, applying: dict, facts: dict, history: History,
               subject: str) -> FlagPlan:
    """Decide which flags open, which close and which stand, for one record.

    An open flag that still applies stays open (its message follows the facts); one that no
    longer applies closes (`closing` says how). A rule that applies opens a flag unless one is
    already open, or the same rule was acknowledged or dismissed on this record under a
    version whose rule judges as this one does (same condition and thresholds): a changed
    rule re-opens it for a fresh look.
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
                plan.close.append((flag, closing(flag, facts, history, subject)))
        elif flag.state in ("acknowledged", "dismissed") and history.judges_alike(
                flag.resolved_policy_version, subject, flag.rule_id):
            settled.add(flag.rule_id)
    for rule_id, rule in applying.items():
        if rule_id not in open_rules and rule_id not in settled:
            plan.open.append((rule, rule.message(facts)))
    return plan


# A cancelled interaction never took place: its open flags are withdrawn, none is raised.
CANCELLED = "The interaction was cancelled."


def closing(flag, facts: dict, history: History, subject: str) -> tuple[str, str]:
    """The state and note an open flag closes with. `superseded` (naming the version) when the
    policy changed, not the record: its rule was switched off or removed, or the rule of the
    version that raised the flag would still flag the record. `remediated` when the record
    was put right."""
    policy = history.policy
    rule = policy.rule_of(subject, flag.rule_id)
    if rule is None:
        return "superseded", (f"Superseded by policy v{policy.version}, which no longer has "
                              f"the rule {flag.rule_id}.")
    if rule.spec.retired:
        return "superseded", f"Superseded by policy v{policy.version}: {rule.spec.retired}"
    raised_under = history.rule(flag.policy_version, subject, flag.rule_id)
    if raised_under is not None and raised_under.judgement != rule.judgement \
            and raised_under.applies(facts):
        return "superseded", (f"Superseded by policy v{policy.version}: the rule changed "
                              f"since v{flag.policy_version} raised this flag, and the "
                              "record would still be flagged under the old rule.")
    return "remediated", closing_note(policy.version)


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
        elif interaction.status == "cancelled":
            _void_open(existing, CANCELLED)
        else:
            facts = interaction_facts(interaction, today, policy.approval_formats)
            applying = {rule.spec.id: rule for rule in policy.applying("interaction", facts)}
            opened = _apply(plan_flags(existing, applying, facts, History(policy),
                                       "interaction"), policy, interaction_id=interaction.id)
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
FACTS_MOVED_BY_INTERACTIONS = frozenset({"interactions_last_12_months",
                                         "months_since_last_interaction",
                                         "months_since_early_interaction",
                                         "early_interaction_text"})
# The interaction fields the first read: an edit of an interaction that changes none of them
# leaves its partnership's facts as they were.
INTERACTION_FIELDS_READ_BY_PARTNERSHIPS = frozenset({"partnership_id", "occurred_on", "status",
                                                     "lifecycle_stage"})
FACTS_FROM_SUPPORT = frozenset({"support_count", "sponsor_share_of_group_support_pct",
                                "support_share_year", "support_share_of_recorded",
                                "sponsor_share_of_group_income_pct", "income_share_year",
                                "group_support_cap_pct", "group_income_cap_pct",
                                "concentration_text", "own_caps_text",
                                "lines_without_agreement", "lines_without_agreement_list"})


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
    history = History(policy)
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
            _apply(plan_flags(existing[pid], applying, facts, history, "partnership"), policy,
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
    for flag, (state, note) in plan.close:
        flag.state, flag.note = state, note
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
    rows, supports = [], Counter()
    meetings = {}  # partnership id -> (interactions in the last 12 months, last on, last early on)
    unpaid_under = defaultdict(list)  # support lines naming no agreement, by partnership
    for chunk in in_chunks(ids):
        rows.extend(db.session.execute(select(*columns).where(Partnership.id.in_(chunk))))
        meetings.update(_interaction_dates(chunk, today))
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
    funding = _group_funding(groups, today)
    facts = {}
    for row in live:
        group = funding.get(row.patient_group_id)
        shares = concentration(row.sponsor_id, group, today) if group else Concentration()
        counted, last_on, last_early_on = meetings.get(row.id, (0, None, None))
        facts[row.id] = partnership_facts(
            row, today=today, interactions_last_12_months=counted,
            support_count=supports.get(row.id, 0), shares=shares,
            lines_without_agreement=tuple(unpaid_under.get(row.id, ())),
            last_interaction_on=last_on, last_early_interaction_on=last_early_on)
    return facts, void_ids


def _interaction_dates(chunk: list[int], today: date) -> dict[int, tuple]:
    """For each partnership of the chunk, in one grouped query: its live interactions of the
    last 12 months (WHAT-TRANSACTIONAL), and the dates of its latest interaction that was not
    cancelled and of the latest such one before phase 3 (or without a stage: WHEN-LATE-ONLY),
    up to today."""
    year_ago = today - timedelta(days=365)
    taking_place = Interaction.status != "cancelled"
    early = or_(Interaction.lifecycle_stage.is_(None),
                Interaction.lifecycle_stage.not_in(LATE_STAGES))
    found = db.session.execute(
        select(Interaction.partnership_id,
               func.count(case((Interaction.occurred_on > year_ago, 1))),
               func.max(case((taking_place, Interaction.occurred_on))),
               func.max(case((and_(taking_place, early), Interaction.occurred_on))))
        .where(Interaction.partnership_id.in_(chunk), Interaction.voided_at.is_(None),
               Interaction.occurred_on <= today)
        .group_by(Interaction.partnership_id)
    ).all()
    return {pid: (counted, _as_date(last_on), _as_date(last_early_on))
            for pid, counted, last_on, last_early_on in found}


def _as_date(value) -> date | None:
    """A MAX() of a date column: SQLite answers it as text."""
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _group_funding(groups: list[int], today: date) -> dict[int, GroupFunding]:
    """What each patient group's funding shares are measured against, for the current and the
    last calendar year: the valued support recorded for it, the figures it declared, its annual
    income and its own caps (grouped queries per chunk of groups)."""
    years = (today.year - 1, today.year)
    lines: dict[int, list[GroupSupport]] = defaultdict(list)
    declared: dict[int, dict[int, DeclaredFigures]] = defaultdict(dict)
    funding = {}
    for chunk in in_chunks(groups):
        for row in db.session.execute(
            select(Support.recipient_id, Partnership.sponsor_id, Support.paid_on,
                   Support.currency, Support.amount)
            .join(Partnership, Support.partnership_id == Partnership.id)
            .where(Support.recipient_id.in_(chunk), Support.voided_at.is_(None),
                   Support.amount.is_not(None), Partnership.voided_at.is_(None),
                   Support.paid_on >= date(years[0], 1, 1),
                   Support.paid_on <= date(years[1], 12, 31))
        ):
            lines[row.recipient_id].append(
                GroupSupport(row.sponsor_id, row.paid_on.year, row.currency, row.amount))
        for row in db.session.execute(
            select(GroupYearlyFigures.organisation_id, GroupYearlyFigures.year,
                   GroupYearlyFigures.currency, GroupYearlyFigures.industry_support,
                   GroupYearlyFigures.income, GroupYearlyFigures.source)
            .where(GroupYearlyFigures.organisation_id.in_(chunk),
                   GroupYearlyFigures.voided_at.is_(None),
                   GroupYearlyFigures.year.in_(years))
        ):
            declared[row.organisation_id][row.year] = DeclaredFigures(
                row.year, row.currency, row.industry_support, row.income, row.source)
        for row in db.session.execute(
            select(Organisation.id, Organisation.annual_income, Organisation.income_currency,
                   Organisation.own_support_cap_pct, Organisation.own_income_cap_pct)
            .where(Organisation.id.in_(chunk))
        ):
            funding[row.id] = GroupFunding(
                tuple(lines.get(row.id, ())), declared.get(row.id, {}), row.annual_income,
                row.income_currency, row.own_support_cap_pct, row.own_income_cap_pct)
    return funding


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
        history = History(policy)
        with acting_as(reason=f"Evaluated under policy v{policy.version}"):
            for agreement in agreements:
                if agreement.is_void:
                    _void_open(existing[agreement.id], "The agreement was voided.")
                    continue
                facts = agreement_facts(agreement, lines[agreement.id])
                applying = {rule.spec.id: rule for rule in policy.applying("agreement", facts)}
                _apply(plan_flags(existing[agreement.id], applying, facts, history,
                                  "agreement"), policy, agreement_id=agreement.id)
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
            existing += _apply(plan_flags(existing, applying, facts, History(policy),
                                          "individual_payment"), policy,
                               individual_payment_id=payment.id)
        db.session.flush()
    return [flag for flag in existing if flag.is_open and not flag.is_void]


def install_listeners() -> None:
    if not event.contains(Session, "before_flush", _note_changes):
        event.listen(Session, "before_flush", _note_changes)
        event.listen(Session, "after_commit", forget_settled_flags)
        event.listen(Session, "after_soft_rollback", forget_settled_flags)
        event.listen(Session, "after_commit", forget_policy_in_force)
        event.listen(Session, "after_soft_rollback", forget_policy_in_force)
