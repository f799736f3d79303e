"""How the report's plain data reads (its dates and amounts are ISO strings in the snapshot)."""

from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from flask import Flask


def report_date(value: str | None) -> str:
    if not value:
        return "—"
    try:
        return date.fromisoformat(value[:10]).strftime("%-d %b %Y")
    except ValueError:
        return value


def report_datetime(value: str | None) -> str:
    if not value:
        return "—"
    try:
        return datetime.fromisoformat(value.rstrip("Z")).strftime("%-d %b %Y %H:%M UTC")
    except ValueError:
        return value


def report_money(amount: str | None, currency: str | None = None) -> str:
    if amount is None:
        return "not valued"
    try:
        number = Decimal(amount)
    except InvalidOperation:
        return amount
    return f"{currency or ''} {number:,.2f}".strip()


def percent(rate: str | None, places: int = 1) -> str:
    """A rate between 0 and 1 (as text) shown as a percentage."""
    if rate is None:
        return "—"
    try:
        return f"{Decimal(rate) * 100:.{places}f} %"
    except InvalidOperation:
        return rate


def register_filters(app: Flask) -> None:
    app.jinja_env.filters.update(report_date=report_date, report_datetime=report_datetime,
                                 report_money=report_money, percent=percent)
