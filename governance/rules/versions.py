"""Policy versions: which one is in force on a day, proposing a change in the application,
the patient partners' sign-offs, and putting a signed-off version in force from a date.

The shipped file (policies/rules.toml) is the first version. A version proposed here is the
version it changes with the proposed edits applied, written as TOML and checked exactly as
`check-policies` checks the file; it is kept byte for byte with its SHA-256 and never changes.
Who co-created a version is not something a file can claim: it is the sign-offs recorded here.
"""

import difflib
import hashlib
import tomllib
from dataclasses import dataclass
from datetime import date, timedelta

import tomli_w
from flask import current_app
from sqlalchemy import select

from ..database import utcnow
from ..errors import DomainError, NotFound, ValidationFailed
from ..extensions import db
from ..vocabulary import POLICY_SIGN_OFF_MEANINGS, SEVERITIES
from .engine import (
    CompiledPolicy,
    PolicyError,
    RuleSpec,
    Threshold,
    check_policy_text,
    compiled_source,
    last_good_policy,
    load_policy,
    out_of_range,
)
from .models import PolicySignOff, PolicyVersion

IN_FORCE_CACHE = "rules_policy_in_force"  # session.info: (day, policy) for this transaction
NOT_RECORDED = "Co-creation not yet recorded"
RULE_CHANGE_KEYS = ("severity", "message", "enabled", "retired", "thresholds", "condition",
                    "title")
VERSION_MAX = 40


# --- the version in force ---------------------------------------------------------------------


def file_policy() -> CompiledPolicy:
    """The shipped policy file; a file broken after start-up leaves the last good one in use."""
    directory = current_app.config["POLICIES_DIR"]
    try:
        return load_policy(directory)
    except PolicyError as error:
        previous = last_good_policy(directory)
        if previous is None:
            raise
        current_app.logger.error("policy file changed but is not valid; still using version "
                                 "%s. %s", previous.version, error)
        return previous


def policy_in_force(day: date | None = None, strict: bool = False) -> CompiledPolicy:
    """The policy in force on the day (today): of the shipped file and the versions put in
    force here, the one whose effective date came last (a version put in force here wins a
    tie). `strict` refuses a broken file instead of using the last good one."""
    day = day or utcnow().date()
    cached = db.session.info.get(IN_FORCE_CACHE)
    if cached is not None and cached[0] == (day, strict):
        return cached[1]
    shipped = load_policy(current_app.config["POLICIES_DIR"]) if strict else file_policy()
    row = db.session.execute(
        select(PolicyVersion.policy_version, PolicyVersion.digest, PolicyVersion.effective_from,
               PolicyVersion.id)
        .where(PolicyVersion.state == "in_force", PolicyVersion.origin == "application",
               PolicyVersion.effective_from <= day, PolicyVersion.voided_at.is_(None))
        .order_by(PolicyVersion.effective_from.desc(), PolicyVersion.id.desc()).limit(1)
    ).first()
    policy = shipped
    if row is not None and row.effective_from >= shipped.policy.effective_from:
        policy = _compiled_row(row.id, row.digest, row.policy_version)
    db.session.info[IN_FORCE_CACHE] = ((day, strict), policy)
    return policy


def forget_policy_in_force(session, *_args) -> None:
    session.info.pop(IN_FORCE_CACHE, None)


def _compiled_row(row_id: int, digest: str, version: str) -> CompiledPolicy:
    def source() -> bytes:
        return db.session.scalar(select(PolicyVersion.source)
                                 .where(PolicyVersion.id == row_id)).encode("utf-8")

    return compiled_source(digest, source, f"policy v{version}")


def compiled_version(version: str | None) -> CompiledPolicy | None:
    """The compiled policy of a version by its name (the file's or one kept here), if known."""
    if not version:
        return None
    shipped = file_policy()
    if shipped.version == version:
        return shipped
    row = db.session.execute(select(PolicyVersion.id, PolicyVersion.digest)
                             .where(PolicyVersion.policy_version == version)).first()
    if row is None:
        return None
    try:
        return _compiled_row(row.id, row.digest, version)
    except PolicyError:
        return None


