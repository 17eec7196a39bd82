"""Request validation answering like Polar (FastAPI + pydantic v2) does: 422 error lists.

Each check produces entries shaped as ``{"type", "loc", "msg", "input"}``; a request
collects all of them, then the server answers ``{"detail": [...]}`` with status 422.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from . import constants as c

_MISSING: Any = object()


class ValidationFailed(Exception):
    """A request failed validation; ``errors`` are pydantic-style error dicts."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors)
        self.errors = errors


def error(loc: list[str | int], msg: str, type_: str, input_: Any = _MISSING) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": type_, "loc": loc, "msg": msg}
    if input_ is not _MISSING:
        entry["input"] = input_
    return entry


def _literal_message(values: list[str]) -> str:
    quoted = [f"'{v}'" for v in values]
    return "Input should be " + ", ".join(quoted[:-1]) + " or " + quoted[-1]


_COUNTRY_MSG = _literal_message(sorted(c.INPUT_COUNTRIES))
_TAX_FORMAT_MSG = _literal_message(sorted(c.TAX_ID_FORMATS))
_SORTING_MSG = _literal_message(list(c.SORT_PROPERTIES))

_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+$")
_DOMAIN_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def email_problem(value: str) -> str | None:
    """Why ``value`` is not a syntactically valid email address, or None if it is.

    Polar additionally checks that the domain accepts mail (DNS); that needs the network,
    so the stand-in checks syntax only.
    """
    if "@" not in value:
        return "An email address must have an @-sign."
    local, _, domain = value.rpartition("@")
    if not local:
        return "There must be something before the @-sign."
    if not domain:
        return "There must be something after the @-sign."
    if len(value) > 254:
        return "The email address is too long."
    if not _LOCAL_PART.match(local) or local.startswith(".") or ".." in local:
        return "The email address contains invalid characters before the @-sign."
    labels = domain.split(".")
    if len(labels) < 2:
        return "The part after the @-sign is not valid. It should have a period."
    if not all(_DOMAIN_LABEL.match(label) for label in labels):
        return "The part after the @-sign contains invalid characters."
    if labels[-1].isdigit():
        return "The part after the @-sign is not valid. It is not within a valid top-level domain."
    return None


def is_uuid4(value: str) -> bool:
    try:
        return uuid.UUID(value).version == 4
    except (ValueError, AttributeError, TypeError):
        return False


def uuid_errors(value: Any, loc: list[str | int]) -> list[dict[str, Any]]:
    if not isinstance(value, str):
        return [
            error(loc, "UUID input should be a string, bytes or UUID object", "uuid_type", value)
        ]
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        msg = "Input should be a valid UUID, unable to parse string as a UUID"
        return [error(loc, msg, "uuid_parsing", value)]
    if parsed.version != 4:
        return [error(loc, "UUID version 4 expected", "uuid_version", value)]
    return []


# -- request bodies ----------------------------------------------------------------------


def parse_json_body(raw: bytes | None) -> Any:
    if not raw:
        raise ValidationFailed([error(["body"], "Field required", "missing", None)])
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        pos = getattr(exc, "pos", 0)
        msg = "JSON decode error"
        raise ValidationFailed([error(["body", pos], msg, "json_invalid", {})]) from None


def _optional_str(body: dict[str, Any], name: str, errors: list[dict[str, Any]]) -> None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        errors.append(error(["body", name], "Input should be a valid string", "string_type", value))


