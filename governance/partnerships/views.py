from flask import Blueprint, abort, current_app, render_template, request, url_for
from flask_login import current_user

from ..activities.services import coverage_for
from ..attachments.views import attachment_panel
from ..forms import VoidForm, form_status, form_values, int_data, options, save_form, version_read
from ..organisations.forms import organisation_choices, organisation_filter_choices, party_choices
from ..permissions import (
    allow,
    can_edit_partnership,
    can_edit_records,
    can_read_records,
    partnership_scope,
    sees_void,
    support_scope,
    visible_or_404,
)
from ..rules.flags import flags_of_partnership
from . import services
from .forms import (
    GROUPS,
    PartnershipFilterForm,
    PartnershipForm,
    SupportFilterForm,
    SupportForm,
    partnership_filter_choices,
)
from .models import Partnership, Support

bp = Blueprint("partnerships", __name__, url_prefix="/partnerships")


def page_of(partnership_id: int) -> str:
    return url_for(".view", partnership_id=partnership_id)


def editable_or_404(partnership_id: int) -> Partnership:
    """Load a partnership the current user may change; others answer 404 or 403."""
    partnership = visible_or_404(Partnership, partnership_id, partnership_scope)
    if not can_edit_partnership(current_user, partnership):
        abort(403)
    return partnership


def prepare(form: PartnershipForm) -> PartnershipForm:
    form.sponsor_id.choices = party_choices("sponsor", "— choose the sponsor —")
    form.patient_group_id.choices = party_choices("patient_group", "— choose the patient group —")
    form.other_organisation_ids.choices = organisation_choices()
    if form.other_organisation_ids.data is None:
        form.other_organisation_ids.data = []
    return form


def render_form(form, partnership=None, status=200):
    return render_template("partnerships/form.html", form=form, groups=GROUPS,
                           partnership=partnership), status


@bp.route("/")
@allow(can_read_records)
def index():
    form = PartnershipFilterForm(request.args)
    form.organisation_id.choices = organisation_filter_choices("Any organisation")
    form.validate()
    page_number = request.args.get("page", 1, type=int) or 1
    criteria = services.PartnershipFilter(
        status=form.status.data, kind=form.kind.data,
        organisation_id=int_data(form.organisation_id), q=form.q.data,
        sort=request.args.get("sort", "title"), page=max(1, page_number),
        per_page=current_app.config["PER_PAGE"],
    )
    page = services.find_partnerships(current_user, criteria)
    return render_template("partnerships/index.html", form=form, page=page)


@bp.route("/new", methods=["GET", "POST"])
@allow(can_edit_records)
def create():
    form = prepare(PartnershipForm())
    if request.method == "GET" and current_user.organisation:
        own = current_user.organisation
        if own.kind == "sponsor":
            form.sponsor_id.data = own.id
        elif own.kind == "patient_group":
            form.patient_group_id.data = own.id
    if form.validate_on_submit():
        saved = save_form(form, lambda: services.create_partnership(form_values(form),
                                                                    current_user),
                          lambda partnership: f"Partnership “{partnership.title}” recorded.",
                          lambda partnership: page_of(partnership.id))
        if saved:
            return saved
    return render_form(form, status=form_status(form))


@bp.route("/<int:partnership_id>")
@allow(can_read_records)
def view(partnership_id: int):
    partnership = visible_or_404(Partnership, partnership_id, partnership_scope)
    interactions, interaction_total = services.recent_interactions(current_user, partnership)
    supports = services.partnership_supports(
        partnership, include_void=sees_void(current_user))
    from ..agreements.views import agreement_panel

    return render_template("partnerships/view.html", partnership=partnership,
                           interactions=interactions, interaction_total=interaction_total,
                           supports=supports,
                           may_edit=can_edit_partnership(current_user, partnership),
                           flags=flags_of_partnership(partnership.id),
                           coverage=coverage_for(partnership),
                           attachments=attachment_panel(partnership),
                           agreements=agreement_panel(partnership))


@bp.route("/<int:partnership_id>/edit", methods=["GET", "POST"])
@allow(can_edit_records)
def edit(partnership_id: int):
    partnership = editable_or_404(partnership_id)
    if partnership.is_void:
        abort(409, "This partnership has been voided and can no longer be edited.")
    form = PartnershipForm(obj=partnership)
    if request.method == "GET":
        form.version.data = partnership.version
        form.other_organisation_ids.data = [o.id for o in partnership.other_organisations]
    prepare(form)
    if form.validate_on_submit():
        saved = save_form(form, lambda: services.update_partnership(
            partnership, form_values(form), current_user, reason=form.reason.data,
            expected_version=version_read(form),
        ), "Changes saved and the partnership re-checked.", page_of(partnership.id))
        if saved:
            return saved
    return render_form(form, partnership, status=form_status(form))


