"""The archive library's pure parts: window maths, record times, window content, the manifest."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone

import pytest

from prefect_iterable.api.archive import (
    MANIFEST_VERSION,
    ExportArchiveError,
    Manifest,
    Window,
    default_window,
    record_time,
    unit_key,
    window_content,
)
from tests.archive.store import DirStore

UTC = timezone.utc
DAY = Window(datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 2, tzinfo=UTC))


def test_a_whole_utc_day_is_tagged_by_its_date_and_a_part_by_its_ends():
    assert DAY.whole_day and DAY.tag == "2024-05-01"
    first, second = DAY.halves() or pytest.fail("a day has halves")
    assert (first.end, second.start) == (datetime(2024, 5, 1, 12, tzinfo=UTC),) * 2
    assert not first.whole_day
    assert first.tag == "20240501T000000Z-20240501T120000Z"
    assert first.label == "2024-05-01 00:00:00..2024-05-01 12:00:00Z"


def test_halves_are_cut_at_whole_seconds_and_a_second_has_none():
    odd = Window(DAY.start, DAY.start + timedelta(seconds=3))
    assert [h.duration for h in odd.halves() or ()] == [timedelta(seconds=1), timedelta(seconds=2)]
    assert Window(DAY.start, DAY.start + timedelta(seconds=1)).halves() is None


def test_window_of_reads_naive_times_as_utc_and_defaults_to_one_day():
    assert Window.of(datetime(2024, 5, 1), None) == DAY
    eastern = timezone(timedelta(hours=2))
    assert Window.of(datetime(2024, 5, 1, 2, tzinfo=eastern), datetime(2024, 5, 2)) == DAY
    assert Window.of(None, None) == default_window()


@pytest.mark.parametrize(
    ("start", "end", "problem"),
    [
        (None, datetime(2024, 5, 2), "start: give start"),
        (datetime(2024, 5, 2), datetime(2024, 5, 1), "end: must be after start"),
        (datetime(2024, 5, 1, 0, 0, 0, 5), None, "whole seconds"),
    ],
)
def test_window_of_refuses_what_iterable_cannot_export(start, end, problem):
    with pytest.raises(ValueError, match=problem):
        Window.of(start, end)


def test_default_window_is_yesterday_midnight_to_midnight():
    now = datetime(2024, 5, 2, 17, 30, tzinfo=UTC)
    assert default_window(now) == DAY


@pytest.mark.parametrize(
    "value",
    [
        1714564800000,  # epoch ms
        "1714564800000",
        "2024-05-01 12:00:00 +00:00",  # Iterable's own format
        "2024-05-01T14:00:00+02:00",
        "2024-05-01T12:00:00Z",
    ],
)
def test_record_time_reads_each_way_iterable_writes_a_time(value):
    assert record_time({"createdAt": value}) == datetime(2024, 5, 1, 12, tzinfo=UTC)


def test_record_time_falls_back_to_the_profile_time_and_gives_up_on_nonsense():
    assert record_time({"profileUpdatedAt": 1714564800000}) is not None
    assert record_time({"createdAt": "yesterday"}) is None
    assert record_time(["not", "a", "record"]) is None


def test_window_content_counts_csv_records_with_quoted_newlines_once():
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["email", "note", "createdAt"])
    writer.writerow(["a@example.com", "two\nlines", "2024-05-01 10:00:00 +00:00"])
    writer.writerow(["b@example.com", "x", "2024-04-30 23:59:59 +00:00"])
    writer.writerow(["c@example.com", "undated", ""])
    raw = io.BytesIO(text.getvalue().encode())
    assert window_content(raw, "csv", DAY) == (2, 1)


def test_window_content_of_ndjson_skips_blank_lines():
    lines = [{"createdAt": 1714564800000}, {}, {"createdAt": 1714478400000}]
    raw = io.BytesIO(("\n".join(json.dumps(x) for x in lines) + "\n\n").encode())
    assert window_content(raw, "json", DAY) == (2, 1)


def _entry(name: str, job: int | None = 7) -> dict:
    return {"file": name, "bytes": 3, "rows": 1, "sha256": "ab", "job_id": job}


def test_the_manifest_keeps_units_and_files_across_runs(tmp_path):
    store = DirStore(tmp_path)
    manifest = Manifest(store, "m/manifest.json", DAY, "csv")
    halves = DAY.halves() or pytest.fail("a day has halves")
    manifest.set_split("emailSend", DAY, halves)
    manifest.add_file(_entry("a.csv"))
    manifest.add_file(_entry("b.csv", job=None))
    manifest.set_complete("emailSend", halves[0], [_entry("a.csv"), _entry("b.csv", None)])

    again = Manifest(store, "m/manifest.json", DAY, "csv")
    assert again.unit(unit_key("emailSend", "csv", DAY))["status"] == "split"
    first = again.unit(unit_key("emailSend", "csv", halves[0]))
    assert first["status"] == "complete" and first["files"] == ["a.csv", "b.csv"]
    assert first["job_ids"] == [7]
    assert again.file("b.csv") == _entry("b.csv", None)
    assert again.unit(unit_key("emailSend", "json", DAY)) is None


def test_the_manifest_writes_files_at_most_every_few_seconds_and_units_at_once(tmp_path):
    store = DirStore(tmp_path)
    manifest = Manifest(store, "manifest.json", DAY, "csv", write_every=3600)
    manifest.add_file(_entry("a.csv"))  # the first is written (nothing written yet)
    manifest.add_file(_entry("b.csv"))
    assert [f["file"] for f in store.read_json("manifest.json")["files"]] == ["a.csv"]
    manifest.set_complete("user", DAY, [_entry("a.csv"), _entry("b.csv")])
    document = store.read_json("manifest.json")
    assert [f["file"] for f in document["files"]] == ["a.csv", "b.csv"]
    assert document["version"] == MANIFEST_VERSION and document["verified"] is None


def test_the_manifest_drops_files_and_records_orphan_jobs(tmp_path):
    store = DirStore(tmp_path)
    manifest = Manifest(store, "manifest.json", DAY, "csv")
    manifest.add_file(_entry("a.csv"))
    manifest.drop_files(["a.csv"])
    manifest.add_orphan({"job_id": 9, "reason": "no dated record"})
    document = store.read_json("manifest.json")
    assert document["files"] == [] and document["orphan_jobs"][0]["job_id"] == 9


def test_a_manifest_of_another_version_is_refused_by_name(tmp_path):
    store = DirStore(tmp_path)
    store.write_json("manifest.json", {"version": MANIFEST_VERSION + 1})
    with pytest.raises(ExportArchiveError, match="manifest version"):
        Manifest(store, "manifest.json", DAY, "csv")


def test_the_archive_library_imports_no_prefect():
    import subprocess
    import sys

    code = (
        "import sys, prefect_iterable.api.archive\n"
        "print(sorted(m for m in sys.modules if m == 'prefect' or m.startswith('prefect.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_data_types_summary_counts_split_windows_through_their_halves():
    from prefect_iterable.api.archive import DataTypeArchive, WindowOutcome, manifest_table

    first, second = DAY.halves() or pytest.fail("a day has halves")
    files = [_entry("a.csv"), _entry("b.csv", job=None)]
    for f, w in zip(files, (first, second), strict=True):
        f.update(data_type="user", window_start=w.start.isoformat(), window_end=w.end.isoformat())
    outcomes = [
        WindowOutcome("user", DAY, 0, split=True, jobs_started=1),
        WindowOutcome("user", first, 1, files=[files[0]], downloaded=1, jobs_started=1),
        WindowOutcome("user", second, 1, files=[files[1]], skipped=1),
    ]
    summary = DataTypeArchive.of("user", outcomes)
    assert (summary.files, summary.bytes, summary.rows, summary.windows) == (2, 6, 2, 2)
    assert (summary.downloaded, summary.skipped, summary.jobs_started) == (1, 1, 2)
    assert [row["job"] for row in manifest_table(files)] == [7, "sync"]