class History:
    """The versions a record's old flags were raised and settled under, looked up once each,
    so evaluation can tell a rule that changed from one that did not."""

    def __init__(self, policy: CompiledPolicy):
        self.policy = policy
        self._versions: dict[str, CompiledPolicy | None] = {policy.version: policy}

    def rule(self, version: str | None, subject: str, rule_id: str):
        if version not in self._versions:
            self._versions[version] = compiled_version(version)
        compiled = self._versions[version]
        return None if compiled is None else compiled.rule_of(subject, rule_id)

    def judges_alike(self, version: str | None, subject: str, rule_id: str) -> bool:
        """Whether the rule decides records in the policy in force exactly as it did in
        `version` (same condition and thresholds)."""
        if version == self.policy.version:
            return True
        old, new = self.rule(version, subject, rule_id), self.policy.rule_of(subject, rule_id)
        return old is not None and new is not None and old.judgement == new.judgement


# --- what each version is and who signed it --------------------------------------------------


@dataclass(frozen=True)
class CoCreation:
    """What can be said of a version's co-creation: its recorded sign-offs, or that there are
    none (the same words on the policy page, in the reports and in the API)."""

    version: str
    recorded: bool
    statement: str
    sign_offs: tuple = ()

    def public_json(self) -> dict:
        """Organisations and dates only: a public document names no person."""
        return {"version": self.version, "recorded": self.recorded,
                "statement": self.statement,
                "signed_off_by": [{"organisation": s.organisation_name,
                                   "signed_on": s.signed_at.date().isoformat()}
                                  for s in self.sign_offs]}

    def internal_json(self) -> dict:
        return self.public_json() | {"sign_offs": [
            {"name": s.signer_name, "organisation": s.organisation_name,
             "signed_at": s.signed_at.isoformat() + "Z", "meaning": s.meaning}
            for s in self.sign_offs]}


@dataclass(frozen=True)
class SignOffLine:
    signer_name: str
    organisation_name: str
    signed_at: object
    meaning: str


def version_row(version: str) -> PolicyVersion | None:
    return db.session.scalar(select(PolicyVersion).where(PolicyVersion.policy_version == version))


def co_creation_of(version: str) -> CoCreation:
    """The co-creation recorded for a version: its partners' sign-offs."""
    row = version_row(version)
    lines = tuple(SignOffLine(s.user.name, _organisation_name(s), s.signed_at,
                              s.meaning) for s in (row.sign_offs if row else ()))
    if not lines:
        return CoCreation(version, False, f"{NOT_RECORDED}: no patient partner has signed "
                                          f"off policy v{version}.")
    groups = sorted({line.organisation_name for line in lines})
    partners = f"{len(lines)} patient partner{'s' if len(lines) != 1 else ''}"
    return CoCreation(version, True, f"Co-created with and signed off by {partners} "
                                     f"({', '.join(groups)}).", lines)


def _organisation_name(sign_off: PolicySignOff) -> str:
    return sign_off.organisation.name if sign_off.organisation else "no organisation"


def in_force_since(policy: CompiledPolicy) -> date:
    """The day the policy came into force (the date it was put in force here, or the file's)."""
    row = version_row(policy.version)
    return row.effective_from if row is not None and row.effective_from else \
        policy.policy.effective_from


def review_due_of(policy: CompiledPolicy) -> date | None:
    due = (policy.policy.provenance or {}).get("review_due")
    return due if isinstance(due, date) else None


def review_overdue(policy: CompiledPolicy, day: date | None = None) -> bool:
    due = review_due_of(policy)
    return due is not None and due < (day or utcnow().date())


def every_version() -> list[PolicyVersion]:
    """Every version, newest first: those kept here, and the shipped file's until it is."""
    rows = list(db.session.scalars(select(PolicyVersion).order_by(PolicyVersion.id.desc())))
    shipped = file_policy()
    if not any(row.policy_version == shipped.version for row in rows):
        rows.append(_file_row(shipped))
    return rows


def scheduled_version(day: date | None = None) -> PolicyVersion | None:
    """The version put in force from a later day, if one is waiting."""
    day = day or utcnow().date()
    return db.session.scalar(
        select(PolicyVersion).where(PolicyVersion.state == "in_force",
                                    PolicyVersion.effective_from > day)
        .order_by(PolicyVersion.effective_from.desc()).limit(1))


def keep_version_of(policy: CompiledPolicy) -> PolicyVersion:
    """The kept row of a policy, keeping the shipped file's the first time it is needed (a
    sign-off, a proposal built on it, a re-evaluation under it)."""
    row = version_row(policy.version)
    if row is None:
        row = _file_row(policy)
        db.session.add(row)
        db.session.flush()
    return row


