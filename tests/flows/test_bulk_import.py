"""The bulk import flow against the sandbox, on the real Prefect test server."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.flows.bulk_import import BulkImportStopped, bulk_import, event_id
from prefect_iterable.sandbox.data import events, identifier_hash, users

BULK_USERS = "ITERABLE_BULK_UPDATE_USERS"
BULK_EVENTS = "ITERABLE_TRACK_EVENTS_BULK"
ACTIONS = {"users": BULK_USERS, "events": BULK_EVENTS}
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def block_name(prefect_server, credentials: IterableCredentials) -> str:
    name = f"test-{uuid.uuid4().hex[:12]}"
    credentials.save(name, overwrite=True)
    return name


def write_ndjson(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def generated_users(count: int) -> list[dict]:
    return [
        {
            "email": f"user{i}@example.com",
            "dataFields": {"n": i, "plan": "gold" if i % 2 else "free"},
        }
        for i in range(count)
    ]


def dead_letters(result) -> list[dict]:
    path = Path(result.dead_letter)
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def artifacts(flow_run_id: str) -> dict:
    """This flow run's artifacts, by key."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key: a for a in found}


def logged(sandbox, action: str, project_id: int) -> list:
    return sandbox.state.requests(action, project_id=project_id)


def test_imports_users_from_ndjson(sandbox, project, block_name, tmp_path):
    source = write_ndjson(tmp_path / "users.ndjson", generated_users(2000))

    result = bulk_import(
        source=str(source),
        kind="users",
        state_dir=str(tmp_path / "state"),
        credentials_block=block_name,
        batch_bytes=20_000,
    )

    assert (result.done, result.rejected, result.to_do, result.complete) == (2000, 0, 0, True)
    assert result.format == "ndjson"
    store = users(project)
    assert len(store.all()) == 2000
    assert store.find(email="user1999@example.com").data_fields["n"] == 1999
    requests = logged(sandbox, BULK_USERS, project.id)
    assert len(requests) == result.requests > 1  # several batches
    assert {e.status for e in requests} == {200}  # at the ceiling, never a 429
    assert sum(len(e.body["users"]) for e in requests) == 2000
    checkpoint = json.loads(Path(result.checkpoint).read_text())
    assert (checkpoint["complete"], checkpoint["done"], checkpoint["offset"]) == (
        True,
        2000,
        source.stat().st_size,
    )
    found = artifacts(result.flow_run_id)
    table = json.loads(found["bulk-import-users"].data)
    assert table == [
        {"records": "done", "count": 2000},
        {"records": "rejected", "count": 0},
        {"records": "to do", "count": 0},
    ]
    assert found["bulk-import-users-progress"].data == 100.0


def test_imports_users_from_csv_with_typed_columns(sandbox, project, block_name, tmp_path):
    source = tmp_path / "users.csv"
    with source.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "age", "vip", "zip", "score", "dataFields.address.city", "note"])
        for i in range(2000):
            writer.writerow(
                [
                    f"user{i}@example.com",
                    i,
                    "TRUE" if i % 2 else "false",
                    "02134",
                    "1.5",
                    "Paris",
                    "" if i % 3 else 'says "hi",\nthen leaves',
                ]
            )

    result = bulk_import(
        source=str(source), state_dir=str(tmp_path / "state"), credentials_block=block_name
    )

    assert (result.done, result.rejected, result.to_do) == (2000, 0, 0)
    assert result.format == "csv"
    fields = users(project).find(email="user3@example.com").data_fields
    assert fields["age"] == 3 and fields["vip"] is True and fields["zip"] == "02134"
    assert fields["score"] == 1.5 and fields["address"] == {"city": "Paris"}
    assert fields["note"] == 'says "hi",\nthen leaves'
    assert "note" not in users(project).find(email="user1@example.com").data_fields  # empty cell
    assert len(users(project).all()) == 2000


