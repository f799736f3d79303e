"""Pages of individual payments: the list with the year's totals, one payment with its flags and
what the rate card allows, the form to record or edit one, and voiding."""

from flask import Blueprint, Flask, abort, current_app, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import extract, select

from ..extensions import db
from ..forms import VoidForm, form_status, form_values, int_data, options, save_form, version_read
from ..interactions.models import Interaction
from ..permissions import (
    allow,
    can_edit_individual_payment,
    can_read_individual_payments,
    can_record_individual_payments,
    individual_payment_scope,
    interaction_scope,
    sees_void,
    sees_whole_installation,
    visible_or_404,
    visible_partnership_ids,
)
from ..rules.evaluation import fair_value_of
from ..rules.flags import flags_of_individual_payment
from ..widgets import record_choices
from . import services
from .forms import PaymentFilterForm, PaymentForm
from .models import IndividualPayment
from .ratecard import RateCardError, check_rate_card_at_start

bp = Blueprint("payments", __name__, url_prefix="/payments")


def page_of(payment_id: int) -> str:
    return url_for("payments.view", payment_id=payment_id)


@bp.route("/")
@allow(can_read_individual_payments)
def index():
    form = PaymentFilterForm(request.args)
    years = db.session.scalars(
        select(extract("year", IndividualPayment.paid_on)).distinct()
        .where(individual_payment_scope(current_user))).all()
    form.year.choices = options([("", "Any year"), *[(int(y), str(int(y))) for y in
                                                     sorted(set(years), reverse=True)]])
    form.validate()
    criteria = services.PaymentFilter(
        year=int_data(form.year), service=form.service.data,
        interaction_id=request.args.get("interaction_id", type=int),
        include_void=sees_void(current_user),
        page=max(1, request.args.get("page", 1, type=int) or 1),
        per_page=current_app.config["PER_PAGE"])
    page = services.find_payments(current_user, criteria)
    return render_template("payments/list.html", form=form, page=page)


@bp.route("/export.<any(csv, xlsx):fmt>")
@allow(can_read_individual_payments)
def export(fmt: str):
    """The payments the list shows for the same filters, as CSV or XLSX (internal: payee
    references are the organisation's own pseudonyms)."""
    from ..transfer.exports import RECORD_COLUMNS, Table
    from ..transfer.views import _download

    form = PaymentFilterForm(request.args)
    form.year.choices = []
    form.validate()
    columns = ["id", *services.PAYMENT_FIELDS, *RECORD_COLUMNS]

    def rows():
        number = 1
        while True:
            page = services.find_payments(current_user, services.PaymentFilter(
                year=int_data(form.year), service=form.service.data,
                include_void=sees_void(current_user), page=number, per_page=1000))
            for item in page.items:
                yield [item.id, *(getattr(item, name) for name in services.PAYMENT_FIELDS),
                       *(getattr(item, name) for name in RECORD_COLUMNS)]
            if number * 1000 >= page.total:
                break
            number += 1

    return _download(Table("individual-payments", "Payments to individuals", columns, rows()),
                     fmt)


@bp.route("/<int:payment_id>")
@allow(can_read_individual_payments)
def view(payment_id: int):
    payment = visible_or_404(IndividualPayment, payment_id, individual_payment_scope)
    return render_template("payments/view.html", payment=payment, fair=fair_value_of(payment),
                           flags=flags_of_individual_payment(payment.id),
                           may_edit=can_edit_individual_payment(current_user, payment))


def prepare(form: PaymentForm) -> PaymentForm:
    """Fill the choices: the interactions and agreements open to the user."""
    from ..agreements.models import Agreement
    from ..partnerships.models import Partnership

    conditions = () if sees_whole_installation(current_user) else (
        interaction_scope(current_user),)
    form.interaction_id.choices = record_choices(Interaction, Interaction.title, "None",
                                                 *conditions)
    rows = db.session.execute(
        select(Agreement.id, Partnership.title, Agreement.objective, Agreement.signed_on)
        .join(Partnership, Agreement.partnership_id == Partnership.id)
        .where(Agreement.voided_at.is_(None),
               Agreement.partnership_id.in_(visible_partnership_ids(current_user)))
        .order_by(Partnership.title, Agreement.id)).all()
    form.agreement_id.choices = options([
        ("", "None"),
        *[(row.id, f"{row.title}: {row.objective[:60]}"
           + (f" (signed {row.signed_on.isoformat()})" if row.signed_on else " (not signed)"))
          for row in rows]])
    return form


def render_form(form, payment=None, status=200):
    return render_template("payments/form.html", form=form, payment=payment), status


@bp.route("/new", methods=["GET", "POST"])
@allow(can_record_individual_payments)
def create():
    form = prepare(PaymentForm())
    if request.method == "GET" and request.args.get("interaction_id", type=int):
        form.interaction_id.data = request.args.get("interaction_id", type=int)
    if form.validate_on_submit():
        saved = save_form(form, lambda: services.record_payment(form_values(form),
                                                                current_user),
                          "Payment recorded and checked against the rate card.",
                          lambda payment: page_of(payment.id))
        if saved:
            return saved
    return render_form(form, status=form_status(form))


def editable_or_404(payment_id: int) -> IndividualPayment:
    payment = visible_or_404(IndividualPayment, payment_id, individual_payment_scope)
    if not can_edit_individual_payment(current_user, payment):
        abort(403, can_edit_individual_payment.refusal)
    return payment


@bp.route("/<int:payment_id>/edit", methods=["GET", "POST"])
@allow(can_record_individual_payments)
def edit(payment_id: int):
    payment = editable_or_404(payment_id)
    if payment.is_void:
        abort(409, "This payment has been voided and can no longer be edited.")
    form = prepare(PaymentForm(obj=payment))
    if request.method == "GET":
        form.version.data = payment.version
        for name in ("fee", "expenses", "hours"):
            value = getattr(payment, name)
            getattr(form, name).data = None if value is None else str(value)
    if form.validate_on_submit():
        saved = save_form(form, lambda: services.update_payment(
            payment, form_values(form), current_user, reason=form.reason.data,
            expected_version=version_read(form),
        ), "Changes saved and the payment re-checked.", page_of(payment.id))
        if saved:
            return saved
    return render_form(form, payment, status=form_status(form))


@bp.route("/<int:payment_id>/void", methods=["GET", "POST"])
@allow(can_record_individual_payments)
def void(payment_id: int):
    payment = editable_or_404(payment_id)
    form = VoidForm()
    if form.validate_on_submit():
        saved = save_form(form, lambda: services.void_payment(payment, current_user,
                                                              form.reason.data),
                          "Payment voided; it no longer counts in the report's aggregate.",
                          page_of(payment.id), "info")
        if saved:
            return saved
    return render_template("void.html", form=form, record=payment,
                           kind="payment"), form_status(form)


def init_app(app: Flask) -> None:
    """Refuse to start on an invalid rate card; add the API routes."""
    from . import api

    try:
        check_rate_card_at_start(app.config["POLICIES_DIR"])
    except RateCardError as error:
        app.logger.critical("%s", error)
        raise
    api.register(app)