def _file_row(policy: CompiledPolicy) -> PolicyVersion:
    text = _source_text(policy)
    return PolicyVersion(policy_version=policy.version, origin="file", state="in_force",
                         source=text, digest=hashlib.sha256(text.encode("utf-8")).hexdigest(),
                         summary=policy.policy.changes,
                         effective_from=policy.policy.effective_from)


def _source_text(policy: CompiledPolicy) -> str:
    with open(policy.policy.source, encoding="utf-8") as handle:
        return handle.read()


def get_version(version: str, keep: bool = False) -> PolicyVersion:
    """The version by name; NotFound otherwise. The shipped file's, not yet kept, is shown as
    it is (kept first when `keep`: a sign-off needs its row)."""
    row = version_row(version)
    if row is None and file_policy().version == version:
        row = keep_version_of(file_policy()) if keep else _file_row(file_policy())
    if row is None:
        raise NotFound(f"There is no policy version {version}.")
    return row


def compiled_of(row: PolicyVersion) -> CompiledPolicy:
    return compiled_source(row.digest, lambda: row.source.encode("utf-8"),
                           f"policy v{row.policy_version}")


# --- proposing a version ----------------------------------------------------------------------


def propose_version(actor, values: dict, today: date | None = None) -> PolicyVersion:
    """Propose a new version: the version in force (or `based_on`) with the changes applied,
    checked as the file is. Nothing is saved when a check fails."""
    today = today or utcnow().date()
    errors: dict[str, list[str]] = {}
    unknown = set(values) - {"version", "based_on", "summary", "effective_from", "review_due",
                             "rules"}
    for key in sorted(unknown):
        errors[key] = ["Unknown field."]
    base = _base_of(values.get("based_on"), errors)
    version = _new_version_name(values.get("version"), errors)
    summary = values.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        errors["summary"] = ["Say what changes and why: the partners sign off on it."]
    effective = _date_value(values, "effective_from", errors)
    if effective is not None and effective < today:
        errors["effective_from"] = [
            f"{effective:%-d %B %Y} is in the past. A version not yet signed off cannot be in "
            "force on a day already gone; choose today or a later date."]
    review_due = _date_value(values, "review_due", errors)
    if review_due is not None and review_due <= today:
        errors["review_due"] = ["The next review date must be after today."]
    changes = values.get("rules") or {}
    if not isinstance(changes, dict):
        errors["rules"] = ["Give the changes as an object keyed by rule id."]
        changes = {}
    if base is None or errors:
        raise ValidationFailed(errors, "The proposed version was not saved.")
    raw = tomllib.loads(_source_of(base))
    review_asked = review_due is not None
    if review_due is None and review_overdue(base, today):
        # Proposing a version is the review: the next one falls a year after it takes effect
        # (shown in the difference, changed by giving review_due).
        review_due = (effective or today) + timedelta(days=365)
    _apply_header(raw, version, base.version, summary.strip(), effective or today, review_due)
    _apply_rule_changes(raw, base, changes, errors)
    if not any(_changed_rules(raw, base)) and not review_asked:
        errors.setdefault("rules", []).append(
            "Nothing changes: change a threshold, a message, a severity, a rule or the "
            "review date.")
    if errors:
        raise ValidationFailed(errors, "The proposed version was not saved.")
    text = tomli_w.dumps(raw)
    compiled, problems = check_policy_text(text.encode("utf-8"), f"proposed v{version}")
    if problems:
        raise ValidationFailed(_problem_fields(problems), "The proposed version does not pass "
                                                          "the policy checks; it was not saved.")
    keep_version_of(base)
    row = PolicyVersion(policy_version=version, origin="application", state="proposed",
                        source=text, digest=compiled.policy.digest, based_on=base.version,
                        summary=summary.strip(), effective_from=None,
                        proposed_by_id=actor.id)
    db.session.add(row)
    db.session.flush()
    from ..notifications import events

    events.policy_proposed(row, actor)
    return row


def _base_of(based_on, errors) -> CompiledPolicy | None:
    if based_on in (None, ""):
        return policy_in_force()
    compiled = compiled_version(str(based_on))
    if compiled is None:
        errors["based_on"] = [f"There is no policy version {based_on}."]
    return compiled


