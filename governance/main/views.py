"""The home page of each role: what that person comes to the application to do first."""


from flask import Blueprint, Flask, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import func, select

from ..audit import AuditEvent
from ..auth.models import User
from ..database import utcnow
from ..extensions import db
from ..interactions.models import Interaction
from ..organisations.models import Organisation
from ..partnerships.models import Partnership
from ..permissions import (
    allow,
    audit_scope,
    can_use_account,
    flag_scope,
    interaction_scope,
    partnership_scope,
    public,
)
from ..rules.models import Flag
from . import submissions

bp = Blueprint("main", __name__)

HOME_TEMPLATES = {
    "advocate": "main/home_advocate.html",
    "compliance": "main/home_compliance.html",
    "auditor": "main/home_auditor.html",
    "partner": "main/home_partner.html",
    "admin": "main/home_admin.html",
}
SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}


@bp.route("/")
@public
def index():
    if current_user.is_authenticated:
        return redirect(url_for("main.home"))
    return redirect(url_for("auth.login"))


@bp.route("/home")
@allow(can_use_account)
def home():
    role = current_user.role
    context = HOME_CONTEXT[role]()
    return render_template(HOME_TEMPLATES[role], **context)


# --- what each role sees first --------------------------------------------------------------


def _advocate():
    """My organisation's recent interactions, the ones I logged first, with their open flags."""
    recent = db.session.scalars(
        select(Interaction)
        .where(interaction_scope(current_user), Interaction.voided_at.is_(None))
        .order_by((Interaction.created_by_id == current_user.id).desc(),
                  Interaction.occurred_on.desc(), Interaction.id.desc())
        .limit(10)
    ).all()
    flags = _open_flags_by_interaction([i.id for i in recent])
    open_total = db.session.scalar(
        select(func.count(Flag.id))
        .join(Interaction, Flag.interaction_id == Interaction.id)
        .where(interaction_scope(current_user), Flag.state == "open", Flag.voided_at.is_(None))
    )
    return {"recent": recent, "flags": flags, "open_total": open_total}


def _compliance():
    """The review queue (oldest and most severe open flags first) and adherence by dimension."""
    counts = dict(db.session.execute(
        select(Flag.severity, func.count(Flag.id))
        .where(Flag.state == "open", Flag.voided_at.is_(None), flag_scope(current_user))
        .group_by(Flag.severity)
    ).all())
    queue = db.session.scalars(
        select(Flag).where(Flag.state == "open", Flag.voided_at.is_(None),
                           flag_scope(current_user))
        .order_by(Flag.raised_at, Flag.id).limit(200)
    ).all()
    queue = sorted(queue, key=lambda f: (SEVERITY_ORDER.get(f.severity, 3), f.raised_at))[:10]
    from ..confirmations import services as confirmation

    return {"counts": counts, "open_total": sum(counts.values()), "queue": queue,
            "adherence": adherence_by_dimension(current_user),
            "disputes": len(confirmation.disputes(current_user)),
            "reports_due": _reports_due(), "quality": quality_this_year(current_user)}


def _reports_due() -> list:
    """Reminders of the reports due soon or overdue, of the organisations I make reports for."""
    from ..permissions import can_make_reports
    from ..reports import due
    from ..reports.views import reporting_organisations

    today = utcnow().date()
    mine = [organisation for organisation in reporting_organisations()
            if can_make_reports(current_user, organisation.id)]
    return due.reminders(due.due_years(mine, today), today)


def adherence_by_dimension(viewer) -> list[dict]:
    """Adherence of the viewer's held interactions of this calendar year (review/adherence.py:
    the one definition the dashboard and the reports use too)."""
    from ..review.adherence import for_viewer

    this_year = utcnow().date().replace(month=1, day=1)
    return [{"key": row.dimension, "label": row.label, "met": row.met,
             "total": row.interactions, "percent": row.percent}
            for row in for_viewer(viewer, this_year, utcnow().date())]


# The home lists this many of the year's "you said, we did" lines (the report lists them all).
HOME_OUTCOMES_LISTED = 10


def quality_this_year(viewer) -> dict:
    """The quality measures of the viewer's held interactions of this calendar year
    (quality/measures.py: the same definition as the internal report)."""
    from ..quality.measures import year_measures

    return year_measures([interaction_scope(viewer)], utcnow().year,
                         latest_outcomes=HOME_OUTCOMES_LISTED)


def _auditor():
    """Audit search, the latest events as a starting point, and the year's quality measures."""
    readable = audit_scope(current_user)
    latest = db.session.scalars(select(AuditEvent).where(readable)
                                .order_by(AuditEvent.id.desc()).limit(10)).all()
    entities = sorted(db.session.scalars(select(AuditEvent.entity).distinct()
                                         .where(readable)).all())
    return {"latest": latest, "entities": entities, "quality": quality_this_year(current_user)}


def _partner():
    """The support lines and interactions of my partnerships that await my answer."""
    from ..confirmations import services as confirmation

    supports = confirmation.records_to_answer(current_user, "support", "pending", 1)
    interactions = confirmation.records_to_answer(current_user, "interaction", "pending", 1)
    partnerships = db.session.scalars(
        select(Partnership).where(partnership_scope(current_user)).order_by(Partnership.title)
    ).all()
    return {"interactions": interactions.items, "supports": supports.items,
            "pending": confirmation.pending_counts(current_user), "partnerships": partnerships}


def _admin():
    """Organisations and user accounts."""
    organisations = db.session.scalars(
        select(Organisation).where(Organisation.voided_at.is_(None)).order_by(Organisation.name)
    ).all()
    users = db.session.scalars(select(User).order_by(User.role, User.email)).all()
    return {"organisations": organisations, "users": users}


HOME_CONTEXT = {"advocate": _advocate, "compliance": _compliance, "auditor": _auditor,
                "partner": _partner, "admin": _admin}


def _open_flags_by_interaction(ids: list[int]) -> dict[int, list[Flag]]:
    if not ids:
        return {}
    found: dict[int, list[Flag]] = {}
    for flag in db.session.scalars(
        select(Flag).where(Flag.interaction_id.in_(ids), Flag.state == "open",
                           Flag.voided_at.is_(None))
    ):
        found.setdefault(flag.interaction_id, []).append(flag)
    for flags in found.values():
        flags.sort(key=lambda f: (SEVERITY_ORDER.get(f.severity, 3), f.rule_id))
    return found


def init_app(app: Flask) -> None:
    submissions.init_app(app)
