"""The policy in force, and re-evaluating every record under it."""

from flask import Blueprint, Flask, flash, jsonify, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import select

from ..errors import DomainError
from ..extensions import db
from ..permissions import (
    allow,
    can_manage_policy,
    can_read_policy,
    can_read_reevaluations,
    reevaluation_scope,
    visible_or_404,
)
from . import evaluation, jobs
from .cli import check_policies_command, reevaluate_command
from .engine import PolicyError, check_policy_at_start
from .evaluation import current_policy
from .facts import FACTS
from .models import ReevaluationRun

# The policy and re-evaluation pages sit beside the review pages (review/views.py).
bp = Blueprint("rules", __name__, url_prefix="/review")


@bp.route("/policy")
@allow(can_read_policy)
def policy():
    compiled = current_policy()
    return render_template("rules/policy.html", policy=compiled.policy, facts=FACTS,
                           rules=list(compiled.policy.rules))


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
    app.cli.add_command(check_policies_command)
    app.cli.add_command(reevaluate_command)
