"""GET /api/v1/policy and /api/v1/policy/versions: the policy in force and its versions;
proposing a version, the patient partners' sign-offs and putting a version in force."""

from flask.views import MethodView
from flask_login import current_user
from marshmallow import Schema, fields

from ..api.views import documented_errors, json_body, request_body, resource, saving
from ..permissions import allow, can_change_policy, can_read_policy, can_sign_off_policy
from ..vocabulary import POLICY_ORIGINS, POLICY_SIGN_OFF_MEANINGS, POLICY_VERSION_STATES
from . import jobs, versions

policies = resource("policy", "The good-practice policy: the version in force, every version "
                              "kept with its SHA-256, and how a change is proposed, signed off "
                              "by patient partners and put in force.")


class SignOffOut(Schema):
    name = fields.String(required=True)
    organisation = fields.String(required=True)
    signed_at = fields.String(required=True, metadata={"description": "UTC, ISO 8601."})
    meaning = fields.String(required=True)


class CoCreationOut(Schema):
    version = fields.String(required=True)
    recorded = fields.Boolean(required=True, metadata={
        "description": "False until a patient partner signs the version off."})
    statement = fields.String(required=True, metadata={
        "description": "\"Co-creation not yet recorded: …\" until sign-offs are recorded."})
    signed_off_by = fields.List(fields.Dict(), required=True)
    sign_offs = fields.List(fields.Nested(SignOffOut), required=True)


class RuleOut(Schema):
    id = fields.String(required=True)
    key = fields.String(required=True, metadata={
        "description": "How a proposal names the rule (subject:id when an id names two)."})
    subject = fields.String(required=True)
    dimension = fields.String(required=True)
    severity = fields.String(required=True)
    title = fields.String(required=True)
    in_force = fields.Boolean(required=True)
    message = fields.String(required=True)
    condition = fields.String(required=True)
    thresholds = fields.Dict(required=True)


class VersionOut(Schema):
    version = fields.String(required=True)
    origin = fields.String(required=True, metadata={"enum": list(POLICY_ORIGINS)})
    state = fields.String(required=True, metadata={"enum": list(POLICY_VERSION_STATES)})
    in_force = fields.Boolean(required=True, metadata={"description": "In force today."})
    effective_from = fields.Date(required=True, allow_none=True)
    based_on = fields.String(required=True, allow_none=True)
    summary = fields.String(required=True, allow_none=True)
    sha256 = fields.String(required=True)
    review_due = fields.Date(required=True, allow_none=True)
    review_overdue = fields.Boolean(required=True)
    co_creation = fields.Nested(CoCreationOut, required=True)
    changes = fields.List(fields.Dict(), required=True, metadata={
        "description": "What the version changes from the one it is based on."})
    rules = fields.List(fields.Nested(RuleOut), required=True)


class VersionList(Schema):
    items = fields.List(fields.Nested(VersionOut), required=True)
    in_force = fields.String(required=True)


class ProposalIn(Schema):
    version = fields.String(required=True)
    summary = fields.String(required=True)
    based_on = fields.String()
    effective_from = fields.Date()
    review_due = fields.Date()
    rules = fields.Dict(metadata={"description": "By rule key: severity, message, title, "
                                                 "condition, enabled (with retired: why off), "
                                                 "thresholds {name: value}."})


class SignOffIn(Schema):
    password = fields.String(required=True)
    meaning = fields.String(required=True, metadata={"enum": list(POLICY_SIGN_OFF_MEANINGS)})
    code = fields.String()


class InForceIn(Schema):
    effective_from = fields.Date(required=True)


class WithdrawalIn(Schema):
    reason = fields.String(required=True)


def version_json(row, today=None) -> dict:
    compiled = versions.compiled_of(row)
    base = versions.compiled_version(row.based_on)
    in_force = versions.policy_in_force(today).version
    return {
        "version": row.policy_version, "origin": row.origin, "state": row.state,
        "in_force": row.policy_version == in_force, "effective_from": row.effective_from,
        "based_on": row.based_on, "summary": row.summary, "sha256": row.digest,
        "review_due": versions.review_due_of(compiled),
        "review_overdue": versions.review_overdue(compiled, today),
        "co_creation": versions.co_creation_of(row.policy_version).internal_json(),
        "changes": [vars(d) for d in versions.differences(base, compiled)] if base else [],
        "rules": [rule_json(spec, compiled) for spec in compiled.policy.rules],
    }


