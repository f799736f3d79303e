"""The compliance review: flag queue, flag resolution, review sign-off, dashboard."""

from datetime import timedelta

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy import select

from ..database import utcnow
from ..extensions import db
from ..forms import form_status, int_data, options, save_form
from ..interactions.models import Interaction
from ..partnerships.forms import partnership_choices
from ..partnerships.models import Partnership
from ..permissions import (
    allow,
    can_approve_plans,
    can_resolve_flags,
    can_review,
    can_sign_off,
    can_submit_plans,
    flag_scope,
    interaction_scope,
    partnership_scope,
    visible_or_404,
    visible_record,
)
from ..rules.evaluation import current_policy, today_utc
from ..rules.flags import flags_of_interaction, flags_of_partnership
from ..rules.models import Flag
from ..vocabulary import DIMENSIONS
from . import approvals as approvals_service
from . import charts, services
from .dashboard import adherence, flags_over_time, oldest_open_flags, open_flag_counts_by_severity
from .forms import (
    ApprovalFilterForm,
    DashboardFilterForm,
    PlanDecisionForm,
    QueueFilterForm,
    SignOffForm,
    SubmitPlanForm,
    TransitionForm,
)

bp = Blueprint("review", __name__, url_prefix="/review")
# An SVG chart is an image: its own inline <style> is allowed, nothing else (no scripts).
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; script-src 'none'"


@bp.route("/")
@allow(can_review)
def queue():
    form = QueueFilterForm(request.args)
    form.partnership_id.choices = partnership_choices("Any partnership")
    policy = current_policy()
    form.rule.choices = options([("", "Any rule"), *[(rule_id, f"{rule_id} · {rule.spec.title}")
                                                     for rule_id, rule in policy.rules.items()]])
    if "state" not in request.args:
        form.state.data = "open"
    form.validate()
    criteria = services.QueueFilter(
        dimension=form.dimension.data if form.dimension.data in DIMENSIONS else None,
        severity=form.severity.data,
        partnership_id=int_data(form.partnership_id),
        rule=form.rule.data,
        state=form.state.data,
        min_age_days=None if form.min_age_days.errors else form.min_age_days.data,
        page=max(1, request.args.get("page", 1, type=int) or 1),
    )
    page = services.flag_queue(criteria, current_user)
    return render_template("review/queue.html", form=form, page=page, now=utcnow(),
                           severities=open_flag_counts_by_severity(current_user))


@bp.route("/flags/<int:flag_id>", methods=["GET"])
@allow(can_review)
def flag(flag_id: int):
    return _render_flag(_flag_or_404(flag_id), TransitionForm())


@bp.route("/flags/<int:flag_id>", methods=["POST"])
@allow(can_resolve_flags)
def transition(flag_id: int):
    flag_record = _flag_or_404(flag_id)
    form = TransitionForm()
    if form.validate_on_submit():
        saved = save_form(
            form,
            lambda: services.transition_flag(flag_record, form.state.data, form.note.data,
                                             current_user),
            lambda flag: f"Flag {flag.rule_id} {flag.state}.",
            _local_next() or url_for(".flag", flag_id=flag_id), code=303)
        if saved:
            return saved
    return _render_flag(_flag_or_404(flag_id), form, status=422)


def _local_next() -> str | None:
    """Return the form's `next` page when it is a path on this site (never another host)."""
    target = request.form.get("next") or ""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


def _flag_or_404(flag_id: int) -> Flag:
    return visible_or_404(Flag, flag_id, flag_scope)


def _render_flag(flag_record: Flag, form: TransitionForm, status: int = 200):
    rule = current_policy().rule_of(flag_record.subject, flag_record.rule_id)
    return render_template("review/flag.html", flag=flag_record, rule=rule, form=form,
                           can_resolve=can_resolve_flags(current_user, flag_record),
                           now=utcnow()), status


@bp.route("/interactions/<int:interaction_id>", methods=["GET"])
@allow(can_review)
def review(interaction_id: int):
    interaction = _interaction_or_404(interaction_id)
    return _render_review(interaction, SignOffForm())


@bp.route("/interactions/<int:interaction_id>", methods=["POST"])
@allow(can_sign_off)
def sign_off(interaction_id: int):
    interaction = _interaction_or_404(interaction_id)
    form = SignOffForm()
    if form.validate_on_submit():
        saved = save_form(
            form,
            lambda: services.sign_off_review(interaction, current_user, form.password.data,
                                             form.meaning.data, form.code.data),
            "Review signed off.", url_for(".review", interaction_id=interaction_id), code=303)
        if saved:
            return saved
    form.password.data = form.code.data = ""
    return _render_review(_interaction_or_404(interaction_id), form, status=422)


def _interaction_or_404(interaction_id: int) -> Interaction:
    return db.session.scalar(
        select(Interaction).where(Interaction.id == interaction_id,
                                  interaction_scope(current_user))
    ) or abort(404)


def _render_review(interaction: Interaction, form: SignOffForm, status: int = 200):
    flags = flags_of_interaction(interaction.id)
    partnership_flags = (flags_of_partnership(interaction.partnership_id)
                         if interaction.partnership_id else [])
    return render_template("review/review.html", interaction=interaction, flags=flags,
                           partnership_flags=partnership_flags, form=form,
                           open_count=sum(1 for f in flags if f.is_open),
                           signature=services.signature_line(interaction),
                           now=utcnow()), status


