"""Validate requests and responses against Polar's published OpenAPI contract.

The contract is ``../shared/polar-api/customers-openapi-2025-10.json`` (beside
the repository), or the file named by ``POLAR_OPENAPI_SPEC``. The dated API
versions' documents (``customers-openapi-2026-04.json``, ``...-2026-10.json``)
are looked for beside it. They are never copied into the project: when absent,
tests that need them are skipped with that reason.

Every function takes ``version`` (default ``"2025-10"``): the document of that
API version (``"2027-01"`` uses 2026-10's, whose shapes it shares).
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_NAME = "customers-openapi-2025-10.json"
BASE = "urn:polar-contract"
EXPORT_HEADER = [
    "ID",
    "External ID",
    "Created At",
    "Email",
    "Name",
    "Tax ID",
    "Billing Address Line 1",
    "Billing Address Line 2",
    "Billing Address City",
    "Billing Address State",
    "Billing Address Zip",
    "Billing Address Country",
    "Metadata",
]


DOCUMENTS = {"2025-10": "2025-10", "2026-04": "2026-04", "2026-10": "2026-10",
             "2027-01": "2026-10"}  # fmt: skip


def spec_path(version: str = "2025-10") -> Path:
    env = os.environ.get("POLAR_OPENAPI_SPEC")
    base = (
        Path(env)
        if env
        else Path(__file__).resolve().parent.parent.parent / "shared" / "polar-api" / SPEC_NAME
    )
    if DOCUMENTS[version] == "2025-10":
        return base
    return base.with_name(f"customers-openapi-{DOCUMENTS[version]}.json")


@functools.cache
def _load(path: str) -> dict[str, Any] | None:
    p = Path(path)
    if not p.is_file():
        return None
    text = p.read_text(encoding="utf-8")
    # Make every internal $ref absolute so that a schema fragment can be
    # validated on its own against the registry holding the whole document.
    return json.loads(text.replace('"#/components/', f'"{BASE}#/components/'))


def load_spec(version: str = "2025-10") -> dict[str, Any]:
    """The contract, or ``pytest.skip`` naming where it was looked for."""
    path = spec_path(version)
    spec = _load(str(path))
    if spec is None:
        pytest.skip(
            f"Polar's OpenAPI document of {version} not found at {path} "
            "(put ../shared/polar-api/ beside the repository or set POLAR_OPENAPI_SPEC)"
        )
    return spec


_formats = FormatChecker()


@_formats.checks("uuid4", raises=ValueError)
def _is_uuid(value: object) -> bool:
    if not isinstance(value, str):
        return True
    uuid.UUID(value)
    return True


@functools.cache
def _registry(path: str) -> Registry:
    spec = _load(path)
    return Registry().with_resource(BASE, Resource.from_contents(spec, DRAFT202012))


def _validate(schema: dict[str, Any], instance: Any, what: str, path: Path | None = None) -> None:
    validator = Draft202012Validator(
        schema, registry=_registry(str(path or spec_path())), format_checker=_formats
    )
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [
            f"- at {'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message[:300]}"
            for e in errors[:5]
        ]
        raise AssertionError(f"{what} does not match the contract:\n" + "\n".join(lines))


def operations(version: str = "2025-10") -> dict[str, tuple[str, str, dict[str, Any]]]:
    """operationId -> (METHOD, path template, operation object)."""
    spec = load_spec(version)
    found = {}
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                found[op["operationId"]] = (method.upper(), path, op)
    return found


def _template_regex(template: str) -> re.Pattern[str]:
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
    return re.compile(f"^{pattern}$")


def match_operation(method: str, path: str, version: str = "2025-10") -> tuple[str, dict[str, str]]:
    """The operationId and path parameters for a concrete request path."""
    candidates = []
    for op_id, (op_method, template, _op) in operations(version).items():
        if op_method != method.upper():
            continue
        m = _template_regex(template).match(path)
        if m:
            # Prefer literal segments ("/export", "/external/...") over templated ones.
            candidates.append(
                (template.count("{"), op_id, {k: unquote(v) for k, v in m.groupdict().items()})
            )
    if not candidates:
        raise AssertionError(f"{method} {path} is not an operation of the contract")
    candidates.sort()
    return candidates[0][1], candidates[0][2]


def _coerce(raw_values: list[str], schema: dict[str, Any]) -> Any:
    """Query strings to the JSON values the parameter schema describes."""
    options = schema.get("anyOf", [schema])
    types = {o.get("type") for o in options}
    item_types = {o.get("items", {}).get("type") for o in options if o.get("type") == "array"}
    if "array" in types and ("string" not in types or len(raw_values) > 1):
        return [
            int(v) if "integer" in item_types and v.lstrip("-").isdigit() else v for v in raw_values
        ]
    if len(raw_values) != 1:
        raise AssertionError(f"parameter given {len(raw_values)} times but is not an array")
    value = raw_values[0]
    if "boolean" in types and value in ("true", "false"):
        return value == "true"
    if "integer" in types:
        try:
            return int(value)
        except ValueError:
            return value
    return value


def validate_request(
    method: str, url: str, body: bytes | str | None, *, version: str = "2025-10"
) -> str:
    """Assert that a request is one the contract describes; returns its operationId."""
    parts = urlsplit(url)
    op_id, path_params = match_operation(method, parts.path, version)
    _m, _t, op = operations(version)[op_id]
    path = spec_path(version)
    declared = {p["name"]: p for p in op.get("parameters", [])}
    for name, value in path_params.items():
        _validate(declared[name]["schema"], value, f"{op_id} path parameter {name!r}", path)
    grouped: dict[str, list[str]] = {}
    deep: dict[str, dict[str, list[str]]] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        m = re.fullmatch(r"(\w+)\[([^\]]+)\]", key)
        if m:
            deep.setdefault(m.group(1), {}).setdefault(m.group(2), []).append(value)
        else:
            grouped.setdefault(key, []).append(value)
    for name, values in grouped.items():
        param = declared.get(name)
        if param is None or param["in"] != "query":
            raise AssertionError(f"{op_id}: query parameter {name!r} is not in the contract")
        if param.get("style") == "deepObject":
            raise AssertionError(f"{op_id}: {name!r} must use deepObject style ({name}[key]=value)")
        _validate(
            param["schema"], _coerce(values, param["schema"]), f"{op_id} query {name!r}", path
        )
    for name, mapping in deep.items():
        param = declared.get(name)
        if param is None or param.get("style") != "deepObject":
            raise AssertionError(f"{op_id}: {name}[...] is not a deepObject parameter")
        value = {k: v[0] if len(v) == 1 else v for k, v in mapping.items()}
        _validate(param["schema"], value, f"{op_id} query {name!r}", path)
    request_body = op.get("requestBody")
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    if request_body is None:
        if body:
            raise AssertionError(f"{op_id} takes no request body, got {body[:80]!r}")
    else:
        if body is None:
            if request_body.get("required"):
                raise AssertionError(f"{op_id} requires a request body")
        else:
            schema = request_body["content"]["application/json"]["schema"]
            _validate(schema, json.loads(body), f"{op_id} request body", path)
    return op_id


def validate_response(
    operation_id: str,
    status_code: int,
    content_type: str,
    body: bytes | str,
    *,
    version: str = "2025-10",
) -> Any:
    """Assert that a response is one the contract allows; returns the decoded body."""
    _m, _t, op = operations(version)[operation_id]
    declared = op["responses"].get(str(status_code))
    if declared is None:
        raise AssertionError(
            f"{operation_id} may answer {sorted(op['responses'])}, not {status_code}"
        )
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    content = declared.get("content")
    if not content:
        if body:
            raise AssertionError(
                f"{operation_id} {status_code} must have no body, got {body[:80]!r}"
            )
        return None
    if operation_id == "customers:export" and status_code == 200:
        # The contract declares an untyped body; Polar streams CSV with this header.
        if not content_type.startswith("text/csv"):
            raise AssertionError(f"export must be text/csv, got {content_type!r}")
        rows = list(csv.reader(io.StringIO(body)))
        if not rows or rows[0] != EXPORT_HEADER:
            raise AssertionError(f"export header {rows[:1]} is not Polar's {EXPORT_HEADER}")
        return rows
    if not content_type.startswith("application/json"):
        raise AssertionError(f"{operation_id} {status_code} must be JSON, got {content_type!r}")
    decoded = json.loads(body)
    schema = content["application/json"]["schema"]
    _validate(schema, decoded, f"{operation_id} {status_code} body", spec_path(version))
    if version != "2025-10":
        _check_newer_fields(decoded, operation_id)
    return decoded


def _check_newer_fields(decoded: Any, what: str) -> None:
    """Fields Polar's newest docs add but the 2026 documents predate (README: "accept
    both, and emit both"): a state subscription's ``seats`` / ``units`` (integer or
    null) and a webhook payload's top-level ``api_version`` (a string)."""
    if isinstance(decoded, dict):
        for sub in decoded.get("active_subscriptions") or ():
            for name in ("seats", "units"):
                if name in sub and not (sub[name] is None or type(sub[name]) is int):
                    raise AssertionError(f"{what}: subscription {name} {sub[name]!r}")
        if "api_version" in decoded and not isinstance(decoded["api_version"], str):
            raise AssertionError(f"{what}: api_version {decoded['api_version']!r}")
        if isinstance(decoded.get("data"), dict):
            _check_newer_fields(decoded["data"], what)


