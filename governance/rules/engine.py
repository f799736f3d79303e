"""Policy sets as data: read and check policies/rules.toml, compile each rule once, evaluate facts.

Conditions are written in rule-engine's expression language and parsed against a typed context
(the fact catalogue of governance/rules/facts.py plus the rule's own thresholds), so an unknown
field, a type mismatch or a threshold of the wrong type is found when the file is compiled —
never while a record's facts are evaluated. Compiled policies are cached by the SHA-256 of the
file.

rule-engine takes most of a second to import (it builds its parser's tables), so it is imported
by the first compilation, not by every process: at start-up the application checks everything
but the conditions (`check_policy_at_start`), and compiles the policy at its first use, once
per process; `flask check-policies` checks the whole file, conditions included.
"""

import calendar
import decimal
import hashlib
import json
import logging
import operator
import re
import string
import threading
import tomllib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from ..vocabulary import DIMENSIONS, INTERACTION_FORMATS
from .facts import FACTS

if TYPE_CHECKING:
    import rule_engine

log = logging.getLogger(__name__)

POLICY_FILE = "rules.toml"
SEVERITIES = ("low", "medium", "high")
SUBJECTS = tuple(FACTS)
RULE_REQUIRED = ("id", "subject", "dimension", "severity", "title", "good_practice", "reference",
                 "condition", "message")
RULE_OPTIONAL = ("poor_practice", "thresholds", "retired")
POLICY_REQUIRED = ("version", "title", "effective_from", "provenance")
POLICY_OPTIONAL = ("description", "supersedes", "changes")
PROVENANCE_KEYS = ("method", "review_due", "sources")
THRESHOLD_KEYS = ("value", "unit", "description", "min", "max")
# Conditions must depend on the record's facts only: the clock comes in through facts such as
# days_since_occurred, which keeps results reproducible (and lets a result be reused).
CLOCK_BUILTINS = frozenset({"now", "today"})
MEMO_LIMIT = 20_000  # remembered results per sub-condition (a few MB at most)
CACHE_LIMIT = 8  # compiled policy versions kept
# Every rule's context is given this decimal context, so evaluation never depends on the thread's.
DECIMAL_CONTEXT = decimal.Context(prec=28, rounding=decimal.ROUND_HALF_EVEN)


DEFAULT_APPROVAL_FORMATS = frozenset({"advisory_board", "focus_group"})


@dataclass(frozen=True)
class Reporting:
    """[reporting]: when each organisation-year's transparency report is due ("MM-DD" of the
    next year), how long a partner has to answer a support line before the report lists it as
    not answered, and how many days before the due date the reminders start."""

    due_month: int = 6
    due_day: int = 30
    review_window_days: int = 30
    reminder_days: int = 45

    def due_date(self, year: int) -> date:
        """The due date of a calendar year's report (in the next year; 29 February falls
        back to the 28th in a common year)."""
        next_year = year + 1
        day = self.due_day
        if (self.due_month, day) == (2, 29) and not calendar.isleap(next_year):
            day = 28
        return date(next_year, self.due_month, day)


DEFAULT_REPORTING = Reporting()
REPORTING_KEYS = ("due", "review_window_days", "reminder_days", "description")
REPORTING_DAY_LIMIT = 366


