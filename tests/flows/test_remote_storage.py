"""Appends to a real remote filesystem block: an S3-compatible server (moto) on 127.0.0.1.

Each append must upload only its own bytes (one new object), and a second writer (another process,
another worker) must add to the file, never replace what the first wrote.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
import s3fs
from moto import server as moto_server


@pytest.fixture(scope="module")
def s3_url() -> Iterator[str]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def remote_block(prefect_server, s3_url) -> str:
    from prefect.filesystems import RemoteFileSystem

    bucket = "audit-" + secrets.token_hex(4)
    settings = {"key": "testing", "secret": "testing", "client_kwargs": {"endpoint_url": s3_url}}
    s3fs.S3FileSystem(**settings).mkdir(bucket)
    name = "s3-" + secrets.token_hex(4)
    RemoteFileSystem(basepath=f"s3://{bucket}/audit", settings=settings).save(name)
    return f"remote-file-system/{name}"


def test_appends_are_new_objects_read_back_in_order(remote_block):
    from prefect_iterable.flows._storage import Storage

    first, second = Storage(remote_block), Storage(remote_block)
    lines = [f'{{"n": {n}}}\n'.encode() for n in range(6)]
    for line in lines[:3]:
        first.append("audit-run.jsonl", line)
    for line in lines[3:]:
        second.append("audit-run.jsonl", line)  # another worker: adds, never replaces

    assert Storage(remote_block).read_bytes("audit-run.jsonl") == b"".join(lines)
    assert Storage(remote_block).list("audit-*.jsonl") == ["audit-run.jsonl"]
    # Linear: six objects, each holding only the bytes of its own append.
    parts = sorted(first.fs.glob(f"{first.root}/audit-run.jsonl{Storage.PARTS}/*"))
    assert [first.fs.size(p) for p in parts] == [len(line) for line in lines]


def test_a_missing_file_is_not_found(remote_block):
    from prefect_iterable.flows._storage import Storage

    with pytest.raises(FileNotFoundError):
        Storage(remote_block).read_bytes("nothing.jsonl")
