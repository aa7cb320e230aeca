"""The one CSV quote machine (``CsvQuotes``), as the export counter and the bulk reader use it.

Every case is checked against Python's ``csv`` module, and fed in pieces of every size, so that a
quote, a doubled quote, a CR or a BOM falls on a piece boundary somewhere.
"""

from __future__ import annotations

import csv
import io

import pytest

from prefect_iterable.api.bulk import Reader, Record
from prefect_iterable.api.files import CsvQuotes, RecordCounter

CASES = {
    "quoted newline": b'email,note\r\na@x.io,"two\nlines"\r\nb@x.io,plain\r\n',
    "doubled quotes": b'email,note\na@x.io,"said ""hi"",\nthen left"\nb@x.io,""""\n',
    "crlf in and out of quotes": b'email,note\r\na@x.io,"one\r\ntwo"\r\nb@x.io,x\r\n',
    "bom and quoted header": b'\xef\xbb\xbf"email","note"\na@x.io,"q\n"\nb@x.io,y',
    "quote inside an unquoted field": b'email,note\na@x.io,5" screen\nb@x.io,"ok"\n',
    "empty quoted fields": b'email,a,b\n"",,""\n"x@y.io","",""\n',
}


def csv_rows(data: bytes) -> list[list[str]]:
    text = data.decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text, newline="")))


@pytest.mark.parametrize("name", CASES)
def test_records_are_counted_as_the_csv_module_reads_them(name: str) -> None:
    data = CASES[name]
    expected = len(csv_rows(data)) - 1  # without the header
    for size in range(1, len(data) + 1):
        counter = RecordCounter("csv")
        for start in range(0, len(data), size):
            counter.feed(data[start : start + size])
        assert counter.records == expected, (name, size)


def test_a_record_ends_only_at_a_newline_outside_quotes() -> None:
    quotes = CsvQuotes()
    ended = []
    for line in [b'a,"one', b"two", b'three""",b', b'c,"d"', b'"e"x"f', b"g"]:
        quotes.feed(line)
        ended.append(quotes.end_of_line())
    # "one\ntwo\nthree"" closes on the third line; "d" closes; "e"x"f is text after a close.
    assert ended == [False, False, True, True, True, True]


@pytest.mark.parametrize("name", CASES)
def test_the_bulk_reader_splits_the_same_records(tmp_path, name: str) -> None:
    data = CASES[name]
    path = tmp_path / "in.csv"
    path.write_bytes(data)
    with path.open("rb") as handle:
        reader = Reader(handle, "users", "csv", max_record_bytes=10_000)
        end, line = reader.read_header()
        records = [r for r in reader.records(end, line + 1) if isinstance(r, Record)]
    header, *rows = csv_rows(data)
    assert reader.header == header
    # Each record as the csv module reads it (a row the rules refuse keeps it too, for dead
    # letters), but for line ends inside quoted fields: the reader makes them all \n.
    expected = [
        {k: v.replace("\r\n", "\n") for k, v in zip(header, row, strict=True)} for row in rows
    ]
    assert [r.original for r in records] == expected
