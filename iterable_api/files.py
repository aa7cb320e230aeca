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
    "FileSummary",
    "RecordCounter",
    "RecordFile",
    "RecordKind",
    "RecordTally",
    "copy_records",
]

RecordKind = Literal["csv", "json"]


class RecordCounter:
    """Counts the records of a CSV (header excluded) or NDJSON stream fed in chunks.

    CSV records end at a newline outside double quotes (RFC 4180: a quoted field may hold
    newlines, and ``""`` inside quotes toggles twice, so it needs no special case).
    """

    def __init__(self, kind: RecordKind) -> None:
        self.kind = kind
        self._newlines = 0
        self._in_quotes = False
        self._size = 0
        self._last = b""

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        self._size += len(chunk)
        self._last = chunk[-1:]
        if self.kind == "json" or (not self._in_quotes and b'"' not in chunk):
            self._newlines += chunk.count(b"\n")
            return
        parts = chunk.split(b'"')
        for index, part in enumerate(parts):
            if index:
                self._in_quotes = not self._in_quotes
            if not self._in_quotes:
                self._newlines += part.count(b"\n")

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