def test_invalid_records_go_to_the_dead_letter_file(sandbox, project, block_name, tmp_path):
    users(project).forgotten_emails.add(identifier_hash("gone@example.com"))
    lines = [
        json.dumps({"email": "ok1@example.com", "dataFields": {"a": 1}}),  # 1
        '{"email": "broken@example.com", ',  # 2: broken JSON
        "[1, 2]",  # 3: not an object
        json.dumps({"dataFields": {"a": 1}}),  # 4: no identifier
        json.dumps({"email": "gone@example.com"}),  # 5: Iterable: forgotten
        "",  # 6: blank, skipped
        json.dumps({"email": "ok2@example.com", "plan": "x" * 5000}),  # 7: over-long
        json.dumps({"email": "ok3@example.com", "city": "Zürich"}),  # 8
    ]
    raw = "\n".join(lines).encode() + b"\n" + b'{"email": "latin\xe9@example.com"}\n'  # 9
    source = tmp_path / "users.jsonl"
    source.write_bytes(raw)

    result = bulk_import(
        source=str(source),
        state_dir=str(tmp_path / "state"),
        credentials_block=block_name,
        max_record_bytes=2048,
    )

    assert (result.done, result.rejected, result.to_do, result.complete) == (2, 6, 0, True)
    rejected = {d["line"]: d for d in dead_letters(result)}
    assert sorted(rejected) == [2, 3, 4, 5, 7, 9]
    assert "line 2: invalid JSON" in rejected[2]["reason"]
    assert rejected[2]["record"].startswith('{"email": "broken')
    assert rejected[3]["reason"] == "line 3: not a JSON object"
    assert rejected[4]["reason"] == "line 4: no email or userId"
    assert rejected[5] == {**rejected[5], "reason": "Iterable: forgottenEmails"}
    assert rejected[5]["record"] == {"email": "gone@example.com"}
    assert "longer than 2048 bytes" in rejected[7]["reason"]
    assert "not valid UTF-8" in rejected[9]["reason"]
    assert users(project).find(email="ok3@example.com").data_fields["city"] == "Zürich"


def test_broken_csv_rows_are_rejected_with_their_line(sandbox, project, block_name, tmp_path):
    source = tmp_path / "users.csv"
    source.write_text(
        "email,plan\n"
        "a@example.com,gold\n"
        "b@example.com,gold,extra\n"  # 3: too many fields
        'c@example.com,"unclosed\n'  # 4: a quoted field never closed
    )
    result = bulk_import(
        source=str(source), state_dir=str(tmp_path / "state"), credentials_block=block_name
    )
    assert (result.done, result.rejected, result.to_do) == (1, 2, 0)
    reasons = {d["line"]: d["reason"] for d in dead_letters(result)}
    assert reasons == {
        3: "line 3: 3 fields where the header has 2",
        4: "line 4: a quoted field is never closed before the end of the file",
    }


@pytest.mark.parametrize("kind", ["users", "events"])
def test_malformed_records_among_valid_ones_go_to_the_dead_letter_file(
    sandbox, project, block_name, tmp_path, kind
):
    """One batch of good and malformed records: Iterable takes the good ones and names the bad
    ones (partial success); the flow routes each to the dead-letter file with its reason."""
    users(project).forgotten_user_ids.add(identifier_hash("u-gone"))
    records = [
        {"email": "ok1@example.com", "plan": "gold"},  # 1
        {"email": "user@", "plan": "gold"},  # 2: Iterable: invalidEmails
        {"email": "no-at-sign", "plan": "gold"},  # 3: Iterable: invalidEmails
        {"email": "both@example.com", "userId": "u-both"},  # 4: both identifiers: fine
        {"userId": "bad\u00e9id"},  # 5: Iterable: invalidUserIds (not ASCII)
        {"userId": "u-gone"},  # 6: Iterable: forgottenUserIds
        {"plan": "nobody"},  # 7: refused before sending
        {"email": "ok2@example.com", "plan": "free"},  # 8
    ]
    if kind == "events":
        records = [{**r, "eventName": "signed-up"} for r in records]
    source = write_ndjson(tmp_path / f"{kind}.ndjson", records)

    result = bulk_import(
        source=str(source),
        kind=kind,
        state_dir=str(tmp_path / "state"),
        credentials_block=block_name,
    )

    assert (result.done, result.rejected, result.to_do, result.complete) == (3, 5, 0, True)
    assert result.done + result.rejected + result.to_do == len(records)
    reasons = {d["line"]: d["reason"] for d in dead_letters(result)}
    assert reasons == {
        2: "Iterable: invalidEmails",
        3: "Iterable: invalidEmails",
        5: "Iterable: invalidUserIds",
        6: "Iterable: forgottenUserIds",
        7: "line 7: no email or userId",
    }
    assert {d["line"]: d["record"] for d in dead_letters(result)}[2] == records[1]
    [request] = logged(sandbox, ACTIONS[kind], project.id)
    assert request.status == 200 and len(request.body[kind]) == 7  # one batch, all but line 7
    store = users(project)
    assert store.find(email="ok2@example.com") is not None
    assert store.find(email="both@example.com") is store.by_user_id["u-both"]
    assert store.find(email="user@") is None and "bad\u00e9id" not in store.by_user_id
    if kind == "events":
        assert sorted(e["email"] for e in events(project).values()) == [
            "both@example.com",
            "ok1@example.com",
            "ok2@example.com",
        ]


