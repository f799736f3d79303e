"""The agreement pages: record, view (lines paid under it, flags, the signed document,
certification), edit and void. The partnership page shows the agreements panel."""

from flask import Blueprint, Flask, abort, render_template, request, url_for
from flask_login import current_user

from ..attachments.views import attachment_panel
from ..forms import VoidForm, form_status, form_values, save_form, version_read
from ..partnerships.models import Partnership
from ..partnerships.views import editable_or_404 as editable_partnership_or_404
from ..permissions import (
    agreement_scope,
    allow,
    can_certify_agreements,
    can_edit_partnership,
    can_edit_records,
    can_read_records,
    sees_void,
    visible_or_404,
)
from ..rules.flags import flags_of_agreement
from . import services
from .forms import AgreementForm, CertificationForm
from .models import Agreement

bp = Blueprint("agreements", __name__, url_prefix="/agreements")


def page_of(agreement_id: int) -> str:
    return url_for(".view", agreement_id=agreement_id)


def editable_or_404(agreement_id: int) -> Agreement:
    agreement = visible_or_404(Agreement, agreement_id, agreement_scope)
    editable_partnership_or_404(agreement.partnership_id)
    return agreement


def agreement_panel(partnership: Partnership) -> dict:
    """What templates/agreements/_panel.html shows on the partnership page."""
    return {"items": services.agreements_of(partnership.id,
                                            include_void=sees_void(current_user)),
            "may_add": can_edit_partnership(current_user, partnership)
            and can_edit_records(current_user) and not partnership.is_void}


def render_form(form, partnership, agreement=None, status=200):
    return render_template("agreements/form.html", form=form, partnership=partnership,
                           agreement=agreement), status


@bp.route("/new/<int:partnership_id>", methods=["GET", "POST"])
@allow(can_edit_records)
def create(partnership_id: int):
    partnership = editable_partnership_or_404(partnership_id)
    if partnership.is_void:
        abort(409, "This partnership has been voided: record no agreement on it.")
    form = AgreementForm()
    if form.validate_on_submit():
        saved = save_form(form, lambda: services.record_agreement(
            form_values(form) | {"partnership_id": partnership.id}, current_user),
            "Agreement recorded. Attach the signed document and have it certified.",
            lambda agreement: page_of(agreement.id))
        if saved:
            return saved
    return render_form(form, partnership, status=form_status(form))


def render_view(agreement: Agreement, form: CertificationForm | None = None, status=200):
    """The agreement page; `form` is the certification form when it was just refused."""
    standing = next(s for s in services.agreements_of(agreement.partnership_id,
                                                      include_void=True)
                    if s.agreement.id == agreement.id)
    if form is None and can_certify_agreements(current_user, agreement) and \
            agreement.certified_at is None and not agreement.is_void:
        form = CertificationForm(formdata=None)
    return render_template(
        "agreements/view.html", agreement=agreement, partnership=agreement.partnership,
        standing=standing, lines=services.lines_of(agreement),
        flags=flags_of_agreement(agreement.id),
        may_edit=can_edit_records(current_user)
        and can_edit_partnership(current_user, agreement.partnership),
        certification=services.certification_line(agreement), form=form,
        attachments=attachment_panel(agreement)), status


@bp.route("/<int:agreement_id>")
@allow(can_read_records)
def view(agreement_id: int):
    return render_view(visible_or_404(Agreement, agreement_id, agreement_scope))


@bp.route("/<int:agreement_id>/edit", methods=["GET", "POST"])
@allow(can_edit_records)
def edit(agreement_id: int):
    agreement = editable_or_404(agreement_id)
    if agreement.is_void:
        abort(409, "This agreement has been voided and can no longer be edited.")
    form = AgreementForm(obj=agreement)
    if request.method == "GET":
        form.version.data = agreement.version
        form.amount.data = None if agreement.amount is None else str(agreement.amount)
    if form.validate_on_submit():
        saved = save_form(form, lambda: services.update_agreement(
            agreement, form_values(form) | {"partnership_id": agreement.partnership_id},
            current_user, reason=form.reason.data,
            expected_version=version_read(form),
        ), "Agreement saved and re-checked.", page_of(agreement.id))
        if saved:
            return saved
    return render_form(form, agreement.partnership, agreement, status=form_status(form))


@bp.route("/<int:agreement_id>/certify", methods=["POST"])
@allow(can_certify_agreements)
def certify(agreement_id: int):
    agreement = visible_or_404(Agreement, agreement_id, agreement_scope)
    if not can_certify_agreements(current_user, agreement):
        abort(403)
    form = CertificationForm()
    if form.validate_on_submit():
        saved = save_form(form, lambda: services.certify_agreement(
            agreement, current_user, form.password.data, form.meaning.data, form.code.data),
            "Agreement certified. Your electronic signature is recorded.", page_of(agreement.id))
        if saved:
            return saved
    return render_view(agreement, form, form_status(form))


@bp.route("/<int:agreement_id>/void", methods=["GET", "POST"])
@allow(can_edit_records)
def void(agreement_id: int):
    agreement = editable_or_404(agreement_id)
    form = VoidForm()
    if form.validate_on_submit():
        saved = save_form(form, lambda: services.void_agreement(agreement, current_user,
                                                                form.reason.data),
                          "Agreement voided. It stays visible to compliance and auditors.",
                          url_for("partnerships.view", partnership_id=agreement.partnership_id),
                          "info")
        if saved:
            return saved
    return render_template("void.html", form=form, record=agreement,
                           kind="agreement"), form_status(form)


def init_app(app: Flask) -> None:
    # The API routes join the API's resources, which the API registers after every feature.
    from . import api  # noqa: F401
