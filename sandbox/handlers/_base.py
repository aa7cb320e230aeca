"""What an area handler receives and may answer, and the registry that routes actions to them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, TypeVar
from urllib.parse import urlencode

if TYPE_CHECKING:
    from prefect_iterable.sandbox.app import Sandbox
    from prefect_iterable.sandbox.state import Project

T = TypeVar("T")
Handler = Callable[["Call"], Any]
HANDLERS: dict[str, Handler] = {}


def handles(action_id: str) -> Callable[[Handler], Handler]:
    """Register the decorated function as the sandbox's implementation of ``action_id``."""

    def register(fn: Handler) -> Handler:
        if action_id in HANDLERS:
            raise RuntimeError(f"two sandbox handlers for {action_id}")
        HANDLERS[action_id] = fn
        return fn

    return register


class ApiFailure(Exception):
    """Raise from a handler to answer with Iterable's error envelope."""

    def __init__(
        self, status: int, code: str, msg: str, params: dict[str, Any] | None = None
    ) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg, self.params = status, code, msg, params


def bad_params(msg: str, **params: Any) -> ApiFailure:
    return ApiFailure(400, "BadParams", msg, params or None)


def not_found(msg: str) -> ApiFailure:
    return ApiFailure(404, "NotFound", msg)


def forbidden(msg: str) -> ApiFailure:
    return ApiFailure(403, "Forbidden", msg)


def success(msg: str = "", **params: Any) -> dict[str, Any]:
    """Iterable's success envelope."""
    return {"msg": msg, "code": "Success", "params": params or None}


@dataclass
class Reply:
    """A non-default answer: another status, or a text body with its media type."""

    body: Any
    status: int = 200
    media_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


@dataclass
class Stream:
    """A body sent in chunks as it is produced (exports), never built whole."""

    chunks: Iterator[bytes] | AsyncIterator[bytes]
    media_type: str
    status: int = 200


@dataclass
class Call:
    """One request routed to a handler."""

    sandbox: Sandbox
    project: Project
    action: str
    path_params: dict[str, str]
    query: dict[str, list[str]]
    body: Any
    path: str = ""

    def arg(self, wire: str, default: Any = None) -> Any:
        """A parameter by wire name: from the path, the query (first value) or the JSON body."""
        if wire in self.path_params:
            return self.path_params[wire]
        if wire in self.query:
            return self.query[wire][0]
        if isinstance(self.body, dict) and wire in self.body:
            return self.body[wire]
        return default

    def args(self, wire: str) -> list[str]:
        """Every value of a repeated query parameter."""
        return list(self.query.get(wire, []))

    def int_arg(self, wire: str, default: int | None = None) -> int | None:
        value = self.arg(wire)
        if value is None:
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            raise bad_params(f"{wire} must be an integer, got {value!r}") from None

    def bool_arg(self, wire: str, default: bool = False) -> bool:
        value = self.arg(wire)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        return str(value).lower() == "true"

    def require(self, *wires: str) -> None:
        missing = [w for w in wires if self.arg(w) in (None, "", [])]
        if missing:
            raise bad_params(f"missing required parameter(s): {', '.join(missing)}")


@dataclass
class Page:
    """One page of a page/pageSize listing, with Iterable's links to its neighbours."""

    items: list[Any]
    total: int
    next_url: str | None
    previous_url: str | None

    def links(self) -> dict[str, str]:
        """``nextPageUrl`` / ``previousPageUrl``, for the pages that exist."""
        found = {"nextPageUrl": self.next_url, "previousPageUrl": self.previous_url}
        return {k: v for k, v in found.items() if v is not None}


def paginate(call: Call, items: Sequence[T], *, default_size: int, max_size: int) -> Page:
    """Slice ``items`` by the request's 1-based ``page`` and ``pageSize``.

    The neighbour links repeat every other query parameter of the request (filters, sort), as
    Iterable's do, so following ``nextPageUrl`` walks the same listing.
    """
    page = call.int_arg("page", 1)
    size = call.int_arg("pageSize", default_size)
    if page is None or page < 1:
        raise bad_params("page must be at least 1")
    if size is None or not 1 <= size <= max_size:
        raise bad_params(f"pageSize must be between 1 and {max_size}")
    start = (page - 1) * size
    kept = [
        (k, v) for k, values in call.query.items() if k not in ("page", "pageSize") for v in values
    ]

    def url(number: int) -> str:
        query = urlencode([*kept, ("page", number), ("pageSize", size)])
        return f"{call.sandbox.base_url}{call.path}?{query}"

    return Page(
        items=list(items[start : start + size]),
        total=len(items),
        next_url=url(page + 1) if start + size < len(items) else None,
        previous_url=url(page - 1) if page > 1 else None,
    )
