"""Annotated types for signatures: Iterable's formats and limits, checked before sending.

Each type validates what the user passes (a ``datetime``, a string, a number) and serialises it
the way Iterable expects on the wire, so a task's signature states the rule once.
"""

from __future__ import annotations

import logging
import re
from datetime import date, datetime, time, timedelta, timezone
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, Field, PlainSerializer, StringConstraints

__all__ = [
    "MAX_EMAIL_LENGTH",
    "MAX_FIELD_VALUE_CHARS",
    "MANAGED_FIELDS",
    "MAX_NESTING",
    "CatalogName",
    "DataFields",
    "Email",
    "EpochSeconds",
    "ExportDateTime",
    "IanaTimeZone",
    "IsoDateTime",
    "IterableDateTime",
    "MessageMedium",
    "OneLine",
    "MetricsDate",
    "PhoneNumber",
    "PositiveId",
    "RecordId",
    "SnippetName",
    "UserId",
    "case_insensitive",
    "need_identifier",
    "within_days",
]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")

#: RFC 5321's longest forward path; Iterable refuses longer addresses.
MAX_EMAIL_LENGTH = 254
#: Iterable stores a profile or event field value of at most about 32k characters.
MAX_FIELD_VALUE_CHARS = 32_768
#: How deep a JSON value may nest before it is refused by name (not with a RecursionError).
MAX_NESTING = 64

# Every spelling of a moment Iterable documents or sends: ISO 8601 ("T" or a space, "Z" or an
# offset, fractions) and its own "yyyy-MM-dd HH:mm:ss ZZ" (offset "+0000", "+00:00", or none,
# meaning UTC, after a space). A bare date is midnight UTC.
_MOMENT = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[Tt ](?P<clock>\d{2}:\d{2})(?P<seconds>:\d{2})?(?:[.,](?P<fraction>\d{1,9}))?"
    r" ?(?P<zone>[Zz]|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?)?"
)
_MOMENT_FORMATS = (
    "a datetime, an ISO 8601 string (2024-01-15T10:30:00Z, 2024-01-15T10:30:00-05:00) or "
    "yyyy-MM-dd HH:mm:ss [ZZ] (2024-01-15 10:30:00 +0000, … +00:00, or no offset = UTC)"
)


def _parse_moment(value: Any) -> Any:
    """A string in any of Iterable's date spellings as a ``datetime``; other values unchanged."""
    if isinstance(value, bool):
        raise ValueError(f"a boolean is not a date; give {_MOMENT_FORMATS}")
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    if not isinstance(value, str):
        return value  # datetime, or epoch seconds/milliseconds as pydantic reads them
    match = _MOMENT.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"not a date and time: {value[:60]!r}; give {_MOMENT_FORMATS}")
    clock = match["clock"] or "00:00"
    seconds = match["seconds"] or ":00"
    fraction = "." + (match["fraction"] or "0").ljust(6, "0")[:6]
    zone = match["zone"] or ""
    if zone.upper() in ("Z", "UTC", "GMT"):
        zone = "+00:00"
    elif zone and ":" not in zone:
        zone = zone[:3] + ":" + (zone[3:] or "00")
    try:
        return datetime.fromisoformat(f"{match['date']}T{clock}{seconds}{fraction}{zone}")
    except ValueError as exc:  # 2024-02-30, 25:00, +24:00
        raise ValueError(f"not a valid date and time: {value[:60]!r} ({exc})") from None


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)  # Iterable's naive times are UTC
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:  # year 1 or 9999 pushed out of range by its offset
        raise ValueError(f"{value.isoformat()} is out of range in UTC") from None


#: Every date parameter reads any spelling (see _MOMENT_FORMATS) and converts it to UTC.
_ANY_SPELLING = BeforeValidator(_parse_moment)
_IN_UTC = AfterValidator(_utc)


def _metrics_date(moment: datetime) -> str:
    # Iterable takes a bare date or ISO 8601 here: a bare date when that loses nothing.
    if moment.time() == time(0):
        return moment.strftime("%Y-%m-%d")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_email(value: str) -> str:
    if len(value) > MAX_EMAIL_LENGTH:
        raise ValueError(f"an email address has at most {MAX_EMAIL_LENGTH} characters")
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


def _not_bool(value: Any) -> Any:
    # pydantic reads True as 1: get_campaign(campaign_id=True) would fetch campaign 1.
    if isinstance(value, bool):
        raise ValueError("a boolean is not an id")
    return value


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _one_line(value: str) -> str:
    found = _CONTROL.search(value)
    if found:
        raise ValueError(f"a name cannot contain the control character {found.group()!r}")
    return value


#: A name shown on one line (a list name, a metadata table or key): no NUL, newline or other
#: control character, which Iterable's UI and URLs cannot carry.
OneLine = AfterValidator(_one_line)


def within_days(days: int) -> AfterValidator:
    """A time no more than ``days`` days ahead of now (Iterable's scheduling windows)."""

    def check(value: datetime) -> datetime:
        value = _utc(value)
        if value > datetime.now(timezone.utc) + timedelta(days=days):
            raise ValueError(f"must be at most {days} days ahead")
        return value

    return AfterValidator(check)