@dataclass(frozen=True)
class Problem:
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class PolicyError(Exception):
    """The policy set cannot be used; `problems` says why, one readable line each."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"The policy set is not valid ({len(problems)} problem"
                         f"{'s' if len(problems) != 1 else ''}):\n{lines}")


@dataclass(frozen=True)
class Threshold:
    name: str
    value: object
    unit: str | None = None
    description: str | None = None
    # The range a number may take ("min" and "max" in the file; a percentage is 0 to 100).
    minimum: float | None = None
    maximum: float | None = None

    @property
    def is_number(self) -> bool:
        return isinstance(self.value, int | float) and not isinstance(self.value, bool)

    def range_text(self) -> str | None:
        """The allowed range in words ("from 0 to 100 %"), if one is set."""
        unit = f" {self.unit}" if self.unit else ""
        low, high = _plain_number(self.minimum), _plain_number(self.maximum)
        if low is not None and high is not None:
            return f"from {low} to {high}{unit}"
        if low is not None:
            return f"at least {low}{unit}"
        if high is not None:
            return f"at most {high}{unit}"
        return None


def _plain_number(value) -> str | None:
    if value is None:
        return None
    return str(int(value)) if float(value).is_integer() else str(value)


@dataclass(frozen=True)
class RuleSpec:
    id: str
    subject: str
    dimension: str
    severity: str
    title: str
    good_practice: str
    poor_practice: str | None
    reference: dict
    condition: str
    message: str
    thresholds: dict[str, Threshold] = field(default_factory=dict)
    # Why the rule was switched off (it stays in the policy so its old flags keep their
    # meaning; its open flags close as superseded): None while it is in force.
    retired: str | None = None


@dataclass(frozen=True)
class PolicySet:
    version: str
    title: str
    effective_from: date
    provenance: dict
    description: str | None
    supersedes: str | None
    changes: str | None
    rules: tuple[RuleSpec, ...]
    source: str
    digest: str
    # The interaction formats that need a compliance officer's approval before they are held
    # ([approval] formats; an interaction with individual payments needs one whatever its format).
    approval_formats: frozenset[str] = DEFAULT_APPROVAL_FORMATS
    # When the transparency reports are due, the review window and the reminders ([reporting]).
    reporting: Reporting = DEFAULT_REPORTING


class _Leaf:
    """A sub-condition evaluated by rule-engine, its result remembered per input-fact values.

    A condition is a pure function of its input facts (thresholds are constants and the clock is
    refused), so remembering results is exact. Splitting the condition at and/or/not first keeps
    the remembered combinations few: `days_since_occurred > max_days` is remembered per day,
    not per day and every other fact of the rule.
    """

    __slots__ = ("node", "inputs", "key", "memo")

    def __init__(self, node, inputs: tuple[str, ...]):
        self.node = node
        self.inputs = inputs
        self.key = operator.itemgetter(*inputs) if inputs else (lambda _facts: ())
        self.memo: dict = {}

    def __call__(self, facts: dict) -> bool:
        key = self.key(facts)
        try:
            return self.memo[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable fact value: evaluate without remembering
            return bool(self.node.evaluate(facts))
        result = bool(self.node.evaluate(facts))
        if len(self.memo) >= MEMO_LIMIT:
            self.memo.clear()
        self.memo[key] = result
        return result


def _symbols(node, seen: set[int] | None = None) -> set[str]:
    """Return the names of the unscoped symbols (facts, thresholds) an AST node reads."""
    from rule_engine import ast as rule_ast

    seen = set() if seen is None else seen
    if id(node) in seen:
        return set()
    seen.add(id(node))
    found = set()
    if isinstance(node, rule_ast.SymbolExpression) and node.scope is None:
        found.add(node.name)
    values = list(getattr(node, "__dict__", {}).values())
    for cls in type(node).__mro__:
        for slot in getattr(cls, "__slots__", ()):
            if slot != "context" and hasattr(node, slot):
                values.append(getattr(node, slot))
    while values:
        value = values.pop()
        if isinstance(value, rule_ast.ASTNodeBase):
            found |= _symbols(value, seen)
        elif isinstance(value, list | tuple | set | frozenset):
            values.extend(value)
        elif isinstance(value, dict):
            values.extend(value.keys())
            values.extend(value.values())
    return found


def _split(node, facts: frozenset[str], leaves: list[_Leaf]):
    """Return a function of the facts equivalent to the node, with and/or/not in Python."""
    from rule_engine import ast as rule_ast

    if isinstance(node, rule_ast.LogicExpression) and node.type in ("and", "or"):
        left, right = _split(node.left, facts, leaves), _split(node.right, facts, leaves)
        if node.type == "and":
            return lambda values: left(values) and right(values)
        return lambda values: left(values) or right(values)
    if isinstance(node, rule_ast.UnaryExpression) and node.type == "not":
        inner = _split(node.right, facts, leaves)
        return lambda values: not inner(values)
    leaf = _Leaf(node, tuple(sorted(_symbols(node) & facts)))
    leaves.append(leaf)
    return leaf


class CompiledRule:
    """One rule ready to evaluate: its parsed condition, thresholds and input facts."""

    __slots__ = ("spec", "_rule", "inputs", "_check", "_values", "_template", "_placeholders",
                 "judgement")

    def __init__(self, spec: RuleSpec, rule: "rule_engine.Rule", inputs: tuple[str, ...]):
        self.spec = spec
        self._rule = rule
        self.inputs = inputs
        self._values = {name: t.value for name, t in spec.thresholds.items()}
        self._template = string.Template(spec.message)
        self._placeholders = tuple(_placeholders(spec.message) - set(self._values))
        self.judgement = judgement_of(spec)
        facts = frozenset(FACTS[spec.subject])
        leaves: list[_Leaf] = []
        check = _split(rule.statement.expression, facts, leaves)
        covered = set().union(*(leaf.inputs for leaf in leaves)) if leaves else set()
        if "re_groups" in rule.context.symbols or covered != set(inputs):
            # Regex groups carry state between sub-conditions, and a split that loses track of
            # an input would be wrong: evaluate such a condition whole.
            check = _Leaf(rule.statement.expression, inputs)
        self._check = check

    @property
    def reads(self) -> frozenset[str]:
        """The facts the rule's condition and its message read."""
        return frozenset(self.inputs) | frozenset(self._placeholders)

    def applies(self, facts: dict) -> bool:
        """Return whether the rule's condition holds for these facts."""
        with decimal.localcontext(DECIMAL_CONTEXT):
            return self._check(facts)

    def applies_uncached(self, facts: dict) -> bool:
        """Evaluate the whole condition with rule-engine, remembering nothing (for benchmarks)."""
        return bool(self._rule.matches(facts))

    def message(self, facts: dict) -> str:
        """Return the flag message with facts and thresholds filled in."""
        values = {name: _readable(facts[name]) for name in self._placeholders if name in facts}
        values.update({name: _readable(value) for name, value in self._values.items()})
        return self._template.safe_substitute(values)


