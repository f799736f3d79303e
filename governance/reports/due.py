"""When each organisation-year's transparency report is due, where it stands, and reminders.

The due date is policy data ([reporting] due in policies/rules.toml: 30 June of the next year
by default); the reminders start `reminder_days` before it and go on until it is published.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select

from ..extensions import db
from ..organisations.models import Organisation
from .models import Report

STATUSES = ("not started", "draft", "signed", "published", "overdue")


def _reporting():
    from ..rules.evaluation import current_policy

    return current_policy().reporting


def due_date(year: int) -> date:
    """The day the report of a calendar year is due (30 June of the next year by default)."""
    return _reporting().due_date(year)


@dataclass(frozen=True)
class DueYear:
    organisation: Organisation
    year: int
    due: date
    status: str
    report: Report | None  # the latest version, if any

    @property
    def is_overdue(self) -> bool:
        return self.status == "overdue"


def status_of(report: Report | None, published: bool, due: date, today: date) -> str:
    """not started, draft, signed (the publication job is running), published or overdue
    (past the due date and not published)."""
    if published:
        return "published"
    if today > due:
        return "overdue"
    if report is None:
        return "not started"
    return "signed" if report.signed_at is not None and report.job == "publish" else "draft"


def reporting_status(organisation: Organisation, year: int, today: date) -> str:
    """Where the report of one organisation-year stands."""
    latest, published = _reports_of([organisation.id]).get((organisation.id, year), (None, False))
    return status_of(latest, published, due_date(year), today)


def _reports_of(organisation_ids: list[int]) -> dict[tuple[int, int], tuple[Report, bool]]:
    """For each organisation-year with a report: its latest live version, and whether any
    version is published."""
    found: dict[tuple[int, int], tuple[Report, bool]] = {}
    for report in db.session.scalars(
        select(Report).where(Report.organisation_id.in_(organisation_ids),
                             Report.voided_at.is_(None))
        .order_by(Report.organisation_id, Report.year, Report.revision)
    ):
        key = (report.organisation_id, report.year)
        published = found.get(key, (None, False))[1] or report.is_published
        found[key] = (report, published)
    return found


def _first_years(organisation_ids: list[int]) -> dict[int, int]:
    """The year of each organisation's first recorded support line or interaction (held by it
    or within its partnerships)."""
    from ..interactions.models import Interaction
    from ..partnerships.models import Partnership, Support

    firsts: dict[int, list[date]] = defaultdict(list)
    queries = (
        select(Partnership.sponsor_id, func.min(Support.paid_on))
        .join(Partnership, Partnership.id == Support.partnership_id)
        .where(Partnership.sponsor_id.in_(organisation_ids), Partnership.voided_at.is_(None),
               Support.voided_at.is_(None))
        .group_by(Partnership.sponsor_id),
        select(Partnership.sponsor_id, func.min(Interaction.occurred_on))
        .join(Partnership, Partnership.id == Interaction.partnership_id)
        .where(Partnership.sponsor_id.in_(organisation_ids), Partnership.voided_at.is_(None),
               Interaction.voided_at.is_(None))
        .group_by(Partnership.sponsor_id),
        select(Interaction.organisation_id, func.min(Interaction.occurred_on))
        .where(Interaction.organisation_id.in_(organisation_ids),
               Interaction.voided_at.is_(None))
        .group_by(Interaction.organisation_id),
        # A patient group reports the funding it confirmed.
        select(Support.recipient_id, func.min(Support.paid_on))
        .where(Support.recipient_id.in_(_self_reporting_groups(organisation_ids)),
               Support.confirmed_by_partner == "confirmed", Support.voided_at.is_(None))
        .group_by(Support.recipient_id),
    )
    for query in queries:
        for organisation_id, first in db.session.execute(query):
            if first is not None:
                firsts[organisation_id].append(first)
    return {organisation_id: min(days).year for organisation_id, days in firsts.items()}


def _self_reporting_groups(organisation_ids: list[int]):
    """The patient groups among them with a compliance officer of their own: those that
    publish their funding received here (a group recorded only as a sponsor's partner does
    not)."""
    from ..auth.models import User

    return select(User.organisation_id) \
        .join(Organisation, Organisation.id == User.organisation_id) \
        .where(User.organisation_id.in_(organisation_ids), User.role == "compliance",
               Organisation.kind == "patient_group")


def due_years(organisations: list[Organisation], today: date) -> list[DueYear]:
    """Each organisation's years from its first recorded support or interaction up to last
    year, with the due date and status of the year's report; the latest years first."""
    if not organisations:
        return []
    ids = [organisation.id for organisation in organisations]
    firsts = _first_years(ids)
    reports = _reports_of(ids)
    reporting = _reporting()
    rows = []
    for organisation in organisations:
        first = firsts.get(organisation.id)
        if first is None:
            continue
        for year in range(first, today.year):
            latest, published = reports.get((organisation.id, year), (None, False))
            due = reporting.due_date(year)
            rows.append(DueYear(organisation, year, due,
                                status_of(latest, published, due, today), latest))
    rows.sort(key=lambda row: (-row.year, row.organisation.name.casefold()))
    return rows


def _stage(report: Report) -> str:
    signed = report.signed_at is not None and report.job == "publish"
    return "signed and being published" if signed else "a draft"


@dataclass(frozen=True)
class Reminder:
    due_year: DueYear
    message: str
    overdue: bool


def reminders(rows: list[DueYear], today: date) -> list[Reminder]:
    """The unpublished reports due within the reminder period, or past their due date: the
    most pressing first."""
    window = _reporting().reminder_days
    found = []
    for row in rows:
        if row.status == "published":
            continue
        days = (row.due - today).days
        if days > window:
            continue
        name = f"The {row.year} report of {row.organisation.name}"
        when = f"{row.due.day} {row.due:%B %Y}"
        if days < 0:
            message = (f"{name} was due on {when}: it is {-days} day{'s' if days != -1 else ''} "
                       "overdue.")
        elif days == 0:
            message = f"{name} is due today ({when})."
        else:
            message = f"{name} is due on {when}, in {days} day{'s' if days != 1 else ''}."
        if row.report is not None:
            message += f" Version {row.report.revision} is {_stage(row.report)}."
        found.append(Reminder(row, message, days < 0))
    found.sort(key=lambda reminder: (reminder.due_year.due, reminder.due_year.organisation.name))
    return found