def _new_version_name(value, errors) -> str | None:
    if not isinstance(value, str) or not value.strip():
        errors["version"] = ["Name the new version, e.g. 2026.1."]
        return None
    value = value.strip()
    if len(value) > VERSION_MAX:
        errors["version"] = [f"At most {VERSION_MAX} characters."]
    elif not all(ch.isalnum() or ch in ".-_" for ch in value):
        errors["version"] = ["Use letters, digits, dots, hyphens and underscores only."]
    elif version_row(value) is not None or file_policy().version == value:
        errors["version"] = [f"Version {value} already exists; every version keeps its name."]
    return value


def _date_value(values: dict, key: str, errors) -> date | None:
    value = values.get(key)
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        errors[key] = ["Not a valid date (YYYY-MM-DD)."]
        return None


def _source_of(policy: CompiledPolicy) -> str:
    row = version_row(policy.version)
    return row.source if row is not None else _source_text(policy)


def _apply_header(raw: dict, version: str, base_version: str, summary: str, effective: date,
                  review_due: date | None) -> None:
    header = raw["policy"]
    header["version"] = version
    header["effective_from"] = effective
    header["supersedes"] = f"v{base_version}"
    header["changes"] = summary
    if review_due is not None:
        header.setdefault("provenance", {})["review_due"] = review_due


def rule_key(spec: RuleSpec, policy: CompiledPolicy) -> str:
    """How a proposal names a rule: its id, or subject:id when the id names rules of two
    subjects (AGR-MISSING)."""
    same_id = [s for s in policy.policy.rules if s.id == spec.id]
    return spec.id if len(same_id) == 1 else f"{spec.subject}:{spec.id}"


def _raw_rule_for(raw: dict, spec: RuleSpec) -> dict:
    for entry in raw["rules"]:
        if entry.get("id") == spec.id and entry.get("subject") == spec.subject:
            return entry
    raise KeyError(spec.id)


def _apply_rule_changes(raw: dict, base: CompiledPolicy, changes: dict, errors) -> None:
    specs = {rule_key(spec, base): spec for spec in base.policy.rules}
    for key, change in changes.items():
        field = f"rules.{key}"
        spec = specs.get(key)
        if spec is None:
            errors[field] = [f"There is no rule {key} in v{base.version}."]
            continue
        if not isinstance(change, dict):
            errors[field] = ["Give the rule's changes as an object."]
            continue
        for name in sorted(set(change) - set(RULE_CHANGE_KEYS)):
            errors[f"{field}.{name}"] = [f"Unknown change; use {', '.join(RULE_CHANGE_KEYS)}."]
        _apply_one_rule(_raw_rule_for(raw, spec), spec, change, field, errors)


def _apply_one_rule(entry: dict, spec: RuleSpec, change: dict, field: str, errors) -> None:
    if "severity" in change:
        if change["severity"] not in SEVERITIES:
            errors[f"{field}.severity"] = [f"Choose one of {', '.join(SEVERITIES)}."]
        else:
            entry["severity"] = change["severity"]
    for name in ("message", "title", "condition"):
        if name in change:
            text = change[name]
            if not isinstance(text, str) or not text.strip():
                errors[f"{field}.{name}"] = ["Must not be empty."]
            else:
                entry[name] = text.strip()
    _apply_switch(entry, spec, change, field, errors)
    thresholds = change.get("thresholds") or {}
    if not isinstance(thresholds, dict):
        errors[f"{field}.thresholds"] = ["Give the thresholds as an object of name: value."]
        return
    for name, value in thresholds.items():
        place = f"{field}.thresholds.{name}"
        threshold = spec.thresholds.get(name)
        if threshold is None:
            errors[place] = [f"{spec.id} has no threshold {name}."]
            continue
        parsed, problem = parse_threshold(threshold, value)
        if problem:
            errors[place] = [problem]
            continue
        stored = entry["thresholds"][name]
        if isinstance(stored, dict):
            stored["value"] = parsed
        else:
            entry["thresholds"][name] = parsed


def _apply_switch(entry: dict, spec: RuleSpec, change: dict, field: str, errors) -> None:
    """Switch the rule off (with the reason it stays switched off) or on again."""
    if "enabled" not in change:
        return
    enabled = change["enabled"]
    if not isinstance(enabled, bool):
        errors[f"{field}.enabled"] = ["Must be true or false."]
        return
    if enabled:
        entry.pop("retired", None)
        return
    reason = change.get("retired") or spec.retired
    if not isinstance(reason, str) or not reason.strip():
        errors[f"{field}.retired"] = ["Say why the rule is switched off: its old flags keep "
                                      "their meaning and its open ones close as superseded."]
        return
    entry["retired"] = reason.strip()


