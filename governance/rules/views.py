"""The compliance review: flag queue, flag resolution, review sign-off, dashboard, policy page."""

from datetime import timedelta

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy import select

from ..database import utcnow
from ..errors import DomainError
from ..extensions import db
from ..forms import attach_errors
from ..interactions.models import Interaction
from ..partnerships.models import Partnership
from ..security import STAFF, allow, interaction_scope
from ..vocabulary import DIMENSIONS
from . import charts, jobs, services
from .cli import check_policies_command, reevaluate_command
from .engine import PolicyError, check_policy_at_start
from .facts import FACTS
from .forms import (
    DashboardFilterForm,
    QueueFilterForm,
    SignOffForm,
    TransitionForm,
    options,
)
from .models import Flag, ReevaluationRun

bp = Blueprint("rules", __name__, url_prefix="/review")
REVIEWERS = ("compliance", "auditor")
# An SVG chart is an image: its own inline <style> is allowed, nothing else (no scripts).
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; script-src 'none'"


def partnership_choices(blank: str) -> list[tuple]:
    rows = db.session.execute(
        select(Partnership.id, Partnership.title).where(Partnership.voided_at.is_(None))
        .order_by(Partnership.title)
    ).all()
    return options(("", blank), [(row.id, row.title) for row in rows])


@bp.route("/")
@allow(*REVIEWERS)
def queue():
    form = QueueFilterForm(request.args)
    form.partnership_id.choices = partnership_choices("Any partnership")
    policy = services.current_policy()
    form.rule.choices = options(("", "Any rule"), [(rule_id, f"{rule_id} · {rule.spec.title}")
                                                   for rule_id, rule in policy.rules.items()])
    if "state" not in request.args:
        form.state.data = "open"
    form.validate()
    criteria = services.QueueFilter(
        dimension=form.dimension.data if form.dimension.data in DIMENSIONS else None,
        severity=form.severity.data,
        partnership_id=form.partnership_id.data,
        rule=form.rule.data,
        state=form.state.data,
        min_age_days=None if form.min_age_days.errors else form.min_age_days.data,
        page=max(1, request.args.get("page", 1, type=int) or 1),
    )
    page = services.flag_queue(criteria)
    return render_template("rules/queue.html", form=form, page=page, now=utcnow(),
                           severities=services.open_flag_counts_by_severity())


@bp.route("/flags/<int:flag_id>", methods=["GET"])
@allow(*REVIEWERS)
def flag(flag_id: int):
    return _render_flag(_flag_or_404(flag_id), TransitionForm())


@bp.route("/flags/<int:flag_id>", methods=["POST"])
@allow("compliance")
def transition(flag_id: int):
    flag_record = _flag_or_404(flag_id)
    form = TransitionForm()
    if form.validate_on_submit():
        try:
            services.transition_flag(flag_record, form.state.data, form.note.data, current_user)
        except DomainError as error:
            db.session.rollback()
            attach_errors(form, error)
        else:
            db.session.commit()
            flash(f"Flag {flag_record.rule_id} {flag_record.state}.", "success")
            return redirect(_local_next() or url_for(".flag", flag_id=flag_record.id), 303)
    return _render_flag(_flag_or_404(flag_id), form, status=422)


def _local_next() -> str | None:
    """Return the form's `next` page when it is a path on this site (never another host)."""
    target = request.form.get("next") or ""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


def _flag_or_404(flag_id: int) -> Flag:
    flag_record = db.session.get(Flag, flag_id)
    if flag_record is None:
        abort(404)
    return flag_record


def _render_flag(flag_record: Flag, form: TransitionForm, status: int = 200):
    rule = services.current_policy().rules.get(flag_record.rule_id)
    return render_template("rules/flag.html", flag=flag_record, rule=rule, form=form,
                           now=utcnow()), status


@bp.route("/interactions/<int:interaction_id>", methods=["GET"])
@allow(*REVIEWERS)
def review(interaction_id: int):
    interaction = _interaction_or_404(interaction_id)
    return _render_review(interaction, SignOffForm())


@bp.route("/interactions/<int:interaction_id>", methods=["POST"])
@allow("compliance")
def sign_off(interaction_id: int):
    interaction = _interaction_or_404(interaction_id)
    form = SignOffForm()
    if form.validate_on_submit():
        try:
            services.sign_off_review(interaction, current_user, form.password.data,
                                     form.meaning.data)
        except DomainError as error:
            db.session.rollback()
            attach_errors(form, error)
        else:
            db.session.commit()
            flash("Review signed off.", "success")
            return redirect(url_for(".review", interaction_id=interaction.id), 303)
    form.password.data = ""
    return _render_review(_interaction_or_404(interaction_id), form, status=422)


def _interaction_or_404(interaction_id: int) -> Interaction:
    return db.session.scalar(
        select(Interaction).where(Interaction.id == interaction_id,
                                  interaction_scope(current_user))
    ) or abort(404)


def _render_review(interaction: Interaction, form: SignOffForm, status: int = 200):
    flags = services.flags_of_interaction(interaction.id)
    partnership_flags = (services.flags_of_partnership(interaction.partnership_id)
                         if interaction.partnership_id else [])
    return render_template("rules/review.html", interaction=interaction, flags=flags,
                           partnership_flags=partnership_flags, form=form,
                           open_count=sum(1 for f in flags if f.is_open),
                           signature=services.signature_line(interaction),
                           now=utcnow()), status


# --- dashboard -----------------------------------------------------------------------------


