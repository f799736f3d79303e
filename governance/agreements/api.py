"""POST /api/v1/agreements, GET /api/v1/agreements/{id} and POST
/api/v1/agreements/{id}/certification: written agreements with their flags."""

from flask.views import MethodView
from flask_login import current_user
from marshmallow import Schema, fields

from ..api import schemas
from ..api.serialise import _flags, _record
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
    agreement_scope,
    allow,
    can_certify_agreements,
    can_edit_records,
    can_read_records,
    visible_or_404,
)
from . import services
from .models import Agreement

agreements = resource("agreements", "Written agreements behind support (ABPI clause 27.3), with "
                                    "the flags of the agreement rules.")


class PaidInCurrency(Schema):
    currency = fields.String(required=True)
    amount = schemas.DecimalString(required=True)


AgreementOut = schemas.output_schema(
    services.AgreementInput, "Agreement",
    certified_by_id=fields.Integer(required=True, allow_none=True),
    certified_by=fields.String(required=True, allow_none=True, metadata={
        "description": "The name of the sponsor's nominated signatory who certified it."}),
    certified_at=schemas.UtcDateTime(required=True, allow_none=True),
    certification_meaning=fields.String(required=True, allow_none=True),
    lines=fields.Integer(required=True, metadata={
        "description": "Live support lines paid under the agreement."}),
    paid=fields.List(fields.Nested(PaidInCurrency), required=True, metadata={
        "description": "What has been paid under it, per currency."}),
    remaining=schemas.DecimalString(required=True, allow_none=True, metadata={
        "description": "What remains of its amount, in its currency (null without one)."}),
    flags=schemas._flags("Flags of the agreement rules (paid before signature, outside the "
                         "term, over the amount, not certified)."),
)


def agreement_json(agreement) -> dict:
    """The agreement as the API answers it, with its standing and its flags."""
    from ..rules.flags import flags_of_agreement

    standing = next(s for s in services.agreements_of(agreement.partnership_id,
                                                      include_void=True)
                    if s.agreement.id == agreement.id)
    signer = agreement.certified_by
    return services.agreement_values(agreement) | _record(agreement) | {
        "certified_by_id": agreement.certified_by_id,
        "certified_by": signer.name if signer else None,
        "certified_at": agreement.certified_at,
        "certification_meaning": agreement.certification_meaning,
        "lines": standing.lines,
        "paid": [{"currency": code, "amount": amount} for code, amount in standing.paid],
        "remaining": standing.remaining,
        "flags": _flags(flags_of_agreement(agreement.id)),
    }


@agreements.route("/agreements")
class Agreements(MethodView):
    @allow(can_edit_records)
    @agreements.doc(**request_body(services.AgreementInput,
                                   "`amount` (the ceiling) is a decimal string with at most two "
                                   "places and a `currency`; it may be empty for in-kind "
                                   "support."))
    @agreements.response(201, AgreementOut, headers=ETAG_HEADER)
    @documented_errors(agreements, 400, 403, 409, 422)
    def post(self):
        """Record a written agreement of a partnership; the answer carries its flags."""
        values = json_body()
        with saving():
            agreement = services.record_agreement(values, current_user)
            answer = agreement_json(agreement)
        return tagged(answer, agreement)


@agreements.route("/agreements/<id:agreement_id>")
class AgreementById(MethodView):
    @allow(can_read_records)
    @agreements.response(200, AgreementOut, headers=ETAG_HEADER)
    @documented_errors(agreements, 403, 404)
    def get(self, agreement_id: int):
        """One agreement with what was paid under it and its flags."""
        agreement = visible_or_404(Agreement, agreement_id, agreement_scope)
        return tagged(agreement_json(agreement), agreement)


@agreements.route("/agreements/<id:agreement_id>/certification")
class AgreementCertification(MethodView):
    @allow(can_certify_agreements)
    @agreements.doc(**request_body(services.CertificationInput,
                                   "The certifier's password, their code when they use two-step "
                                   "sign-in, and the meaning of the signature "
                                   f"({', '.join(services.CERTIFICATION_MEANINGS)})."))
    @agreements.response(200, AgreementOut, headers=ETAG_HEADER)
    @documented_errors(agreements, 400, 403, 404, 409, 422)
    def post(self, agreement_id: int):
        """Certify the agreement as the sponsor's nominated signatory (an e-signature)."""
        agreement = visible_or_404(Agreement, agreement_id, agreement_scope)
        values = json_body()
        with saving():
            services.certify_with(agreement, values, current_user)
            answer = agreement_json(agreement)
        return tagged(answer, agreement)