def parse_threshold(threshold: Threshold, value) -> tuple[object, str | None]:
    """A threshold's new value in the type of its current one, or why it cannot be."""
    current = threshold.value
    if isinstance(current, bool):
        return _parse_bool(value)
    if isinstance(current, int | float):
        number, problem = _parse_number(value, whole=isinstance(current, int))
        if problem:
            return None, problem
        return number, out_of_range(threshold, number)
    if isinstance(current, list):
        if isinstance(value, str):
            value = [item.strip() for item in value.split(",") if item.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return None, "Must be a list of texts."
        return value, None
    if not isinstance(value, str) or not value.strip():
        return None, "Must be non-empty text."
    return value.strip(), None


def _parse_bool(value) -> tuple[bool | None, str | None]:
    if isinstance(value, bool):
        return value, None
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True, None
    if text in ("false", "no", "off", "0"):
        return False, None
    return None, "Must be true or false."


def _parse_number(value, whole: bool) -> tuple[float | int | None, str | None]:
    if isinstance(value, bool):
        return None, "Must be a number, not true or false."
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text) if text.lstrip("-").isdigit() else float(text)
        except ValueError:
            return None, f"Must be a number, not {text!r}." if text else "Must be a number."
    if not isinstance(value, int | float) or value != value:  # NaN is not a number
        return None, "Must be a number."
    if whole:
        if isinstance(value, float) and not value.is_integer():
            return None, f"Must be a whole number, not {value}."
        return int(value), None
    return float(value), None


def _changed_rules(raw: dict, base: CompiledPolicy):
    """Yield the rules of the edited document that differ from the base's."""
    base_raw = tomllib.loads(_source_of(base))
    for old, new in zip(base_raw["rules"], raw["rules"], strict=True):
        if old != new:
            yield new


def _problem_fields(problems) -> dict[str, list[str]]:
    """The policy checks' problems, on the rule they name where they name one."""
    fields: dict[str, list[str]] = {}
    for problem in problems:
        where, message = str(problem.where), problem.message
        key = "policy"
        if ": rule " in f": {where}":
            rule_id = where.split("rule ", 1)[1].split(":", 1)[0].strip()
            key = f"rules.{rule_id}"
            if "threshold '" in where:
                key += ".thresholds." + where.split("threshold '", 1)[1].split("'", 1)[0]
            elif "condition" in message:
                key += ".condition"
            elif "message" in message:
                key += ".message"
        fields.setdefault(key, []).append(message)
    return fields


# --- what a proposal changes ------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    rule: str  # the rule key, or "" for the policy as a whole
    title: str
    what: str
    before: str
    after: str


def differences(old: CompiledPolicy, new: CompiledPolicy) -> list[Difference]:
    """What the new version changes from the old, rule by rule, in words."""
    found = []
    old_review, new_review = review_due_of(old), review_due_of(new)
    if old_review != new_review:
        found.append(Difference("", "The policy", "Next review due", _day(old_review),
                                _day(new_review)))
    old_specs = {(s.subject, s.id): s for s in old.policy.rules}
    for spec in new.policy.rules:
        before = old_specs.get((spec.subject, spec.id))
        key = rule_key(spec, new)
        if before is None:
            found.append(Difference(key, spec.title, "Rule", "absent", "added"))
            continue
        found.extend(Difference(key, spec.title, what, b, a)
                     for what, b, a in _rule_differences(before, spec))
    return found


def _rule_differences(old: RuleSpec, new: RuleSpec):
    if bool(old.retired) != bool(new.retired):
        yield ("In force", "switched off" if old.retired else "on",
               "switched off" if new.retired else "on")
    for what, name in (("Severity", "severity"), ("Title", "title"), ("Message", "message"),
                       ("Condition", "condition")):
        if getattr(old, name) != getattr(new, name):
            yield what, getattr(old, name), getattr(new, name)
    for name, threshold in new.thresholds.items():
        before = old.thresholds.get(name)
        if before is None or before.value != threshold.value:
            yield (f"Threshold {name}", _value(before) if before else "absent",
                   _value(threshold))


