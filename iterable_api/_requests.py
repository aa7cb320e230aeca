"""Turning Python-named values into an HTTP request, and an HTTP answer into Python values.

Pure functions over catalog data, shared by the sync and async clients, so that there is exactly
one place where a request is built and one where a response is read.
"""

from __future__ import annotations

import csv
import enum
import functools
import io
import json
import math
from dataclasses import dataclass
from typing import Any, Union
from urllib.parse import quote

from pydantic import BaseModel, StrictBool, StrictFloat, StrictInt, StrictStr, ValidationError
from pydantic import create_model as _create_model

from iterable_api._catalog_types import Action, Location, ResponseKind
from iterable_api.errors import InputValidationError, ResponseValidationError
from iterable_api.models import BulkResult

__all__ = [
    "WireRequest",
    "build_request",
    "json_problem",
    "parse_body",
    "to_wire",
    "validate_values",
]

_SCALARS: dict[str, Any] = {
    "string": StrictStr,
    "integer": StrictInt,
    "number": Union[StrictInt, StrictFloat],
    "boolean": StrictBool,
    "object": dict[str, Any],
}


def _python_type(type_name: str) -> Any:
    if type_name.endswith("[]"):
        return list[_python_type(type_name[:-2])]  # type: ignore[misc]
    return _SCALARS[type_name]


@functools.cache
def _input_model(action: Action) -> type[BaseModel]:
    fields: dict[str, Any] = {
        p.name: (_python_type(p.type), ... if p.required else None) for p in action.params
    }
    return _create_model(f"{action.name}_input", __config__={"extra": "forbid"}, **fields)


def to_wire(value: Any) -> Any:
    """A value as JSON would carry it: models by their aliases (unset fields left out), enums by
    value. ``None`` inside a plain object is kept: in ``dataFields`` it is how a field is cleared.
    """
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {k: to_wire(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_wire(v) for v in value]
    return value


@dataclass(frozen=True)
class WireRequest:
    """Everything needed to send one action: method, filled path, query pairs and JSON body."""

    action: Action
    method: str
    path: str
    query: list[tuple[str, str]]
    body: dict[str, Any] | None

    def content(self) -> bytes | None:
        if self.body is None:
            return None
        return json.dumps(
            self.body, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode()


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def json_problem(value: Any, where: str) -> tuple[str, str] | None:
    """What would make ``value`` unsendable as strict UTF-8 JSON, and where, if anything."""
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return where, "a string that is not valid Unicode (a lone surrogate)"
    elif isinstance(value, float) and not math.isfinite(value):
        return where, f"{value} is not a JSON number"
    elif isinstance(value, dict):
        for key, item in value.items():
            problem = json_problem(key, where) or json_problem(item, f"{where}.{key}")
            if problem:
                return problem
    elif isinstance(value, list):
        for index, item in enumerate(value):
            problem = json_problem(item, f"{where}.{index}")
            if problem:
                return problem
    return None


def validate_values(action: Action, values: dict[str, Any]) -> dict[str, Any]:
    """Check ``values`` against the catalog's names, required flags and JSON types.

    Raises ``InputValidationError`` naming each bad parameter; nothing is sent.
    """
    wire_values = {k: to_wire(v) for k, v in values.items() if v is not None}
    if not wire_values and not any(p.required for p in action.params):
        return {}  # nothing to check: most list and get calls of actions without arguments
    try:
        model = _input_model(action).model_validate(wire_values)
    except ValidationError as exc:
        errors = [
            (".".join(str(part) for part in e["loc"]) or "input", e["msg"]) for e in exc.errors()
        ]
        raise InputValidationError(action.id, errors) from None
    checked = {k: v for k, v in model.model_dump().items() if v is not None}
    problems = [p for name, v in checked.items() if (p := json_problem(v, name))]
    if problems:
        raise InputValidationError(action.id, problems)
    return checked


def build_request(action: Action, values: dict[str, Any]) -> WireRequest:
    """The request for ``action`` with Python-named ``values`` (``None`` means "leave out")."""
    checked = validate_values(action, values)
    path = action.path
    query: list[tuple[str, str]] = []
    body: dict[str, Any] | None = None
    for param in action.params:
        if param.name not in checked:
            continue
        value = checked[param.name]
        if param.location is Location.PATH:
            path = path.replace("{" + param.wire + "}", quote(str(value), safe=""))
        elif param.location is Location.QUERY:
            # Iterable repeats a list-valued query parameter (?campaignId=1&campaignId=2).
            items = value if isinstance(value, list) else [value]
            query.extend((param.wire, _query_value(item)) for item in items)
        else:
            body = body if body is not None else {}
            body[param.wire] = value
    if (
        body is None
        and action.method in ("POST", "PUT", "PATCH")
        and action.params_in(Location.BODY)
    ):
        body = {}
    return WireRequest(action, action.method, path, query, body)


def parse_body(action: Action, text: str) -> Any:
    """The value of a successful response's body, by the action's response kind."""
    kind = action.response
    if kind is ResponseKind.TEXT:
        return text
    if kind is ResponseKind.CSV:
        return list(csv.DictReader(io.StringIO(text)))
    if kind in (ResponseKind.CSV_STREAM, ResponseKind.NDJSON_STREAM):
        raise TypeError(f"{action.id} answers a stream: use Client.stream()")
    if not text.strip():
        return {}  # some writes answer 200/202 with an empty body
    try:
        body = json.loads(text)
    except ValueError:
        raise ResponseValidationError(action.id, "the body is not JSON", text) from None
    if kind is ResponseKind.BULK:
        if not isinstance(body, dict):
            raise ResponseValidationError(action.id, "a bulk result must be an object", text)
        return BulkResult.from_body(body)
    return body
