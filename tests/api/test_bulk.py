"""``prefect_iterable.api.bulk`` on its own, without Prefect: reading, batching, sending, state.

Sending goes over loopback to the real sandbox through the library's ``Client``; the state goes to
a real folder (``Store``). Memory is shown bounded by counting what is held, not by measuring it:
bodies alive at once, batches kept after their commit, the checkpoint's size for a small and a
large file.
"""

from __future__ import annotations

import gc
import json
import threading
import weakref
from pathlib import Path

import pytest

from prefect_iterable.api.bulk import (
    BODY_OVERHEAD,
    Batch,
    ImportState,
    Reader,
    Record,
    Sender,
    Sent,
    batches,
    count_records,
    event_id,
    match_refusals,
    prefix_hash,
    send_all,
)
from prefect_iterable.api.models import BulkResult
from prefect_iterable.api.storage import Line, Store, open_file
from prefect_iterable.sandbox.data import users

BULK_USERS = "ITERABLE_BULK_UPDATE_USERS"


def write_users(path: Path, count: int, bad_every: int = 0) -> Path:
    lines = []
    for i in range(count):
        if bad_every and i % bad_every == bad_every - 1:
            lines.append(json.dumps({"dataFields": {"n": i}}))  # no identifier: rejected
        else:
            lines.append(json.dumps({"email": f"user{i}@example.com", "dataFields": {"n": i}}))
    path.write_text("\n".join(lines) + "\n")
    return path


def read_all(path: Path, kind: str = "users", fmt: str = "ndjson") -> list[Record | Line]:
    with path.open("rb") as handle:
        reader = Reader(handle, kind, fmt, max_record_bytes=4096)
        start = reader.read_header() if fmt == "csv" else (0, 0)
        return list(reader.records(start[0], start[1] + 1))


def open_state(store: Store, path: Path, *, resume: bool = True) -> tuple[Reader, ImportState]:
    handle, size, where = open_file(str(path))
    reader = Reader(handle, "users", "ndjson", max_record_bytes=4096)
    state = ImportState.open(
        store,
        where=where,
        kind="users",
        fmt="ndjson",
        prefix=prefix_hash(handle),
        size=size,
        start=(0, 0),
        resume=resume,
    )
    return reader, state


# ---- records -------------------------------------------------------------------------------


def test_csv_columns_follow_the_field_rules(tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    path.write_text(
        "email,plan,zip,score,vip,dataFields.address.city,tags,empty\n"
        'a@x.io,gold,02134,1.5,TRUE,Paris,"[1,2]",\n'
    )
    [record] = read_all(path, fmt="csv")
    assert isinstance(record, Record) and record.data is not None
    assert json.loads(record.data) == {
        "email": "a@x.io",
        "dataFields": {
            "plan": "gold",
            "zip": "02134",
            "score": 1.5,
            "vip": True,
            "address": {"city": "Paris"},
            "tags": [1, 2],
        },
    }


def test_an_ndjson_line_in_iterables_shape_is_sent_as_it_is(tmp_path: Path) -> None:
    line = b'{"dataFields":{"n":1},"email":"a@x.io"}'
    path = tmp_path / "u.ndjson"
    path.write_bytes(line + b'\n{"email":"b@x.io","plan":"gold"}\n')
    first, second = read_all(path)
    assert isinstance(first, Record) and first.data == line
    assert isinstance(second, Record) and second.data is not None
    assert json.loads(second.data) == {"email": "b@x.io", "dataFields": {"plan": "gold"}}


def test_unsendable_records_carry_their_line_and_reason(tmp_path: Path) -> None:
    path = tmp_path / "u.ndjson"
    path.write_bytes(b'{"email":"a@x.io"}\n\nnot json\n{"dataFields":{}}\n' + b"x" * 5000 + b"\n")
    items = read_all(path)
    errors = [item.error for item in items if isinstance(item, Record)]
    assert errors[0] is None
    assert [type(item) for item in items].count(Line) == 1  # the blank line
    assert errors[1].startswith("line 3: invalid JSON")
    assert errors[2] == "line 4: no email or userId"
    assert errors[3] == "line 5: longer than 4096 bytes"


def test_events_get_a_deterministic_id() -> None:
    event = {"email": "a@x.io", "eventName": "signup", "createdAt": 1}
    assert event_id(event) == event_id({**event, "id": "ignored"})
    assert event_id(event) != event_id({**event, "createdAt": 2})
    assert len(event_id(event)) == 32


def test_iterables_refusals_are_matched_to_records() -> None:
    result = BulkResult.from_body(
        {"successCount": 1, "failCount": 1, "failedUpdates": {"invalidEmails": ["X@Y"]}}
    )
    bodies = [{"email": "x@y"}, {"email": "z@y"}]
    assert match_refusals("users", bodies, result) == ["Iterable: invalidEmails", None]


def test_kind_and_format_are_checked() -> None:
    with pytest.raises(ValueError, match="kind"):
        Reader(None, "people", "csv", 1024)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="format"):
        Reader(None, "users", "xml", 1024)  # type: ignore[arg-type]


# ---- batches -------------------------------------------------------------------------------


def test_batches_stay_under_their_byte_size_and_cover_every_line(tmp_path: Path) -> None:
    path = write_users(tmp_path / "u.ndjson", 300, bad_every=50)
    found = list(batches(iter(read_all(path)), batch_bytes=2000, max_records=None, first_number=1))
    assert all(b.body_bytes <= 2000 for b in found)
    assert sum(b.count for b in found) == 294 and sum(len(b.rejected) for b in found) == 6
    assert [b.number for b in found] == list(range(1, len(found) + 1))
    assert found[-1].last_line == 300 and found[-1].end == path.stat().st_size
    batch = found[0]
    sent = json.loads(b"".join(batch.part(0, batch.count)))
    assert sent == batch.bodies(0, batch.count) and len(sent) == batch.count
    assert BODY_OVERHEAD + batch.starts[batch.count] - batch.starts[0] == batch.body_bytes


