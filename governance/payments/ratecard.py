"""The fair-market-value rate card as data: read and check policies/rate_card.toml, and find the
rate a fee is judged by.

The card is checked with the rules by `flask check-policies` and when the application starts (a
broken card refuses the start, as a broken rules.toml does); a card broken while the application
runs leaves the last good one in force.
"""

import hashlib
import math
import threading
import tomllib
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

from ..vocabulary import PAYMENT_SERVICES, RATE_UNITS

RATE_CARD_FILE = "rate_card.toml"
HEADER_REQUIRED = ("version", "title", "effective_from")
HEADER_OPTIONAL = ("hours_per_day", "description")
RATE_KEYS = ("service", "unit", "rate", "currency", "source", "effective_from")
DEFAULT_HOURS_PER_DAY = Decimal("7.5")
CENT = Decimal("0.01")


class RateCardError(Exception):
    """The rate card cannot be used; `problems` says why, one readable line each."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("The rate card is not valid:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class Rate:
    service: str
    unit: str  # hour | day
    rate: Decimal
    currency: str
    source: str
    effective_from: date


@dataclass(frozen=True)
class RateCard:
    version: str
    title: str
    effective_from: date
    hours_per_day: Decimal
    description: str | None
    rates: tuple[Rate, ...]
    source: str

    def rate_for(self, service: str, currency: str, on: date) -> Rate | None:
        """The rate of the service in the currency in force on the day (None: the card has no
        rate for it)."""
        found = None
        for rate in self.rates:
            if rate.service == service and rate.currency == currency \
                    and rate.effective_from <= on \
                    and (found is None or rate.effective_from > found.effective_from):
                found = rate
        return found


@dataclass(frozen=True)
class FairValue:
    """What the card allows for one payment: the limit and how it was worked out."""

    rate: Rate
    limit: Decimal
    basis: str  # "GBP 150.00 per hour × 4 hours"

    def excess_pct(self, fee: Decimal) -> float:
        """How far (%) the fee is above the limit (negative: below it)."""
        if self.limit <= 0:
            return 0.0 if fee <= 0 else math.inf
        return float((fee - self.limit) / self.limit * 100)


def fair_value(card: RateCard, service: str, currency: str, paid_on: date,
               hours: Decimal | None) -> FairValue | None:
    """The most the card allows for the service, or None when it has no rate for it.

    An hourly rate is paid per hour worked (without hours: one day of `hours_per_day`); a day
    rate per day started (hours / hours_per_day, rounded up; without hours: one day)."""
    rate = card.rate_for(service, currency, paid_on)
    if rate is None:
        return None
    per = f"{rate.currency} {rate.rate:,.2f} per {rate.unit}"
    if rate.unit == "hour":
        worked = hours if hours else card.hours_per_day
        limit = rate.rate * worked
        basis = f"{per} × {_number(worked)} hour{'s' if worked != 1 else ''}"
        if not hours:
            basis += " (no hours recorded: one day)"
    else:
        days = max(1, math.ceil(hours / card.hours_per_day)) if hours else 1
        limit = rate.rate * days
        basis = f"{per} × {days} day{'s' if days != 1 else ''}"
        if hours:
            basis += f" ({_number(hours)} hours; a day is {_number(card.hours_per_day)} hours)"
    return FairValue(rate, limit.quantize(CENT), basis)


def _number(value: Decimal) -> str:
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


# --- reading and checking --------------------------------------------------------------------


def _currency_problem(value) -> str | None:
    import pycountry

    if not isinstance(value, str) or len(value) != 3 or not value.isalpha() \
            or not value.isupper() or pycountry.currencies.get(alpha_3=value) is None:
        return f"currency {value!r} is not an ISO 4217 code (such as GBP or EUR)"
    return None


def _check_rate(raw, where: str, problems: list[str]) -> Rate | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a table ([[rates]])")
        return None
    count = len(problems)
    for key in sorted(set(raw) - set(RATE_KEYS)):
        problems.append(f"{where}: unknown key '{key}'")
    for key in RATE_KEYS:
        if key not in raw:
            problems.append(f"{where}: '{key}' is missing")
    if len(problems) > count:
        return None
    service, unit, currency = raw["service"], raw["unit"], raw["currency"]
    if service not in PAYMENT_SERVICES:
        problems.append(f"{where}: unknown service {service!r}; use one of "
                        f"{', '.join(PAYMENT_SERVICES)}")
    if unit not in RATE_UNITS:
        problems.append(f"{where}: unit {unit!r} is not one of {', '.join(RATE_UNITS)}")
    amount = None
    if isinstance(raw["rate"], bool) or not isinstance(raw["rate"], str | int | float):
        problems.append(f"{where}: rate must be a decimal such as \"150.00\"")
    else:
        try:
            amount = Decimal(str(raw["rate"]))
        except InvalidOperation:
            problems.append(f"{where}: rate {raw['rate']!r} is not a decimal such as \"150.00\"")
        else:
            if not amount.is_finite() or amount <= 0:
                problems.append(f"{where}: rate must be more than 0")
            elif amount != amount.quantize(CENT):
                problems.append(f"{where}: rate has more than 2 decimal places")
    problem = _currency_problem(currency)
    if problem:
        problems.append(f"{where}: {problem}")
    if not isinstance(raw["source"], str) or not raw["source"].strip():
        problems.append(f"{where}: 'source' must say where the rate comes from")
    if not isinstance(raw["effective_from"], date):
        problems.append(f"{where}: 'effective_from' must be a date (e.g. 2025-01-01)")
    if len(problems) > count:
        return None
    return Rate(service, unit, amount.quantize(CENT), currency, raw["source"].strip(),
                raw["effective_from"])


def check_rate_card_text(data: bytes, source: str) -> tuple[RateCard | None, list[str]]:
    """Read and check a rate card's content; return the card or the problems."""
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        return None, [f"{source}: is not UTF-8 text"]
    except tomllib.TOMLDecodeError as error:
        return None, [f"{source}: is not valid TOML: {error}"]
    problems: list[str] = []
    for key in sorted(set(raw) - {"rate_card", "rates"}):
        problems.append(f"unknown top-level key '{key}' (use [rate_card] and [[rates]])")
    header = raw.get("rate_card")
    if not isinstance(header, dict):
        problems.append("[rate_card]: the table is missing (version, title, effective_from)")
        header = {}
    else:
        for key in sorted(set(header) - set(HEADER_REQUIRED) - set(HEADER_OPTIONAL)):
            problems.append(f"[rate_card]: unknown key '{key}'")
        for key in HEADER_REQUIRED:
            if key not in header:
                problems.append(f"[rate_card]: '{key}' is missing")
        if "effective_from" in header and not isinstance(header["effective_from"], date):
            problems.append("[rate_card]: 'effective_from' must be a date (e.g. 2025-01-01)")
    hours_per_day = header.get("hours_per_day", DEFAULT_HOURS_PER_DAY)
    if isinstance(hours_per_day, bool) or not isinstance(hours_per_day, int | float | Decimal) \
            or not 0 < hours_per_day <= 24:
        problems.append("[rate_card]: 'hours_per_day' must be a number of hours above 0 and at "
                        "most 24")
        hours_per_day = DEFAULT_HOURS_PER_DAY
    raw_rates = raw.get("rates")
    if not isinstance(raw_rates, list) or not raw_rates:
        problems.append("no rates: add [[rates]] tables")
        raw_rates = []
    rates, seen = [], set()
    for index, raw_rate in enumerate(raw_rates, start=1):
        where = f"rate #{index}"
        if isinstance(raw_rate, dict) and isinstance(raw_rate.get("service"), str):
            where += f" ({raw_rate['service']}, {raw_rate.get('currency')})"
        rate = _check_rate(raw_rate, where, problems)
        if rate is None:
            continue
        key = (rate.service, rate.currency, rate.effective_from)
        if key in seen:
            problems.append(f"{where}: a second rate for {rate.service} in {rate.currency} "
                            f"from {rate.effective_from.isoformat()}")
        seen.add(key)
        rates.append(rate)
    if problems:
        return None, [f"{source}: {problem}" for problem in problems]
    card = RateCard(version=str(header["version"]), title=str(header["title"]),
                    effective_from=header["effective_from"],
                    hours_per_day=Decimal(str(hours_per_day)),
                    description=header.get("description"), rates=tuple(rates), source=source)
    return card, []