def rule_json(spec, compiled) -> dict:
    return {"id": spec.id, "key": versions.rule_key(spec, compiled), "subject": spec.subject,
            "dimension": spec.dimension, "severity": spec.severity, "title": spec.title,
            "in_force": not spec.retired, "message": spec.message, "condition": spec.condition,
            "thresholds": {name: {"value": t.value, "unit": t.unit, "min": t.minimum,
                                  "max": t.maximum} for name, t in spec.thresholds.items()}}


@policies.route("/policy")
class PolicyInForce(MethodView):
    @allow(can_read_policy)
    @policies.response(200, VersionOut)
    @documented_errors(policies, 403)
    def get(self):
        """The policy in force today, with its co-creation as recorded."""
        return version_json(versions.get_version(versions.policy_in_force().version))


@policies.route("/policy/versions")
class PolicyVersions(MethodView):
    @allow(can_read_policy)
    @policies.response(200, VersionList)
    @documented_errors(policies, 403)
    def get(self):
        """Every version kept, newest first."""
        return {"items": [version_json(row) for row in versions.every_version()],
                "in_force": versions.policy_in_force().version}

    @allow(can_change_policy)
    @policies.doc(**request_body(ProposalIn, "The changes to the version in force (or to "
                                             "`based_on`), checked as `check-policies` checks "
                                             "the file."))
    @policies.response(201, VersionOut)
    @documented_errors(policies, 400, 403, 422)
    def post(self):
        """Propose a new version; the patient partners are asked to sign it off."""
        values = json_body()
        with saving():
            row = versions.propose_version(current_user, values)
            answer = version_json(row)
        return answer, 201


@policies.route("/policy/versions/<version>")
class PolicyVersion(MethodView):
    @allow(can_read_policy)
    @policies.response(200, VersionOut)
    @documented_errors(policies, 403, 404)
    def get(self, version: str):
        """One version, with what it changes and who signed it off."""
        return version_json(versions.get_version(version))


@policies.route("/policy/versions/<version>/sign-offs")
class PolicySignOffs(MethodView):
    @allow(can_sign_off_policy)
    @policies.doc(**request_body(SignOffIn, "The partner's password (and code with two-step "
                                            "sign-in) and the meaning of the signature."))
    @policies.response(201, VersionOut)
    @documented_errors(policies, 400, 403, 404, 422)
    def post(self, version: str):
        """Sign the version off as a patient partner's representative (an e-signature)."""
        row = versions.get_version(version, keep=True)
        values = json_body()
        with saving():
            versions.sign_off_version(row, current_user, values.get("password"),
                                      values.get("meaning"), values.get("code"))
            answer = version_json(row)
        return answer, 201


@policies.route("/policy/versions/<version>/in-force")
class PolicyInForceFrom(MethodView):
    @allow(can_change_policy)
    @policies.doc(**request_body(InForceIn, "The date it comes into force: today or later."))
    @policies.response(200, VersionOut)
    @documented_errors(policies, 400, 403, 404, 422)
    def post(self, version: str):
        """Put a signed-off version in force from a date."""
        row = versions.get_version(version)
        values = json_body()
        with saving():
            versions.put_in_force(row, current_user, values.get("effective_from"))
        jobs.reevaluate_when_in_force(row, current_user)
        return version_json(row)


@policies.route("/policy/versions/<version>/withdrawal")
class PolicyWithdrawal(MethodView):
    @allow(can_change_policy)
    @policies.doc(**request_body(WithdrawalIn))
    @policies.response(200, VersionOut)
    @documented_errors(policies, 400, 403, 404, 422)
    def post(self, version: str):
        """Withdraw a proposal awaiting sign-off (it stays on record with the reason)."""
        row = versions.get_version(version)
        values = json_body()
        with saving():
            versions.withdraw_version(row, current_user, values.get("reason"))
            answer = version_json(row)
        return answer

