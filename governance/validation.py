"""Marshmallow helpers shared by the services' input schemas (the one place values are checked)."""

import functools
from decimal import Decimal

from marshmallow import RAISE, Schema, ValidationError, fields, pre_load
from marshmallow.validate import ContainsOnly, Length, OneOf, Range
from werkzeug.routing import IntegerConverter

from .errors import ValidationFailed


class Input(Schema):
    """Base of every service input: unknown fields are refused, blank strings mean empty."""

    class Meta:
        unknown = RAISE

    @pre_load
    def blanks_to_none(self, data, **_kwargs):
        if not isinstance(data, dict):
            return data
        return {k: (None if isinstance(v, str) and not v.strip() else v) for k, v in data.items()}


def load(schema: Schema, values: dict, **kwargs) -> dict:
    """Validate values with a schema, raising ValidationFailed with every field's reasons."""
    if not isinstance(values, dict):
        raise ValidationFailed({"_schema": ["Expected an object of field names and values."]})
    not_whole = _not_whole_numbers(schema, values)
    if not_whole:  # the other fields are still checked, to name every problem at once
        values = {key: value for key, value in values.items() if key not in not_whole}
    try:
        clean = schema.load(values, **kwargs)
    except ValidationError as error:
        raise ValidationFailed(_flatten(error.messages) | not_whole) from None
    if not_whole:
        raise ValidationFailed(not_whole)
    return clean


# Ids and counts live in integer columns: 32-bit on PostgreSQL (64-bit on SQLite). A larger
# number would fail in the database driver instead of reading as a clear error on its field;
# the limit is the same on both, so the API answers alike whatever the database.
MAX_INTEGER = 2**31 - 1


class RecordId(IntegerConverter):
    """Every whole number in a URL path (the app's `int` converter): 1 to MAX_INTEGER, as no
    record has another id; anything else answers 404 before a query is made with it."""

    def __init__(self, url_map, *args, min: int = 1, max: int = MAX_INTEGER, **kwargs):
        super().__init__(url_map, *args, min=min, max=max, **kwargs)


NOT_WHOLE = ("Not a valid integer. Give a whole number such as 3, without quotes or a decimal "
             "point.")


def _not_whole_numbers(schema: Schema, values: dict) -> dict[str, list[str]]:
    """The integer fields given anything but an integer: text ("3"), a fraction (1.9999, and
    3.0 too: no number is rounded into an id or a count), true or false. Text is read as a
    number only where values come as text (the CSV import's cells)."""
    errors = {}
    for key, is_list in _integer_keys(schema):
        if key not in values:
            continue
        value = values[key]
        items = value if is_list and isinstance(value, list) else [value]
        if any(item is not None and (isinstance(item, bool) or not isinstance(item, int))
               for item in items):
            errors[key] = [NOT_WHOLE]
        elif any(item is not None and abs(item) > MAX_INTEGER for item in items):
            errors[key] = ["This number is too large."]
    return errors


def _integer_keys(schema: Schema) -> list[tuple[str, bool]]:
    """The input keys of the schema's integer fields (and lists of them), worked out once."""
    keys = schema.__dict__.get("_integer_keys")
    if keys is None:
        keys = []
        for name, field in schema.fields.items():
            is_list = isinstance(field, fields.List)
            if isinstance(field.inner if is_list else field, fields.Integer):
                keys.append((field.data_key or name, is_list))
        schema._integer_keys = keys
    return keys


def whole_number_or_text(cell: str) -> int | str:
    """A cell of text holding a whole number ("3", "+3", "-3") as that number; any other text
    as it is, for the schema to refuse on its field."""
    digits = cell.lstrip("+-")
    if len(cell) - len(digits) <= 1 and digits.isascii() and digits.isdigit():
        return int(cell)
    return cell


def flatten_messages(messages) -> dict[str, list[str]]:
    """Turn marshmallow's nested messages into {field: [reasons]}."""
    return _flatten(messages)


def _flatten(messages) -> dict[str, list[str]]:
    if isinstance(messages, list):
        return {"_schema": [str(m) for m in messages]}
    flat: dict[str, list[str]] = {}
    for field, value in messages.items():
        if isinstance(value, dict):
            flat[field] = [f"item {k}: {'; '.join(map(str, v if isinstance(v, list) else [v]))}"
                           for k, v in value.items()]
        else:
            flat[field] = [str(m) for m in value]
    return flat