def check_rate_card_dir(directory: str | Path) -> tuple[RateCard | None, list[str]]:
    """Check the rate card of a policy directory (for check-policies)."""
    path = Path(directory) / RATE_CARD_FILE
    try:
        data = path.read_bytes()
    except OSError as error:
        return None, [f"{path}: cannot be read ({error.strerror or error})"]
    return check_rate_card_text(data, str(path))


_lock = threading.Lock()
_by_digest: dict[str, RateCard] = {}
_last_good: dict[str, RateCard] = {}


def load_rate_card(directory: str | Path) -> RateCard:
    """Return the rate card of a policy directory, reading it again only when it changed; a card
    broken since the last good read leaves that one in force."""
    path = Path(directory) / RATE_CARD_FILE
    key = str(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        if key in _last_good:
            return _last_good[key]
        raise RateCardError([f"{path}: cannot be read ({error.strerror or error})"]) from None
    digest = hashlib.sha256(data).hexdigest()
    card = _by_digest.get(digest)
    if card is None:
        card, problems = check_rate_card_text(data, key)
        if problems:
            if key in _last_good:
                return _last_good[key]
            raise RateCardError(problems)
        with _lock:
            if len(_by_digest) >= 8:
                _by_digest.pop(next(iter(_by_digest)))
            _by_digest[digest] = card
    _last_good[key] = card
    return card


def current_rate_card() -> RateCard:
    from flask import current_app

    return load_rate_card(current_app.config["POLICIES_DIR"])


def check_rate_card_at_start(directory: str | Path) -> None:
    """Refuse to start on a rate card that cannot be read or is not valid."""
    card, problems = check_rate_card_dir(directory)
    if problems:
        raise RateCardError(problems)
    _last_good[str(Path(directory) / RATE_CARD_FILE)] = card
