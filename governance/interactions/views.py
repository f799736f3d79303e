from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from ..errors import DomainError
from ..extensions import db
from ..forms import attach_errors, form_values, options, record_choices
from ..organisations.models import Organisation
from ..partnerships.models import Partnership
from ..security import (
    EDITORS,
    allow,
    interaction_scope,
    partnership_scope,
    sees_everything,
    visible_or_404,
)
from ..vocabulary import DIMENSIONS
from . import services
from .forms import GROUP_TITLES, GROUPS, InteractionFilterForm, InteractionForm, VoidForm
from .models import Interaction

bp = Blueprint("interactions", __name__, url_prefix="/interactions")
VIEWERS = ("advocate", "compliance", "auditor", "partner")


def partnership_choices(blank: str) -> list[tuple]:
    rows = db.session.execute(
        select(Partnership.id, Partnership.title)
        .where(partnership_scope(current_user), Partnership.voided_at.is_(None))
        .order_by(Partnership.title)
    ).all()
    return options([("", blank), *rows])


def organisation_choices(blank: str | None = None) -> list[tuple]:
    rows = db.session.execute(
        select(Organisation.id, Organisation.name)
        .where(Organisation.voided_at.is_(None)).order_by(Organisation.name)
    ).all()
    return options(([("", blank)] if blank else []) + list(rows))


def visible_partnerships() -> tuple:
    """The conditions of the partnerships the user may pick (none: every partnership)."""
    return () if sees_everything(current_user) else (partnership_scope(current_user),)


def prepare(form: InteractionForm) -> InteractionForm:
    from ..activities.services import activities_open_to

    form.partnership_id.choices = partnership_choices("— outside any partnership —")
    form.organisation_id.choices = organisation_choices()
    if current_user.organisation_id and form.organisation_id.data is None:
        form.organisation_id.data = current_user.organisation_id
    form.activity_codes.choices = options((a.code, f"{a.code} · {a.name}")
                                          for a in activities_open_to(current_user))
    return form


def render_form(form, interaction=None, status=200):
    return render_template("interactions/form.html", form=form, groups=GROUPS,
                           group_titles=GROUP_TITLES, interaction=interaction), status


@bp.route("/")
@allow(*VIEWERS)
def index():
    form = InteractionFilterForm(request.args)
    form.partnership_id.choices = record_choices(Partnership, Partnership.title,
                                                 "Any partnership", *visible_partnerships())
    form.organisation_id.choices = record_choices(Organisation, Organisation.name,
                                                  "Any organisation")
    form.validate()
    page_number = request.args.get("page", 1, type=int) or 1
    criteria = services.InteractionFilter(
        partnership_id=form.partnership_id.data if isinstance(form.partnership_id.data, int)
        else None,
        organisation_id=form.organisation_id.data if isinstance(form.organisation_id.data, int)
        else None,
        date_from=None if form.date_from.errors else form.date_from.data,
        date_to=None if form.date_to.errors else form.date_to.data,
        format=form.format.data,
        q=form.q.data,
        rule=request.args.get("rule") or None,
        state=request.args.get("state") or None,
        sort=request.args.get("sort", "-occurred_on"),
        page=max(1, page_number),
        count_limit=None if request.args.get("count") == "all" else services.LIST_COUNT_LIMIT,
    )
    page = services.find_interactions(current_user, criteria)
    return render_template("interactions/index.html", form=form, page=page)


@bp.route("/new", methods=["GET", "POST"])
@allow(*EDITORS)
def create():
    form = prepare(InteractionForm())
    if form.validate_on_submit():
        try:
            interaction = services.log_interaction(form_values(form), current_user)
        except DomainError as error:
            attach_errors(form, error)
        else:
            db.session.commit()
            flash(f"Interaction “{interaction.title}” logged.", "success")
            return redirect(url_for(".view", interaction_id=interaction.id))
    return render_form(form, status=422 if request.method == "POST" else 200)


@bp.route("/<int:interaction_id>")
@allow(*VIEWERS)
def view(interaction_id: int):
    interaction = visible_or_404(Interaction, interaction_id, interaction_scope)
    return render_template("interactions/view.html", interaction=interaction,
                           groups=GROUPS[1:], group_titles=GROUP_TITLES, dimensions=DIMENSIONS,
                           form=InteractionForm(obj=interaction, meta={"csrf": False}))


@bp.route("/<int:interaction_id>/edit", methods=["GET", "POST"])
@allow(*EDITORS)
def edit(interaction_id: int):
    interaction = visible_or_404(Interaction, interaction_id, interaction_scope)
    if interaction.is_void:
        abort(409, "This interaction has been voided and can no longer be edited.")
    form = prepare(InteractionForm(obj=interaction))
    if request.method == "GET":
        form.version.data = interaction.version
    if form.validate_on_submit():
        try:
            services.update_interaction(
                interaction, form_values(form), current_user, reason=form.reason.data,
                expected_version=int(form.version.data) if form.version.data else None,
            )
        except DomainError as error:
            db.session.rollback()
            attach_errors(form, error)
        else:
            db.session.commit()
            flash("Changes saved and the interaction re-checked.", "success")
            return redirect(url_for(".view", interaction_id=interaction.id))
    return render_form(form, interaction, status=422 if request.method == "POST" else 200)


@bp.route("/<int:interaction_id>/void", methods=["GET", "POST"])
@allow(*EDITORS)
def void(interaction_id: int):
    interaction = visible_or_404(Interaction, interaction_id, interaction_scope)
    form = VoidForm()
    if form.validate_on_submit():
        try:
            services.void_interaction(interaction, current_user, form.reason.data)
        except DomainError as error:
            attach_errors(form, error)
        else:
            db.session.commit()
            flash("Interaction voided. It stays visible to compliance and auditors.", "info")
            return redirect(url_for(".index"))
    return render_template("void.html", form=form, record=interaction,
                           kind="interaction"), 422 if request.method == "POST" else 200