def _metadata_errors(value: Any) -> list[dict[str, Any]]:
    loc: list[str | int] = ["body", "metadata"]
    if not isinstance(value, dict):
        return [error(loc, "Input should be a valid dictionary", "dict_type", value)]
    errors: list[dict[str, Any]] = []
    for key, item in value.items():
        if not key:
            msg = "String should have at least 1 character"
            errors.append(error([*loc, key, "[key]"], msg, "string_too_short", key))
        elif len(key) > c.METADATA_KEY_MAX_LENGTH:
            msg = f"String should have at most {c.METADATA_KEY_MAX_LENGTH} characters"
            errors.append(error([*loc, key, "[key]"], msg, "string_too_long", key))
        if isinstance(item, str):
            if not item:
                msg = "String should have at least 1 character"
                errors.append(error([*loc, key, "str"], msg, "string_too_short", item))
            elif len(item) > c.METADATA_VALUE_MAX_LENGTH:
                msg = f"String should have at most {c.METADATA_VALUE_MAX_LENGTH} characters"
                errors.append(error([*loc, key, "str"], msg, "string_too_long", item))
        elif not isinstance(item, (bool, int, float)):
            for branch, kind in (("str", "string"), ("int", "int"), ("float", "float")):
                msg = f"Input should be a valid {'integer' if kind == 'int' else kind}"
                if kind == "float":
                    msg = "Input should be a valid number"
                errors.append(error([*loc, key, branch], msg, f"{kind}_type", item))
            errors.append(
                error([*loc, key, "bool"], "Input should be a valid boolean", "bool_type", item)
            )
    if len(value) > c.METADATA_MAX_KEYS:
        msg = (
            f"Dictionary should have at most {c.METADATA_MAX_KEYS} items after validation, "
            f"not {len(value)}"
        )
        errors.append(error(loc, msg, "too_long", value))
    return errors


def _address_errors(value: Any) -> list[dict[str, Any]]:
    loc: list[str | int] = ["body", "billing_address"]
    if value is None:
        return []
    if not isinstance(value, dict):
        msg = "Input should be a valid dictionary or instance of AddressInput"
        return [error(loc, msg, "model_type", value)]
    errors: list[dict[str, Any]] = []
    for name in ("line1", "line2", "postal_code", "city", "state"):
        item = value.get(name)
        if item is not None and not isinstance(item, str):
            errors.append(
                error([*loc, name], "Input should be a valid string", "string_type", item)
            )
    if "country" not in value:
        errors.append(error([*loc, "country"], "Field required", "missing", value))
    elif value["country"] not in c.INPUT_COUNTRIES:
        errors.append(error([*loc, "country"], _COUNTRY_MSG, "enum", value["country"]))
    return errors


def _tax_id_errors(value: Any) -> list[dict[str, Any]]:
    loc: list[str | int] = ["body", "tax_id"]
    if value is None:
        return []
    if not isinstance(value, list):
        return [error(loc, "Input should be a valid tuple", "tuple_type", value)]
    if len(value) != 2:
        kind, bound = ("too_short", "at least") if len(value) < 2 else ("too_long", "at most")
        msg = f"Tuple should have {bound} 2 items after validation, not {len(value)}"
        return [error(loc, msg, kind, value)]
    errors: list[dict[str, Any]] = []
    if not isinstance(value[0], str) or not value[0].strip():
        errors.append(error([*loc, 0], "Invalid tax ID", "value_error", value[0]))
    if value[1] not in c.TAX_ID_FORMATS:
        errors.append(error([*loc, 1], _TAX_FORMAT_MSG, "enum", value[1]))
    return errors


def validate_customer_body(raw: bytes | None, *, kind: str) -> dict[str, Any]:
    """Validate a CustomerCreate / CustomerUpdate / CustomerUpdateExternalID body.

    ``kind`` is ``"create"``, ``"update"`` or ``"update_external"``. Returns the fields the
    body sets (unknown fields are ignored, as pydantic does by default).
    """
    body = parse_json_body(raw)
    if not isinstance(body, dict):
        msg = "Input should be a valid dictionary or object to extract fields from"
        raise ValidationFailed([error(["body"], msg, "model_attributes_type", body)])
    allowed = {"metadata", "email", "name", "billing_address", "tax_id"}
    if kind == "create":
        allowed |= {"external_id", "organization_id"}
    elif kind == "update":
        allowed.add("external_id")
    fields = {k: v for k, v in body.items() if k in allowed}
    errors: list[dict[str, Any]] = []

    email = fields.get("email", _MISSING)
    if email is _MISSING:
        if kind == "create":
            errors.append(error(["body", "email"], "Field required", "missing", body))
    elif (email is None and kind == "create") or (email is not None and not isinstance(email, str)):
        errors.append(
            error(["body", "email"], "Input should be a valid string", "string_type", email)
        )
    elif email is not None:
        problem = email_problem(email)
        if problem:
            msg = f"value is not a valid email address: {problem}"
            errors.append(error(["body", "email"], msg, "value_error", email))
    for name in ("name", "external_id"):
        _optional_str(fields, name, errors)
    if "metadata" in fields:
        errors.extend(_metadata_errors(fields["metadata"]))
    if "billing_address" in fields:
        errors.extend(_address_errors(fields["billing_address"]))
    if "tax_id" in fields:
        errors.extend(_tax_id_errors(fields["tax_id"]))
    if fields.get("organization_id") is not None:
        errors.extend(uuid_errors(fields["organization_id"], ["body", "organization_id"]))
    if errors:
        raise ValidationFailed(errors)
    return fields


