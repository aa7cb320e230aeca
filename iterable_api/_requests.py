"""Turning Python-named values into an HTTP request, and an HTTP answer into Python values.

Pure functions over catalog data, shared by the sync and async clients, so that there is exactly
one place where a request is built and one where a response is read.
"""

from __future__ import annotations

import codecs
import csv
import enum
import functools
import io
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Union
from urllib.parse import quote

from pydantic import BaseModel, StrictBool, StrictFloat, StrictInt, StrictStr, ValidationError
from pydantic import create_model as _create_model

from prefect_iterable.api._catalog_types import Action, Location, ResponseKind
from prefect_iterable.api.errors import InputValidationError, ResponseValidationError
from prefect_iterable.api.models import BulkResult
from prefect_iterable.api.types import MAX_NESTING

__all__ = [
    "RawJson",
    "WireRequest",
    "build_request",
    "json_problem",
    "nesting_problem",
    "path_problem",
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


class RawJson:
    """A body parameter's value already encoded as JSON: sent as it is, not re-encoded.

    For large bodies whose items the caller has already encoded and checked one by one (the bulk
    import keeps each record's bytes from when it sized it)::

        client.call(action, users=RawJson([b"[", b",".join(encoded), b"]"]))

    sends those bytes in the body under the parameter's wire name, with the other parameters
    encoded as usual. ``data`` is the JSON text as ``bytes``, or as a sequence of pieces whose
    concatenation is the text: the pieces go on the wire one after the other, so a body of
    megabytes never has to be one buffer (nor be copied into one).

    The caller vouches that the text is valid JSON of the parameter's type, with no ``NaN`` and no
    lone surrogates. The library checks only what is cheap: the text is UTF-8 (here), the
    parameter is a body parameter of an array or object type, and the text is bracketed as one
    (``[…]`` or ``{…}``, in ``validate_values``). Nothing inside is validated against the catalog.

    ``every_item_has``: for an array, the keys every item carries with a non-empty value, which
    the client cannot see inside the bytes. It stands in for the items where a decision needs them:
    a ``trackBulk`` whose events all carry an ``id`` is repeatable (Iterable deduplicates), so the
    client may retry it after a 5xx.
    """

    __slots__ = ("every_item_has", "pieces", "size")

    def __init__(self, data: bytes | Sequence[bytes], every_item_has: Iterable[str] = ()) -> None:
        pieces = (data,) if isinstance(data, bytes) else tuple(data)
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            for piece in pieces:
                if not isinstance(piece, bytes):
                    raise TypeError(f"RawJson takes bytes, not {type(piece).__name__}")
                # In slices, so that checking a long piece does not build as long a str.
                view = memoryview(piece)
                for start in range(0, len(view), 1 << 16):
                    decoder.decode(view[start : start + (1 << 16)])
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise ValueError(f"RawJson: not valid UTF-8 ({exc.reason})") from None
        self.pieces: tuple[bytes, ...] = tuple(piece for piece in pieces if piece)
        self.size = sum(len(piece) for piece in self.pieces)
        self.every_item_has = frozenset(every_item_has)

    @property
    def data(self) -> bytes:
        """The JSON text in one piece (a copy, when it came in several)."""
        return b"".join(self.pieces)

    def __repr__(self) -> str:  # never the text (it may be megabytes of user data)
        return f"RawJson(<{self.size} bytes>)"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RawJson):
            return NotImplemented
        return self.data == other.data and self.every_item_has == other.every_item_has

    __hash__ = None  # type: ignore[assignment]

    def brackets(self) -> bytes:
        """The text's first and last bytes (``b"[]"`` for an array)."""
        if not self.pieces:
            return b""
        return self.pieces[0][:1] + self.pieces[-1][-1:]

    def stand_in(self) -> Any:
        """A small Python value standing for this one where only its shape matters."""
        if self.brackets().startswith(b"["):
            return [dict.fromkeys(self.every_item_has, True)] if self.every_item_has else []
        return {}


def _raw_problem(action: Action, name: str, value: RawJson) -> tuple[str, str] | None:
    """Why a pre-encoded value cannot stand for parameter ``name``, if it cannot."""
    param = next((p for p in action.params if p.name == name), None)
    if param is None:
        return None  # the model reports the unknown name
    if param.location is not Location.BODY:
        return name, "a pre-encoded JSON value (RawJson) can only be a body parameter"
    if param.type.endswith("[]"):
        brackets = (b"[", b"]")
    elif param.type == "object":
        brackets = (b"{", b"}")
    else:
        return name, f"a pre-encoded JSON value (RawJson) cannot stand for a {param.type}"
    if value.brackets() != brackets[0] + brackets[1]:
        return name, f"the pre-encoded JSON value (RawJson) is not a JSON {param.type}"
    return None


def _placeholder(action: Action, name: str) -> Any:
    """A valid value of the parameter's type, validated in place of a RawJson."""
    param = next((p for p in action.params if p.name == name), None)
    return [] if param is not None and param.type.endswith("[]") else {}


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
        parts = self.content_parts()
        return None if parts is None else b"".join(parts)

    def content_parts(self) -> list[bytes] | None:
        """The JSON body in pieces: one piece, or, around pre-encoded values, the pieces of each
        ``RawJson`` as they are (never copied) between the encoded rest."""
        if self.body is None:
            return None
        if not any(isinstance(v, RawJson) for v in self.body.values()):
            return [_dumps(self.body).encode()]
        parts: list[bytes] = []
        text = "{"
        for key, value in self.body.items():
            text += ("," if text != "{" or parts else "") + _dumps(key) + ":"
            if isinstance(value, RawJson):
                parts.append(text.encode())
                parts += value.pieces
                text = ""
            else:
                text += _dumps(value)
        parts.append((text + "}").encode())
        return parts


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _printable(key: str) -> str:
    """A key as it can appear in an error message (a lone surrogate escaped, long keys cut)."""
    return key[:40].encode("utf-8", "backslashreplace").decode()


