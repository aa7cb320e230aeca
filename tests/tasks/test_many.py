"""``send_many_records``: one task run for many single-record calls, on a real Prefect server."""

from __future__ import annotations

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterType

from prefect_iterable.sandbox.data import events
from prefect_iterable.tasks import send_many_records


def test_tracks_many_events_with_progress_and_outcomes(run_in_flow, credentials, project, tmp_path):
    emails = [f"m{i}@example.com" for i in range(40)]
    rows = (
        {"email": e, "event_name": "visited", "event_id": f"ev-{i}"} for i, e in enumerate(emails)
    )
    bad = [{"email": "m40@example.com", "event_name": ""}]  # the single task refuses an empty name
    summary = run_in_flow(
        send_many_records,
        "ITERABLE_TRACK_EVENT",
        (r for part in (rows, bad) for r in part),
        checkpoint=str(tmp_path / "events.ckpt"),
        total=41,
        credentials=credentials,
    )
    assert (summary.done, summary.failed, summary.unknown, summary.sent) == (
        40,
        [(40, "InputValidationError")],
        [],
        40,
    )
    assert {e["email"] for e in events(project).values()} == set(emails)
    with get_client(sync_client=True) as client:
        progress = client.read_artifacts(
            artifact_filter=ArtifactFilter(type=ArtifactFilterType(any_=["progress"]))
        )
        tables = client.read_artifacts(
            artifact_filter=ArtifactFilter(type=ArtifactFilterType(any_=["table"]))
        )
    assert any(
        a.description == "ITERABLE_TRACK_EVENT: records settled" and a.data == 100.0
        for a in progress
    )
    table = next(
        a for a in tables if a.description == "ITERABLE_TRACK_EVENT: outcomes of 40 requests"
    )
    assert "m0@example.com" not in str(table.data)  # counts, never the records