# -- query strings -------------------------------------------------------------------------


@dataclass(frozen=True)
class ListQuery:
    page: int = 1
    limit: int = c.DEFAULT_LIMIT
    organization_ids: tuple[str, ...] = ()
    email: str | None = None
    query: str | None = None
    sorting: tuple[str, ...] = c.DEFAULT_SORTING
    metadata: tuple[tuple[str, tuple[str, ...]], ...] = field(default=())

    def filter_key(self) -> tuple[Any, ...]:
        """Everything but the page window: equal keys select the same ordered rows."""
        return (self.organization_ids, self.email, self.query, self.sorting, self.metadata)


def _positive_int(
    params: dict[str, list[str]], name: str, default: int, errors: list[dict[str, Any]]
) -> int:
    values = params.get(name)
    if not values:
        return default
    raw = values[-1]
    try:
        number = int(raw.strip())
    except ValueError:
        msg = "Input should be a valid integer, unable to parse string as an integer"
        errors.append(error(["query", name], msg, "int_parsing", raw))
        return default
    if number <= 0:
        errors.append(error(["query", name], "Input should be greater than 0", "greater_than", raw))
    elif name == "limit" and number > c.MAX_LIMIT:
        msg = f"Input should be less than or equal to {c.MAX_LIMIT}"
        errors.append(error(["query", name], msg, "less_than_equal", raw))
    return number


def organization_ids(params: dict[str, list[str]], errors: list[dict[str, Any]]) -> tuple[str, ...]:
    values = params.get("organization_id", [])
    for index, value in enumerate(values):
        loc: list[str | int] = ["query", "organization_id"]
        if len(values) > 1:
            loc.append(index)
        errors.extend(uuid_errors(value, loc))
    return tuple(str(uuid.UUID(v)) for v in values if is_uuid4(v))


def validate_list_query(params: dict[str, list[str]]) -> ListQuery:
    errors: list[dict[str, Any]] = []
    page = _positive_int(params, "page", 1, errors)
    limit = _positive_int(params, "limit", c.DEFAULT_LIMIT, errors)
    orgs = organization_ids(params, errors)
    sorting = tuple(params.get("sorting", ())) or c.DEFAULT_SORTING
    for index, value in enumerate(sorting):
        if value not in c.SORT_PROPERTIES:
            errors.append(error(["query", "sorting", index], _SORTING_MSG, "enum", value))
    metadata: dict[str, list[str]] = {}
    for name, values in params.items():
        if name.startswith("metadata[") and name.endswith("]") and len(name) > len("metadata[]"):
            metadata.setdefault(name[len("metadata[") : -1], []).extend(values)
    if errors:
        raise ValidationFailed(errors)
    email = params["email"][-1] if params.get("email") else None
    query = params["query"][-1] if params.get("query") else None
    return ListQuery(
        page=page,
        limit=limit,
        organization_ids=orgs,
        email=email,
        query=query,
        sorting=sorting,
        metadata=tuple(sorted((k, tuple(v)) for k, v in metadata.items())),
    )


def validate_export_query(params: dict[str, list[str]]) -> tuple[str, ...]:
    errors: list[dict[str, Any]] = []
    orgs = organization_ids(params, errors)
    if errors:
        raise ValidationFailed(errors)
    return orgs
