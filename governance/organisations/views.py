from flask import Blueprint, abort, current_app, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from ..extensions import db
from ..forms import VoidForm, form_status, form_values, save_form, version_read
from ..partnerships.models import Partnership
from ..permissions import (
    allow,
    can_add_organisations,
    can_edit_organisations,
    can_read_organisations,
    can_read_yearly_figures,
    can_record_yearly_figures,
    organisation_scope,
    partnership_scope,
    visible_or_404,
)
from . import services
from .forms import (
    IndustryPolicyForm,
    OrganisationFilterForm,
    OrganisationForm,
    YearlyFiguresForm,
    disease_areas_text,
)
from .models import Organisation

bp = Blueprint("organisations", __name__, url_prefix="/organisations")


def load_organisation(organisation_id: int) -> Organisation:
    """Load an organisation; voided ones are shown only to those who see everything."""
    return visible_or_404(Organisation, organisation_id, organisation_scope)


def page_of(organisation_id: int) -> str:
    return url_for(".view", organisation_id=organisation_id)


def render_form(form, organisation=None, status=200):
    return render_template("organisations/form.html", form=form,
                           organisation=organisation), status


@bp.route("/")
@allow(can_read_organisations)
def index():
    form = OrganisationFilterForm(request.args)
    form.validate()
    page_number = request.args.get("page", 1, type=int) or 1
    criteria = services.OrganisationFilter(
        kind=form.kind.data, country=form.country.data, q=form.q.data,
        sort=request.args.get("sort", "name"), page=max(1, page_number),
        per_page=current_app.config["PER_PAGE"],
    )
    page = services.find_organisations(criteria, current_user)
    return render_template("organisations/index.html", form=form, page=page)


@bp.route("/new", methods=["GET", "POST"])
@allow(can_add_organisations)
def create():
    form = OrganisationForm()
    if form.validate_on_submit():
        saved = save_form(form, lambda: services.create_organisation(form_values(form),
                                                                     current_user),
                          lambda organisation: f"Organisation “{organisation.name}” added.",
                          lambda organisation: page_of(organisation.id))
        if saved:
            return saved
    return render_form(form, status=form_status(form))


@bp.route("/<int:organisation_id>")
@allow(can_read_organisations)
def view(organisation_id: int):
    organisation = load_organisation(organisation_id)
    partnerships = db.session.scalars(
        select(Partnership)
        .where(services.involving(organisation.id), partnership_scope(current_user),
               Partnership.voided_at.is_(None))
        .order_by(Partnership.started_on.desc(), Partnership.title)
    ).all()
    return render_template("organisations/view.html", organisation=organisation,
                           partnerships=partnerships,
                           reads_figures=can_read_yearly_figures(current_user,
                                                                          organisation))


@bp.route("/<int:organisation_id>/edit", methods=["GET", "POST"])
@allow(can_edit_organisations)
def edit(organisation_id: int):
    organisation = load_organisation(organisation_id)
    if not can_edit_organisations(current_user, organisation):
        abort(403, can_edit_organisations.refusal)
    if organisation.is_void:
        abort(409, "This organisation has been voided and can no longer be edited.")
    form = OrganisationForm(obj=organisation)
    if request.method == "GET":
        form.version.data = organisation.version
        form.disease_areas.data = disease_areas_text(organisation.disease_areas)
    if form.validate_on_submit():
        saved = save_form(form, lambda: services.update_organisation(
            organisation, form_values(form), current_user, reason=form.reason.data,
            expected_version=version_read(form),
        ), "Changes saved.", page_of(organisation.id))
        if saved:
            return saved
    return render_form(form, organisation, status=form_status(form))


@bp.route("/<int:organisation_id>/void", methods=["GET", "POST"])
@allow(can_edit_organisations)
def void(organisation_id: int):
    organisation = load_organisation(organisation_id)
    if not can_edit_organisations(current_user, organisation):
        abort(403, can_edit_organisations.refusal)
    form = VoidForm()
    if form.validate_on_submit():
        saved = save_form(form, lambda: services.void_organisation(organisation, current_user,
                                                                   form.reason.data),
                          "Organisation voided. It stays visible to compliance and auditors.",
                          url_for(".index"), "info")
        if saved:
            return saved
    return render_template("void.html", form=form, record=organisation,
                           kind="organisation"), form_status(form)


# --- a patient group's yearly figures and industry policy (PART-CONCENTRATION) -------------------


def load_group(organisation_id: int, permission) -> Organisation:
    """Load a patient group the current user may see and act on with the permission."""
    group = load_organisation(organisation_id)
    if not permission(current_user, group):
        abort(403, permission.refusal)
    return group


def figures_page_of(organisation_id: int) -> str:
    return url_for(".yearly_figures", organisation_id=organisation_id)


@bp.route("/<int:organisation_id>/yearly-figures")
@allow(can_read_yearly_figures)
def yearly_figures(organisation_id: int):
    group = load_group(organisation_id, can_read_yearly_figures)
    return render_template("organisations/yearly_figures.html", organisation=group,
                           figures=services.yearly_figures_of(group),
                           may_record=can_record_yearly_figures(current_user, group))


@bp.route("/<int:organisation_id>/yearly-figures/record", methods=["GET", "POST"])
@allow(can_record_yearly_figures)
def record_yearly_figures(organisation_id: int):
    """Record a year's figures; opened on a recorded year (?year=2025), change them."""
    group = load_group(organisation_id, can_record_yearly_figures)
    form = YearlyFiguresForm()
    existing = None
    if request.method == "GET":
        existing = services.figures_for_year(group, request.args.get("year", type=int))
        if existing is not None:
            form.process(data=services.yearly_figures_values(existing))
            form.version.data = existing.version
    if form.validate_on_submit():
        saved = save_form(form, lambda: services.record_yearly_figures(
            group, form_values(form), current_user, reason=form.reason.data,
            expected_version=_version_or_none(form)),
            lambda figures: f"Figures of {group.name} for {figures.year} saved; its "
                            "partnerships were checked again.",
            figures_page_of(group.id))
        if saved:
            return saved
        _offer_version_of_recorded_year(form, group)
    return render_template("organisations/yearly_figures_form.html", form=form,
                           organisation=group, existing=existing), form_status(form)


def _version_or_none(form) -> int | None:
    """The version of the year's figures the form was opened on (none: a new entry)."""
    sent = (form.version.raw_data or [""])[0].strip()
    return int(sent) if sent.isascii() and sent.isdigit() else None


def _offer_version_of_recorded_year(form, group) -> None:
    """A new entry for a year already recorded was refused for want of a reason: the form sent
    again with one changes the figures it was shown (not any saved in between)."""
    figures = services.figures_for_year(group, form.year.data)
    if figures is not None and not form.version.data:
        form.version.data = figures.version


@bp.route("/<int:organisation_id>/industry-policy", methods=["GET", "POST"])
@allow(can_record_yearly_figures)
def industry_policy(organisation_id: int):
    group = load_group(organisation_id, can_record_yearly_figures)
    form = IndustryPolicyForm()
    if request.method == "GET":
        form.process(data=services.industry_policy_values(group))
        form.version.data = group.version
    if form.validate_on_submit():
        saved = save_form(form, lambda: services.set_industry_policy(
            group, form_values(form), current_user, reason=form.reason.data,
            expected_version=version_read(form)),
            f"Industry policy of {group.name} saved; its partnerships were checked again.",
            figures_page_of(group.id))
        if saved:
            return saved
    return render_template("organisations/industry_policy.html", form=form,
                           organisation=group), form_status(form)
