"""How values read for people: labels, dates, money, and the navigation of each role."""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from flask import Flask
from flask_login import current_user

from . import vocabulary
from .permissions import may


@dataclass(frozen=True)
class NavItem:
    endpoint: str
    label: str


# Features add their pages here; an item shows when the permission its route declares lets the
# current user through (permissions.may), so navigation never disagrees with the routes.
NAVIGATION: list[NavItem] = [
    NavItem("main.home", "Home"),
    NavItem("interactions.index", "Interactions"),
    NavItem("partnerships.index", "Partnerships"),
    NavItem("partnerships.supports", "Support"),
    NavItem("payments.index", "Payments to individuals"),
    NavItem("organisations.index", "Organisations"),
    NavItem("activities.index", "Activities"),
    NavItem("review.queue", "Review"),
    NavItem("review.dashboard", "Dashboard"),
    NavItem("rules.policy", "Policy"),
    NavItem("reports.index", "Reports"),
    NavItem("confirmations.disputes", "Disputes"),
    NavItem("confirmations.confirmations", "Confirm records"),
    NavItem("auditing.index", "Audit trail"),
    NavItem("users.index", "Users"),
    # Approval before the event (issue #18)
    NavItem("review.approvals", "Approvals"),
]


def navigation() -> list[NavItem]:
    return [item for item in NAVIGATION if may(item.endpoint)]


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
                                 vocabulary=vocabulary, may=may)