def _dashboard_filter():
    form = DashboardFilterForm(request.args)
    form.partnership_id.choices = partnership_choices("All partnerships")
    form.validate()
    today = services.today_utc()
    date_from = None if form.date_from.errors else form.date_from.data
    date_to = None if form.date_to.errors else form.date_to.data
    if "date_from" not in request.args and "date_to" not in request.args:
        date_from, date_to = today - timedelta(days=365), today
        form.date_from.data, form.date_to.data = date_from, date_to
    return form, date_from, date_to, form.partnership_id.data


def _period_label(date_from, date_to, partnership_id) -> str:
    span = f"{date_from.isoformat() if date_from else 'the start'} to " \
           f"{date_to.isoformat() if date_to else 'today'}"
    if partnership_id:
        partnership = db.session.get(Partnership, partnership_id)
        if partnership is not None:
            return f"{span}, {partnership.title}"
    return f"{span}, all partnerships"


@bp.route("/dashboard")
@allow(*REVIEWERS)
def dashboard():
    form, date_from, date_to, partnership_id = _dashboard_filter()
    rows = services.adherence(date_from, date_to, partnership_id)
    series = services.flags_over_time(date_from, date_to, partnership_id)
    chart_args = {key: value for key, value in request.args.items()
                  if key in ("date_from", "date_to", "partnership_id") and value}
    if "date_from" not in request.args and "date_to" not in request.args:
        chart_args.update(date_from=date_from.isoformat(), date_to=date_to.isoformat())
    return render_template(
        "rules/dashboard.html", form=form, adherence=rows, series=series,
        oldest=services.oldest_open_flags(10, partnership_id), chart_args=chart_args,
        period=_period_label(date_from, date_to, partnership_id), now=utcnow(),
        policy=services.current_policy().policy,
    )


@bp.route("/dashboard/adherence.svg")
@allow(*REVIEWERS)
def adherence_svg():
    _form, date_from, date_to, partnership_id = _dashboard_filter()
    rows = services.adherence(date_from, date_to, partnership_id)
    title = f"Adherence per dimension — {_period_label(date_from, date_to, partnership_id)}"
    return _svg(charts.adherence_chart(rows, title))


@bp.route("/dashboard/flags-over-time.svg")
@allow(*REVIEWERS)
def flags_over_time_svg():
    _form, date_from, date_to, partnership_id = _dashboard_filter()
    series = services.flags_over_time(date_from, date_to, partnership_id)
    title = f"Flags by month of interaction — {_period_label(date_from, date_to, partnership_id)}"
    return _svg(charts.flags_over_time_chart(series, title))


def _svg(body: bytes) -> Response:
    response = Response(body, mimetype="image/svg+xml")
    response.headers["Content-Security-Policy"] = SVG_CSP
    response.headers["Cache-Control"] = "private, no-store"
    return response


# --- the policy and re-evaluation ----------------------------------------------------------


@bp.route("/policy")
@allow(*STAFF)
def policy():
    compiled = services.current_policy()
    return render_template("rules/policy.html", policy=compiled.policy, facts=FACTS,
                           rules=[rule.spec for rule in compiled.rules.values()])


@bp.route("/reevaluate", methods=["POST"])
@allow("compliance")
def reevaluate():
    """Queue a re-evaluation of every record and follow it on its own page."""
    try:
        run = jobs.request_reevaluation(current_user)
    except PolicyError as error:
        db.session.rollback()
        flash("The policy files are not valid, so nothing was re-evaluated: "
              + "; ".join(str(p) for p in error.problems), "error")
        return redirect(url_for(".policy"), 303)
    except DomainError as error:
        db.session.rollback()
        flash(error.message, "error")
        return redirect(url_for(".reevaluations"), 303)
    db.session.commit()
    jobs.start(run.id)
    return redirect(url_for(".reevaluation", run_id=run.id), 303)


@bp.route("/reevaluations")
@allow("compliance", "auditor")
def reevaluations():
    runs = db.session.scalars(select(ReevaluationRun).order_by(ReevaluationRun.id.desc())
                              .limit(50)).all()
    return render_template("rules/reevaluations.html", runs=runs, is_stalled=jobs.is_stalled)


@bp.route("/reevaluations/<int:run_id>")
@allow("compliance", "auditor")
def reevaluation(run_id: int):
    run = db.session.get(ReevaluationRun, run_id) or abort(404)
    return render_template("rules/reevaluation.html", run=run, stalled=jobs.is_stalled(run))


@bp.route("/reevaluations/<int:run_id>/status")
@allow("compliance", "auditor")
def reevaluation_status(run_id: int):
    """The run's state as JSON, polled by its page's progress bar."""
    run = db.session.get(ReevaluationRun, run_id) or abort(404)
    response = jsonify(jobs.status_json(run))
    response.headers["Cache-Control"] = "no-store"
    return response


# --- wiring ------------------------------------------------------------------------------


def init_app(app: Flask) -> None:
    """Refuse to start on an invalid policy set; register listeners, commands and helpers."""
    try:
        check_policy_at_start(app.config["POLICIES_DIR"])
    except PolicyError as error:
        app.logger.critical("%s", error)
        raise
    services.install_listeners()
    app.cli.add_command(check_policies_command)
    app.cli.add_command(reevaluate_command)
    app.jinja_env.globals.update(
        flags_of_interaction=services.flags_of_interaction,
        flags_of_partnership=services.flags_of_partnership,
        signature_line=services.signature_line,
        can_resolve_flags=services.can_resolve,
    )
