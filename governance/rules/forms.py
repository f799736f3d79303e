"""The forms of policy versions: proposing a change, signing it off, putting it in force."""

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    PasswordField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import InputRequired, Length, Optional

from ..auth.forms import signature_code_field
from ..forms import vocab_options
from ..vocabulary import POLICY_SIGN_OFF_MEANINGS, SEVERITIES
from .engine import CompiledPolicy, RuleSpec
from .versions import VERSION_MAX, rule_key

SEVERITY_LABELS = {name: name.capitalize() for name in SEVERITIES}


class ProposalHeader(FlaskForm):
    version = StringField("Name of the new version", validators=[
        InputRequired(message="Name the new version, e.g. 2026.1."), Length(max=VERSION_MAX)],
        description="Every version keeps its name; flags record the version that raised them.")
    summary = TextAreaField("What changes, and why", validators=[
        InputRequired(message="Say what changes and why: the partners sign off on it."),
        Length(max=4000)],
        description="In plain words, for the patient partners who sign it off.")
    effective_from = DateField("Proposed date it comes into force", validators=[Optional()],
                               description="Today or later. You confirm the date when you put "
                                           "the signed-off version in force.")
    review_due = DateField("Next review due", validators=[Optional()],
                           description="Leave empty to keep the current review date.")


def field_name(key: str, *parts: str) -> str:
    """The form field of one part of a rule (the same name the service's errors use)."""
    return ".".join(("rules", key, *parts))


def proposal_form(policy: CompiledPolicy, formdata=None) -> FlaskForm:
    """The proposal form for changes to `policy`: the header and, per rule, whether it is in
    force, its severity, message, thresholds and (folded away) its condition."""
    fields = {}
    for spec in policy.policy.rules:
        key = rule_key(spec, policy)
        fields[field_name(key, "enabled")] = BooleanField("In force", default=not spec.retired)
        fields[field_name(key, "retired")] = TextAreaField(
            "Why it is switched off", default=spec.retired or "",
            description="Needed when you switch the rule off: its open flags close as "
                        "superseded, naming this reason.")
        fields[field_name(key, "severity")] = SelectField(
            "Severity", choices=vocab_options(SEVERITY_LABELS), default=spec.severity)
        fields[field_name(key, "message")] = TextAreaField(
            "Message of its flags", default=spec.message,
            description="May quote facts and thresholds as $name.")
        fields[field_name(key, "condition")] = TextAreaField(
            "Condition (rule-engine expression)", default=spec.condition)
        for name, threshold in spec.thresholds.items():
            fields[field_name(key, "thresholds", name)] = StringField(
                threshold.description or name, default=_shown(threshold.value),
                description=" · ".join(part for part in (
                    f"unit: {threshold.unit}" if threshold.unit else None,
                    threshold.range_text()) if part))
    form_class = type("ProposalForm", (ProposalHeader,), fields)
    return form_class(formdata=formdata)


def _shown(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(value)
    return str(value)


def proposal_values(form: FlaskForm, policy: CompiledPolicy) -> dict:
    """The service's input from the form: the header, and only what differs per rule."""
    rules = {}
    for spec in policy.policy.rules:
        key = rule_key(spec, policy)
        change = _rule_changes(form, spec, key)
        if change:
            rules[key] = change
    return {"version": form.version.data, "summary": form.summary.data,
            "effective_from": form.effective_from.data, "review_due": form.review_due.data,
            "based_on": policy.version, "rules": rules}


def _rule_changes(form: FlaskForm, spec: RuleSpec, key: str) -> dict:
    change = {}
    enabled = form[field_name(key, "enabled")].data
    if enabled == bool(spec.retired):
        change["enabled"] = enabled
        if not enabled:
            change["retired"] = form[field_name(key, "retired")].data
    for name in ("severity", "message", "condition"):
        value = form[field_name(key, name)].data
        if isinstance(value, str) and _words(value) != _words(getattr(spec, name) or ""):
            change[name] = value.replace("\r\n", "\n")
    thresholds = {}
    for name, threshold in spec.thresholds.items():
        value = (form[field_name(key, "thresholds", name)].data or "").strip()
        if value != _shown(threshold.value):
            thresholds[name] = value
    if thresholds:
        change["thresholds"] = thresholds
    return change


def _words(text: str) -> str:
    """The text with its white space made even (browsers send text areas with CR LF)."""
    return " ".join(text.split())


class SignOffForm(FlaskForm):
    meaning = RadioField("Meaning of your signature",
                         choices=vocab_options(POLICY_SIGN_OFF_MEANINGS),
                         validators=[InputRequired(message="State what your signature means.")])
    password = PasswordField("Your password",
                             description="Re-enter your password to sign electronically.",
                             validators=[InputRequired(message="Re-enter your password to "
                                                               "sign.")],
                             render_kw={"autocomplete": "current-password"})
    code = signature_code_field()


class InForceForm(FlaskForm):
    effective_from = DateField("In force from", validators=[
        InputRequired(message="Give the date the version comes into force.")],
        description="Today or later. Records evaluated from that day are judged by this "
                    "version; flags raised before keep the version that raised them.")


class WithdrawForm(FlaskForm):
    reason = TextAreaField("Why the proposal is withdrawn", validators=[
        InputRequired(message="Say why the proposal is withdrawn."), Length(max=2000)])
