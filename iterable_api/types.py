"""Annotated types for signatures: Iterable's formats and limits, checked before sending.

Each type validates what the user passes (a ``datetime``, a string, a number) and serialises it
the way Iterable expects on the wire, so a task's signature states the rule once.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field, PlainSerializer, StringConstraints

__all__ = [
    "CatalogName",
    "Email",
    "ExportDateTime",
    "IanaTimeZone",
    "IsoDateTime",
    "IterableDateTime",
    "MessageMedium",
    "MetricsDate",
    "PhoneNumber",
    "PositiveId",
    "RecordId",
    "SnippetName",
    "UserId",
    "within_days",
]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)  # Iterable's naive times are UTC
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:  # year 1 or 9999 pushed out of range by its offset
        raise ValueError(f"{value.isoformat()} is out of range in UTC") from None


def _check_email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError(f"not an email address: {value!r}")
    return value


def _check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "America", over-long names
        raise ValueError(f"not an IANA time zone name: {value!r} (e.g. America/New_York)") from None
    return value


def _check_utf8_size(limit: int) -> Any:
    def check(value: str) -> str:
        if len(value.encode()) > limit:
            raise ValueError(f"at most {limit} bytes, got {len(value.encode())}")
        return value

    return AfterValidator(check)


def within_days(days: int) -> AfterValidator:
    """A time no more than ``days`` days ahead of now (Iterable's scheduling windows)."""

    def check(value: datetime) -> datetime:
        value = _utc(value)
        if value > datetime.now(timezone.utc) + timedelta(days=days):
            raise ValueError(f"must be at most {days} days ahead")
        return value

    return AfterValidator(check)


#: ``YYYY-MM-DD HH:MM:SS`` in UTC: campaign create and ``*/target`` sendAt, in-app expiry.
IterableDateTime = Annotated[
    datetime,
    AfterValidator(_utc),
    PlainSerializer(lambda v: _utc(v).strftime("%Y-%m-%d %H:%M:%S"), return_type=str),
]

#: ISO-8601 in UTC: campaign schedule sendAt.
IsoDateTime = Annotated[
    datetime,
    AfterValidator(_utc),
    PlainSerializer(lambda v: _utc(v).strftime("%Y-%m-%dT%H:%M:%S.000Z"), return_type=str),
]

#: ``yyyy-MM-dd HH:mm:ss +00:00``: export and template-list windows, sent-message windows.
ExportDateTime = Annotated[
    datetime,
    AfterValidator(_utc),
    PlainSerializer(lambda v: _utc(v).strftime("%Y-%m-%d %H:%M:%S +00:00"), return_type=str),
]

#: ``YYYY-MM-DD``: campaign and experiment metrics windows.
MetricsDate = Annotated[
    datetime,
    AfterValidator(_utc),
    PlainSerializer(lambda v: _utc(v).strftime("%Y-%m-%d"), return_type=str),
]

Email = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_check_email)]
UserId = Annotated[
    str,
    StringConstraints(min_length=1, pattern=r"^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$"),
    _check_utf8_size(512),
]
IanaTimeZone = Annotated[str, AfterValidator(_check_zone)]
PhoneNumber = Annotated[str, StringConstraints(pattern=_E164.pattern)]
PositiveId = Annotated[int, Field(ge=1)]
#: An event or purchase id: Iterable deduplicates by it; at most 512 bytes.
RecordId = Annotated[str, StringConstraints(min_length=1), _check_utf8_size(512)]
#: Catalog names: letters, digits and dashes, at most 255 characters.
CatalogName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,255}$")]
#: Snippet names: unique, at most 100 characters of letters, digits, spaces, _ and -.
SnippetName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9 _-]{1,100}$")]

MessageMedium = Literal["Email", "Push", "InApp", "SMS"]