def judgement_of(spec: RuleSpec) -> str:
    """A digest of what the rule judges: its subject, condition and thresholds. Two versions
    whose rule has the same judgement decide every record alike, so the flags acknowledged or
    dismissed under one stand under the other; wording and severity do not count."""
    condition = " ".join(spec.condition.split())
    values = {name: t.value for name, t in sorted(spec.thresholds.items())}
    text = json.dumps([spec.subject, condition, values], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class CompiledPolicy:
    """A validated policy set whose rules are compiled, grouped by the record they judge."""

    def __init__(self, policy: PolicySet, rules: list[CompiledRule]):
        from rule_engine import EngineError

        self._evaluation_error = EngineError  # kept here: `applying` runs for every record
        self.policy = policy
        self.version = policy.version
        self.rules = {}
        for rule in rules:  # by id; an id that names rules of two subjects: the first
            self.rules.setdefault(rule.spec.id, rule)
        self.approval_formats = policy.approval_formats
        self.reporting = policy.reporting
        self.by_subject = {subject: tuple(r for r in rules if r.spec.subject == subject)
                           for subject in SUBJECTS}

    def rule_of(self, subject: str, rule_id: str) -> "CompiledRule | None":
        """The rule of this id that judges this subject."""
        for rule in self.by_subject.get(subject, ()):
            if rule.spec.id == rule_id:
                return rule
        return None

    def reading(self, subject: str, facts: frozenset[str]) -> tuple[CompiledRule, ...]:
        """Return the rules of the subject that read any of these facts."""
        return tuple(rule for rule in self.by_subject[subject] if rule.reads & facts)

    def applying(self, subject: str, facts: dict,
                 rules: tuple[CompiledRule, ...] | None = None) -> list[CompiledRule]:
        """Return the rules of the subject (or the given ones of it) whose condition holds for
        the facts."""
        found = []
        with decimal.localcontext(DECIMAL_CONTEXT):
            for rule in self.by_subject[subject] if rules is None else rules:
                if rule.spec.retired:
                    continue
                try:
                    if rule._check(facts):
                        found.append(rule)
                except self._evaluation_error as error:
                    log.error("rule %s could not be evaluated: %s", rule.spec.id, error)
        return found


def _readable(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        text = f"{value:.1f}"
        return text[:-2] if text.endswith(".0") else text
    return str(value)


# --- reading and checking --------------------------------------------------------------------


def _resolver(thresholds: dict):
    def resolve(facts, name):
        if name in thresholds:
            return thresholds[name]
        try:
            return facts[name]
        except KeyError:
            from rule_engine.errors import SymbolResolutionError

            raise SymbolResolutionError(name) from None

    return resolve


def _context(subject: str, thresholds: dict, types: dict | None = None) -> "rule_engine.Context":
    import rule_engine
    from rule_engine import DataType

    type_map = {name: fact.type.data_type() for name, fact in FACTS[subject].items()}
    type_map.update(types if types is not None else
                    {name: DataType.from_value(value) for name, value in thresholds.items()})
    return rule_engine.Context(type_resolver=type_map, resolver=_resolver(thresholds),
                               default_timezone="utc", mapping_attribute_lookup=False,
                               decimal_context=DECIMAL_CONTEXT)


TYPE_NAMES = {"FLOAT": "a number", "STRING": "text", "BOOLEAN": "true or false",
              "ARRAY": "a list", "DATETIME": "a date", "MAPPING": "a table"}


def _type_name(data_type) -> str:
    return TYPE_NAMES.get(data_type.name, data_type.name.lower())


def _describe(value) -> str:
    from rule_engine import DataType

    return f"{_type_name(DataType.from_value(value))} ({value!r})"


def _compile(spec: RuleSpec, where: str) -> tuple[CompiledRule | None, list[Problem]]:
    import rule_engine
    from rule_engine import DataType

    values = {name: t.value for name, t in spec.thresholds.items()}
    context = _context(spec.subject, values)
    try:
        rule = rule_engine.Rule(spec.condition, context=context)
    except rule_engine.errors.SymbolResolutionError as error:
        return None, [_unknown_symbol(error, spec, where)]
    except rule_engine.errors.RuleSyntaxError as error:
        return None, [Problem(where, f"condition is not valid rule-engine syntax: "
                                     f"{error.message}")]
    except rule_engine.errors.EngineError as error:
        return None, [_type_problem(spec, values, where, error)]
    problems = []
    result_type = rule.statement.expression.result_type
    if result_type not in (DataType.BOOLEAN, DataType.UNDEFINED):
        problems.append(Problem(where, f"condition gives {_type_name(result_type)}, not true or "
                                       f"false; compare it with something (e.g. '> 0')"))
    clock = sorted(CLOCK_BUILTINS & context.symbols - set(FACTS[spec.subject]) - set(values))
    if clock:
        problems.append(Problem(where, "condition reads the clock ("
                                + ", ".join(f"${name}" for name in clock)
                                + "); use a fact such as days_since_occurred instead"))
    for name in sorted(set(values) - context.symbols - _placeholders(spec.message)):
        problems.append(Problem(where, f"threshold '{name}' is used neither in the condition nor "
                                       "in the message"))
    if problems:
        return None, problems
    inputs = tuple(sorted(context.symbols & set(FACTS[spec.subject])))
    return CompiledRule(spec, rule, inputs), []


def _unknown_symbol(error, spec: RuleSpec, where: str) -> Problem:
    hint = f" (did you mean '{error.suggestion}'?)" if error.suggestion else ""
    return Problem(where, f"condition uses unknown field '{error.symbol_name}'{hint}; "
                          f"{spec.subject} rules can use the facts listed on the policy page "
                          "and the rule's own thresholds")


def _type_problem(spec: RuleSpec, values: dict, where: str, error) -> Problem:
    """Name the threshold whose type breaks the condition, if one does."""
    from rule_engine import DataType

    base = {name: DataType.from_value(value) for name, value in values.items()}
    for name, value in values.items():
        if _parses(spec, values, base | {name: DataType.UNDEFINED}):
            for wanted in (DataType.FLOAT, DataType.STRING, DataType.BOOLEAN):
                if wanted != base[name] and _parses(spec, values, base | {name: wanted}):
                    return Problem(where, f"threshold '{name}' has the wrong type: it is "
                                          f"{_describe(value)}, but the condition needs "
                                          f"{_type_name(wanted)}")
            return Problem(where, f"threshold '{name}' has the wrong type for the condition: "
                                  f"{_describe(value)}")
    if "nullable" in error.message:
        facts = FACTS[spec.subject]
        maybe_null = sorted(name for name in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", spec.condition)
                            if name in facts and facts[name].type.name == "NULLABLE")
        if maybe_null:
            return Problem(where, f"condition compares {', '.join(maybe_null)}, which may be "
                                  f"null; give a default first, e.g. ({maybe_null[0]} ?? 0)")
    return Problem(where, f"condition is not valid: {error.message}")


def _parses(spec: RuleSpec, values: dict, types: dict) -> bool:
    import rule_engine

    try:
        rule_engine.Rule(spec.condition, context=_context(spec.subject, values, types))
    except rule_engine.EngineError:
        return False
    return True


def _placeholders(message: str) -> set[str]:
    try:
        return set(string.Template(message).get_identifiers())
    except ValueError:
        return set()


def _text(raw: dict, key: str, where: str, problems: list[Problem]) -> str | None:
    value = raw.get(key)
    if value is None:
        problems.append(Problem(where, f"'{key}' is missing"))
        return None
    if not isinstance(value, str) or not value.strip():
        problems.append(Problem(where, f"'{key}' must be non-empty text"))
        return None
    return value.strip()


def _check_thresholds(raw, where: str, problems: list[Problem]) -> dict[str, Threshold]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append(Problem(where, "'thresholds' must be a table of named values"))
        return {}
    thresholds = {}
    for name, entry in raw.items():
        place = f"{where}: threshold '{name}'"
        if isinstance(entry, dict):
            unknown = set(entry) - set(THRESHOLD_KEYS)
            if unknown:
                problems.append(Problem(place, f"unknown key(s) {', '.join(sorted(unknown))}; "
                                               f"use {', '.join(THRESHOLD_KEYS)}"))
            if "value" not in entry:
                problems.append(Problem(place, "'value' is missing"))
                continue
            value, unit, description = entry["value"], entry.get("unit"), entry.get("description")
        else:
            value, unit, description = entry, None, None
        if isinstance(value, bool) or isinstance(value, int | float | str):
            pass
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            pass
        else:
            problems.append(Problem(place, f"has the wrong type: {type(value).__name__} "
                                           f"({value!r}); use a number, text, true/false or a "
                                           "list of texts"))
            continue
        if any(name in facts for facts in FACTS.values()):
            problems.append(Problem(place, "has the name of a fact; choose another name"))
            continue
        if not name.isidentifier():
            problems.append(Problem(place, "name must be letters, digits and underscores"))
            continue
        bounds = _threshold_bounds(entry if isinstance(entry, dict) else {}, unit, place,
                                   problems)
        if bounds is None:
            continue
        threshold = Threshold(name, value, unit, description, *bounds)
        if threshold.is_number:  # a value of another type is the condition's to refuse
            problem = out_of_range(threshold, value)
            if problem:
                problems.append(Problem(place, problem))
        thresholds[name] = threshold
    return thresholds


def _threshold_bounds(entry: dict, unit: str | None, place: str,
                      problems: list[Problem]) -> tuple[float | None, float | None] | None:
    """The threshold's (min, max): as written, or 0 to 100 for a percentage."""
    bounds = []
    for key in ("min", "max"):
        bound = entry.get(key)
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int | float)):
            problems.append(Problem(place, f"'{key}' must be a number, not {bound!r}"))
            return None
        bounds.append(bound)
    low, high = bounds
    if unit == "%":
        low = 0 if low is None else low
        high = 100 if high is None else high
    if low is not None and high is not None and low > high:
        problems.append(Problem(place, f"'min' ({low}) is above 'max' ({high})"))
        return None
    return low, high


