"""Records packed into request bodies by bytes: the unit a request carries and a checkpoint covers.

A batch keeps no Python object per record it sends: their encoded bytes are joined, as the JSON
array the request carries, into pieces of about 64 KiB, and their lines and file offsets sit in
arrays. So a batch of 4 MB costs about 4 MB, and its body is dropped as soon as it is sent.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from typing import Any

import orjson

from prefect_iterable.api.bulk.records import Record
from prefect_iterable.api.storage import Line

__all__ = ["BODY_OVERHEAD", "MAX_BODY_BYTES", "Batch", "batches"]

#: users/bulkUpdate's documented body cap; trackBulk documents none, so the same cap is used.
MAX_BODY_BYTES = 4 * 1024 * 1024
#: ``{"users":[ … ]}`` and ``,"createNewFields":false``, with room to spare.
BODY_OVERHEAD = 64

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
        self.body_bytes = BODY_OVERHEAD
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
        """Add a record to send (one with ``data``)."""
        data = record.data
        if data is None:
            raise ValueError(f"line {record.line}: a rejected record cannot be sent; reject() it")
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
        """Add a record rejected before sending (kept whole, for the dead-letter file)."""
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

    def _payload(self) -> tuple[bytes, ...]:
        if self.payload is None:
            raise RuntimeError(f"batch {self.number}: not finished, or its body was released")
        return self.payload

    def _text(self, start: int, stop: int) -> bytes:
        """Bytes ``start`` to ``stop - 1`` of the text, in one piece."""
        found: list[memoryview] = []
        offset = 0
        for piece in self._payload():
            if offset < stop and start < offset + len(piece):
                found.append(memoryview(piece)[max(start - offset, 0) : stop - offset])
            offset += len(piece)
        return b"".join(found)

    def part(self, first: int, stop: int) -> tuple[bytes, ...]:
        """Records ``first`` to ``stop - 1`` as a JSON array, in pieces."""
        payload = self._payload()
        if (first, stop) == (0, self.count):
            return payload
        return (b"[", self._text(self.starts[first], self.starts[stop] - 1), b"]")

    def bodies(self, first: int, stop: int) -> list[dict[str, Any]]:
        """Records ``first`` to ``stop - 1`` decoded again (to match Iterable's refusals)."""
        base = self.starts[first]
        text = memoryview(self._text(base, self.starts[stop] - 1))
        return [
            orjson.loads(text[self.starts[i] - base : self.starts[i + 1] - 1 - base])
            for i in range(first, stop)
        ]


def batches(
    records: Iterator[Record | Line],
    *,
    batch_bytes: int,
    max_records: int | None,
    first_number: int,
) -> Iterator[Batch]:
    """Group records into batches whose sendable bodies stay under ``batch_bytes``.

    One batch is built at a time: the caller holds the ones it has not yet sent. A blank line
    belongs to the batch that holds it; a record too big for any body is rejected in it.
    """
    number = first_number
    batch = Batch(number)
    for item in records:
        if type(item) is Line:  # a blank line: covered by the batch that holds it
            batch.end, batch.last_line = item.end, item.number
            continue
        record: Record = item  # type: ignore[assignment]
        if record.data is not None:
            size = len(record.data)
            if BODY_OVERHEAD + size + 1 > MAX_BODY_BYTES:
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
