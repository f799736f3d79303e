"""A record's flags as pages and the API show them."""

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from ..extensions import db
from ..interactions.models import Interaction
from .evaluation import (
    SETTLED_FLAGS,
    current_policy,
    in_chunks,
    partnership_facts_for,
    today_utc,
)
from .facts import interaction_facts
from .models import Flag


def flag_json(flag: Flag) -> dict:
    """Return a flag as the API shows it."""
    return {"id": flag.id, "rule": flag.rule_id, "dimension": flag.dimension,
            "severity": flag.severity, "state": flag.state, "message": flag.message}


def flags_of_interaction(interaction_id: int, include_closed: bool = True) -> list[Flag]:
    settled = db.session.info.get(SETTLED_FLAGS, {}).get(interaction_id)
    if settled is not None:
        return sorted((flag for flag in settled
                       if not flag.is_void and (include_closed or flag.is_open)),
                      key=lambda flag: (not flag.is_open, flag.raised_at, flag.id))
    return _live_flags(Flag.interaction_id == interaction_id, include_closed)


def flags_of_interactions(interaction_ids: list[int]) -> dict[int, list[Flag]]:
    """The live flags of many interactions (a page of them) in one query, open ones first."""
    found: dict[int, list[Flag]] = {interaction_id: [] for interaction_id in interaction_ids}
    for chunk in in_chunks(list(interaction_ids)):
        for flag in db.session.scalars(
            select(Flag).where(Flag.interaction_id.in_(chunk), Flag.voided_at.is_(None))
            .order_by(Flag.interaction_id, (Flag.state != "open"), Flag.raised_at, Flag.id)
        ):
            found[flag.interaction_id].append(flag)
    return found


def flags_of_partnership(partnership_id: int, include_closed: bool = True) -> list[Flag]:
    return _live_flags(Flag.partnership_id == partnership_id, include_closed)


def flags_of_individual_payment(payment_id: int, include_closed: bool = True) -> list[Flag]:
    return _live_flags(Flag.individual_payment_id == payment_id, include_closed)
def flags_of_agreement(agreement_id: int, include_closed: bool = True) -> list[Flag]:
    return _live_flags(Flag.agreement_id == agreement_id, include_closed)


def _live_flags(subject, include_closed: bool) -> list[Flag]:
    """The record's flags that were not withdrawn with it, open ones first."""
    conditions = [subject, Flag.voided_at.is_(None)]
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


def still_applies(flag: Flag, today: date | None = None) -> bool:
    """Return whether the flag's rule holds for its record today under the current policy."""
    policy = current_policy()
    rule = policy.rule_of(flag.subject, flag.rule_id)
    if rule is None:
        return False
    today = today or today_utc()
    if flag.individual_payment_id is not None:
        from ..payments.models import IndividualPayment
        from .evaluation import fair_value_of
        from .facts import individual_payment_facts

        payment = db.session.get(IndividualPayment, flag.individual_payment_id)
        return not payment.is_void and rule.applies(
            individual_payment_facts(payment, fair_value_of(payment)))
    if flag.interaction_id is not None:
        interaction = db.session.get(Interaction, flag.interaction_id)
        return not interaction.is_void and interaction.status != "cancelled" and rule.applies(
            interaction_facts(interaction, today, policy.approval_formats))
    if flag.agreement_id is not None:
        return _agreement_rule_applies(rule, flag.agreement_id)
    facts, _void = partnership_facts_for([flag.partnership_id], today)
    return flag.partnership_id in facts and rule.applies(facts[flag.partnership_id])


def _agreement_rule_applies(rule, agreement_id: int) -> bool:
    from ..agreements.models import Agreement
    from ..partnerships.models import Support
    from .facts import PaidLine, agreement_facts

    agreement = db.session.get(Agreement, agreement_id)
    if agreement is None or agreement.is_void:
        return False
    lines = [PaidLine(row.id, row.paid_on, row.currency, row.amount) for row in db.session.execute(
        select(Support.id, Support.paid_on, Support.currency, Support.amount)
        .where(Support.agreement_id == agreement_id, Support.voided_at.is_(None)))]
    return rule.applies(agreement_facts(agreement, lines))