def out_of_range(threshold: Threshold, value) -> str | None:
    """Why the value is outside the threshold's range, or None when it is inside."""
    if threshold.minimum is None and threshold.maximum is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"must be a number {threshold.range_text()}, not {value!r}"
    if (threshold.minimum is not None and value < threshold.minimum) or \
            (threshold.maximum is not None and value > threshold.maximum):
        return f"is {_plain_number(value)}, outside its range: {threshold.range_text()}"
    return None


def _check_rule(raw, index: int, seen: set[tuple], problems: list[Problem]) -> RuleSpec | None:
    where = f"rule #{index}"
    if not isinstance(raw, dict):
        problems.append(Problem(where, "must be a table ([[rules]])"))
        return None
    if isinstance(raw.get("id"), str) and raw["id"].strip():
        where = f"rule {raw['id'].strip()}"
    count = len(problems)
    unknown = set(raw) - set(RULE_REQUIRED) - set(RULE_OPTIONAL)
    if unknown:
        problems.append(Problem(where, f"unknown key(s) {', '.join(sorted(unknown))}"))
    values = {key: _text(raw, key, where, problems) for key in
              ("id", "subject", "dimension", "severity", "title", "good_practice", "condition",
               "message")}
    rule_id = values["id"]
    if rule_id is not None:
        # One id may name a rule of each subject (AGR-MISSING judges support lines and
        # individual payments alike); twice for the same subject is a mistake.
        key = (values["subject"], rule_id)
        if key in seen:
            problems.append(Problem(where, f"duplicate rule id '{rule_id}'"))
        seen.add(key)
    if values["severity"] is not None and values["severity"] not in SEVERITIES:
        problems.append(Problem(where, f"severity '{values['severity']}' is not one of "
                                       f"{', '.join(SEVERITIES)}"))
    if values["dimension"] is not None and values["dimension"] not in DIMENSIONS:
        problems.append(Problem(where, f"dimension '{values['dimension']}' is not one of "
                                       f"{', '.join(DIMENSIONS)}"))
    if values["subject"] is not None and values["subject"] not in SUBJECTS:
        problems.append(Problem(where, f"subject '{values['subject']}' is not one of "
                                       f"{', '.join(SUBJECTS)}"))
    reference = raw.get("reference")
    if not (isinstance(reference, dict) and isinstance(reference.get("seed"), str)
            and reference["seed"].strip()):
        problems.append(Problem(where, "'reference' must name the seed document, e.g. "
                                       "{ seed = \"000_620631ea2cdc474c.txt\", section = \"…\" }"))
    poor = raw.get("poor_practice")
    if poor is not None and not isinstance(poor, str):
        problems.append(Problem(where, "'poor_practice' must be text"))
    thresholds = _check_thresholds(raw.get("thresholds"), where, problems)
    retired = raw.get("retired")
    if retired is not None and not (isinstance(retired, str) and retired.strip()):
        problems.append(Problem(where, "'retired' must say why the rule was switched off"))
    if values["message"] is not None:
        try:
            string.Template(values["message"]).substitute(
                {name: "" for name in thresholds} | {name: "" for name in
                                                     FACTS.get(values["subject"], {})})
        except (KeyError, ValueError) as error:
            problems.append(Problem(where, f"message refers to an unknown value {error}; use "
                                           "$fact or $threshold names"))
    if len(problems) > count:
        return None
    return RuleSpec(id=rule_id, subject=values["subject"], dimension=values["dimension"],
                    severity=values["severity"], title=values["title"],
                    good_practice=values["good_practice"], poor_practice=poor,
                    reference=dict(reference), condition=values["condition"],
                    message=values["message"], thresholds=thresholds,
                    retired=retired.strip() if retired else None)