# ---- sending and state, against the sandbox --------------------------------------------------


class CountingSender:
    """A ``Sender`` that counts, at each send, the batches that still hold a body."""

    def __init__(self, sender: Sender) -> None:
        self.sender = sender
        self.seen: weakref.WeakSet[Batch] = weakref.WeakSet()
        self.most_bodies = 0
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, batch: Batch) -> Sent:
        with self._lock:
            self.seen.add(batch)
            self.calls += 1
            held = sum(1 for b in self.seen if b.payload is not None)
            self.most_bodies = max(self.most_bodies, held)
        return self.sender(batch)


def test_memory_is_bounded_by_concurrency_not_by_the_file(
    sandbox, project, client, tmp_path: Path
) -> None:
    """At most ``concurrency`` bodies are held at once, no batch is kept once committed, and the
    checkpoint is the same size for 100 and for 1,000 records."""
    checkpoint_sizes = []
    for count in (100, 1000):
        path = write_users(tmp_path / f"u{count}.ndjson", count, bad_every=100)
        store = Store.local_folder(tmp_path / f"state{count}")
        reader, state = open_state(store, path)
        counting = CountingSender(Sender(client, "users"))
        with reader.handle:
            outcome = send_all(reader, counting, state, batch_bytes=1500, concurrency=3)
        assert outcome.stopped is None and state.checkpoint.complete
        assert counting.calls > 3  # more batches than can be in flight
        assert counting.most_bodies <= 3
        gc.collect()
        assert len(counting.seen) == 0  # nothing kept per batch after its commit
        assert (state.checkpoint.done, state.checkpoint.rejected) == (
            count * 99 // 100,
            count // 100,
        )
        checkpoint_sizes.append(len(store.read_bytes(state.checkpoint_name)))
    assert checkpoint_sizes[1] - checkpoint_sizes[0] <= 16  # a few more digits, nothing per record
    assert len(users(project).all()) == 990  # the first file's users are among the second's


def test_the_bodies_held_at_once_fit_a_byte_budget_whatever_the_concurrency(
    sandbox, project, client, tmp_path: Path
) -> None:
    path = write_users(tmp_path / "u.ndjson", 400)
    reader, state = open_state(Store.local_folder(tmp_path / "state"), path)
    counting = CountingSender(Sender(client, "users"))
    with reader.handle:
        outcome = send_all(
            reader, counting, state, batch_bytes=1500, concurrency=8, max_bytes_in_flight=4500
        )
    assert outcome.stopped is None and state.checkpoint.done == 400
    assert counting.calls > 8
    assert counting.most_bodies <= 3  # 4,500 bytes of bodies of at most 1,500


def test_a_stopped_import_resumes_from_its_state(sandbox, project, client, tmp_path: Path) -> None:
    path = write_users(tmp_path / "u.ndjson", 400, bad_every=40)
    store = Store.local_folder(tmp_path / "state")
    sender = Sender(client, "users")

    def fourth_refused(batch: Batch) -> Sent:
        if batch.number == 4:  # a 429 asking for an hour: the client will not wait for it
            sandbox.inject(BULK_USERS, "429", count=1, retry_after=3600)
        return sender(batch)

    reader, state = open_state(store, path)
    with reader.handle:
        stopped = send_all(reader, fourth_refused, state, batch_bytes=1500, concurrency=1)
        rest = count_records(reader, state.checkpoint.offset, state.checkpoint.line)
    assert stopped.stopped is not None and stopped.stopped.startswith("batch 4 ")
    assert not state.checkpoint.complete
    assert rest + state.checkpoint.done + state.checkpoint.rejected == 400

    reader, again = open_state(Store.local_folder(tmp_path / "state"), path)
    assert again.resumed_from == state.checkpoint.line
    with reader.handle:
        finished = send_all(reader, Sender(client, "users"), again, batch_bytes=1500)
    assert finished.stopped is None
    assert (again.checkpoint.done, again.checkpoint.rejected) == (390, 10)
    dead = store.read_bytes(again.dead_letter_name).decode().splitlines()
    assert [json.loads(line)["line"] for line in dead] == list(range(40, 401, 40))
    assert len(users(project).all()) == 390


def test_a_checkpoint_for_another_file_is_refused(tmp_path: Path) -> None:
    store = Store.local_folder(tmp_path / "state")
    path = write_users(tmp_path / "u.ndjson", 10)
    reader, _ = open_state(store, path)
    reader.handle.close()
    write_users(path, 11)  # same name, other content
    with pytest.raises(ValueError, match="changed"):
        open_state(store, path)
    reader, fresh = open_state(store, path, resume=False)
    reader.handle.close()
    assert fresh.checkpoint.offset == 0


def test_state_names_are_stable_and_safe() -> None:
    from prefect_iterable.api.bulk import state_names

    key, checkpoint, dead = state_names("/data/my users?.ndjson", "users")
    assert state_names("/data/my users?.ndjson", "users") == (key, checkpoint, dead)
    assert checkpoint == f"my-users--users-{key}.checkpoint.json"
    assert dead == f"my-users--users-{key}.rejected.ndjson"
    assert state_names("/data/my users?.ndjson", "events")[0] != key
