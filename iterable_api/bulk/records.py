"""Records of a CSV or NDJSON file, read as a stream and encoded once for Iterable's bulk APIs.

Each record is encoded once, when it is read: an NDJSON line already in Iterable's shape is sent
as the line itself; any other record is converted and encoded then. A record that cannot be sent
(no identifier, no event name, not JSON, a broken CSV row, bad UTF-8, an over-long line) carries
the reason, naming its line; an identifier's format is Iterable's to judge.

CSV columns (first row is the header):

* ``email`` and ``userId`` are the user's identifiers (events also take ``eventName``, ``id``,
  ``createdAt``, ``campaignId``, ``templateId``; users also ``preferUserId`` and
  ``mergeNestedObjects``).
* ``dataFields.a.b`` sets ``dataFields["a"]["b"]``; every other column goes into ``dataFields``
  under its own name.
* Empty cells are left out (so they do not overwrite what Iterable holds).
* Values: ``true``/``false`` (any case) become booleans; integers without leading zeros and of at
  most 16 digits become integers; decimals like ``-1.5`` or ``2.0e3`` become floats; a cell that
  starts with ``[`` or ``{`` and is valid JSON becomes that JSON value; everything else stays a
  string (so ``02134`` and ``+15551234567`` stay strings). Identifier columns are never converted.

NDJSON: one JSON object per line, in Iterable's own shape; keys that are not top-level fields of a
user or event go into ``dataFields``.

Events without an ``id`` get one (``event_id``): the first 32 hex digits of the SHA-256 of the
event's canonical JSON without ``id``. Iterable updates an event whose id it already has, so
resending a batch, or importing the same file again, does not duplicate events.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import orjson

from prefect_iterable.api._requests import json_problem
from prefect_iterable.api.files import CsvQuotes
from prefect_iterable.api.storage import Line, iter_lines

__all__ = ["Kind", "Reader", "Record", "detect_format", "event_id"]

Kind = Literal["users", "events"]

_USER_TOP = {"email", "userId", "preferUserId", "mergeNestedObjects"}
_EVENT_TOP = {"email", "userId", "eventName", "id", "createdAt", "campaignId", "templateId"}
_INT_FIELDS = {"createdAt", "campaignId", "templateId"}
_BOOL_FIELDS = {"preferUserId", "mergeNestedObjects"}
_INT = re.compile(r"^-?(?:0|[1-9][0-9]{0,15})$")
_FLOAT = re.compile(r"^-?(?:0|[1-9][0-9]*)\.[0-9]+(?:[eE][-+]?[0-9]+)?$")


def event_id(event: dict[str, Any]) -> str:
    """A deterministic id for an event: SHA-256 of its canonical JSON without ``id``, 32 hex."""
    body = {k: v for k, v in event.items() if k != "id"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


@dataclass(slots=True)
class Record:
    """One record of the input: where it is, and either its wire body or why it was rejected."""

    line: int  # the line it starts on (1-based)
    last_line: int  # the line it ends on
    start: int  # byte offsets in the file
    end: int
    data: bytes | None = None  # the wire body: compact UTF-8 JSON, checked (None: rejected)
    # What the file held (the object, the CSV row as a dict, or raw text), for the dead-letter
    # file; None when ``data`` is the NDJSON line itself (then it is that line's object).
    original: Any = None
    error: str | None = None

    def the_original(self) -> Any:
        """What the dead-letter file shows for this record."""
        return self.original if self.original is not None else json.loads(self.data or b"null")


def _raw_text(data: bytes, limit: int | None = None) -> str:
    """Bytes as text for the dead-letter file; invalid UTF-8 shows as ``\\xNN`` escapes."""
    if limit is None or len(data) <= limit:
        return data.decode("utf-8", "backslashreplace")
    return data[:limit].decode("utf-8", "backslashreplace") + "…"


def _decode(data: bytes, line: int) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Reject(
            f"line {line}: not valid UTF-8 (byte 0x{data[exc.start]:02x} at column {exc.start + 1})"
        ) from None


class _Reject(ValueError):
    """A record that cannot be sent, with the reason."""


def _csv_value(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    if text[:1] in ("[", "{"):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def _to_int(value: Any, name: str, line: int) -> int:
    if isinstance(value, bool):
        raise _Reject(f"line {line}: {name} must be an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INT.match(value.strip()):
        return int(value.strip())
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise _Reject(f"line {line}: {name} must be an integer, got {value!r}")


def _to_bool(value: Any, name: str, line: int) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _Reject(f"line {line}: {name} must be true or false, got {value!r}")


def _set_path(target: dict[str, Any], path: list[str], value: Any, line: int, column: str) -> None:
    for part in path[:-1]:
        child = target.setdefault(part, {})
        if not isinstance(child, dict):
            raise _Reject(f"line {line}: column {column!r} nests under a field that has a value")
        target = child
    target[path[-1]] = value


def _build(kind: str, fields: dict[str, Any], extra: dict[str, Any], line: int) -> dict[str, Any]:
    """The wire body from top-level ``fields`` and ``extra`` data fields; checks what it can."""
    top = _USER_TOP if kind == "users" else _EVENT_TOP
    body: dict[str, Any] = {}
    for name in top:
        value = fields.get(name)
        if value is None or value == "":
            continue
        if name in _INT_FIELDS:
            value = _to_int(value, name, line)
        elif name in _BOOL_FIELDS:
            value = _to_bool(value, name, line)
        elif name == "id" and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        elif not isinstance(value, str):
            raise _Reject(f"line {line}: {name} must be a string, got {value!r}")
        else:
            value = value.strip()
        body[name] = value
    data_fields = fields.get("dataFields")
    if data_fields is not None and not isinstance(data_fields, dict):
        raise _Reject(f"line {line}: dataFields must be an object")
    merged = dict(extra)
    merged.update(data_fields or {})
    if merged:
        body["dataFields"] = merged
    if not body.get("email") and not body.get("userId"):
        raise _Reject(f"line {line}: no email or userId")
    # A malformed identifier goes to Iterable, which refuses that record alone and says why.
    if kind == "events":
        if not body.get("eventName"):
            raise _Reject(f"line {line}: no eventName")
        if "id" in body and len(body["id"].encode()) > 512:
            raise _Reject(f"line {line}: id is longer than 512 bytes")
        if "createdAt" in body and body["createdAt"] < 0:
            raise _Reject(f"line {line}: createdAt must be a Unix time in seconds")
        if "id" not in body:
            body["id"] = event_id(body)
    return body


def _from_object(kind: str, obj: dict[str, Any], line: int) -> dict[str, Any]:
    top = _USER_TOP if kind == "users" else _EVENT_TOP
    fields = {k: v for k, v in obj.items() if k in top or k == "dataFields"}
    extra = {k: v for k, v in obj.items() if k not in top and k != "dataFields"}
    return _build(kind, fields, extra, line)


def _from_row(kind: str, header: list[str], row: list[str], line: int) -> dict[str, Any]:
    top = _USER_TOP if kind == "users" else _EVENT_TOP
    fields: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for column, cell in zip(header, row, strict=True):
        if cell == "":
            continue
        if column in top:
            fields[column] = cell
        elif column.startswith("dataFields."):
            path = column.split(".")[1:]
            _set_path(extra, path, _csv_value(cell), line, column)
        else:
            extra[column] = _csv_value(cell)
    return _build(kind, fields, extra, line)


def _sendable_as_is(kind: str, obj: Any) -> bool:
    """Whether a parsed NDJSON object is already the body ``_from_object`` would make from it
    (the same fields with the same values, only perhaps in another order), so that its line can
    go on the wire as it is, without building and encoding a new one.

    The common case of a file written for Iterable; anything else (a field to move into
    ``dataFields``, a value to convert, strip or drop, an event without an ``id``) takes the
    careful path.
    """
    if type(obj) is not dict:
        return False
    top = _USER_TOP if kind == "users" else _EVENT_TOP
    for key, value in obj.items():
        if key == "dataFields":
            if type(value) is not dict or not value:
                return False
        elif key not in top:
            return False
        elif key in _BOOL_FIELDS:
            if type(value) is not bool:
                return False
        elif key in _INT_FIELDS:
            if type(value) is not int or (key == "createdAt" and value < 0):
                return False
        elif type(value) is not str or not value or value != value.strip():
            return False
    if "email" not in obj and "userId" not in obj:
        return False
    if kind == "events":
        event = obj.get("id")
        if not obj.get("eventName") or event is None or len(event.encode()) > 512:
            return False
    return True


def _encode(body: dict[str, Any], line: int) -> bytes:
    """The wire body as compact UTF-8 JSON; a value JSON cannot carry rejects the record."""
    try:
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    except ValueError:  # NaN or an infinity; UnicodeEncodeError (a lone surrogate) is one too
        where, why = json_problem(body, "record") or ("record", "not encodable as JSON")
        raise _Reject(f"line {line}: {why} (at {where})") from None


def _joined(parts: list[Line]) -> bytes:
    """The lines of one CSV record as they were read: without their ends, joined by ``\\n`` (so a
    line end inside a quoted field reaches Iterable as ``\\n``, whatever the file used)."""
    return b"\n".join(p.data for p in parts)


def _parse_csv_row(text: str, line: int) -> list[str]:
    try:
        rows = list(csv.reader([text], strict=True))
    except csv.Error as exc:
        raise _Reject(f"line {line}: broken CSV row: {exc}") from None
    return rows[0] if rows else []


class Reader:
    """Records of one input file (``fmt`` ``csv`` or ``ndjson``), from a byte offset, in order.

    The handle is read in blocks and never held whole; for CSV, ``read_header()`` comes first.
    A plain class (not a dataclass) so that Prefect passes it to a task as it is.
    """

    def __init__(self, handle: IO[bytes], kind: str, fmt: str, max_record_bytes: int) -> None:
        if kind not in ("users", "events"):
            raise ValueError(f"kind: {kind!r} is neither 'users' nor 'events'")
        if fmt not in ("csv", "ndjson"):
            raise ValueError(f"format: {fmt!r} is neither 'csv' nor 'ndjson'")
        self.handle = handle
        self.kind = kind
        self.fmt = fmt
        self.max_record_bytes = max_record_bytes
        self.header: list[str] = []

    def _require_header(self) -> list[str]:
        if not self.header:
            raise RuntimeError("Reader.read_header() must read a CSV file's header first")
        return self.header

    def read_header(self) -> tuple[int, int]:
        """Read the CSV header (the file's first record): returns ``(end offset, last line)``."""
        lines = iter_lines(self.handle, start=0, limit=self.max_record_bytes)
        parts: list[bytes] = []
        quotes = CsvQuotes()
        for line in lines:
            if line.overlong:
                raise ValueError(f"source: the CSV header (line {line.number}) is too long")
            if line.number == 1 and line.data.startswith(b"\xef\xbb\xbf"):
                line = Line(line.number, line.start, line.end, line.data[3:])
            if not parts and not line.data.strip():
                continue
            parts.append(line.data)
            quotes.feed(line.data)
            if quotes.end_of_line():
                try:
                    text = _decode(b"\n".join(parts), line.number)
                    header = [h.strip() for h in _parse_csv_row(text, line.number)]
                except _Reject as exc:
                    raise ValueError(f"source: bad CSV header: {exc}") from None
                if any(not h for h in header):
                    raise ValueError("source: the CSV header has an empty column name")
                dupes = sorted({h for h in header if header.count(h) > 1})
                if dupes:
                    raise ValueError(f"source: the CSV header repeats {', '.join(dupes)}")
                if "email" not in header and "userId" not in header:
                    raise ValueError(
                        "source: the CSV header has neither an email nor a userId column"
                    )
                if self.kind == "events" and "eventName" not in header:
                    raise ValueError("source: the CSV header has no eventName column")
                self.header = header
                return line.end, line.number
        raise ValueError("source: the CSV file is empty (no header row)")

    def records(self, start: int, first_line: int) -> Iterator[Record | Line]:
        """Each record from byte ``start``, in order; a blank line is yielded as its ``Line``."""
        lines = iter_lines(
            self.handle, start=start, first_number=first_line, limit=self.max_record_bytes
        )
        if self.fmt == "ndjson":
            for line in lines:
                yield self._ndjson(line)
            return
        header = self._require_header()
        parts: list[Line] = []
        size = 0
        quotes = CsvQuotes()
        for line in lines:
            if line.overlong:
                first = parts[0] if parts else line
                yield Record(
                    first.number,
                    line.number,
                    first.start,
                    line.end,
                    original=_raw_text(b"\n".join(p.data for p in [*parts, line]), 4096),
                    error=f"line {first.number}: longer than {self.max_record_bytes} bytes",
                )
                parts, size, quotes = [], 0, CsvQuotes()
                continue
            if not parts and not line.data.strip():
                yield line
                continue
            parts.append(line)
            size += len(line.data) + 1
            quotes.feed(line.data)
            ended = quotes.end_of_line()
            if not ended and size > self.max_record_bytes:
                yield Record(
                    parts[0].number,
                    line.number,
                    parts[0].start,
                    line.end,
                    original=_raw_text(b"\n".join(p.data for p in parts), 4096),
                    error=f"line {parts[0].number}: a quoted field is never closed (record "
                    f"longer than {self.max_record_bytes} bytes)",
                )
                parts, size, quotes = [], 0, CsvQuotes()
                continue
            if not ended:
                continue
            yield self._csv(header, parts)
            parts, size = [], 0
        if parts:
            yield Record(
                parts[0].number,
                parts[-1].number,
                parts[0].start,
                parts[-1].end,
                original=_raw_text(b"\n".join(p.data for p in parts)),
                error=f"line {parts[0].number}: a quoted field is never closed before the end of "
                "the file",
            )

    def _ndjson(self, line: Line) -> Record | Line:
        data = line.data
        if data[:1] == b"{" and not line.overlong:
            # The fast path: strict JSON (UTF-8, no NaN, no lone surrogate) already in shape.
            try:
                obj = orjson.loads(data)
            except orjson.JSONDecodeError:
                pass  # the careful path below says why
            else:
                if _sendable_as_is(self.kind, obj):
                    return Record(line.number, line.number, line.start, line.end, data=data)
        record = Record(line.number, line.number, line.start, line.end)
        if line.overlong:
            record.original = _raw_text(line.data, 4096)
            record.error = f"line {line.number}: longer than {self.max_record_bytes} bytes"
            return record
        if not line.data.strip():
            return line
        try:
            text = _decode(line.data, line.number)
            if line.number == 1:
                text = text.removeprefix("\ufeff")
            try:
                obj = json.loads(text)
            except ValueError as exc:
                raise _Reject(f"line {line.number}: invalid JSON: {exc}") from None
            if not isinstance(obj, dict):
                raise _Reject(f"line {line.number}: not a JSON object")
            record.original = obj
            record.data = _encode(_from_object(self.kind, obj, line.number), line.number)
        except _Reject as exc:
            record.error = str(exc)
            if record.original is None or json_problem(record.original, "") is not None:
                record.original = _raw_text(line.data)  # (the dead-letter file is JSON too)
        return record

    def _csv(self, header: list[str], parts: list[Line]) -> Record:
        first, last = parts[0], parts[-1]
        record = Record(first.number, last.number, first.start, last.end)
        raw = _joined(parts)
        try:
            text = _decode(raw, first.number)
            row = _parse_csv_row(text, first.number)
            if len(row) != len(header):
                raise _Reject(
                    f"line {first.number}: {len(row)} fields where the header has {len(header)}"
                )
            record.original = dict(zip(header, row, strict=True))
            record.data = _encode(_from_row(self.kind, header, row, first.number), first.number)
        except _Reject as exc:
            record.error = str(exc)
            if record.original is None:
                record.original = _raw_text(raw)
        return record

    def original_at(self, start: int, end: int, line: int) -> Any:
        """What the file holds for the record at ``start:end`` (sent, so well-formed), read again.

        Batches keep only the encoded bytes of the records they send, so a record Iterable
        refuses gets its dead-letter entry from the file. The read position is restored: the
        record stream may still be reading the same handle.
        """
        where = self.handle.tell()
        try:
            self.handle.seek(start)
            raw = self.handle.read(end - start)
        finally:
            self.handle.seek(where)
        raw = raw[:-1] if raw.endswith(b"\n") else raw
        # As iter_lines gives them: lines without their \r\n, joined by \n.
        raw = b"\n".join(part.rstrip(b"\r") for part in raw.split(b"\n"))
        try:
            text = raw.decode("utf-8")
            if self.fmt == "ndjson":
                return json.loads(text.removeprefix("\ufeff") if line == 1 else text)
            return dict(zip(self._require_header(), _parse_csv_row(text, line), strict=True))
        except (ValueError, _Reject):  # the file changed under the import: keep its text
            return _raw_text(raw)


def detect_format(handle: IO[bytes], where: str, fmt: str) -> str:
    """``fmt`` unless it is ``auto``: then by ``where``'s extension, else by the first bytes."""
    if fmt != "auto":
        return fmt
    suffix = Path(where.split("?")[0]).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".ndjson", ".jsonl", ".json"):
        return "ndjson"
    handle.seek(0)
    head = handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    handle.seek(0)
    return "ndjson" if head.startswith(b"{") else "csv"
