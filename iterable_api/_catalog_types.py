"""The shapes that describe one Iterable action: its parameters, rate limit and side-effect class."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "API_KEY",
    "BODY",
    "BULK",
    "CSV",
    "CSV_STREAM",
    "DAY",
    "JSON",
    "MINUTE",
    "NDJSON_STREAM",
    "ORGANIZATION",
    "PATH",
    "PROJECT",
    "QUERY",
    "READ",
    "SECOND",
    "SEND",
    "TEXT",
    "WRITE",
    "Action",
    "Effect",
    "Limit",
    "Location",
    "Param",
    "Period",
    "ResponseKind",
    "Scope",
    "Tier",
]


class Location(str, enum.Enum):
    """Where a parameter travels in the request."""

    PATH = "path"
    QUERY = "query"
    BODY = "body"


class Period(float, enum.Enum):
    """The window of a documented rate limit, in seconds."""

    SECOND = 1.0
    MINUTE = 60.0
    DAY = 86_400.0


class Scope(str, enum.Enum):
    """Whom Iterable counts a rate limit against."""

    PROJECT = "project"
    API_KEY = "api_key"
    ORGANIZATION = "organization"


class Effect(str, enum.Enum):
    """What repeating a request does, which decides whether a retry is safe.

    READ and WRITE may be repeated; a SEND is a side effect Iterable cannot deduplicate (a message,
    a proof, a created object, an export job, an event without an ``id``), so it is retried only
    when the request provably never reached Iterable.
    """

    READ = "read"
    WRITE = "write"
    SEND = "send"


class Tier(str, enum.Enum):
    """The permission an action needs from the credentials that run it.

    Like Iterable's own MCP server: reading is harmless, writing changes data, sending reaches
    people (messages, proofs, schedules), deleting destroys data (deletes, GDPR forget).
    """

    READ = "read"
    WRITE = "write"
    SEND = "send"
    DELETE = "delete"


class ResponseKind(str, enum.Enum):
    """How a successful answer is encoded."""

    JSON = "json"
    BULK = "bulk"  # JSON that reports per-record failures: read into a BulkResult
    TEXT = "text"  # plain text: one identifier per line, or a bare number
    CSV = "csv"  # small CSV read whole (metrics)
    CSV_STREAM = "csv-stream"  # large CSV, only ever streamed
    NDJSON_STREAM = "ndjson-stream"  # one JSON object per line, only ever streamed


PATH, QUERY, BODY = Location.PATH, Location.QUERY, Location.BODY
SECOND, MINUTE, DAY = Period.SECOND, Period.MINUTE, Period.DAY
PROJECT, API_KEY, ORGANIZATION = Scope.PROJECT, Scope.API_KEY, Scope.ORGANIZATION
READ, WRITE, SEND = Effect.READ, Effect.WRITE, Effect.SEND
JSON, BULK, TEXT, CSV = ResponseKind.JSON, ResponseKind.BULK, ResponseKind.TEXT, ResponseKind.CSV
CSV_STREAM, NDJSON_STREAM = ResponseKind.CSV_STREAM, ResponseKind.NDJSON_STREAM


@dataclass(frozen=True)
class Limit:
    """A documented rate limit: ``requests`` per ``period``, counted per ``scope``."""

    requests: int
    period: Period
    scope: Scope

    @property
    def per_second(self) -> float:
        return self.requests / self.period.value

    def __str__(self) -> str:
        unit = {Period.SECOND: "s", Period.MINUTE: "min", Period.DAY: "24 h"}[self.period]
        return f"{self.requests}/{unit} per {self.scope.value.replace('_', ' ')}"


@dataclass(frozen=True)
class Param:
    """One parameter: its Python name, its name on the wire, where it goes and its JSON type."""

    name: str
    wire: str
    location: Location
    type: str  # the reference's type: string, integer, number, boolean, object, or X[]
    required: bool = False


_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


@dataclass(frozen=True)
class Action:
    """One Iterable action, described once for the client, the tasks and the sandbox."""

    id: str
    method: str
    path: str
    params: tuple[Param, ...] = ()
    effect: Effect = Effect.READ
    limit: Limit | None = None
    daily_cap: Limit | None = None
    max_running: int | None = None  # concurrent jobs Iterable runs at once (exports)
    max_body_bytes: int | None = None
    dedupe_by: str | None = None  # "id", or "events[].id": present => Iterable deduplicates
    # A WRITE whose repeat Iterable refuses once the first one worked (400 already exists, 400
    # unknown email after the merge, 404 after the delete): see ``REFUSED_REPEATS``.
    refuses_repeat: bool = False
    response: ResponseKind = ResponseKind.JSON
    tier: Tier | None = None  # None: read for GET, delete for DELETE, write otherwise
    # A write that sends unless this boolean parameter is false (Iterable's default is true).
    sends_unless_false: str | None = None
    _by_name: dict[str, Param] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {p.name: p for p in self.params})
        if self.tier is None:
            default = {"GET": Tier.READ, "DELETE": Tier.DELETE}.get(self.method, Tier.WRITE)
            object.__setattr__(self, "tier", default)

    @property
    def name(self) -> str:
        """The Python name: ``ITERABLE_ABORT_CAMPAIGN`` -> ``abort_campaign``."""
        return self.id.removeprefix("ITERABLE_").lower()

    @property
    def endpoint(self) -> str:
        """``METHOD /path``, the key Iterable counts a rate limit by."""
        return f"{self.method} {self.path}"

    def param(self, name: str) -> Param:
        return self._by_name[name]

    def has_param(self, name: str) -> bool:
        return name in self._by_name

    def params_in(self, location: Location) -> tuple[Param, ...]:
        return tuple(p for p in self.params if p.location is location)

    def tier_for(self, values: dict[str, Any]) -> Tier:
        """The permission this call needs with these Python-named values.

        Creating a campaign schedules it for sending unless ``schedule_send`` is false, so such
        a create needs ``send``, not only ``write``.
        """
        if self.tier is None:
            raise ValueError(f"{self.name} has no permission tier in the catalog")
        if self.sends_unless_false and values.get(self.sends_unless_false) is not False:
            return Tier.SEND
        return self.tier

    def effect_for(self, values: dict[str, Any]) -> Effect:
        """The effect of this call with these Python-named values.

        An event or purchase that carries its own ``id`` is deduplicated by Iterable, so sending it
        again is a repeatable write rather than a second event.
        """
        if self.effect is not Effect.SEND or self.dedupe_by is None:
            return self.effect
        if self.dedupe_by == "id":
            key = next(p.name for p in self.params if p.wire == "id")
            return Effect.WRITE if values.get(key) not in (None, "") else Effect.SEND
        collection, _, item_key = self.dedupe_by.partition("[].")
        items = values.get(collection) or []
        deduplicated = bool(items) and all(
            isinstance(item, dict) and item.get(item_key) not in (None, "") for item in items
        )
        return Effect.WRITE if deduplicated else Effect.SEND