def _check_header(raw, problems: list[Problem]) -> dict | None:
    where = "[policy]"
    if not isinstance(raw, dict):
        problems.append(Problem(where, "the table is missing (version, title, effective_from, "
                                       "provenance)"))
        return None
    count = len(problems)
    for key in sorted(set(raw) - set(POLICY_REQUIRED) - set(POLICY_OPTIONAL)):
        problems.append(Problem(where, f"unknown key '{key}'"))
    version = raw.get("version")
    if not isinstance(version, str | int | float) or isinstance(version, bool) or \
            not str(version).strip():
        problems.append(Problem(where, "'version' is missing (e.g. version = \"2025.1\")"))
    elif len(str(version)) > 40:
        problems.append(Problem(where, "'version' is longer than 40 characters"))
    _text(raw, "title", where, problems)
    effective = raw.get("effective_from")
    if not isinstance(effective, date):
        problems.append(Problem(where, "'effective_from' must be a date (e.g. 2025-01-01)"))
    provenance = raw.get("provenance")
    if not isinstance(provenance, dict):
        problems.append(Problem(where, "'provenance' must say how the policy was drafted "
                                       "('method'); its co-creation is the partners' sign-offs, "
                                       "recorded in the application"))
    else:
        _check_provenance(provenance, problems)
    for key in POLICY_OPTIONAL:
        if key in raw and not isinstance(raw[key], str):
            problems.append(Problem(where, f"'{key}' must be text"))
    return raw if len(problems) == count else None