def choice(vocabulary: dict, **kwargs) -> fields.String:
    names = ", ".join(vocabulary)
    return fields.String(validate=OneOf(list(vocabulary), error=f"Must be one of: {names}."),
                         **kwargs)


def subset(vocabulary: dict, **kwargs) -> fields.List:
    names = ", ".join(vocabulary)
    return fields.List(
        fields.String(),
        validate=ContainsOnly(list(vocabulary), error=f"Each value must be one of: {names}."),
        load_default=list,
        **kwargs,
    )


def count(**kwargs) -> fields.Integer:
    return fields.Integer(validate=Range(min=0, max=100_000,
                          error="Must be a whole number of 0 or more."), **kwargs)


# The longest text of each kind of field: every free-text field declares its limit once, in its
# service's input schema, which the form, the API (and its OpenAPI document: maxLength) and the
# import all validate with.
NOTE_MAX = 4000
LONG_TEXT_MAX = 10_000
MINUTES_MAX = 100_000  # a meeting's summary: its minutes
REASON_MAX = 1000
TOO_LONG = "At most {max} characters."


def text(max_length: int, **kwargs) -> fields.String:
    return fields.String(validate=Length(max=max_length, error=TOO_LONG), **kwargs)


def texts(max_length: int, max_items: int, **kwargs) -> fields.List:
    """A list of short texts (disease areas, activity codes): each and the count limited."""
    return fields.List(fields.String(validate=Length(max=max_length, error=TOO_LONG)),
                       validate=Length(max=max_items, error="At most {max} items."),
                       load_default=list, **kwargs)


def change_reason(**kwargs) -> fields.String:
    """Why a record changed, kept in the audit trail."""
    return text(REASON_MAX, allow_none=True, **kwargs)


class ChangeNote(Input):
    """What comes with an API change besides the record's fields: why, and the version read."""

    reason = change_reason(load_default=None)
    version = fields.Integer(allow_none=True, load_default=None)


def required_text(max_length: int) -> fields.String:
    return fields.String(required=True, validate=Length(min=1, max=max_length, error=TOO_LONG),
                         error_messages={"required": "This field is required.",
                                         "null": "This field is required."})


def required(field_class, **kwargs):
    return field_class(required=True, error_messages={"required": "This field is required.",
                                                      "null": "This field is required."},
                       **kwargs)


# --- codes and money (ISO 3166, ISO 4217, two-decimal amounts) -------------------------------


def _country_code(value: str) -> str:
    import pycountry

    code = value.strip().upper()
    if len(code) != 2 or not code.isalpha() or pycountry.countries.get(alpha_2=code) is None:
        raise ValidationError("Use a two-letter ISO 3166 country code, such as GB or US.")
    return code


def _currency_code(value: str) -> str:
    code = value.strip()
    if len(code) != 3 or not code.isalpha() or not code.isupper():
        raise ValidationError("Use a three-letter ISO 4217 currency code in capitals, such as "
                              "EUR or GBP.")
    if not _is_iso_currency(code):
        raise ValidationError(f"{code} is not an ISO 4217 currency code.")
    return code


@functools.cache
def _is_iso_currency(code: str) -> bool:
    """Looked up once per code: an import checks the same few on every row."""
    import pycountry

    return pycountry.currencies.get(alpha_3=code) is not None


class Code(fields.String):
    """A string normalised and checked by a function that returns the clean code."""

    def __init__(self, check, **kwargs):
        super().__init__(**kwargs)
        self.check = check

    def _deserialize(self, value, attr, data, **kwargs):
        return self.check(super()._deserialize(value, attr, data, **kwargs))


def country(**kwargs) -> Code:
    return Code(_country_code, **kwargs)


def currency(**kwargs) -> Code:
    return Code(_currency_code, **kwargs)


class Money(fields.Decimal):
    """A non-negative amount with at most two decimals (floats are read as their text)."""

    MAXIMUM = Decimal("999999999999.99")

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, float):
            value = repr(value)
        amount = super()._deserialize(value, attr, data, **kwargs)
        if amount is None:
            return None
        if amount < 0:
            raise ValidationError("Must be 0 or more.")
        if amount.as_tuple().exponent < -2 and amount != amount.quantize(Decimal("0.01")):
            raise ValidationError("Use at most 2 decimal places.")
        if amount > self.MAXIMUM:
            raise ValidationError("This amount is too large.")
        return amount.quantize(Decimal("0.01")) + 0  # also turns -0 into 0


def money(**kwargs) -> Money:
    return Money(**kwargs)
