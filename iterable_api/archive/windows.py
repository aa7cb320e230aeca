"""Export windows: half-open UTC intervals, how Iterable writes their ends, and whether a file's
records lie inside one."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import IO, Any

__all__ = [
    "Window",
    "default_window",
    "iterable_time",
    "record_time",
    "utc",
    "window_content",
]


def utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive time is taken as UTC already."""
    return (
        value.replace(tzinfo=timezone.utc)
        if value.tzinfo is None
        else value.astimezone(timezone.utc)
    )


def stamp(value: datetime) -> str:
    """Compact UTC, safe in a file name: ``20240501T000000Z``."""
    return value.strftime("%Y%m%dT%H%M%SZ")


def iterable_time(value: datetime) -> str:
    """A window end as Iterable's export endpoints read it."""
    return value.strftime("%Y-%m-%d %H:%M:%S +00:00")


@dataclass(frozen=True)
class Window:
    """A half-open UTC interval ``[start, end)``."""

    start: datetime
    end: datetime

    @classmethod
    def of(cls, start: datetime | None, end: datetime | None) -> Window:
        """The window a user asked for, checked: ``start`` alone means one day from it; neither
        means yesterday. Raises ``ValueError`` naming the parameter at fault."""
        if start is None and end is not None:
            raise ValueError("start: give start when you give end")
        if start is None:
            window = default_window()
        else:
            begin = utc(start)
            window = cls(begin, utc(end) if end is not None else begin + timedelta(days=1))
        if window.start.microsecond or window.end.microsecond:
            raise ValueError("start/end: Iterable windows are in whole seconds")
        if not window.start < window.end:
            raise ValueError("end: must be after start")
        return window

    @classmethod
    def from_iso(cls, start: str, end: str) -> Window:
        """A window as the manifest records it."""
        return cls(datetime.fromisoformat(start), datetime.fromisoformat(end))

    @property
    def whole_day(self) -> bool:
        midnight = self.start.replace(hour=0, minute=0, second=0, microsecond=0)
        return self.start == midnight and self.end - self.start == timedelta(days=1)

    @property
    def tag(self) -> str:
        """``2024-05-01`` for a whole UTC day, else ``<start>-<end>`` in compact UTC."""
        if self.whole_day:
            return self.start.strftime("%Y-%m-%d")
        return f"{stamp(self.start)}-{stamp(self.end)}"

    @property
    def label(self) -> str:
        return f"{self.start:%Y-%m-%d %H:%M:%S}..{self.end:%Y-%m-%d %H:%M:%S}Z"

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    def halves(self) -> tuple[Window, Window] | None:
        """The window cut in two at a whole second, or ``None`` when it is under 2 s long."""
        seconds = int(self.duration.total_seconds())
        if seconds < 2:
            return None
        middle = self.start + timedelta(seconds=seconds // 2)
        return Window(self.start, middle), Window(middle, self.end)

    def contains(self, when: datetime) -> bool:
        return self.start <= when < self.end


def default_window(now: datetime | None = None) -> Window:
    """Yesterday, UTC midnight to midnight."""
    today = (now or datetime.now(timezone.utc)).replace(hour=0, minute=0, second=0, microsecond=0)
    return Window(today - timedelta(days=1), today)


# The field that dates a record: events carry createdAt, user profiles profileUpdatedAt.
_TIME_FIELDS = ("createdAt", "profileUpdatedAt", "updatedAt")
_ZONE_GAP = re.compile(r"\s+(?=[+-]\d\d:?\d\d$|Z$)")


def record_time(record: Any) -> datetime | None:
    """When a record happened, read as Iterable writes it (epoch ms, its own format, ISO)."""
    if not isinstance(record, dict):
        return None
    value = next((record[f] for f in _TIME_FIELDS if record.get(f) not in (None, "")), None)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, timezone.utc)
    if not isinstance(value, str):
        return None
    try:
        return utc(datetime.fromisoformat(_ZONE_GAP.sub("", value.strip())))
    except ValueError:
        return None


def window_content(raw: IO[bytes], kind: str, window: Window) -> tuple[int, int]:
    """Of the records in ``raw`` (CSV or NDJSON) that carry a time: how many there are, and how
    many fall outside ``window``. What proves (or disproves) that a file belongs to its window."""
    dated = outside = 0
    text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
    records: Iterator[Any] = (
        csv.DictReader(text)
        if kind == "csv"
        else (json.loads(line) for line in text if line.strip())
    )
    for record in records:
        when = record_time(record)
        if when is None:
            continue
        dated += 1
        outside += not window.contains(when)
    text.detach()
    return dated, outside
