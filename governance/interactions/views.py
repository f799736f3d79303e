from flask import Blueprint, abort, render_template, request, url_for
from flask_login import current_user

from ..attachments.views import attachment_panel
from ..forms import VoidForm, form_values, int_data, options, save_form, version_read
from ..organisations.forms import (
    organisation_choices,
    organisation_filter_choices,
    visible_organisations,
)
from ..partnerships.forms import partnership_choices, partnership_filter_choices
from ..permissions import (
    allow,
    can_edit_records,
    can_read_records,
    interaction_scope,
    visible_or_404,
)
from ..review.approvals import plan_state
from ..review.forms import SubmitPlanForm
from ..review.services import signature_line
from ..rules.flags import flags_of_interaction
from ..vocabulary import DIMENSIONS
from . import services
from .forms import GROUP_TITLES, GROUPS, InteractionFilterForm, InteractionForm
from .models import Interaction

bp = Blueprint("interactions", __name__, url_prefix="/interactions")


def prepare(form: InteractionForm) -> InteractionForm:
    from ..activities.services import activities_open_to

    form.partnership_id.choices = partnership_choices("— outside any partnership —")
    form.organisation_id.choices = organisation_choices(None, None, *visible_organisations())
    if current_user.organisation_id and form.organisation_id.data is None:
        form.organisation_id.data = current_user.organisation_id
    form.activity_codes.choices = options((a.code, f"{a.code} · {a.name}")
                                          for a in activities_open_to(current_user))
    return form


def render_form(form, interaction=None, status=200):
    return render_template("interactions/form.html", form=form, groups=GROUPS,
                           group_titles=GROUP_TITLES, interaction=interaction), status


def page_of(interaction: Interaction) -> str:
    return url_for(".view", interaction_id=interaction.id)


@bp.route("/")
@allow(can_read_records)
def index():
    form = InteractionFilterForm(request.args)
    form.partnership_id.choices = partnership_filter_choices("Any partnership")
    form.organisation_id.choices = organisation_filter_choices("Any organisation")
    form.validate()
    page_number = request.args.get("page", 1, type=int) or 1
    criteria = services.InteractionFilter(
        partnership_id=int_data(form.partnership_id),
        organisation_id=int_data(form.organisation_id),
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
@allow(can_edit_records)
def create():
    form = prepare(InteractionForm())
    if form.validate_on_submit():
        saved = save_form(form, lambda: services.log_interaction(form_values(form), current_user),
                          lambda interaction: f"Interaction “{interaction.title}” logged.",
                          page_of)
        if saved:
            return saved
    return render_form(form, status=422 if request.method == "POST" else 200)


@bp.route("/<int:interaction_id>")
@allow(can_read_records)
def view(interaction_id: int):
    interaction = visible_or_404(Interaction, interaction_id, interaction_scope)
    return render_template("interactions/view.html", interaction=interaction,
                           groups=GROUPS[1:], group_titles=GROUP_TITLES, dimensions=DIMENSIONS,
                           form=InteractionForm(obj=interaction, meta={"csrf": False}),
                           flags=flags_of_interaction(interaction.id),
                           signature=signature_line(interaction),
                           attachments=attachment_panel(interaction),
                           plan_state=plan_state(interaction), submit_form=SubmitPlanForm())


@bp.route("/<int:interaction_id>/edit", methods=["GET", "POST"])
@allow(can_edit_records)
def edit(interaction_id: int):
    interaction = visible_or_404(Interaction, interaction_id, interaction_scope)
    if interaction.is_void:
        abort(409, "This interaction has been voided and can no longer be edited.")
    form = prepare(InteractionForm(obj=interaction))
    if request.method == "GET":
        form.version.data = interaction.version
    if form.validate_on_submit():
        saved = save_form(form, lambda: services.update_interaction(
            interaction, form_values(form), current_user, reason=form.reason.data,
            expected_version=version_read(form),
        ), "Changes saved and the interaction re-checked.", page_of(interaction))
        if saved:
            return saved
    return render_form(form, interaction, status=422 if request.method == "POST" else 200)


@bp.route("/<int:interaction_id>/void", methods=["GET", "POST"])
@allow(can_edit_records)
def void(interaction_id: int):
    interaction = visible_or_404(Interaction, interaction_id, interaction_scope)
    form = VoidForm()
    if form.validate_on_submit():
        saved = save_form(form, lambda: services.void_interaction(interaction, current_user,
                                                                  form.reason.data),
                          "Interaction voided. It stays visible to compliance and auditors.",
                          url_for(".index"), "info")
        if saved:
            return saved
    return render_template("void.html", form=form, record=interaction,
                           kind="interaction"), 422 if request.method == "POST" else 200
