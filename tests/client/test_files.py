"""Streamed answers: records read and counted as Iterable's files hold them.

A CSV field may hold a newline inside quotes, and an NDJSON string a raw U+2028: neither is a new
record. The bodies are served by httpx's mock transport in many small chunks, so records and
characters fall across chunk boundaries.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json

import httpx
import pytest

from prefect_iterable.api import Client, NoLimiter
from prefect_iterable.api.files import RecordCounter, RecordFile

ROWS = [
    {"email": "a@example.com", "note": 'said "hi",\nthen left'},
    {"email": "b@example.com", "note": "plain"},
    {"email": "c@example.com", "note": "two\r\nlines, é"},
]


def _csv_body() -> bytes:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=["email", "note"])
    writer.writeheader()
    writer.writerows(ROWS)
    return text.getvalue().encode()


def _ndjson_body() -> bytes:
    records = [{"email": "a@example.com", "note": "line\u2028separator"}, {"n": 2}]
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()


def _client(body: bytes) -> Client:
    def serve(request: httpx.Request) -> httpx.Response:
        chunks = [body[i : i + 7] for i in range(0, len(body), 7)]
        return httpx.Response(200, content=iter(chunks))

    return Client("k", transport=httpx.MockTransport(serve), limiter=NoLimiter())


def test_csv_records_keep_their_quoted_newlines():
    with _client(_csv_body()) as client:
        with client.stream("ITERABLE_EXPORT_DATA_CSV", data_type_name="user") as body:
            assert list(body.iter_records()) == ROWS


def test_ndjson_records_keep_a_line_separator_inside_a_string():
    with _client(_ndjson_body()) as client:
        with client.stream("ITERABLE_EXPORT_DATA_JSON", data_type_name="user") as body:
            records = list(body.iter_records())
    assert records == [{"email": "a@example.com", "note": "line\u2028separator"}, {"n": 2}]


@pytest.mark.parametrize("size", [1, 3, 64, 1 << 16])
def test_record_file_writes_hashes_and_counts_csv_records(tmp_path, size):
    data = _csv_body()
    with RecordFile(tmp_path / "x" / "users.csv", "csv") as out:
        for at in range(0, len(data), size):
            out.write(data[at : at + size])
    assert (tmp_path / "x" / "users.csv").read_bytes() == data
    assert (out.size, out.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert out.records == len(ROWS) == len(list(csv.DictReader(io.StringIO(data.decode()))))


def test_counter_counts_a_last_record_without_its_newline():
    counter = RecordCounter("json")
    counter.feed(b'{"a": 1}\n{"a": 2}')
    assert counter.records == 2
