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
    organisation_scope,
    partnership_scope,
    visible_or_404,
)
from . import services
from .forms import OrganisationFilterForm, OrganisationForm, disease_areas_text
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
                           partnerships=partnerships)


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
