"""How values read for people: labels, dates, money, and the navigation of each role."""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from flask import Flask, current_app
from flask_login import current_user

from . import vocabulary


@dataclass(frozen=True)
class NavItem:
    endpoint: str
    label: str
    roles: frozenset


# Features add their pages here; an item shows only if its endpoint exists and the role may use it.
NAVIGATION: list[NavItem] = [
    NavItem("main.home", "Home", frozenset({"advocate", "compliance", "auditor", "partner",
                                            "admin"})),
    NavItem("interactions.index", "Interactions", frozenset({"advocate", "compliance", "auditor",
                                                             "partner"})),
    NavItem("partnerships.index", "Partnerships", frozenset({"advocate", "compliance", "auditor",
                                                             "partner"})),
    NavItem("partnerships.supports", "Support", frozenset({"advocate", "compliance", "auditor",
                                                           "partner"})),
    NavItem("organisations.index", "Organisations", frozenset({"advocate", "compliance",
                                                               "auditor", "admin"})),
    NavItem("activities.index", "Activities", frozenset({"advocate", "compliance", "auditor",
                                                         "partner"})),
    NavItem("review.queue", "Review", frozenset({"compliance", "auditor"})),
    NavItem("review.dashboard", "Dashboard", frozenset({"compliance", "auditor"})),
    NavItem("rules.policy", "Policy", frozenset({"advocate", "compliance", "auditor", "admin"})),
    NavItem("reports.index", "Reports", frozenset({"compliance", "auditor"})),
    NavItem("confirmations.disputes", "Disputes", frozenset({"compliance", "auditor"})),
    NavItem("confirmations.confirmations", "Confirm records", frozenset({"partner"})),
    NavItem("auditing.index", "Audit trail", frozenset({"compliance", "auditor"})),
]


def navigation() -> list[NavItem]:
    views = current_app.view_functions
    return [item for item in NAVIGATION
            if item.endpoint in views and current_user.role in item.roles]


def label(value, vocabulary_name: str) -> str:
    """Return the human label of a machine name (lists are joined)."""
    names = getattr(vocabulary, vocabulary_name)
    if value is None or value == "":
        return "—"
    if isinstance(value, list | tuple):
        return ", ".join(names.get(v, v) for v in value) or "—"
    return names.get(value, value)


def human_date(value: date | None) -> str:
    return value.strftime("%-d %b %Y") if value else "—"


def human_datetime(value: datetime | None) -> str:
    return value.strftime("%-d %b %Y %H:%M UTC") if value else "—"


def money(amount: Decimal | None, currency: str | None = None) -> str:
    if amount is None:
        return "not valued"
    return f"{currency or ''} {amount:,.2f}".strip()


def init_app(app: Flask) -> None:
    app.jinja_env.filters.update(label=label, date=human_date, datetime=human_datetime,
                                 money=money)
    # current_user as a global too, so macros imported without context can use it.
    app.jinja_env.globals.update(current_user=current_user, navigation=navigation,
                                 vocabulary=vocabulary)