def _check_provenance(provenance: dict, problems: list[Problem]) -> None:
    """[policy.provenance]: how the draft was made, the review date and the sources. Who
    co-created a version is not written here: it is the sign-offs recorded in the application."""
    place = "[policy.provenance]"
    if not (isinstance(provenance.get("method"), str) and provenance["method"].strip()):
        problems.append(Problem(place, "'method' is missing: say how the policy was drafted"))
    for key in sorted(set(provenance) - set(PROVENANCE_KEYS)):
        problems.append(Problem(place, f"unknown key '{key}' (use {', '.join(PROVENANCE_KEYS)}"
                                       "); who co-created a version is recorded by the "
                                       "partners' sign-offs in the application"))
    if "review_due" in provenance and not isinstance(provenance["review_due"], date):
        problems.append(Problem(place, "'review_due' must be a date (e.g. 2026-12-31)"))
    sources = provenance.get("sources")
    if sources is not None and not (isinstance(sources, list)
                                    and all(isinstance(item, str) for item in sources)):
        problems.append(Problem(place, "'sources' must list the documents the policy draws on"))


def _check_approval(raw, problems: list[Problem]) -> frozenset[str]:
    """Read [approval]: the interaction formats that need approval before they are held (the
    defaults when the table is absent)."""
    where = "[approval]"
    if raw is None:
        return DEFAULT_APPROVAL_FORMATS
    if not isinstance(raw, dict):
        problems.append(Problem(where, "must be a table, e.g. [approval] formats = "
                                       "[\"advisory_board\", \"focus_group\"]"))
        return DEFAULT_APPROVAL_FORMATS
    for key in sorted(set(raw) - {"formats", "description"}):
        problems.append(Problem(where, f"unknown key '{key}' (use formats and description)"))
    formats = raw.get("formats")
    if not isinstance(formats, list) or not all(isinstance(f, str) for f in formats):
        problems.append(Problem(where, "'formats' must list the interaction formats that need "
                                       "approval before they are held"))
        return DEFAULT_APPROVAL_FORMATS
    for name in formats:
        if name not in INTERACTION_FORMATS:
            problems.append(Problem(where, f"'{name}' is not an interaction format; use "
                                           f"{', '.join(INTERACTION_FORMATS)}"))
    if "description" in raw and not isinstance(raw["description"], str):
        problems.append(Problem(where, "'description' must be text"))
    return frozenset(formats)


