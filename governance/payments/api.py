"""POST /api/v1/individual-payments and GET /api/v1/individual-payments/{id}: fees and expenses
paid to members of the public, answered with their flags."""

from flask import Flask
from flask.views import MethodView
from flask_login import current_user
from marshmallow import fields

from ..api import schemas
from ..api.serialise import _record
from ..api.views import (
    ETAG_HEADER,
    documented_errors,
    json_body,
    request_body,
    resource,
    saving,
    tagged,
)
from ..permissions import (
    allow,
    can_read_individual_payments,
    can_record_individual_payments,
    individual_payment_scope,
    visible_or_404,
)
from . import services
from .models import IndividualPayment

payments = resource("individual_payments", "Fees and expenses paid to individual patients and "
                                           "caregivers (ABPI clause 30), checked against the "
                                           "fair-market-value rate card.")

IndividualPaymentOut = schemas.output_schema(
    services.IndividualPaymentInput, "IndividualPayment",
    flags=schemas._flags("Flags the policy rules raised on this payment (FEE-ABOVE-FMV, "
                         "AGR-MISSING)."),
    fair_value=fields.Dict(required=True, allow_none=True, metadata={
        "description": "What the rate card allows for it: `limit` (decimal string), "
                       "`currency`, `basis`, `rate`, `unit`, `source`; null when the card "
                       "has no rate for its service and currency (\"no rate\")."}),
)


def payment_json(payment: IndividualPayment) -> dict:
    """The payment with its live flags and what the rate card allows for it."""
    from ..api.serialise import _flags
    from ..rules.evaluation import fair_value_of
    from ..rules.flags import flags_of_individual_payment

    fair = fair_value_of(payment)
    return services.payment_values(payment) | _record(payment) | {
        "flags": _flags(flags_of_individual_payment(payment.id)),
        "fair_value": None if fair is None else {
            "limit": str(fair.limit), "currency": fair.rate.currency, "basis": fair.basis,
            "rate": str(fair.rate.rate), "unit": fair.rate.unit, "source": fair.rate.source,
            "effective_from": fair.rate.effective_from.isoformat()},
    }


@payments.route("/individual-payments")
class IndividualPayments(MethodView):
    @allow(can_record_individual_payments)
    @payments.doc(**request_body(services.IndividualPaymentInput,
                                 "`payee_reference` is a pseudonym or internal reference: "
                                 "what looks like an email or a name (with spaces) is "
                                 "refused. `fee` and `expenses` are decimal strings."))
    @payments.response(201, IndividualPaymentOut, headers=ETAG_HEADER)
    @documented_errors(payments, 400, 403, 409, 422)
    def post(self):
        """Record an individual payment; the answer carries the flags the rules raised."""
        values = json_body()
        with saving():
            payment = services.record_payment(values, current_user)
            answer = payment_json(payment)
        return tagged(answer, payment)


@payments.route("/individual-payments/<id:payment_id>")
class IndividualPaymentById(MethodView):
    @allow(can_read_individual_payments)
    @payments.response(200, IndividualPaymentOut, headers=ETAG_HEADER)
    @documented_errors(payments, 403, 404)
    def get(self, payment_id: int):
        """One individual payment with its flags."""
        payment = visible_or_404(IndividualPayment, payment_id, individual_payment_scope)
        return tagged(payment_json(payment), payment)


def register(app: Flask) -> None:
    """Add the routes to the API when it is already set up (else it picks them up itself)."""
    api = app.extensions.get("governance_api")
    if api is not None and payments.name not in app.blueprints:
        api.register_blueprint(payments)
