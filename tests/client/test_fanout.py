"""``send_many``: many single-record calls against the sandbox, one outcome per record, reruns
that skip what is settled, and sends that are never repeated after an unclear answer."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from prefect_iterable.api.catalog import get_action
from prefect_iterable.api.fanout import Checkpoint, send_many
from prefect_iterable.sandbox.data import users

UPDATE = "ITERABLE_UPDATE_USER"
TRACK = "ITERABLE_TRACK_EVENT"


def _run(credentials, action, records, **options):
    async def go():
        async with credentials.get_async_client() as client:
            return await send_many(client, action, records, **options)

    return asyncio.run(go())


def _sent_emails(sandbox, project, action):
    return Counter(
        e.body["email"] for e in sandbox.state.requests(action, project_id=project.id) if e.body
    )


def test_each_record_gets_its_outcome(credentials, sandbox, project):
    records = [{"email": f"u{i}@example.com", "data_fields": {"n": i}} for i in range(30)]
    records[7] = {"email": "not-an-email", "data_fields": {"n": 7}}  # Iterable refuses it
    records[12] = {"email": "u12@example.com", "data_fields": "not an object"}  # never sent
    seen = []
    result = _run(credentials, UPDATE, records, concurrency=8, on_progress=seen.append)
    assert result.done == 28
    assert result.failed == [(7, "InvalidEmailAddressError"), (12, "InputValidationError")]
    assert (result.unknown, result.deferred, result.sent) == ([], [], 29)
    assert users(project).find(email="u29@example.com").data_fields == {"n": 29}
    assert sum(_sent_emails(sandbox, project, UPDATE).values()) == 29
    assert seen[-1].settled == 30 and seen[-1].fraction == 1.0


def test_a_rerun_sends_only_what_is_still_to_do(credentials, sandbox, project, tmp_path):
    records = [{"email": f"r{i}@example.com", "data_fields": {"n": i}} for i in range(20)]
    checkpoint = tmp_path / "update.ckpt"

    def stops_after(n):
        for i, record in enumerate(records):
            if i == n:
                raise KeyboardInterrupt  # the process is stopped part-way
            yield record

    with pytest.raises(KeyboardInterrupt):
        _run(credentials, UPDATE, stops_after(10), concurrency=1, checkpoint=checkpoint)
    first = _sent_emails(sandbox, project, UPDATE)
    assert len(first) == 10
    result = _run(credentials, UPDATE, records, concurrency=4, checkpoint=checkpoint)
    assert (result.done, result.skipped, result.sent) == (20, 10, 10)
    sent = _sent_emails(sandbox, project, UPDATE)
    assert set(sent) == {r["email"] for r in records}
    assert set(sent.values()) == {1}  # nothing sent twice
    again = _run(credentials, UPDATE, records, checkpoint=checkpoint)
    assert (again.done, again.skipped, again.sent) == (20, 20, 0)


def test_a_500_on_a_send_is_unknown_and_never_sent_again(credentials, sandbox, project, tmp_path):
    records = [{"email": f"e{i}@example.com", "event_name": "visited"} for i in range(6)]
    checkpoint = tmp_path / "track.ckpt"
    sandbox.inject(TRACK, "500", after_processing=True)  # the first event lands, then 500
    result = _run(credentials, TRACK, records, concurrency=1, checkpoint=checkpoint)
    assert (result.done, result.unknown, result.failed, result.deferred) == (5, [0], [], [])
    assert sum(_sent_emails(sandbox, project, TRACK).values()) == 6
    rerun = _run(credentials, TRACK, records, checkpoint=checkpoint)
    assert (rerun.done, rerun.unknown, rerun.sent) == (5, [0], 0)
    assert sum(_sent_emails(sandbox, project, TRACK).values()) == 6


def test_an_event_with_an_id_is_retried_after_a_500(credentials, sandbox, project):
    records = [{"email": "id@example.com", "event_name": "visited", "event_id": "ev-1"}]
    sandbox.inject(TRACK, "500", after_processing=True)
    result = _run(credentials, TRACK, records)
    assert (result.done, result.unknown) == (1, [])
    assert sum(_sent_emails(sandbox, project, TRACK).values()) == 2  # deduplicated by its id


def test_a_send_started_but_never_settled_counts_as_unknown(tmp_path):
    action = get_action(TRACK)
    path = tmp_path / "track.ckpt"
    book = Checkpoint(path, action)
    book.write(b"s", 0, flush=True)
    book.write(b"d", 0)
    book.write(b"s", 1, flush=True)  # the process died with this one in flight
    book.write(b"s", 2, flush=True)
    book.release(2)  # provably never arrived
    book.close()
    again = Checkpoint(path, action)
    assert [again.get(i) for i in range(4)] == [b"d", b"s", None, None]
    again.close()
    with pytest.raises(ValueError, match="not a fan-out checkpoint of ITERABLE_UPDATE_USER"):
        Checkpoint(path, get_action(UPDATE))


def test_a_refusal_for_the_rate_is_deferred_and_sent_by_the_rerun(
    credentials, sandbox, project, tmp_path
):
    records = [{"email": f"d{i}@example.com", "data_fields": {"n": i}} for i in range(4)]
    checkpoint = tmp_path / "update.ckpt"
    sandbox.inject(UPDATE, "429", retry_after=3600)  # longer than the client will wait
    result = _run(credentials, UPDATE, records, concurrency=1, checkpoint=checkpoint)
    assert (result.done, result.deferred, result.failed, result.unknown) == (3, [0], [], [])
    assert users(project).find(email="d0@example.com") is None
    rerun = _run(credentials, UPDATE, records, checkpoint=checkpoint)
    assert (rerun.done, rerun.deferred, rerun.sent, rerun.skipped) == (4, [], 1, 3)
    assert users(project).find(email="d0@example.com") is not None