# --- dashboard -----------------------------------------------------------------------------


def _dashboard_filter():
    form = DashboardFilterForm(request.args)
    form.partnership_id.choices = partnership_choices("All partnerships")
    form.validate()
    today = today_utc()
    date_from = None if form.date_from.errors else form.date_from.data
    date_to = None if form.date_to.errors else form.date_to.data
    if "date_from" not in request.args and "date_to" not in request.args:
        date_from, date_to = today - timedelta(days=365), today
        form.date_from.data, form.date_to.data = date_from, date_to
    return form, date_from, date_to, int_data(form.partnership_id)


def _period_label(date_from, date_to, partnership_id) -> str:
    span = f"{date_from.isoformat() if date_from else 'the start'} to " \
           f"{date_to.isoformat() if date_to else 'today'}"
    if partnership_id:
        partnership = visible_record(Partnership, partnership_id, partnership_scope,
                                     current_user)
        if partnership is not None:
            return f"{span}, {partnership.title}"
    return f"{span}, all partnerships"


@bp.route("/dashboard")
@allow(can_review)
def dashboard():
    form, date_from, date_to, partnership_id = _dashboard_filter()
    rows = adherence(current_user, date_from, date_to, partnership_id)
    series = flags_over_time(current_user, date_from, date_to, partnership_id)
    chart_args = {key: value for key, value in request.args.items()
                  if key in ("date_from", "date_to", "partnership_id") and value}
    if "date_from" not in request.args and "date_to" not in request.args:
        chart_args.update(date_from=date_from.isoformat(), date_to=date_to.isoformat())
    return render_template(
        "review/dashboard.html", form=form, adherence=rows, series=series,
        oldest=oldest_open_flags(current_user, 10, partnership_id), chart_args=chart_args,
        period=_period_label(date_from, date_to, partnership_id), now=utcnow(),
        policy=current_policy().policy,
    )


@bp.route("/dashboard/adherence.svg")
@allow(can_review)
def adherence_svg():
    _form, date_from, date_to, partnership_id = _dashboard_filter()
    rows = adherence(current_user, date_from, date_to, partnership_id)
    title = f"Adherence per dimension — {_period_label(date_from, date_to, partnership_id)}"
    return _svg(charts.adherence_chart(rows, title))


@bp.route("/dashboard/flags-over-time.svg")
@allow(can_review)
def flags_over_time_svg():
    _form, date_from, date_to, partnership_id = _dashboard_filter()
    series = flags_over_time(current_user, date_from, date_to, partnership_id)
    title = f"Flags by month of interaction — {_period_label(date_from, date_to, partnership_id)}"
    return _svg(charts.flags_over_time_chart(series, title))


def _svg(body: bytes) -> Response:
    response = Response(body, mimetype="image/svg+xml")
    response.headers["Content-Security-Policy"] = SVG_CSP
    response.headers["Cache-Control"] = "private, no-store"
    return response


# --- approval before the event --------------------------------------------------------------


@bp.route("/approvals")
@allow(can_approve_plans)
def approvals():
    form = ApprovalFilterForm(request.args)
    state = form.state.data if form.state.data in approvals_service.APPROVAL_QUEUE_STATES \
        else "awaiting"
    page = approvals_service.approval_queue(current_user, approvals_service.ApprovalFilter(
        state=state, page=max(1, request.args.get("page", 1, type=int) or 1)))
    return render_template("review/approvals.html", form=form, page=page, state=state,
                           plan_state=approvals_service.plan_state)


@bp.route("/approvals/<int:interaction_id>", methods=["GET", "POST"])
@allow(can_approve_plans)
def approval(interaction_id: int):
    interaction = _interaction_or_404(interaction_id)
    form = PlanDecisionForm()
    if form.validate_on_submit():
        saved = save_form(
            form, lambda: approvals_service.decide_plan(interaction, form.decision.data,
                                                        form.note.data, current_user),
            lambda decided: f"Plan {decided.approval_decision}.",
            url_for(".approvals"), code=303)
        if saved:
            return saved
    return render_template(
        "review/approval.html", interaction=interaction, form=form,
        flags=flags_of_interaction(interaction.id),
        plan_state=approvals_service.plan_state(interaction),
    ), form_status(form)


@bp.route("/plans/<int:interaction_id>/submit", methods=["POST"])
@allow(can_submit_plans)
def submit_plan(interaction_id: int):
    interaction = _interaction_or_404(interaction_id)
    form = SubmitPlanForm()
    page = url_for("interactions.view", interaction_id=interaction_id)
    if form.validate_on_submit():
        saved = save_form(form, lambda: approvals_service.submit_plan(interaction, current_user),
                          "Plan submitted: a compliance officer will approve or reject it.",
                          page, code=303)
        if saved:
            return saved
    flash(" ".join(form.form_errors) or "The plan was not submitted.", "danger")
    return redirect(page, code=303)


# --- wiring ------------------------------------------------------------------------------


def init_app(app: Flask) -> None:
    """Register the listener that returns an edited interaction to review."""
    services.install_listeners()