@bp.route("/<int:partnership_id>/void", methods=["GET", "POST"])
@allow(can_edit_records)
def void(partnership_id: int):
    partnership = editable_or_404(partnership_id)
    form = VoidForm()
    if form.validate_on_submit():
        saved = save_form(form, lambda: services.void_partnership(partnership, current_user,
                                                                  form.reason.data),
                          "Partnership voided. It stays visible to compliance and auditors.",
                          url_for(".index"), "info")
        if saved:
            return saved
    return render_template("void.html", form=form, record=partnership,
                           kind="partnership"), form_status(form)


# --- support --------------------------------------------------------------------------------


@bp.route("/supports")
@allow(can_read_records)
def supports():
    form = SupportFilterForm(request.args)
    form.partnership_id.choices = partnership_filter_choices("Any partnership")
    form.recipient_id.choices = organisation_filter_choices("Any recipient")
    form.year.choices = options([("", "Any year"), *[(y, str(y)) for y in
                                                     services.support_years(current_user)]])
    form.validate()
    page_number = request.args.get("page", 1, type=int) or 1
    criteria = services.SupportFilter(
        partnership_id=int_data(form.partnership_id), recipient_id=int_data(form.recipient_id),
        year=int_data(form.year), kind=form.kind.data, confirmation=form.confirmation.data,
        sort=request.args.get("sort", "-paid_on"), page=max(1, page_number),
        per_page=current_app.config["PER_PAGE"],
    )
    page = services.find_supports(current_user, criteria)
    return render_template("partnerships/supports.html", form=form, page=page)


def support_or_404(support_id: int) -> Support:
    """Load a support entry of a partnership the current user may change."""
    support = visible_or_404(Support, support_id, support_scope)
    editable_or_404(support.partnership_id)
    return support


def prepare_support(form: SupportForm, partnership: Partnership) -> SupportForm:
    parties = [partnership.patient_group, *partnership.other_organisations]
    form.recipient_id.choices = options((o.id, o.name) for o in parties)
    if form.recipient_id.data is None and request.method == "GET":
        form.recipient_id.data = partnership.patient_group_id
    from ..agreements.services import agreement_choices

    form.agreement_id.choices = options([("", "— no written agreement —"),
                                         *agreement_choices(partnership.id)])
    return form


def render_support_form(form, partnership, support=None, status=200):
    return render_template("partnerships/support_form.html", form=form, partnership=partnership,
                           support=support), status


@bp.route("/<int:partnership_id>/supports/new", methods=["GET", "POST"])
@allow(can_edit_records)
def create_support(partnership_id: int):
    partnership = editable_or_404(partnership_id)
    if partnership.is_void:
        abort(409, "This partnership has been voided: record no support on it.")
    form = prepare_support(SupportForm(), partnership)
    if form.validate_on_submit():
        saved = save_form(form, lambda: services.record_support(
            form_values(form) | {"partnership_id": partnership.id}, current_user),
            "Support recorded. The partner is asked to confirm it.", page_of(partnership.id))
        if saved:
            return saved
    return render_support_form(form, partnership, status=form_status(form))


@bp.route("/supports/<int:support_id>/edit", methods=["GET", "POST"])
@allow(can_edit_records)
def edit_support(support_id: int):
    support = support_or_404(support_id)
    if support.is_void:
        abort(409, "This support entry has been voided and can no longer be edited.")
    partnership = support.partnership
    form = prepare_support(SupportForm(obj=support), partnership)
    if request.method == "GET":
        form.version.data = support.version
        form.amount.data = None if support.amount is None else str(support.amount)
    if form.validate_on_submit():
        saved = save_form(form, lambda: services.update_support(
            support, form_values(form), current_user, reason=form.reason.data,
            expected_version=version_read(form),
        ), "Support entry saved.", page_of(partnership.id))
        if saved:
            return saved
    return render_support_form(form, partnership, support, status=form_status(form))


@bp.route("/supports/<int:support_id>/void", methods=["GET", "POST"])
@allow(can_edit_records)
def void_support(support_id: int):
    support = support_or_404(support_id)
    form = VoidForm()
    if form.validate_on_submit():
        saved = save_form(form, lambda: services.void_support(support, current_user,
                                                              form.reason.data),
                          "Support entry voided; it no longer counts in totals and reports.",
                          page_of(support.partnership_id), "info")
        if saved:
            return saved
    return render_template("void.html", form=form, record=support,
                           kind="support entry"), form_status(form)
