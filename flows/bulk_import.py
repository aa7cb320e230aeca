"""``bulk_import``: stream users or events from a CSV or NDJSON file into Iterable, resumably.

Every record of the file ends in exactly one of three places: **done** (Iterable accepted it),
**rejected** (a line in the dead-letter file, with its line number, the record and the reason), or
**still to do** (after the checkpoint; the next run continues there).

How a file becomes requests:

* The file is read as a stream, one record at a time; it never sits whole in memory.
* Records are packed into request bodies by **bytes**, under ``batch_bytes`` (3.5 MB by default,
  below users/bulkUpdate's 4 MB cap), optionally also by count.
* Each record is encoded once, when it is read: an NDJSON line already in Iterable's shape is
  sent as the line itself; any other record is converted and encoded then. A body is those bytes
  joined (``prefect_iterable.api``'s ``RawJson``), never decoded or encoded again; a batch keeps only them
  and each record's line and offsets (a record Iterable refuses is read again from the file for
  the dead-letter file).
* A few requests are in flight at once (a thread pool sharing one client); the client's limiter
  keeps them at the endpoint's documented rate (bulkUpdate 5/s, trackBulk 10/s), so Iterable never
  has to answer 429.
* Iterable answers a batch 200 and names each record it refused (a malformed address, an unknown
  or forgotten user, a disallowed event name): those go to the dead-letter file with Iterable's
  reason (``Iterable: invalidEmails``), the others are done. Records are checked before sending
  only for what Iterable could not read at all (no identifier, no event name, not JSON); an
  identifier's format is Iterable's to judge.
* A batch that Iterable refuses as a whole with a 400 is split in halves and sent again, until the
  record at fault is alone and can be rejected by itself.
* Batches are committed in file order: the checkpoint (``<name>.checkpoint.json``, written
  atomically after each accepted batch) only advances over a contiguous prefix of completed
  batches, so a crash can at worst resend the batches that were in flight.

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

Events without an ``id`` get one: the first 32 hex digits of the SHA-256 of the event's canonical
JSON (sorted keys, no spaces) without ``id``. Iterable updates an event whose id it already has, so
resending a batch after a crash, or importing the same file again, does not duplicate events.
Two identical events (same user, name, time and fields) in one file become one; give them a
``createdAt`` or an ``id`` to keep them apart.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from array import array
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Annotated, Any, Literal

import orjson
from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from prefect.runtime import flow_run
from pydantic import BaseModel, Field

from prefect_iterable.api import RawJson
from prefect_iterable.api._requests import json_problem
from prefect_iterable.api.errors import BadRequest, IterableError
from prefect_iterable.api.models import BulkResult
from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.flows._files import (
    Line,
    append_jsonl,
    atomic_write_json,
    iter_lines,
    open_source,
)

__all__ = ["BulkImportResult", "BulkImportStopped", "bulk_import", "event_id"]

ACTIONS = {"users": "ITERABLE_BULK_UPDATE_USERS", "events": "ITERABLE_TRACK_EVENTS_BULK"}
LIST_KEY = {"users": "users", "events": "events"}
#: users/bulkUpdate's documented body cap; trackBulk documents none, so the same cap is used.
MAX_BODY_BYTES = 4 * 1024 * 1024
_BODY_OVERHEAD = 64  # {"users":[ … ]} and ,"createNewFields":false, with room to spare
CHECKPOINT_VERSION = 1

_USER_TOP = {"email", "userId", "preferUserId", "mergeNestedObjects"}
_EVENT_TOP = {"email", "userId", "eventName", "id", "createdAt", "campaignId", "templateId"}
_INT_FIELDS = {"createdAt", "campaignId", "templateId"}
_BOOL_FIELDS = {"preferUserId", "mergeNestedObjects"}
_INT = re.compile(r"^-?(?:0|[1-9][0-9]{0,15})$")
_FLOAT = re.compile(r"^-?(?:0|[1-9][0-9]*)\.[0-9]+(?:[eE][-+]?[0-9]+)?$")


class BulkImportStopped(RuntimeError):
    """The import stopped before the end of the file; the checkpoint says where to resume."""


def event_id(event: dict[str, Any]) -> str:
    """A deterministic id for an event: SHA-256 of its canonical JSON without ``id``, 32 hex."""
    body = {k: v for k, v in event.items() if k != "id"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


# ---- reading records -----------------------------------------------------------------------


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


def _csv_quote_state(data: bytes, in_quotes: bool) -> bool:
    """Whether a CSV record is still inside a quoted field after ``data`` (RFC 4180)."""
    if b'"' not in data:
        return in_quotes
    at_field_start = not in_quotes
    i, n = 0, len(data)
    while i < n:
        c = data[i]
        if in_quotes:
            if c == 0x22:
                if i + 1 < n and data[i + 1] == 0x22:
                    i += 1
                else:
                    in_quotes = False
        elif c == 0x22 and at_field_start:
            in_quotes = True
        at_field_start = c == 0x2C and not in_quotes
        i += 1
    return in_quotes


def _parse_csv_row(text: str, line: int) -> list[str]:
    import csv

    try:
        rows = list(csv.reader([text], strict=True))
    except csv.Error as exc:
        raise _Reject(f"line {line}: broken CSV row: {exc}") from None
    return rows[0] if rows else []


class Reader:
    """Records of one input file, from a byte offset, in file order.

    A plain class (not a dataclass) so that Prefect passes it to the task as it is.
    """

    def __init__(self, handle: IO[bytes], kind: str, fmt: str, max_record_bytes: int) -> None:
        self.handle = handle
        self.kind = kind
        self.fmt = fmt
        self.max_record_bytes = max_record_bytes
        self.header: list[str] | None = None

    def read_header(self) -> tuple[int, int]:
        """Read the CSV header (the file's first record): returns ``(end offset, last line)``."""
        lines = iter_lines(self.handle, start=0, limit=self.max_record_bytes)
        parts: list[bytes] = []
        in_quotes = False
        for line in lines:
            if line.overlong:
                raise ValueError(f"source: the CSV header (line {line.number}) is too long")
            if line.number == 1 and line.data.startswith(b"\xef\xbb\xbf"):
                line = Line(line.number, line.start, line.end, line.data[3:])
            if not parts and not line.data.strip() and not in_quotes:
                continue
            parts.append(line.data)
            in_quotes = _csv_quote_state(line.data, in_quotes)
            if not in_quotes:
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
        parts: list[Line] = []
        size = 0
        in_quotes = False
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
                parts, size, in_quotes = [], 0, False
                continue
            if not parts and not line.data.strip():
                yield line
                continue
            parts.append(line)
            size += len(line.data) + 1
            in_quotes = _csv_quote_state(line.data, in_quotes)
            if in_quotes and size > self.max_record_bytes:
                yield Record(
                    parts[0].number,
                    line.number,
                    parts[0].start,
                    line.end,
                    original=_raw_text(b"\n".join(p.data for p in parts), 4096),
                    error=f"line {parts[0].number}: a quoted field is never closed (record "
                    f"longer than {self.max_record_bytes} bytes)",
                )
                parts, size, in_quotes = [], 0, False
                continue
            if in_quotes:
                continue
            yield self._csv(parts)
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

    def _csv(self, parts: list[Line]) -> Record:
        assert self.header is not None
        first, last = parts[0], parts[-1]
        record = Record(first.number, last.number, first.start, last.end)
        raw = b"\n".join(p.data for p in parts)
        try:
            text = _decode(raw, first.number)
            row = _parse_csv_row(text, first.number)
            if len(row) != len(self.header):
                raise _Reject(
                    f"line {first.number}: {len(row)} fields where the header has "
                    f"{len(self.header)}"
                )
            record.original = dict(zip(self.header, row, strict=True))
            record.data = _encode(
                _from_row(self.kind, self.header, row, first.number), first.number
            )
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
            assert self.header is not None
            return dict(zip(self.header, _parse_csv_row(text, line), strict=True))
        except (ValueError, _Reject):  # the file changed under the import: keep its text
            return _raw_text(raw)


def _detect_format(handle: IO[bytes], where: str, fmt: str) -> str:
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


# ---- batches, sending, committing ----------------------------------------------------------


#: A batch's body is built in pieces of about this many bytes (one piece per ~100 records), so
#: that no 4 MB buffer is ever allocated, copied, or left as a hole in the heap.
_PIECE_BYTES = 1 << 16


class Batch:
    """Consecutive records: the unit the checkpoint advances over, and one request's body.

    It keeps no Python object per record it sends: their encoded bytes are joined, as the JSON
    array the request carries, into pieces of about ``_PIECE_BYTES``, and their lines and file
    offsets sit in arrays. Only records rejected before sending are kept whole, with what the
    dead-letter file needs.
    """

    def __init__(self, number: int) -> None:
        self.number = number
        self.end = 0  # byte offset just past the last record (or blank line) it covers
        self.last_line = 0
        self.first_line = 0  # of its first record, sendable or not
        self.body_bytes = _BODY_OVERHEAD
        self.count = 0  # records to send
        self._pieces: list[bytes] = [b"["]
        self._pending: list[bytes] = []  # records not yet joined into a piece
        self._pending_bytes = 0
        self._length = 1  # of the text so far, with its "[" and a comma after each record
        #: The text ``[record,record,…]`` in pieces, once ``finish()``ed; dropped once sent.
        self.payload: tuple[bytes, ...] | None = None
        # Per record to send: where its bytes start in the text (and, last, the text's length),
        # its line, and its byte range in the file.
        self.starts = array("q")
        self.lines = array("q")
        self.offsets = array("q")
        self.ends = array("q")
        #: Records rejected before sending, each after the first ``position`` records to send.
        self.rejected: list[tuple[int, Record]] = []

    def add(self, record: Record) -> None:
        data = record.data
        assert data is not None
        if not self.first_line:
            self.first_line = record.line
        self._pending.append(data)
        self._pending_bytes += len(data)
        self.starts.append(self._length)
        self._length += len(data) + 1
        self.lines.append(record.line)
        self.offsets.append(record.start)
        self.ends.append(record.end)
        self.count += 1
        self.body_bytes += len(data) + 1
        if self._pending_bytes >= _PIECE_BYTES:
            self._join_pending()

    def _join_pending(self) -> None:
        if self._pending:
            if len(self._pieces) > 1:  # after earlier records: starts with their comma
                self._pending.insert(0, b"")
            self._pieces.append(b",".join(self._pending))
            self._pending, self._pending_bytes = [], 0

    def reject(self, record: Record) -> None:
        if not self.first_line:
            self.first_line = record.line
        self.rejected.append((self.count, record))

    def finish(self) -> Batch:
        """Close the JSON array; the records to send are now ``payload``."""
        if self.count and self.payload is None:
            self._join_pending()
            self._pieces.append(b"]")
            self.payload = tuple(self._pieces)
            self.starts.append(self._length)
        self._pieces, self._pending = [], []
        return self

    def _text(self, start: int, stop: int) -> bytes:
        """Bytes ``start`` to ``stop - 1`` of the text, in one piece."""
        assert self.payload is not None
        found: list[memoryview] = []
        offset = 0
        for piece in self.payload:
            if offset < stop and start < offset + len(piece):
                found.append(memoryview(piece)[max(start - offset, 0) : stop - offset])
            offset += len(piece)
        return b"".join(found)

    def part(self, first: int, stop: int) -> tuple[bytes, ...]:
        """Records ``first`` to ``stop - 1`` as a JSON array, in pieces."""
        assert self.payload is not None
        if (first, stop) == (0, self.count):
            return self.payload
        return (b"[", self._text(self.starts[first], self.starts[stop] - 1), b"]")

    def bodies(self, first: int, stop: int) -> list[dict[str, Any]]:
        """Records ``first`` to ``stop - 1`` decoded again (to match Iterable's refusals)."""
        base = self.starts[first]
        text = memoryview(self._text(base, self.starts[stop] - 1))
        return [
            orjson.loads(text[self.starts[i] - base : self.starts[i + 1] - 1 - base])
            for i in range(first, stop)
        ]


@dataclass
class Sent:
    """A batch's outcome: per sendable record, ``None`` (done) or the reason it was refused."""

    reasons: list[str | None]
    requests: int
    bodies: list[int]


def _reasons(kind: str, bodies: list[dict[str, Any]], result: BulkResult) -> list[str | None]:
    """Match Iterable's per-record refusals to the records (wire bodies) of one request."""
    reasons: list[str | None] = [None] * len(bodies)
    if not result.rejected:
        return reasons
    by_email: dict[str, list[int]] = {}
    by_user_id: dict[str, list[int]] = {}
    by_name: dict[str, list[int]] = {}
    for index, body in enumerate(bodies):
        if body.get("email"):
            by_email.setdefault(str(body["email"]).lower(), []).append(index)
        if body.get("userId"):
            by_user_id.setdefault(str(body["userId"]), []).append(index)
        if kind == "events":
            by_name.setdefault(str(body.get("eventName")), []).append(index)
    for rejection in result.rejected:
        if rejection.kind == "email":
            hits = by_email.get(rejection.identifier.lower(), [])
        elif rejection.kind == "userId":
            hits = by_user_id.get(rejection.identifier, [])
        else:
            hits = by_name.get(rejection.identifier, [])
        for index in hits:
            if reasons[index] is None:
                reasons[index] = f"Iterable: {rejection.reason}"
    return reasons


class Sender:
    """Sends one batch (in a worker thread); splits a batch Iterable refuses whole with a 400.

    The batch's records go as they were encoded when they were read (``RawJson``): the client
    neither decodes nor re-encodes them.
    """

    def __init__(self, credentials: IterableCredentials, kind: str, create_new_fields: bool | None):
        self.client = credentials.get_client()
        self.kind = kind
        self.action = ACTIONS[kind]
        self.create_new_fields = create_new_fields
        # Every event carries an id (its own or a deterministic one): Iterable deduplicates them,
        # so the client may resend a trackBulk after a 5xx.
        self.every_item_has = frozenset({"id"}) if kind == "events" else frozenset()

    def __call__(self, batch: Batch) -> Sent:
        sent = Sent([], 0, [])
        try:
            self._send(batch, 0, batch.count, sent)
        finally:
            batch.payload = None  # sent or not, the body is no longer needed
        return sent

    def _send(self, batch: Batch, first: int, stop: int, sent: Sent) -> None:
        array_json = RawJson(batch.part(first, stop), self.every_item_has)
        values: dict[str, Any] = {LIST_KEY[self.kind]: array_json}
        if self.kind == "users" and self.create_new_fields is not None:
            values["create_new_fields"] = self.create_new_fields
        sent.requests += 1
        sent.bodies.append(_BODY_OVERHEAD + batch.starts[stop] - batch.starts[first])
        try:
            result = self.client.call(self.action, values)
        except BadRequest as exc:
            if stop - first == 1:
                sent.reasons.append(f"Iterable refused it: {exc.code or exc.status}: {exc.msg}")
                return
            middle = (first + stop) // 2
            self._send(batch, first, middle, sent)
            self._send(batch, middle, stop, sent)
            return
        if result.rejected:
            sent.reasons.extend(_reasons(self.kind, batch.bodies(first, stop), result))
        else:
            sent.reasons.extend([None] * (stop - first))


@dataclass
class Checkpoint:
    """What is accounted for: every record before ``offset`` is done or in the dead-letter file."""

    source: str
    kind: str
    format: str
    offset: int = 0
    line: int = 0  # the last line accounted for
    done: int = 0
    rejected: int = 0
    dead_letter_bytes: int = 0
    prefix_sha256: str = ""  # of the file's first 64 KiB, to notice a different file
    complete: bool = False
    updated_at: str = ""
    version: int = CHECKPOINT_VERSION

    def dump(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _prefix_hash(handle: IO[bytes]) -> str:
    handle.seek(0)
    digest = hashlib.sha256(handle.read(65_536)).hexdigest()
    handle.seek(0)
    return digest


class Committer:
    """Writes, in file order, each finished batch's rejections and then the checkpoint."""

    def __init__(
        self,
        checkpoint: Checkpoint,
        checkpoint_path: Path,
        dead_letter_path: Path,
        size: int,
        progress_id: Any,
    ) -> None:
        self.checkpoint = checkpoint
        self.checkpoint_path = checkpoint_path
        self.dead_letter_path = dead_letter_path
        self.size = size
        self.progress_id = progress_id
        self._last_progress = 0.0
        self.max_body = 0
        self.requests = 0

    def commit(self, batch: Batch, sent: Sent | None, reader: Reader) -> None:
        reasons = sent.reasons if sent else []
        # In file order: a record rejected before sending comes before the record to send at
        # its position; records Iterable refused are read again from the file.
        found: list[tuple[int, int, dict[str, Any]]] = [
            (
                position,
                0,
                {
                    "line": record.line,
                    "record": record.original,
                    "reason": record.error,
                    "offset": record.start,
                    "length": record.end - record.start,
                },
            )
            for position, record in batch.rejected
        ]
        refused = [i for i, reason in enumerate(reasons) if reason is not None]
        for i in refused:
            start, end, line = batch.offsets[i], batch.ends[i], batch.lines[i]
            found.append(
                (
                    i,
                    1,
                    {
                        "line": line,
                        "record": reader.original_at(start, end, line),
                        "reason": reasons[i],
                        "offset": start,
                        "length": end - start,
                    },
                )
            )
        found.sort(key=lambda item: item[:2])
        dead = [entry for _, _, entry in found]
        done = batch.count - len(refused)
        if sent:
            self.requests += sent.requests
            self.max_body = max([self.max_body, *sent.bodies])
        if dead:
            self.checkpoint.dead_letter_bytes = append_jsonl(self.dead_letter_path, dead)
        cp = self.checkpoint
        cp.offset = batch.end
        cp.line = batch.last_line
        cp.done += done
        cp.rejected += len(dead)
        self.save()
        self.progress()

    def save(self) -> None:
        self.checkpoint.updated_at = datetime.now(timezone.utc).isoformat()
        atomic_write_json(self.checkpoint_path, self.checkpoint.dump())

    def progress(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.progress_id is None or (not force and now - self._last_progress < 0.5):
            return
        self._last_progress = now
        percent = (
            100.0 if self.size == 0 else min(100.0, 100.0 * self.checkpoint.offset / self.size)
        )
        update_progress_artifact(
            artifact_id=self.progress_id,
            progress=percent,
            description=f"{self.checkpoint.done} done, {self.checkpoint.rejected} rejected, "
            f"line {self.checkpoint.line}",
        )


# ---- the task ------------------------------------------------------------------------------


class ImportOutcome(BaseModel):
    """What the import task got through before it returned."""

    requests: int
    max_body_bytes: int
    stopped: str | None = None


def _batches(
    records: Iterator[Record | Line],
    *,
    batch_bytes: int,
    max_records: int | None,
    first_number: int,
) -> Iterator[Batch]:
    """Group records into batches whose sendable bodies stay under ``batch_bytes``."""
    number = first_number
    batch = Batch(number)
    for item in records:
        if type(item) is Line:  # a blank line: covered by the batch that holds it
            batch.end, batch.last_line = item.end, item.number
            continue
        record: Record = item  # type: ignore[assignment]
        if record.data is not None:
            size = len(record.data)
            if _BODY_OVERHEAD + size + 1 > MAX_BODY_BYTES:
                record.original = record.the_original()
                record.error = (
                    f"line {record.line}: the record is {size} bytes; a request body may be "
                    f"at most {MAX_BODY_BYTES} bytes"
                )
                record.data = None
            else:
                full = batch.body_bytes + size + 1 > batch_bytes
                counted = max_records is not None and batch.count >= max_records
                if batch.count and (full or counted):
                    yield batch.finish()
                    number += 1
                    batch = Batch(number)
                batch.add(record)
        if record.data is None:
            batch.reject(record)
        batch.end = record.end
        batch.last_line = record.last_line
    if batch.count or batch.rejected or batch.end:
        yield batch.finish()


@task(
    name="bulk-import-records",
    task_run_name="bulk-import-{kind}",
    cache_policy=NO_CACHE,
    retries=0,
    tags=["iterable", "iterable-write"],
)
def import_records(
    reader: Reader,
    *,
    kind: str,
    credentials: IterableCredentials,
    committer: Committer,
    batch_bytes: int,
    max_batch_records: int | None,
    concurrency: int,
    create_new_fields: bool | None,
) -> ImportOutcome:
    """Send the file's records from the checkpoint on, a few batches in flight, in file order.

    A batch's outcome is committed (dead letters, then the checkpoint) only when every batch before
    it has been committed. On an error that another run may get past (a timeout, a 5xx after the
    client's retries, a 429 it would not wait for), the batches in flight are finished, the
    committed prefix is kept, and the task returns the reason; nothing after it is counted as done.

    At most ``concurrency`` batches are in flight, and the next one is read and packed while the
    others are: it is started once there is room for it, after the batches ahead have been
    settled, so that no batch is sent after one before it was refused, and at most
    ``concurrency`` bodies are held at once.
    """
    logger = get_run_logger()
    sender = Sender(credentials, kind, create_new_fields)
    checkpoint = committer.checkpoint
    records = reader.records(checkpoint.offset, checkpoint.line + 1)
    inflight: deque[tuple[Batch, Future[Sent] | None]] = deque()
    stopped: str | None = None

    def settle_head() -> None:
        nonlocal stopped
        batch, future = inflight.popleft()
        if stopped is not None:
            if future is not None:
                future.exception()  # wait for it; its records stay "to do"
            return
        try:
            sent = future.result() if future is not None else None
        except IterableError as exc:
            stopped = f"batch {batch.number} (from line {batch.first_line}): {exc}"
            return
        committer.commit(batch, sent, reader)

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="bulk-import") as pool:
        try:
            for batch in _batches(
                records, batch_bytes=batch_bytes, max_records=max_batch_records, first_number=1
            ):
                future = pool.submit(sender, batch) if batch.count else None
                inflight.append((batch, future))
                # Settle finished batches in order, and make room for the next batch before it
                # is read: a worker is free for it when it is submitted (none waits in the
                # pool's queue, to be sent after a batch before it was refused), and no finished
                # body waits for room in memory.
                while inflight and (
                    len(inflight) >= concurrency or inflight[0][1] is None or inflight[0][1].done()
                ):
                    settle_head()
                if stopped is not None:
                    break
            while inflight:
                settle_head()
        finally:
            while inflight:  # an unexpected error: wait for what is in flight, commit nothing
                _, future = inflight.popleft()
                if future is not None:
                    future.exception()
    if stopped is None:
        checkpoint.complete = True
        committer.save()
    committer.progress(force=True)
    if stopped:
        logger.error("import stopped: %s", stopped)
    return ImportOutcome(
        requests=committer.requests, max_body_bytes=committer.max_body, stopped=stopped
    )


# ---- the flow ------------------------------------------------------------------------------


class BulkImportResult(BaseModel):
    """Where every record of the file ended up."""

    kind: Literal["users", "events"]
    source: str
    format: Literal["csv", "ndjson"]
    done: int = Field(description="Records Iterable accepted (all runs of this checkpoint).")
    rejected: int = Field(description="Records in the dead-letter file, with their reasons.")
    to_do: int = Field(description="Records after the checkpoint, not yet sent or not accepted.")
    complete: bool = Field(description="The whole file is accounted for.")
    resumed_from_line: int = Field(description="0 for a fresh start, else the checkpoint's line.")
    requests: int = Field(description="Requests this run sent.")
    max_body_bytes: int = Field(description="The largest request body this run sent.")
    checkpoint: str
    dead_letter: str
    stopped: str | None = None
    flow_run_id: str | None = None


def _count_rest(reader: Reader, offset: int, line: int) -> int:
    return sum(1 for item in reader.records(offset, line + 1) if isinstance(item, Record))


@flow(name="bulk-import", log_prints=False)
def bulk_import(
    source: Annotated[
        str, Field(description="The file: a local path, or a path inside source_block.")
    ],
    kind: Annotated[
        Literal["users", "events"],
        Field(description="users (users/bulkUpdate) or events (events/trackBulk)."),
    ] = "users",
    format: Annotated[  # noqa: A002 - the parameter's name in the UI form
        Literal["auto", "csv", "ndjson"],
        Field(description="auto: by the file's extension (.csv, .ndjson/.jsonl), else by content."),
    ] = "auto",
    source_block: Annotated[
        str | None,
        Field(
            description="A saved filesystem block holding the file: 'local-file-system/NAME' or "
            "'remote-file-system/NAME'."
        ),
    ] = None,
    credentials_block: Annotated[
        str | None,
        Field(
            description="Name of a saved IterableCredentials block; empty: ITERABLE_* environment "
            "variables."
        ),
    ] = None,
    state_dir: Annotated[
        str, Field(description="Directory for the checkpoint and the dead-letter file.")
    ] = "./bulk-import-state",
    resume: Annotated[
        bool,
        Field(description="Continue from the checkpoint; false starts the file over."),
    ] = True,
    batch_bytes: Annotated[
        int,
        Field(
            ge=1024,
            le=MAX_BODY_BYTES,
            description="Target request body size in bytes (the cap is 4 MB).",
        ),
    ] = 3_500_000,
    max_batch_records: Annotated[
        int | None, Field(ge=1, description="Also cap the records per request (optional).")
    ] = None,
    concurrency: Annotated[
        int, Field(ge=1, le=16, description="Requests in flight at once (the rate stays capped).")
    ] = 4,
    max_record_bytes: Annotated[
        int, Field(ge=1024, description="A longer line or CSV record is rejected, not read whole.")
    ] = 1_000_000,
    create_new_fields: Annotated[
        bool | None,
        Field(description="users only: add unknown fields to the project (default: its setting)."),
    ] = None,
) -> BulkImportResult:
    """Import users or events from a CSV or NDJSON file into Iterable, resumably, in bulk.

    Steps:
        1. Check the parameters and the credentials' permission, open the file and detect its
           format; an unreadable file or a bad CSV header raises before any request.
        2. Read the checkpoint in ``state_dir`` (unless ``resume`` is false) and continue after
           it; the dead-letter file is cut back to what the checkpoint accounts for.
        3. Stream the records, map CSV columns to fields, give events without an id a
           deterministic one, and reject records that cannot be sent (bad encoding, broken CSV
           row or JSON line, over-long line, missing identifier) with a reason naming the line.
        4. Pack records into bodies under ``batch_bytes`` and send them, several in flight, at
           the endpoint's rate; Iterable's per-record refusals go to the dead-letter file.
        5. After each batch, in file order, write the dead letters and then the checkpoint
           (atomically), and update the progress artifact.
        6. Publish a table artifact (done, rejected, to do) and emit ``iterable.bulk-import.finished``.

    CSV columns: ``email``, ``userId`` (and for events ``eventName``, ``id``, ``createdAt``,
    ``campaignId``, ``templateId``) are top-level fields; ``dataFields.a.b`` nests; any other
    column goes into ``dataFields``. Empty cells are left out; ``true``/``false`` become booleans,
    plain integers (no leading zero, at most 16 digits) integers, decimals floats, and cells that
    are valid JSON arrays or objects JSON; the rest stays text. Events without an ``id`` get the
    first 32 hex digits of the SHA-256 of their canonical JSON, so a resend deduplicates.

    Args:
        source: the file's path (inside ``source_block`` when given).
        kind: ``users`` or ``events``.
        format: ``csv``, ``ndjson`` or ``auto``.
        source_block: a saved ``local-file-system/NAME`` or ``remote-file-system/NAME`` block.
        credentials_block: the saved ``IterableCredentials`` block's name; None reads the
            environment.
        state_dir: where the checkpoint and the dead-letter file go.
        resume: continue from the checkpoint (true) or start over (false).
        batch_bytes: target body size per request.
        max_batch_records: optional cap on records per request.
        concurrency: requests in flight.
        max_record_bytes: longest line (or CSV record) accepted.
        create_new_fields: for users, Iterable's ``createNewFields``.

    Returns:
        Counts of done, rejected and still-to-do records, and the checkpoint and dead-letter paths.

    Raises:
        BulkImportStopped: the import could not finish (Iterable kept failing); everything
            committed is in the checkpoint, and a new run continues from there.
    """
    logger = get_run_logger()
    credentials = IterableCredentials.load_or_env(credentials_block)
    handle, size, where = open_source(source, source_block)
    try:
        fmt = _detect_format(handle, where, format)
        reader = Reader(handle, kind, fmt, max_record_bytes)
        header_end, header_line = reader.read_header() if fmt == "csv" else (0, 0)

        state = Path(state_dir).expanduser()
        state.mkdir(parents=True, exist_ok=True)
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(where).stem)[:60] or "source"
        key = hashlib.sha256(f"{kind}|{where}".encode()).hexdigest()[:12]
        checkpoint_path = state / f"{stem}-{kind}-{key}.checkpoint.json"
        dead_letter_path = state / f"{stem}-{kind}-{key}.rejected.ndjson"
        prefix = _prefix_hash(handle)

        checkpoint = Checkpoint(where, kind, fmt, offset=header_end, line=header_line)
        resumed_from = 0
        if resume and checkpoint_path.exists():
            saved = json.loads(checkpoint_path.read_text())
            if saved.get("version") != CHECKPOINT_VERSION:
                raise ValueError(
                    f"{checkpoint_path}: unknown checkpoint version; pass resume=false"
                )
            if (saved.get("kind"), saved.get("format")) != (kind, fmt):
                raise ValueError(
                    f"{checkpoint_path} is for {saved.get('kind')} as {saved.get('format')}, not "
                    f"{kind} as {fmt}; pass resume=false to start over"
                )
            if saved.get("prefix_sha256") != prefix or saved.get("offset", 0) > size:
                raise ValueError(
                    f"source: {where} is not the file {checkpoint_path.name} was made for (it "
                    "changed); pass resume=false to start over"
                )
            checkpoint = Checkpoint(**saved)
            resumed_from = checkpoint.line
            logger.info(
                "resuming at line %s (%s done, %s rejected so far)",
                checkpoint.line + 1,
                checkpoint.done,
                checkpoint.rejected,
            )
        checkpoint.prefix_sha256 = prefix
        checkpoint.complete = False
        # The dead-letter file holds exactly what the checkpoint accounts for.
        with dead_letter_path.open("ab") as out:
            out.truncate(checkpoint.dead_letter_bytes)

        progress_id = create_progress_artifact(
            progress=100.0 * checkpoint.offset / size if size else 0.0,
            key=f"bulk-import-{kind}-progress",
            description=f"bulk import of {kind} from {Path(where).name}",
        )
        committer = Committer(checkpoint, checkpoint_path, dead_letter_path, size, progress_id)
        committer.save()
        outcome = import_records(
            reader,
            kind=kind,
            credentials=credentials,
            committer=committer,
            batch_bytes=batch_bytes,
            max_batch_records=max_batch_records,
            concurrency=concurrency,
            create_new_fields=create_new_fields,
        )
        to_do = (
            0 if checkpoint.complete else _count_rest(reader, checkpoint.offset, checkpoint.line)
        )
    finally:
        handle.close()

    result = BulkImportResult(
        kind=kind,
        source=where,
        format=fmt,
        done=checkpoint.done,
        rejected=checkpoint.rejected,
        to_do=to_do,
        complete=checkpoint.complete,
        resumed_from_line=resumed_from,
        requests=outcome.requests,
        max_body_bytes=outcome.max_body_bytes,
        checkpoint=str(checkpoint_path.resolve()),
        dead_letter=str(dead_letter_path.resolve()),
        stopped=outcome.stopped,
        flow_run_id=str(flow_run.id) if flow_run.id else None,
    )
    create_table_artifact(
        table=[
            {"records": "done", "count": result.done},
            {"records": "rejected", "count": result.rejected},
            {"records": "to do", "count": result.to_do},
        ],
        key=f"bulk-import-{kind}",
        description=f"Bulk import of {kind} from {Path(where).name}: "
        + ("complete" if result.complete else f"stopped at line {checkpoint.line}")
        + f". Dead letters: {dead_letter_path.name}",
    )
    emit_event(
        event="iterable.bulk-import.finished"
        if result.complete
        else "iterable.bulk-import.stopped",
        resource={"prefect.resource.id": f"iterable.bulk-import.{key}"},
        payload={
            "kind": kind,
            "done": result.done,
            "rejected": result.rejected,
            "to_do": result.to_do,
            "requests": result.requests,
        },
    )
    logger.info(
        "%s: %s done, %s rejected, %s to do (%s requests)",
        kind,
        result.done,
        result.rejected,
        result.to_do,
        result.requests,
    )
    if outcome.stopped:
        raise BulkImportStopped(
            f"{result.to_do} records still to do after line {checkpoint.line}: {outcome.stopped}. "
            "Run again to resume from the checkpoint."
        )
    return result
