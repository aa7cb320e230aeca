"""Appends to a real remote filesystem block: an S3-compatible server (moto) on 127.0.0.1.

Each append must upload only its own bytes (one new object), and a second writer (another process,
another worker) must add to the file, never replace what the first wrote. The bulk import keeps its
checkpoint and dead letters there, so that a run on another worker resumes it.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import s3fs
from moto import server as moto_server

from prefect_iterable.flows.bulk_import import bulk_import
from prefect_iterable.sandbox.data import users

BULK_USERS = "ITERABLE_BULK_UPDATE_USERS"


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


def test_truncate_drops_the_parts_past_the_size(remote_block):
    from prefect_iterable.flows._storage import Storage

    store = Storage(remote_block)
    for line in (b"one\n", b"two\n", b"three\n"):
        store.append("dead.ndjson", line)
    store.truncate("dead.ndjson", 8)  # a crash after the third append, before its checkpoint

    assert store.read_bytes("dead.ndjson") == b"one\ntwo\n"
    assert len(store.fs.find(store.path("dead.ndjson") + Storage.PARTS)) == 2


def test_a_bulk_import_killed_on_one_worker_resumes_on_another(
    sandbox, sandbox_server, api_key, project, remote_block, tmp_path
):
    """The checkpoint and the dead letters live in the S3 block: a run in another process, with
    its own working folder, continues where the killed one stopped, and every record is done or
    rejected exactly once."""
    from prefect.settings import PREFECT_API_URL

    from prefect_iterable.api.bulk import state_names
    from prefect_iterable.flows._storage import Storage

    count, bad = 3000, set(range(99, 3000, 100))
    source = tmp_path / "users.ndjson"
    source.write_text(
        "".join(
            json.dumps({"dataFields": {"n": i}} if i in bad else {"email": f"u{i}@example.com"})
            + "\n"
            for i in range(count)
        )
    )
    options = {"state_dir": remote_block, "batch_bytes": 3_000, "concurrency": 2}
    env = {
        **os.environ,
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "ITERABLE_API_KEY": api_key,
        "ITERABLE_BASE_URL": sandbox_server.url,
    }
    first_worker = tmp_path / "worker-1"
    first_worker.mkdir()
    code = (
        "from prefect_iterable.flows.bulk_import import bulk_import\n"
        f"bulk_import(source={str(source)!r}, **{options!r})\n"
    )
    store = Storage(remote_block)
    _, checkpoint_name, dead_letter_name = state_names(str(source.resolve()), "users")
    process = subprocess.Popen(
        [sys.executable, "-c", code], cwd=first_worker, env=env, stderr=subprocess.PIPE
    )
    killed_at: dict = {}
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline and process.poll() is None:
            killed_at = store.read_json(checkpoint_name) or {}
            if killed_at.get("done", 0) >= 600:
                break
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGKILL)
        _, stderr = process.communicate(timeout=30)
    killed_at = store.read_json(checkpoint_name) or {}
    assert 600 <= killed_at.get("done", 0) < count - len(bad), stderr.decode()[-2000:]
    assert not killed_at["complete"]

    os.environ["ITERABLE_API_KEY"], os.environ["ITERABLE_BASE_URL"] = api_key, sandbox_server.url
    try:
        result = bulk_import(source=str(source), **options)
    finally:
        del os.environ["ITERABLE_API_KEY"], os.environ["ITERABLE_BASE_URL"]

    assert result.complete and result.resumed_from_line == killed_at["line"]
    assert (result.done, result.rejected, result.to_do) == (count - len(bad), len(bad), 0)
    assert result.checkpoint == store.where(checkpoint_name)
    dead = [json.loads(line) for line in store.read_bytes(dead_letter_name).splitlines()]
    assert sorted(entry["line"] - 1 for entry in dead) == sorted(bad)  # each once
    received = Counter(
        user["email"]
        for entry in sandbox.state.requests(BULK_USERS, project_id=project.id)
        if entry.status == 200
        for user in entry.body["users"]
    )
    assert set(received) == {f"u{i}@example.com" for i in range(count) if i not in bad}
    # Only batches in flight at the kill (after the checkpoint) may have been sent twice.
    assert all(
        int(email[1:].split("@")[0]) >= killed_at["line"] for email, n in received.items() if n > 1
    )
    assert len(users(project).all()) == count - len(bad)
