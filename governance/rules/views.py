"""The policy in force, and re-evaluating every record under it."""

from flask import (
    Blueprint,
    Flask,
    Response,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy import select

from ..errors import DomainError
from ..extensions import db
from ..forms import attach_errors, form_status, save_form
from ..permissions import (
    allow,
    can_change_policy,
    can_manage_policy,
    can_read_policy,
    can_read_reevaluations,
    can_sign_off_policy,
    reevaluation_scope,
    visible_or_404,
)
from ..vocabulary import DIMENSIONS
from . import evaluation, jobs, versions
from .cli import check_policies_command, reevaluate_command
from .engine import PolicyError, check_policy_at_start
from .facts import FACTS
from .forms import InForceForm, SignOffForm, WithdrawForm, proposal_form, proposal_values
from .models import ReevaluationRun

# The policy and re-evaluation pages sit beside the review pages (review/views.py).
bp = Blueprint("rules", __name__, url_prefix="/review")


@bp.route("/policy")
@allow(can_read_policy)
def policy():
    """The policy in force, as a document: its rules by dimension, how it was made, and its
    versions."""
    compiled = versions.policy_in_force()
    return render_template(
        "rules/policy.html", compiled=compiled, policy=compiled.policy, facts=FACTS,
        since=versions.in_force_since(compiled),
        by_dimension=rules_by_dimension(compiled), co_creation=versions.co_creation_of(
            compiled.version), review_due=versions.review_due_of(compiled),
        review_overdue=versions.review_overdue(compiled),
        scheduled=versions.scheduled_version(), history=versions.every_version(),
        rule_key=lambda spec: versions.rule_key(spec, compiled))


def rules_by_dimension(compiled) -> list[tuple[str, str, list]]:
    """The rules grouped by the dimension they protect, in the dimensions' order."""
    groups = []
    for code, label in DIMENSIONS.items():
        specs = [spec for spec in compiled.policy.rules if spec.dimension == code]
        if specs:
            groups.append((code, label, specs))
    return groups


@bp.route("/policy/propose", methods=["GET", "POST"])
@allow(can_change_policy)
def propose():
    """Propose a new version: the version in force with changes, checked like the file."""
    base = versions.policy_in_force()
    form = proposal_form(base, formdata=request.form if request.method == "POST" else None)
    if request.method == "POST" and form.validate_on_submit():
        saved = save_form(form, lambda: versions.propose_version(
            current_user, proposal_values(form, base)),
            lambda row: f"Policy v{row.policy_version} proposed. The patient partners are "
                        "asked to sign it off.",
            lambda row: url_for(".version", version=row.policy_version), code=303)
        if saved:
            return saved
    return render_template("rules/propose.html", form=form, base=base,
                           by_dimension=rules_by_dimension(base),
                           rule_key=lambda spec: versions.rule_key(spec, base)), \
        form_status(form)


@bp.route("/policy/versions/<version>")
@allow(can_read_policy)
def version(version: str):
    return render_version(versions.get_version(version))


def render_version(row, sign_off_form=None, in_force_form=None, withdraw_form=None,
                   status: int = 200):
    compiled = versions.compiled_of(row)
    base = versions.compiled_version(row.based_on)
    if sign_off_form is None and can_sign_off_policy(current_user):
        sign_off_form = SignOffForm(formdata=None)
    if in_force_form is None and can_change_policy(current_user):
        in_force_form = InForceForm(formdata=None)
        in_force_form.effective_from.data = compiled.policy.effective_from
    if withdraw_form is None and can_change_policy(current_user):
        withdraw_form = WithdrawForm(formdata=None)
    return render_template(
        "rules/version.html", row=row, compiled=compiled, base=base,
        differences=versions.differences(base, compiled) if base else [],
        text_difference=versions.text_difference(base, row) if base else "",
        co_creation=versions.co_creation_of(row.policy_version),
        in_force=versions.policy_in_force().version,
        signed_by_me=any(s.user_id == current_user.id for s in row.sign_offs),
        sign_off_form=sign_off_form, in_force_form=in_force_form,
        withdraw_form=withdraw_form), status


@bp.route("/policy/versions/<version>/rules.toml")
@allow(can_read_policy)
def version_source(version: str):
    """The version's text, byte for byte as kept (its SHA-256 is on the version's page)."""
    row = versions.get_version(version)
    return Response(row.source, mimetype="text/plain", headers={
        "Content-Disposition": f'attachment; filename="rules-v{row.policy_version}.toml"',
        "X-Content-SHA256": row.digest})


@bp.route("/policy/versions/<version>/sign-off", methods=["POST"])
@allow(can_sign_off_policy)
def sign_off(version: str):
    row = versions.get_version(version, keep=True)
    form = SignOffForm()
    if form.validate_on_submit():
        saved = save_form(form, lambda: versions.sign_off_version(
            row, current_user, form.password.data, form.meaning.data, form.code.data),
            f"You signed off policy v{row.policy_version}. Your electronic signature is "
            "recorded.", url_for(".version", version=row.policy_version), code=303)
        if saved:
            return saved
    return render_version(row, sign_off_form=form, status=form_status(form))


@bp.route("/policy/versions/<version>/in-force", methods=["POST"])
@allow(can_change_policy)
def put_in_force(version: str):
    row = versions.get_version(version)
    form = InForceForm()
    if form.validate_on_submit():
        try:
            versions.put_in_force(row, current_user, form.effective_from.data)
        except DomainError as error:
            db.session.rollback()
            attach_errors(form, error)
        else:
            db.session.commit()
            then = jobs.reevaluate_when_in_force(row, current_user)
            flash(f"Policy v{row.policy_version} is put in force from "
                  f"{row.effective_from:%-d %B %Y}. {then}", "success")
            return redirect(url_for(".version", version=row.policy_version), 303)
    return render_version(row, in_force_form=form, status=form_status(form))


@bp.route("/policy/versions/<version>/withdraw", methods=["POST"])
@allow(can_change_policy)
def withdraw(version: str):
    row = versions.get_version(version)
    form = WithdrawForm()
    if form.validate_on_submit():
        saved = save_form(form, lambda: versions.withdraw_version(row, current_user,
                                                                  form.reason.data),
                          f"Policy v{row.policy_version} was withdrawn; it stays on record.",
                          url_for(".policy"), "info", code=303)
        if saved:
            return saved
    return render_version(row, withdraw_form=form, status=form_status(form))


@bp.route("/reevaluate", methods=["POST"])
@allow(can_manage_policy)
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
@allow(can_read_reevaluations)
def reevaluations():
    runs = db.session.scalars(select(ReevaluationRun).where(reevaluation_scope(current_user))
                              .order_by(ReevaluationRun.id.desc()).limit(50)).all()
    return render_template("rules/reevaluations.html", runs=runs, is_stalled=jobs.is_stalled)


@bp.route("/reevaluations/<int:run_id>")
@allow(can_read_reevaluations)
def reevaluation(run_id: int):
    run = jobs.look_after(visible_or_404(ReevaluationRun, run_id, reevaluation_scope))
    return render_template("rules/reevaluation.html", run=run, stalled=jobs.is_stalled(run))


@bp.route("/reevaluations/<int:run_id>/status")
@allow(can_read_reevaluations)
def reevaluation_status(run_id: int):
    """The run's state as JSON, polled by its page's progress bar."""
    run = jobs.look_after(visible_or_404(ReevaluationRun, run_id, reevaluation_scope))
    response = jsonify(jobs.status_json(run))
    response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    """Refuse to start on an invalid policy set; register the listeners and commands."""
    try:
        check_policy_at_start(app.config["POLICIES_DIR"])
    except PolicyError as error:
        app.logger.critical("%s", error)
        raise
    evaluation.install_listeners()
    from . import api  # noqa: F401  (the API registers its resources after every feature)

    app.cli.add_command(check_policies_command)
    app.cli.add_command(reevaluate_command)
