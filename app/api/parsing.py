"""Request parsing: content type, JSON, and validation against the same schemas OpenAPI shows."""

from __future__ import annotations

import json
from typing import TypeVar

from flask import abort, current_app, request
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from app.domain.errors import FieldError, ValidationFailed

Model = TypeVar("Model", bound=BaseModel)


def _field_path(loc: tuple) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if path else "") + str(part)
    return path or "body"


# Pydantic's wording names its own types ("a valid dictionary or instance of Customer"); the
# contract's 422 speaks JSON, in the same voice as the domain's own field errors.
_TYPE_MESSAGES = {
    "extra_forbidden": "unknown field; it cannot be set",
    "missing": "is required",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
    "list_type": "must be a list",
    "string_type": "must be a string",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "url_type": "must be a URL",
}
_BOUND_MESSAGES = {
    "greater_than_equal": ("ge", "must be at least {}", None),
    "greater_than": ("gt", "must be greater than {}", None),
    "less_than_equal": ("le", "must be at most {}", None),
    "less_than": ("lt", "must be less than {}", None),
    "string_too_short": ("min_length", "must be at least {} characters long", "must not be empty"),
    "string_too_long": ("max_length", "must be at most {} characters long",
                        "must be at most 1 character long"),
    "too_short": ("min_length", "must have at least {} items", "must have at least 1 item"),
    "too_long": ("max_length", "must have at most {} items", "must have at most 1 item"),
}
# A pattern's regex tells a client little; the field's rule in words, by field name.
_FORMAT_MESSAGES = {
    "currency": "must be an ISO 4217 currency code, like MYR or EUR",
    "country": "must be a two-letter country code, like MY",
    "email": "must be a valid email address",
    "sku": "must be 1-64 of A-Z a-z 0-9 . _ - and start with a letter or digit",
}


def _message(error: dict) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind in _TYPE_MESSAGES:
        return _TYPE_MESSAGES[kind]
    if kind in _BOUND_MESSAGES:
        key, text, text_for_one = _BOUND_MESSAGES[kind]
        bound = ctx.get(key)
        if bound is not None:
            return text_for_one if bound == 1 and text_for_one else text.format(bound)
    if kind == "string_pattern_mismatch":
        field = error["loc"][-1] if error["loc"] else ""
        return _FORMAT_MESSAGES.get(str(field), "has the wrong format")
    if kind in ("literal_error", "enum") and "expected" in ctx:
        return f"must be one of {ctx['expected']}"
    return error["msg"].removeprefix("Value error, ")  # our own validators' messages


def storable(text: str) -> bool:
    """False for text no database column can hold: NUL characters or lone surrogates."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def unstorable_fields(value, path: str = "") -> list[FieldError]:
    """Every string (keys included) in a parsed JSON value that could not be stored."""
    if isinstance(value, str):
        return [] if storable(value) else [FieldError(path or "body", "contains a NUL "
                                                      "character or invalid Unicode")]
    if isinstance(value, list):
        return [e for i, item in enumerate(value) for e in unstorable_fields(item, f"{path}[{i}]")]
    if isinstance(value, dict):
        errors = []
        for key, item in value.items():
            name = f"{path}.{key}" if path else str(key)
            if not storable(str(key)):
                errors.append(FieldError(path or "body", "a field name holds invalid characters"))
            else:
                errors += unstorable_fields(item, name)
        return errors
    return []


def request_body() -> bytes:
    """The raw body (read once, cached); 413 for a chunked body over MAX_CONTENT_LENGTH.

    With a Content-Length over the limit werkzeug answers 413 itself; a chunked body has none, and
    werkzeug only stops reading at the limit - the body would arrive cut short (a 400 for
    "malformed JSON" instead of the contract's 413). One byte past the limit tells them apart.
    """
    raw = request.get_data(cache=True)
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if (
        limit is not None
        and request.content_length is None
        and len(raw) >= limit
        and request.environ.get("wsgi.input_terminated")
        and request.environ["wsgi.input"].read(1)
    ):
        abort(413, description="The body is over the size limit.")
    return raw


def _not_json_constant(name: str):
    # NaN and Infinity: Python's json module accepts them; RFC 8259 does not.
    raise ValueError(f"{name} is not JSON")


def _json_integer(text: str) -> int | float:
    # Python refuses to make an int of more than 4,300 digits (a denial-of-service guard) and
    # json.loads would call valid JSON invalid; such a number is out of every range we accept, so
    # it becomes an infinite float, refused by validation on its field like 1e400 is.
    if len(text) > 4000:
        return float(text)
    return int(text)


def parse_json(raw: bytes):
    """RFC 8259 JSON (no NaN or Infinity); ValueError otherwise, RecursionError if nested past the
    interpreter's stack."""
    return json.loads(raw, parse_constant=_not_json_constant, parse_int=_json_integer)


def parse_body(model: type[Model]) -> Model:
    """The body as `model`: 415 for a non-JSON body, 400 for bad JSON, 422 for bad fields."""
    if request.mimetype != "application/json":
        abort(415, description="Send the body as application/json.")
    raw = request_body()
    if not raw.strip():
        abort(400, description="The body is empty; send a JSON object.")
    try:
        data = parse_json(raw)
    except (ValueError, UnicodeDecodeError):
        abort(400, description="The body is not valid JSON.")
    except RecursionError:
        abort(400, description="The body is nested too deeply.")
    if not isinstance(data, dict):
        raise ValidationFailed([FieldError("body", "must be a JSON object")])
    try:
        bad_text = unstorable_fields(data)
        if bad_text:
            raise ValidationFailed(bad_text)
        return model.model_validate(data)
    except PydanticValidationError as exc:
        raise ValidationFailed(
            [FieldError(_field_path(e["loc"]), _message(e)) for e in exc.errors()]
        ) from None
    except RecursionError:
        # JSON shallow enough to parse can still be too deep to walk (the stack is shared).
        abort(400, description="The body is nested too deeply.")


def query_int(name: str) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValidationFailed([FieldError(name, "must be a whole number")]) from None


def query_choice(name: str, choices: tuple[str, ...]) -> str | None:
    """An optional query parameter that must be one of `choices` (422 otherwise)."""
    raw = request.args.get(name)
    if raw is None:
        return None
    if raw not in choices:
        raise ValidationFailed([FieldError(name, "must be one of " + ", ".join(choices))])
    return raw


# The query parameters of every list endpoint, for the OpenAPI document.
PAGE_QUERY = {
    "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
    "cursor": {"type": "string", "description": "next_cursor of the previous page"},
}