def test_events_get_deterministic_ids_and_a_rerun_does_not_duplicate(
    sandbox, project, block_name, tmp_path
):
    records = [
        {
            "email": f"user{i % 50}@example.com",
            "eventName": "viewed",
            "createdAt": 1_700_000_000 + i,
            "dataFields": {"page": i},
        }
        for i in range(300)
    ]
    records.append({"email": "x@example.com", "eventName": "own", "id": "my-id-1"})
    source = write_ndjson(tmp_path / "events.ndjson", records)

    first = bulk_import(
        source=str(source),
        kind="events",
        state_dir=str(tmp_path / "s1"),
        credentials_block=block_name,
    )
    again = bulk_import(
        source=str(source),
        kind="events",
        state_dir=str(tmp_path / "s1"),
        credentials_block=block_name,
        resume=False,  # send the whole file again
    )

    assert first.done == again.done == 301
    stored = events(project)
    assert len(stored) == 301
    assert event_id(records[0]) in stored and "my-id-1" in stored
    sent = [ev["id"] for e in logged(sandbox, BULK_EVENTS, project.id) for ev in e.body["events"]]
    assert len(sent) == 602 and len(set(sent)) == 301


def test_a_body_never_exceeds_the_4_mb_cap(sandbox, project, block_name, tmp_path):
    blob = "y" * 4000
    source = write_ndjson(
        tmp_path / "big.ndjson",
        [{"email": f"big{i}@example.com", "dataFields": {"blob": blob}} for i in range(2600)],
    )
    result = bulk_import(
        source=str(source), state_dir=str(tmp_path / "state"), credentials_block=block_name
    )
    assert (result.done, result.to_do) == (2600, 0)
    sizes = [
        e.body["_bytes"] if "_bytes" in e.body else len(json.dumps(e.body, separators=(",", ":")))
        for e in logged(sandbox, BULK_USERS, project.id)
    ]
    assert len(sizes) == result.requests == 4  # three full bodies and the rest
    assert max(sizes) <= 3_500_000 < 4 * 1024 * 1024
    assert {e.status for e in logged(sandbox, BULK_USERS, project.id)} == {200}


def test_an_unreadable_file_fails_before_any_request(sandbox, project, block_name, tmp_path):
    with pytest.raises(ValueError, match="source: cannot read"):
        bulk_import(source=str(tmp_path / "missing.csv"), credentials_block=block_name)
    headerless = tmp_path / "no-ids.csv"
    headerless.write_text("name,plan\nAnn,gold\n")
    with pytest.raises(ValueError, match="neither an email nor a userId column"):
        bulk_import(
            source=str(headerless), state_dir=str(tmp_path / "s"), credentials_block=block_name
        )
    assert sandbox.state.requests(project_id=project.id) == []


def test_a_failing_batch_stops_cleanly_and_a_rerun_finishes(sandbox, project, block_name, tmp_path):
    source = write_ndjson(tmp_path / "users.ndjson", generated_users(600))
    state = str(tmp_path / "state")
    # A 429 asking for a longer wait than the client will sit out: the import stops cleanly.
    sandbox.inject(BULK_USERS, "429", count=1, retry_after=3600)

    with pytest.raises(BulkImportStopped, match="records still to do after line") as stopped:
        bulk_import(
            source=str(source), state_dir=state, credentials_block=block_name, batch_bytes=10_000
        )
    checkpoint = json.loads(next(Path(state).glob("*.checkpoint.json")).read_text())
    to_do = int(str(stopped.value).split()[0])
    # Batches in flight beside the refused one may have been committed before it; none after.
    assert checkpoint["complete"] is False and checkpoint["done"] + to_do == 600

    result = bulk_import(
        source=str(source), state_dir=state, credentials_block=block_name, batch_bytes=10_000
    )
    assert (result.done, result.to_do, result.complete) == (600, 0, True)
    assert len(users(project).all()) == 600
    statuses = Counter(e.status for e in logged(sandbox, BULK_USERS, project.id))
    assert statuses[429] == 1


