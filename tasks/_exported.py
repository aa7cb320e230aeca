"""A streamed export read into records, for exports run without a ``destination``.

Iterable's synchronous exports answer with CSV or newline-delimited JSON. Written to a file they
may be any size; returned as a task result they must fit in memory and in Prefect's result
storage, so they are read up to ``RECORDS_LIMIT`` records and ``BYTES_LIMIT`` bytes, and a larger
answer fails by name (``ExportTooLarge``) rather than being cut silently.
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Iterator
from typing import Any

from prefect_iterable.api import Client
from prefect_iterable.api.catalog import Action, ResponseKind
from prefect_iterable.api.errors import IterableError

__all__ = ["BYTES_LIMIT", "RECORDS_LIMIT", "ExportTooLarge", "read_records"]

#: The most records an export returns without a ``destination``.
RECORDS_LIMIT = 10_000
#: The most bytes of answer an export reads without a ``destination`` (10 MiB).
BYTES_LIMIT = 10 * 1024 * 1024


class ExportTooLarge(IterableError):
    """An export returned as records would exceed ``RECORDS_LIMIT`` or ``BYTES_LIMIT``."""

    def __init__(self, action: str, what: str) -> None:
        self.action = action
        super().__init__(
            f"{action}: the export holds more than {what}, too much to return as a result; "
            "give `destination` to stream it into a file, or use `start_export` for a large "
            "window"
        )


def read_records(client: Client, action: Action, values: dict[str, Any]) -> list[Any]:
    """The export's records: a dict per CSV row (header names as keys), or per JSON line.

    A JSON line that is not JSON is kept as its text (a success never fails on its shape).
    """
    records: list[Any] = []
    with client.stream(action, values) as body:
        lines = _lines(body.iter_bytes(), action)
        if action.response is ResponseKind.CSV_STREAM:
            rows: Iterator[Any] = csv.DictReader(lines, delimiter=values.get("delimiter") or ",")
        else:
            rows = (_json_or_text(line) for line in lines if line.strip())
        for row in rows:
            if len(records) == RECORDS_LIMIT:
                raise ExportTooLarge(action.id, f"{RECORDS_LIMIT} records")
            records.append(row)
    return records


def _lines(chunks: Iterator[bytes], action: Action) -> Iterator[str]:
    """Text lines with their line ends kept, so the csv module joins quoted multi-line cells."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    size = 0
    buffer = ""
    for chunk in chunks:
        size += len(chunk)
        if size > BYTES_LIMIT:
            raise ExportTooLarge(action.id, f"{BYTES_LIMIT} bytes")
        buffer += decoder.decode(chunk)
        *complete, buffer = buffer.split("\n")
        for line in complete:
            yield line + "\n"
    buffer += decoder.decode(b"", final=True)
    if buffer:
        yield buffer


def _json_or_text(line: str) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        return line.rstrip("\r\n")