def _check_reporting(raw, problems: list[Problem]) -> Reporting:
    """Read [reporting]: the reports' due date, the review window and the reminders (the
    defaults for what the table leaves out, or when it is absent)."""
    where = "[reporting]"
    if raw is None:
        return DEFAULT_REPORTING
    if not isinstance(raw, dict):
        problems.append(Problem(where, 'must be a table, e.g. [reporting] due = "06-30"'))
        return DEFAULT_REPORTING
    for key in sorted(set(raw) - set(REPORTING_KEYS)):
        problems.append(Problem(where, f"unknown key '{key}' (use "
                                       f"{', '.join(REPORTING_KEYS)})"))
    values = {}
    if "due" in raw:
        due = _due_month_day(raw["due"])
        if due is None:
            problems.append(Problem(where, "'due' must be a day of the year as \"MM-DD\" "
                                           f"(e.g. \"06-30\" for 30 June), not {raw['due']!r}"))
        else:
            values["due_month"], values["due_day"] = due
    for key in ("review_window_days", "reminder_days"):
        if key not in raw:
            continue
        value = raw[key]
        if isinstance(value, bool) or not isinstance(value, int) \
                or not 1 <= value <= REPORTING_DAY_LIMIT:
            problems.append(Problem(where, f"'{key}' must be a whole number of days from 1 to "
                                           f"{REPORTING_DAY_LIMIT}, not {value!r}"))
        else:
            values[key] = value
    if "description" in raw and not isinstance(raw["description"], str):
        problems.append(Problem(where, "'description' must be text"))
    return Reporting(**values)


def _due_month_day(value) -> tuple[int, int] | None:
    """("06-30") as (6, 30), if it names a day of the year (29 February included)."""
    if not isinstance(value, str) or not re.fullmatch(r"\d\d-\d\d", value.strip()):
        return None
    month, day = (int(part) for part in value.strip().split("-"))
    try:
        date(2000, month, day)  # a leap year: 02-29 is a day of the year
    except ValueError:
        return None
    return month, day


def check_policy_text(data: bytes, source: str) -> tuple[CompiledPolicy | None, list[Problem]]:
    """Read and check a policy file's content; return the compiled policy or the problems."""
    return _checked(data, source, compile_conditions=True)