def webhook_schema(event_type: str) -> str:
    """``customer_seat.assigned`` -> ``WebhookCustomerSeatAssignedPayload``."""
    words = event_type.replace(".", "_").split("_")
    return "Webhook" + "".join(w.capitalize() for w in words) + "Payload"


def validate_webhook(body: bytes | str, *, version: str = "2025-10") -> dict[str, Any]:
    """Assert that a webhook body matches its ``Webhook*Payload`` schema of ``version``;
    a 2026 body must carry ``api_version`` (the version it was sent for)."""
    payload = json.loads(body)
    validate_schema(webhook_schema(payload["type"]), payload, path=spec_path(version))
    if version != "2025-10":
        if payload.get("api_version") != version:
            raise AssertionError(f"webhook api_version {payload.get('api_version')!r}")
        _check_newer_fields(payload, payload["type"])
    elif "api_version" in payload:
        raise AssertionError("a 2025-10 webhook carries no api_version")
    return payload


def later_spec_path() -> Path:
    """The 2026-10 API version's document, beside the contract (forward compatibility)."""
    return spec_path().with_name("customers-openapi-2026-10.json")


def validate_schema(schema_name: str, instance: Any, *, path: Path | None = None) -> None:
    """Assert that ``instance`` is a valid ``components/schemas/<schema_name>``.

    ``path`` selects another API version's document (default: the contract).
    """
    path = path or spec_path()
    if _load(str(path)) is None:
        pytest.skip(f"OpenAPI document not found at {path}")
    _validate({"$ref": f"{BASE}#/components/schemas/{schema_name}"}, instance, schema_name, path)
