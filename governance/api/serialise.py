"""Records as the API answers them: the services' field names, ISO dates, money as decimal strings.

The values come from the services' own `*_values` functions; the response schemas of
`schemas.py` then turn dates and amounts into their JSON form.
"""

import json

from ..interactions.services import interaction_values
from ..organisations.services import organisation_values, yearly_figures_values
from ..partnerships.services import partnership_values, support_values
from ..review.approvals import approval_json
from .schemas import utc_iso


def _record(record) -> dict:
    return {"id": record.id, "created_at": record.created_at, "updated_at": record.updated_at,
            "version": record.version, "voided_at": record.voided_at,
            "void_reason": record.void_reason}


def _flags(flags) -> list[dict]:
    from ..rules.flags import flag_json

    return [flag_json(flag) for flag in flags]


def organisation_json(organisation) -> dict:
    return organisation_values(organisation) | _record(organisation)


def yearly_figures_json(figures) -> dict:
    return yearly_figures_values(figures) | _record(figures) | {
        "organisation_id": figures.organisation_id}


def partnership_json(partnership) -> dict:
    from ..rules.flags import flags_of_partnership

    return partnership_values(partnership) | _record(partnership) | {
        "flags": _flags(flags_of_partnership(partnership.id))}


def support_json(support) -> dict:
    return support_values(support) | _record(support) | {
        "confirmed_by_partner": support.confirmed_by_partner,
        "confirmation_note": support.confirmation_note,
        "dispute_answer": support.dispute_answer,
    }


def interaction_json(interaction, flags=None) -> dict:
    """The interaction with its live flags (read here unless given, e.g. for a whole page)."""
    from ..rules.flags import flags_of_interaction

    if flags is None:
        flags = flags_of_interaction(interaction.id)
    return interaction_values(interaction) | _record(interaction) | {
        "confirmed_by_partner": interaction.confirmed_by_partner,
        "confirmation_note": interaction.confirmation_note,
        "dispute_answer": interaction.dispute_answer,
        "flags": _flags(flags),
        "approval": approval_json(interaction),
        "submitted_at": interaction.submitted_at,
    }


def audit_event_json(row) -> dict:
    """An audit event row, ready for json.dumps (the trail is streamed, not dumped by a schema)."""
    return {"id": row["id"], "occurred_at": utc_iso(row["occurred_at"]),
            "actor_id": row["actor_id"], "actor_label": row["actor_label"],
            "action": row["action"], "entity": row["entity"], "entity_id": row["entity_id"],
            "changes": json.loads(row["changes"]), "reason": row["reason"],
            "prev_hash": row["prev_hash"], "hash": row["hash"]}
