"""Streamed answers written to files: one routine that writes, hashes and counts records.

Export bodies (CSV or NDJSON) can be gigabytes: they are written as they arrive, and their size,
SHA-256 and record count are taken on the way, so that nothing reads them twice. CSV records are
counted as the ``csv`` module reads them: a newline inside a quoted field is not a new record.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Literal

__all__ = [
    "CsvQuotes",
    "FileSummary",
    "RecordCounter",
    "RecordFile",
    "RecordKind",
    "RecordTally",
    "copy_records",
]

RecordKind = Literal["csv", "json"]


class CsvQuotes:
    """Where a CSV stream stands with respect to quotes (RFC 4180), fed in pieces of any size.

    The one CSV quote machine of the project: the bulk import feeds it line by line to find where
    a record ends, ``RecordCounter`` chunk by chunk to count records. It reads quotes as Python's
    ``csv`` module does: a quote opens a quoted field only at the start of a field (after a
    comma or a newline, or at the start of the stream after an optional UTF-8 BOM); inside one,
    ``""`` is a quote and a lone quote closes it; a newline inside it is part of the field. A
    quote in the middle of an unquoted field is text.
    """

    __slots__ = ("_closed", "_field_start", "_started", "in_quotes")

    def __init__(self) -> None:
        #: Inside a quoted field: a newline now is part of the field, not the end of a record.
        self.in_quotes = False
        self._field_start = True
        self._closed = False  # a quoted field's closing quote was the last byte: "" is a quote
        self._started = False

    def feed(self, data: bytes) -> int:
        """Read ``data``; return how many newlines in it end a record (are outside quotes)."""
        if not data:
            return 0
        if not self._started:
            self._started = True
            data = data.removeprefix(b"\xef\xbb\xbf")
        if not self.in_quotes and b'"' not in data:  # the common case: no quote to follow
            self._text(data)
            return data.count(b"\n")
        newlines = 0
        for index, segment in enumerate(data.split(b'"')):
            if index:  # a quote came before this segment
                if self.in_quotes:
                    self.in_quotes, self._closed = False, True
                elif self._closed or self._field_start:
                    self.in_quotes, self._closed, self._field_start = True, False, False
            if segment and not self.in_quotes:
                newlines += segment.count(b"\n")
                self._text(segment)
        return newlines

    def end_of_line(self) -> bool:
        """Read a newline (for callers that split lines themselves): whether it ends a record."""
        if self.in_quotes:
            return False
        self._field_start, self._closed, self._started = True, False, True
        return True

    def _text(self, text: bytes) -> None:
        """Unquoted bytes were read: a field starts next only after a separator."""
        self._closed = False
        self._field_start = text[-1:] in (b",", b"\n")


class RecordCounter:
    """Counts the records of a CSV (header excluded) or NDJSON stream fed in chunks.

    CSV records end at a newline outside quotes (``CsvQuotes``: a quoted field may hold newlines).
    """

    def __init__(self, kind: RecordKind) -> None:
        self.kind = kind
        self._newlines = 0
        self._quotes = CsvQuotes()
        self._size = 0
        self._last = b""

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        self._size += len(chunk)
        self._last = chunk[-1:]
        if self.kind == "json":
            self._newlines += chunk.count(b"\n")
        else:
            self._newlines += self._quotes.feed(chunk)

    @property
    def records(self) -> int:
        if not self._size:
            return 0
        lines = self._newlines + (0 if self._last == b"\n" else 1)
        return max(0, lines - 1) if self.kind == "csv" else lines


@dataclass(frozen=True)
class FileSummary:
    """What a stream held: its size in bytes, SHA-256 (hex) and records."""

    bytes: int
    sha256: str
    rows: int


class RecordTally:
    """Size, SHA-256 and records of a stream fed in chunks: the one routine behind every file
    the library writes or reads back."""

    def __init__(self, kind: RecordKind) -> None:
        self.size = 0
        self._digest = hashlib.sha256()
        self._counter = RecordCounter(kind)

    def feed(self, chunk: bytes) -> None:
        self._digest.update(chunk)
        self._counter.feed(chunk)
        self.size += len(chunk)

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    @property
    def records(self) -> int:
        return self._counter.records

    def summary(self) -> FileSummary:
        return FileSummary(self.size, self.sha256, self.records)


def copy_records(
    chunks: Iterable[bytes],
    out: IO[bytes],
    kind: RecordKind,
    *,
    check: Callable[[], None] | None = None,
) -> FileSummary:
    """Write ``chunks`` to ``out`` as they come, tallying size, SHA-256 and records.

    ``check`` is called before each chunk is written; it raises to stop the copy (a run that is
    being cancelled).
    """
    tally = RecordTally(kind)
    for chunk in chunks:
        if check is not None:
            check()
        out.write(chunk)
        tally.feed(chunk)
    return tally.summary()


class RecordFile:
    """A file written chunk by chunk, hashed and its records counted on the way.

    Examples:
        >>> with RecordFile("out/emailSend.csv", "csv") as out:  # doctest: +SKIP
        ...     for chunk in body.iter_bytes():
        ...         out.write(chunk)
        >>> out.size, out.sha256, out.records  # doctest: +SKIP
    """

    def __init__(self, path: str | Path, kind: RecordKind) -> None:
        self.path = Path(path)
        self._tally = RecordTally(kind)
        self._handle: IO[bytes] | None = None

    def __enter__(self) -> RecordFile:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self.path.open("wb")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._handle is not None:
            self._handle.close()

    def write(self, chunk: bytes) -> None:
        if self._handle is None:
            raise RuntimeError("RecordFile.write outside its with block")
        self._handle.write(chunk)
        self._tally.feed(chunk)

    @property
    def size(self) -> int:
        return self._tally.size

    @property
    def sha256(self) -> str:
        return self._tally.sha256

    @property
    def records(self) -> int:
        return self._tally.records
