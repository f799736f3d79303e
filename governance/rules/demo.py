"""The demo's policy proposal: a change awaiting the patient partners' sign-off."""

from datetime import date, timedelta

from .versions import propose_version


def seed_demo_policy_proposal(officer, today: date) -> None:
    """Compliance proposes sharing results back sooner, as patients asked; the partners are
    asked to sign it off (the shipped version stays in force, its co-creation not recorded)."""
    propose_version(officer, {
        "version": f"{today.year}.1",
        "summary": "The patient panel asked to hear back sooner: outcomes go back to "
                   "participants within 60 days instead of 90.",
        "effective_from": today + timedelta(days=30),
        "review_due": today + timedelta(days=365),
        "rules": {"DOC-NO-FEEDBACK": {"thresholds": {"max_days": 60}}},
    }, today)