def _value(threshold: Threshold) -> str:
    value = threshold.value
    text = ", ".join(value) if isinstance(value, list) else str(value)
    return f"{text} {threshold.unit}" if threshold.unit else text


def _day(value: date | None) -> str:
    return f"{value:%-d %B %Y}" if value else "none"


def text_difference(old: CompiledPolicy, new_row: PolicyVersion) -> str:
    """The line-by-line difference of the two documents, for those who read TOML."""
    return "".join(difflib.unified_diff(
        tomli_w.dumps(tomllib.loads(_source_of(old))).splitlines(keepends=True),
        new_row.source.splitlines(keepends=True),
        fromfile=f"v{old.version}", tofile=f"v{new_row.policy_version}"))


# --- sign-off, putting in force, withdrawing --------------------------------------------------


def sign_off_version(row: PolicyVersion, actor, password: str | None, meaning: str | None,
                     code: str | None = None) -> PolicySignOff:
    """A patient partner signs the version off: their password (and code) and the meaning of
    the signature, as every e-signature here."""
    from ..auth.services import check_signature

    if row.state == "withdrawn":
        raise DomainError(f"Policy v{row.policy_version} was withdrawn; there is nothing to "
                          "sign off.")
    if any(s.user_id == actor.id for s in row.sign_offs):
        raise DomainError(f"You have already signed off policy v{row.policy_version}.")
    statement = check_signature(actor, password, meaning, POLICY_SIGN_OFF_MEANINGS,
                                "policy version", str(row), code)
    organisation = actor.organisation.name if actor.organisation else "no organisation"
    sign_off = PolicySignOff(policy_id=row.id, user_id=actor.id,
                             organisation_id=actor.organisation_id,
                             meaning=f"{statement} ({organisation})", signed_at=utcnow())
    db.session.add(sign_off)
    db.session.flush()
    db.session.expire(row, ["sign_offs"])
    from ..notifications import events

    events.policy_signed_off(row, actor)
    return sign_off


def put_in_force(row: PolicyVersion, actor, effective_from, today: date | None = None
                 ) -> PolicyVersion:
    """Put a signed-off version in force from a date (today or later): records evaluated from
    that day are judged by it; flags raised before keep the version that raised them."""
    today = today or utcnow().date()
    errors: dict[str, list[str]] = {}
    effective = _date_value({"effective_from": effective_from}, "effective_from", errors)
    if effective is None and not errors:
        errors["effective_from"] = ["Give the date the version comes into force."]
    elif effective is not None and effective < today:
        errors["effective_from"] = [f"{effective:%-d %B %Y} is in the past: a version comes "
                                    "into force today or later, never on a day already gone."]
    if row.state != "proposed":
        raise DomainError(f"Policy v{row.policy_version} is "
                          f"{'already in force' if row.state == 'in_force' else 'withdrawn'}.")
    if not row.sign_offs:
        raise DomainError(f"Policy v{row.policy_version} has no sign-off: patient partners "
                          "sign off a version before it can be put in force.",
                          {"sign_offs": ["At least one patient partner must sign off."]})
    _refuse_outdated_base(row, today)
    if errors:
        raise ValidationFailed(errors, f"Policy v{row.policy_version} was not put in force.")
    row.state, row.effective_from = "in_force", effective
    row.put_in_force_by_id, row.put_in_force_at = actor.id, utcnow()
    db.session.flush()
    forget_policy_in_force(db.session)
    return row


def _refuse_outdated_base(row: PolicyVersion, today: date) -> None:
    waiting = scheduled_version(today)
    latest = waiting.policy_version if waiting else policy_in_force(today).version
    if row.based_on != latest:
        raise DomainError(f"Policy v{row.policy_version} changes v{row.based_on}, but the "
                          f"latest version is now v{latest}: propose the change again from "
                          f"v{latest}, so the partners sign off what will be in force.")


def withdraw_version(row: PolicyVersion, actor, reason: str | None) -> PolicyVersion:
    """Withdraw a proposal (it stays on record, with the reason)."""
    if row.state != "proposed":
        raise DomainError("Only a proposal awaiting sign-off or its date can be withdrawn.")
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationFailed({"reason": ["Say why the proposal is withdrawn."]},
                               "The proposal was not withdrawn.")
    row.state, row.withdrawal_reason = "withdrawn", reason.strip()
    db.session.flush()
    return row