# One type per date style Iterable documents. Each accepts every spelling (see _MOMENT_FORMATS)
# and epoch seconds or milliseconds, converts to UTC, and sends the style of its parameters.

#: ``YYYY-MM-DD HH:MM:SS`` in UTC: campaign create and ``*/target`` sendAt, in-app expiry.
IterableDateTime = Annotated[
    datetime,
    _ANY_SPELLING,
    _IN_UTC,
    PlainSerializer(lambda v: _utc(v).strftime("%Y-%m-%d %H:%M:%S"), return_type=str),
]

#: ISO-8601 in UTC: campaign schedule sendAt.
IsoDateTime = Annotated[
    datetime,
    _ANY_SPELLING,
    _IN_UTC,
    PlainSerializer(lambda v: _utc(v).strftime("%Y-%m-%dT%H:%M:%S.000Z"), return_type=str),
]

#: ``yyyy-MM-dd HH:mm:ss +00:00``: export and template-list windows, sent-message windows.
ExportDateTime = Annotated[
    datetime,
    _ANY_SPELLING,
    _IN_UTC,
    PlainSerializer(lambda v: _utc(v).strftime("%Y-%m-%d %H:%M:%S +00:00"), return_type=str),
]

#: ``YYYY-MM-DD`` (or ISO 8601 when the time is not midnight UTC): metrics windows.
MetricsDate = Annotated[
    datetime,
    _ANY_SPELLING,
    _IN_UTC,
    PlainSerializer(lambda v: _metrics_date(_utc(v)), return_type=str),
]


# Epoch seconds reach 10**11 only in the year 5138; a larger value is a millisecond time.
_MAX_SECONDS = 10**11


def _epoch_seconds(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a boolean is not a time")
    if isinstance(value, (str, datetime, date)):
        return int(_utc(_parse_moment(value)).timestamp())
    return value


def _not_millis(value: int) -> int:
    if value >= _MAX_SECONDS:
        raise ValueError(f"{value} looks like epoch milliseconds; Iterable wants epoch seconds")
    return value


#: Unix time in seconds (``createdAt`` of events, purchases, embedded events), as Iterable
#: documents it. Also takes a ``datetime`` or any date string above (naive means UTC).
EpochSeconds = Annotated[
    int, BeforeValidator(_epoch_seconds), Field(ge=0), AfterValidator(_not_millis)
]


def need_identifier(email: Any, user_id: Any, names: str = "email or user_id") -> None:
    """Iterable needs at least one identifier; it accepts both (hybrid projects send both).

    The one statement of the rule: request models and bulk records (``IdentifiedRecord``) call it.
    An empty identifier names no one, so it counts as missing.
    """
    if not email and not user_id:
        raise ValueError(f"give {names} (or both)")


Email = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_check_email)]
UserId = Annotated[
    str,
    StringConstraints(min_length=1, pattern=r"^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$"),
    _check_utf8_size(512),
]
IanaTimeZone = Annotated[str, AfterValidator(_check_zone)]
PhoneNumber = Annotated[str, StringConstraints(pattern=_E164.pattern)]
#: An Iterable numeric id (campaign, template, list…). A string of digits is read as its number
#: (forms and CSV files give strings; the wire carries the integer); a boolean is refused.
PositiveId = Annotated[int, BeforeValidator(_not_bool), Field(ge=1)]
#: An event or purchase id: Iterable deduplicates by it; at most 512 bytes.
RecordId = Annotated[str, StringConstraints(min_length=1), _check_utf8_size(512)]
#: Catalog names: letters, digits and dashes, at most 255 characters.
CatalogName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,255}$")]
#: Snippet names: unique, at most 100 characters of letters, digits, spaces, _ and -.
SnippetName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9 _-]{1,100}$")]


def case_insensitive(*values: str) -> BeforeValidator:
    """For an enum Iterable reads in any letter case: any case in, the documented casing out.

    ``Annotated[Literal["emailList", …], case_insensitive("emailList", …)]``
    """
    by_folded = {value.casefold(): value for value in values}

    def documented_casing(value: Any) -> Any:
        if isinstance(value, str):
            return by_folded.get(value.strip().casefold(), value)
        return value

    return BeforeValidator(documented_casing)


MessageMedium = Annotated[
    Literal["Email", "Push", "InApp", "SMS"], case_insensitive("Email", "Push", "InApp", "SMS")
]

#: Profile fields Iterable maintains itself. It ignores them in an update; they are still sent.
MANAGED_FIELDS = frozenset({"emailListIds", "signupDate", "profileUpdatedAt", "itblInternal"})

_log = logging.getLogger("prefect_iterable.api")


def _check_field_values(value: dict[str, Any]) -> dict[str, Any]:
    managed = sorted(MANAGED_FIELDS.intersection(value))
    if managed:
        _log.info("Iterable maintains %s itself and may ignore them", ", ".join(managed))
    for key, item in value.items():
        if isinstance(item, str) and len(item) > MAX_FIELD_VALUE_CHARS:
            raise ValueError(
                f"the value of {key[:40]!r} has {len(item)} characters; "
                f"Iterable keeps at most {MAX_FIELD_VALUE_CHARS}"
            )
    return value


#: Profile or event data: any JSON object; a string value at most ~32k characters.
DataFields = Annotated[dict[str, Any], AfterValidator(_check_field_values)]