def _checked(data: bytes, source: str,
             compile_conditions: bool) -> tuple[CompiledPolicy | None, list[Problem]]:
    digest = hashlib.sha256(data).hexdigest()
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        return None, [Problem(source, "is not UTF-8 text")]
    except tomllib.TOMLDecodeError as error:
        return None, [Problem(source, f"is not valid TOML: {error}")]
    problems: list[Problem] = []
    for key in sorted(set(raw) - {"policy", "rules", "approval", "reporting"}):
        problems.append(Problem(source, f"unknown top-level key '{key}' (use [policy], "
                                        "[approval], [reporting] and [[rules]])"))
    header = _check_header(raw.get("policy"), problems)
    approval_formats = _check_approval(raw.get("approval"), problems)
    reporting = _check_reporting(raw.get("reporting"), problems)
    raw_rules = raw.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        problems.append(Problem(source, "no rules: add [[rules]] tables"))
        raw_rules = []
    seen: set[tuple] = set()
    compiled = []
    for index, raw_rule in enumerate(raw_rules, start=1):
        spec = _check_rule(raw_rule, index, seen, problems)
        if spec is None or not compile_conditions:
            continue
        rule, rule_problems = _compile(spec, f"rule {spec.id}")
        problems.extend(rule_problems)
        if rule is not None:
            compiled.append(rule)
    if problems:
        return None, [Problem(f"{source}: {p.where}" if not p.where.startswith(source) else
                              p.where, p.message) for p in problems]
    if not compile_conditions:
        return None, []
    policy = PolicySet(
        version=str(header["version"]).strip(), title=header["title"].strip(),
        effective_from=header["effective_from"], provenance=dict(header["provenance"]),
        description=header.get("description"), supersedes=header.get("supersedes"),
        changes=header.get("changes"), rules=tuple(rule.spec for rule in compiled),
        source=source, digest=digest, approval_formats=approval_formats, reporting=reporting,
    )
    return CompiledPolicy(policy, compiled), []


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise PolicyError([Problem(str(path), f"cannot be read ({error.strerror or error})")]) \
            from None


def check_policies_dir(directory: str | Path) -> tuple[CompiledPolicy | None, list[Problem]]:
    """Check the policy file of a directory without using or changing the cache."""
    path = Path(directory) / POLICY_FILE
    try:
        data = _read(path)
    except PolicyError as error:
        return None, error.problems
    return check_policy_text(data, str(path))


# --- the cache -------------------------------------------------------------------------------

_lock = threading.Lock()
_by_digest: dict[str, CompiledPolicy] = {}
_last_good: dict[str, CompiledPolicy] = {}
_checked_at_start: dict[str, bytes] = {}


def check_policy_at_start(directory: str | Path) -> None:
    """Refuse a policy file that cannot be read or whose header, rules or thresholds are not
    valid, without importing rule-engine; its conditions are compiled at the policy's first use.

    The content checked is remembered, so that a file broken afterwards leaves this one in use.
    """
    path = Path(directory) / POLICY_FILE
    data = _read(path)
    _compiled, problems = _checked(data, str(path), compile_conditions=False)
    if problems:
        raise PolicyError(problems)
    _checked_at_start[str(path)] = data


def load_policy(directory: str | Path) -> CompiledPolicy:
    """Return the compiled policy of a directory, compiling it only when its content changed.

    The file is read and hashed on every call (a few tens of microseconds): modification times
    can miss an edit made within the same clock tick.
    """
    path = Path(directory) / POLICY_FILE
    compiled = _compiled(_read(path), str(path))
    _last_good[str(path)] = compiled
    return compiled


def _compiled(data: bytes, source: str) -> CompiledPolicy:
    digest = hashlib.sha256(data).hexdigest()
    compiled = _by_digest.get(digest)
    if compiled is None:
        with _lock:
            compiled = _by_digest.get(digest)
            if compiled is None:
                compiled, problems = check_policy_text(data, source)
                if problems:
                    raise PolicyError(problems)
                while len(_by_digest) >= CACHE_LIMIT:
                    _by_digest.pop(next(iter(_by_digest)))
                _by_digest[digest] = compiled
    return compiled


def compiled_source(digest: str, read, source: str) -> CompiledPolicy:
    """The compiled policy of a kept version: from the cache by its digest, or compiled from
    the text `read()` returns (read only when the cache does not hold it)."""
    compiled = _by_digest.get(digest)
    return compiled if compiled is not None else _compiled(read(), source)


def last_good_policy(directory: str | Path) -> CompiledPolicy | None:
    """Return the policy last loaded successfully from the directory (or, before its first use,
    the one checked at start-up), if any."""
    key = str(Path(directory) / POLICY_FILE)
    compiled = _last_good.get(key)
    if compiled is None and key in _checked_at_start:
        try:
            compiled = _last_good[key] = _compiled(_checked_at_start[key], key)
        except PolicyError:
            return None
    return compiled