def test_resumes_after_the_process_is_killed(
    sandbox, sandbox_server, api_key, project, prefect_server, tmp_path
):
    from prefect.settings import PREFECT_API_URL

    count = 4000
    source = write_ndjson(tmp_path / "users.ndjson", generated_users(count))
    state = tmp_path / "state"
    options = {"batch_bytes": 10_000, "concurrency": 2}
    code = (
        "from flows.bulk_import import bulk_import\n"
        f"bulk_import(source={str(source)!r}, state_dir={str(state)!r}, **{options!r})\n"
    )
    env = {
        **os.environ,
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "ITERABLE_API_KEY": api_key,
        "ITERABLE_BASE_URL": sandbox_server.url,
    }
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    checkpoint: dict = {}
    try:
        while time.monotonic() < deadline and process.poll() is None:
            found = list(state.glob("*.checkpoint.json"))
            if found:
                checkpoint = json.loads(found[0].read_text())
                if checkpoint["done"] >= 500:
                    break
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        _, stderr = process.communicate(timeout=30)
    assert checkpoint.get("done", 0) >= 500, stderr.decode()[-2000:]
    killed_at = json.loads(next(state.glob("*.checkpoint.json")).read_text())
    assert not killed_at["complete"] and killed_at["done"] < count

    result = _resume(source, state, api_key, sandbox_server.url, options)

    assert (result.done, result.to_do, result.complete) == (count, 0, True)
    assert result.resumed_from_line == killed_at["line"]
    received = Counter(
        user["email"]
        for e in logged(sandbox, BULK_USERS, project.id)
        if e.status == 200
        for user in e.body["users"]
    )
    assert set(received) == {f"user{i}@example.com" for i in range(count)}
    twice = {email for email, n in received.items() if n > 1}
    # Only batches in flight at the kill (after the checkpoint) may have been sent twice.
    assert all(int(email[4:].split("@")[0]) >= killed_at["line"] for email in twice)
    assert all(n <= 2 for n in received.values())
    assert len(users(project).all()) == count


def _resume(source: Path, state: Path, api_key: str, url: str, options: dict):
    os.environ["ITERABLE_API_KEY"], os.environ["ITERABLE_BASE_URL"] = api_key, url
    try:
        return bulk_import(source=str(source), state_dir=str(state), **options)
    finally:
        del os.environ["ITERABLE_API_KEY"], os.environ["ITERABLE_BASE_URL"]


def test_reads_the_source_from_a_filesystem_block(sandbox, project, block_name, tmp_path):
    import fsspec
    from prefect.filesystems import RemoteFileSystem

    folder = f"memory://imports-{uuid.uuid4().hex[:8]}"
    fsspec.filesystem("memory").pipe_file(
        f"{folder}/users.csv", b"email,plan\r\nann@example.com,gold\r\nben@example.com,free\r\n"
    )
    name = f"imports-{uuid.uuid4().hex[:8]}"
    RemoteFileSystem(basepath=folder).save(name, overwrite=True)

    result = bulk_import(
        source="users.csv",
        source_block=f"remote-file-system/{name}",
        state_dir=str(tmp_path / "state"),
        credentials_block=block_name,
    )

    assert (result.done, result.rejected, result.format) == (2, 0, "csv")
    assert users(project).find(email="ben@example.com").data_fields["plan"] == "free"