def nesting_problem(value: Any, where: str) -> tuple[str, str] | None:
    """Whether ``value`` nests objects or arrays deeper than ``MAX_NESTING`` levels.

    Iterative, so that a value nested thousands deep is named instead of raising RecursionError.
    """
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            items: Iterable[Any] = item.values()
        elif isinstance(item, (list, tuple)):
            items = item
        else:
            continue
        if depth >= MAX_NESTING:
            return where, f"nested deeper than {MAX_NESTING} levels"
        stack.extend((sub, depth + 1) for sub in items)
    return None


def json_problem(value: Any, where: str, *, other_types: bool = False) -> tuple[str, str] | None:
    """What would make ``value`` unsendable as strict UTF-8 JSON, and where, if anything:
    a lone surrogate (in a value or a key), NaN or infinity, nesting deeper than
    ``MAX_NESTING``, or a Python object JSON has no form for (unless ``other_types``: a value
    that a serialiser will still turn into JSON, such as a ``datetime``)."""
    deep = nesting_problem(value, where)
    if deep:
        return deep
    stack = [(value, where)]
    while stack:
        item, at = stack.pop()
        if isinstance(item, str):
            try:
                item.encode()
            except UnicodeEncodeError:
                return at, "a string that is not valid Unicode (a lone surrogate)"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return at, f"{item} is not a JSON number"
        elif item is None or isinstance(item, (bool, int)):
            continue
        elif isinstance(item, dict):
            for key, sub in item.items():
                if not isinstance(key, str):
                    return at, f"a key of type {type(key).__name__}: JSON keys are strings"
                try:
                    key.encode()
                except UnicodeEncodeError:
                    return (
                        at,
                        f"the key {_printable(key)!r} is not valid Unicode (a lone surrogate)",
                    )
                stack.append((sub, f"{at}.{_printable(key)}"))
        elif isinstance(item, (list, tuple)):
            stack.extend((sub, f"{at}.{index}") for index, sub in enumerate(item))
        elif not other_types:
            return at, f"a {type(item).__name__} is not a JSON value"
    return None


def validate_values(action: Action, values: dict[str, Any]) -> dict[str, Any]:
    """Check ``values`` against the catalog's names, required flags and JSON types.

    Raises ``InputValidationError`` naming each bad parameter; nothing is sent. A ``RawJson``
    value is checked only as its docstring says, and comes back as it is.
    """
    deep = [p for name, v in values.items() if (p := nesting_problem(v, name))]
    if deep:  # before to_wire, which recurses
        raise InputValidationError(action.id, deep)
    wire_values = {k: to_wire(v) for k, v in values.items() if v is not None}
    if not wire_values and not any(p.required for p in action.params):
        return {}  # nothing to check: most list and get calls of actions without arguments
    raw = {k: v for k, v in wire_values.items() if isinstance(v, RawJson)}
    if raw:
        raw_problems = [p for name, v in raw.items() if (p := _raw_problem(action, name, v))]
        if raw_problems:
            raise InputValidationError(action.id, raw_problems)
        wire_values.update((name, _placeholder(action, name)) for name in raw)
    try:
        model = _input_model(action).model_validate(wire_values)
    except ValidationError as exc:
        errors = [
            (".".join(str(part) for part in e["loc"]) or "input", e["msg"]) for e in exc.errors()
        ]
        raise InputValidationError(action.id, errors) from None
    checked = {k: v for k, v in model.model_dump().items() if v is not None}
    problems = [
        p for name, v in checked.items() if name not in raw and (p := json_problem(v, name))
    ]
    if problems:
        raise InputValidationError(action.id, problems)
    checked.update(raw)
    return checked


#: The longest value a path parameter may carry, encoded: servers refuse longer URLs (Iterable's
#: answer 414), and httpx fails on them with an error that names no parameter.
MAX_PATH_VALUE = 2048


def path_problem(name: str, value: Any) -> tuple[str, str] | None:
    """Why ``value`` cannot fill a path segment, if it cannot.

    ``.`` and ``..`` are dot segments: every HTTP client and server removes them (RFC 3986 5.2.4),
    also when percent-encoded, so ``/api/users/..`` would reach ``/api/users``. No Iterable
    resource can be addressed by such a name, so they are refused; every other character is
    percent-encoded (``/`` as ``%2F``, ``%`` as ``%25``).
    """
    text = str(value)
    if text in (".", ".."):
        return name, f"{text!r} cannot be a path segment (it would address another endpoint)"
    if text == "":
        return name, "an empty value cannot be a path segment"
    if len(quote(text, safe="")) > MAX_PATH_VALUE:
        return name, f"longer than {MAX_PATH_VALUE} characters once URL-encoded"
    return None


def build_request(action: Action, values: dict[str, Any]) -> WireRequest:
    """The request for ``action`` with Python-named ``values`` (``None`` means "leave out")."""
    checked = validate_values(action, values)
    in_path = [p for p in action.params_in(Location.PATH) if p.name in checked]
    unsafe = [p for param in in_path if (p := path_problem(param.name, checked[param.name]))]
    if unsafe:
        raise InputValidationError(action.id, unsafe)
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
        # A success is a success whatever its body: Iterable answers some writes in plain text
        # (subscribeToDoubleOptIn's 202). Keep the text as the envelope's message.
        body = {"msg": text}
    if kind is ResponseKind.BULK:
        if not isinstance(body, dict):
            raise ResponseValidationError(action.id, "a bulk result must be an object", text)
        return BulkResult.from_body(body)
    return body