def test_records_iterable_refuses_are_read_back_from_the_file(
    sandbox, project, block_name, tmp_path
):
    """Batches keep only the encoded records; a refused one's dead letter comes from the file."""
    users(project).forgotten_emails.update(
        identifier_hash(e) for e in ("gone1@example.com", "gone2@example.com")
    )
    source = tmp_path / "users.csv"
    source.write_bytes(
        b"email,note\r\n"
        b"a@example.com,plain\r\n"
        b'gone1@example.com,"two\r\nlines"\r\n'  # 3-4: refused by Iterable
        b"b@example.com,x,extra\r\n"  # 5: refused before sending
        b"gone2@example.com,last\r\n"  # 6: refused by Iterable
    )
    result = bulk_import(
        source=str(source), state_dir=str(tmp_path / "csv"), credentials_block=block_name
    )
    assert (result.done, result.rejected) == (1, 3)
    letters = dead_letters(result)
    assert [d["line"] for d in letters] == [3, 5, 6]  # in file order
    # As it was read: the lines of a record joined by \n.
    assert letters[0]["record"] == {"email": "gone1@example.com", "note": "two\nlines"}
    assert letters[0]["reason"] == "Iterable: forgottenEmails"
    assert letters[1]["reason"] == "line 5: 3 fields where the header has 2"
    assert letters[2]["record"] == {"email": "gone2@example.com", "note": "last"}
    raw = source.read_bytes()
    assert raw[letters[2]["offset"] :][: letters[2]["length"]] == b"gone2@example.com,last\r\n"

    ndjson = tmp_path / "users.ndjson"
    ndjson.write_bytes(
        b'\xef\xbb\xbf{"email": "gone1@example.com", "n": 1}\n{"email": "c@example.com"}\n'
    )
    result = bulk_import(
        source=str(ndjson), state_dir=str(tmp_path / "nd"), credentials_block=block_name
    )
    assert (result.done, result.rejected) == (1, 1)
    assert dead_letters(result)[0]["record"] == {"email": "gone1@example.com", "n": 1}


def test_lines_in_iterables_shape_go_as_they_are_and_others_are_converted(
    sandbox, project, block_name, tmp_path
):
    lines = [
        # In Iterable's shape: sent as the line itself (a 30-digit integer kept as written).
        '{"email": "fast@example.com", "dataFields": {"big": 123456789012345678901234567890}}',
        # Converted: padded email, a field to move into dataFields, a boolean as text.
        '{"email": " pad@example.com ", "plan": "gold", "preferUserId": "true"}',
        '{"email": "empty@example.com", "dataFields": {}}',  # empty dataFields left out
        '{"email": "nan@example.com", "dataFields": {"v": NaN}}',  # 4: not JSON for Iterable
        '{"email": "s@example.com", "dataFields": {"s": "\\ud800"}}',  # 5: a lone surrogate
    ]
    source = tmp_path / "users.ndjson"
    source.write_text("\n".join(lines) + "\n")

    result = bulk_import(
        source=str(source), state_dir=str(tmp_path / "state"), credentials_block=block_name
    )

    assert (result.done, result.rejected, result.complete) == (3, 2, True)
    store = users(project)
    assert store.find(email="fast@example.com").data_fields["big"] == 123456789012345678901234567890
    assert store.find(email="pad@example.com").data_fields == {"plan": "gold"}
    sent = [u for e in logged(sandbox, BULK_USERS, project.id) for u in e.body["users"]]
    assert {
        "email": "pad@example.com",
        "preferUserId": True,
        "dataFields": {"plan": "gold"},
    } in sent
    assert {"email": "empty@example.com"} in sent
    reasons = {d["line"]: d["reason"] for d in dead_letters(result)}
    assert reasons == {
        4: "line 4: nan is not a JSON number (at record.dataFields.v)",
        5: "line 5: a string that is not valid Unicode (a lone surrogate) (at record.dataFields.s)",
    }


def test_no_batch_leaves_after_one_before_it_was_refused(sandbox, project, block_name, tmp_path):
    source = write_ndjson(tmp_path / "users.ndjson", generated_users(300))
    sandbox.inject(BULK_USERS, "429", count=1, retry_after=3600)

    with pytest.raises(BulkImportStopped):
        bulk_import(
            source=str(source),
            state_dir=str(tmp_path / "state"),
            credentials_block=block_name,
            batch_bytes=2_000,
            concurrency=2,
        )

    # The refused batch and at most the one beside it in flight; none queued behind them.
    assert len(logged(sandbox, BULK_USERS, project.id)) <= 2
