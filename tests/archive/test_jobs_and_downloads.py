"""The archive library against the sandbox over HTTP: the export-job lifecycle, downloads with
faults, and one window archived end to end, with no Prefect anywhere."""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import secrets
import threading
from datetime import datetime, timedelta, timezone

import pytest

from prefect_iterable.api import Client, RetryPolicy
from prefect_iterable.api.archive import (
    Archiver,
    ArchiveSettings,
    ExportArchiveError,
    ExportJobs,
    Manifest,
    Stopped,
    Window,
    active_jobs_name,
    cancel_recorded_jobs,
    download_with_retries,
    presigned_client,
)
from prefect_iterable.sandbox.data import export_settings, exports
from tests.archive.store import DirStore

START = "ITERABLE_START_EXPORT"
DOWNLOAD = "EXPORT_FILE_DOWNLOAD"
LOG = logging.getLogger("tests.archive")
QUICK = RetryPolicy(attempts=3, backoff_base=0.01, backoff_cap=0.05)


def _yesterday() -> Window:
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return Window(today - timedelta(days=1), today)


@pytest.fixture
def org(sandbox, sandbox_server, make_project):
    """A client of a project alone in its organization, with small, fast exports."""
    key, project = make_project(organization_id=800_000 + secrets.randbelow(100_000))
    export_settings(project).update(
        rows_per_hour=60, file_size_bytes=32_000, files_per_page=2, start_delay_seconds=0.05
    )
    with Client(key, base_url=sandbox_server.url, timeout=5.0, retry=QUICK) as client:
        yield client, project


@pytest.fixture
def store(tmp_path) -> DirStore:
    return DirStore(tmp_path)


def _jobs(client, store, **options) -> ExportJobs:
    return ExportJobs(client, store, active_jobs_name("exports", "run-1"), output_format="csv",
                      poll_max_seconds=1.0, **options)  # fmt: skip


def test_a_job_is_recorded_as_active_until_it_finishes(org, store):
    client, project = org
    jobs = _jobs(client, store)
    job_id = jobs.start("smsSend", _yesterday())
    assert set(store.read_json(jobs.active_name)["jobs"]) == {str(job_id)}

    page = jobs.wait_for(job_id, "smsSend", LOG)
    jobs.finish(job_id)

    assert page.job_state == "Completed" and page.files
    assert store.read_json(jobs.active_name)["jobs"] == {}
    assert exports(project).jobs[job_id].state == "Completed"


def test_a_lost_start_answer_adopts_the_job_on_probation(org, store, sandbox):
    client, project = org
    sandbox.inject(START, "500", after_processing=True)
    jobs = _jobs(client, store)

    job_id = jobs.start("smsSend", _yesterday())

    assert list(exports(project).jobs) == [job_id]  # adopted, not started twice
    assert job_id in jobs.unproven
    jobs.prove(job_id)
    assert job_id not in jobs.unproven


def test_cancel_all_stops_the_run_and_cancels_its_running_jobs(org, store):
    client, project = org
    export_settings(project)["bytes_per_second"] = 1_000  # stays Running
    jobs = _jobs(client, store)
    job_id = jobs.start("emailSend", _yesterday())

    assert jobs.cancel_all(LOG) == [job_id]

    assert exports(project).jobs[job_id].state == "Cancelled"
    assert not store.exists(jobs.active_name)
    with pytest.raises(Stopped):
        jobs.wait_for(job_id, "emailSend", LOG)
    with pytest.raises(Stopped):
        jobs.start("emailSend", _yesterday())


def test_recorded_jobs_are_cancelled_by_whoever_finds_the_record(org, store):
    """What a cancellation hook in another process does: only the record is shared."""
    client, project = org
    export_settings(project)["bytes_per_second"] = 1_000
    job_id = _jobs(client, store).start("emailSend", _yesterday())

    assert cancel_recorded_jobs(client, store, "exports", "run-1", LOG) == [job_id]
    assert exports(project).jobs[job_id].state == "Cancelled"
    assert not store.exists(active_jobs_name("exports", "run-1"))


def _first_file(client, store):
    jobs = _jobs(client, store)
    job_id = jobs.start("smsSend", _yesterday())
    listed = jobs.wait_for(job_id, "smsSend", LOG).files[0]
    fresh = []

    def fresh_url() -> str:
        url = next(f.url for f in jobs.list_files(job_id).files if f.file == listed.file)
        fresh.append(url)
        return url

    return listed, fresh_url, fresh


def test_a_cut_download_is_downloaded_again_whole(org, store, sandbox):
    client, _ = org
    listed, fresh_url, fresh = _first_file(client, store)
    sandbox.inject(DOWNLOAD, "cut")

    with presigned_client() as http:
        got = download_with_retries(
            http, listed.url, fresh_url, store, "f.csv", "csv", policy=QUICK
        )

    data = (store.root / "f.csv").read_bytes()
    assert (got.bytes, got.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert got.rows == len(list(csv.DictReader(io.StringIO(data.decode())))) > 0
    assert len(fresh) == 1  # the retry asked for a fresh URL
    statuses = [e.fault for e in sandbox.state.requests(DOWNLOAD)][-2:]
    assert statuses == ["cut", None]


def test_an_expired_url_is_replaced_by_a_fresh_one(org, store, sandbox):
    client, project = org
    listed, fresh_url, fresh = _first_file(client, store)
    area = exports(project)
    area.tokens = {k: (job, index, 0.0) for k, (job, index, _) in area.tokens.items()}

    with presigned_client() as http:
        got = download_with_retries(
            http, listed.url, fresh_url, store, "f.csv", "csv", policy=QUICK
        )

    assert got.bytes == (store.root / "f.csv").stat().st_size > 0
    assert len(fresh) == 1 and fresh[0] != listed.url


def test_a_url_that_keeps_expiring_fails_naming_the_file_and_leaves_nothing(org, store):
    client, project = org
    export_settings(project)["url_ttl_seconds"] = 0.0
    listed, fresh_url, fresh = _first_file(client, store)

    with presigned_client() as http, pytest.raises(ExportArchiveError, match="f.csv after 3"):
        download_with_retries(http, listed.url, fresh_url, store, "f.csv", "csv", policy=QUICK)

    assert len(fresh) == 2 and not list(store.root.rglob("f.csv*"))


def test_a_stop_ends_a_download_without_retrying_it(org, store):
    client, _ = org
    listed, fresh_url, fresh = _first_file(client, store)
    stop = threading.Event()
    stop.set()

    def check() -> None:
        if stop.is_set():
            raise Stopped()

    with presigned_client() as http, pytest.raises(Stopped):
        download_with_retries(
            http, listed.url, fresh_url, store, "f.csv", "csv", policy=QUICK, check=check
        )
    assert fresh == [] and not store.exists("f.csv")


def test_an_archiver_archives_a_window_and_skips_it_the_second_time(org, store):
    client, project = org
    window = _yesterday()
    settings = ArchiveSettings("csv", "exports", window)

    def archive():
        manifest = Manifest(store, "exports/manifest.json", window, "csv")
        archiver = Archiver(client, store, manifest, settings, _jobs(client, store))
        try:
            outcome = archiver.archive_window("smsSend", window, 0, "async", LOG)
            archiver.record(outcome)
            return archiver, outcome
        finally:
            archiver.close()

    archiver, first = archive()
    assert first.downloaded == len(first.files) > 1 and first.jobs_started == 1
    assert sum(f["rows"] for f in first.files) == 24 * 60
    assert archiver.verify(first.files) == []
    name = first.files[0]["file"]
    assert name.startswith(f"exports/smsSend/{window.start:%Y-%m-%d}/")

    _, second = archive()
    assert (second.downloaded, second.skipped, second.jobs_started) == (0, len(first.files), 0)
    assert len(exports(project).jobs) == 1

    (store.root / name).write_bytes(b"damaged")
    assert any(p.startswith(f"{name}: 7 bytes") for p in archiver.verify(first.files))


def test_a_download_counts_a_quoted_newline_as_part_of_its_record(store):
    """The manifest's rows are the csv module's records, however the chunks fall."""
    import httpx

    from prefect_iterable.api.archive import download

    rows = [["email", "note"], ["a@example.com", 'said "hi",\nthen left'], ["b@x.com", "a\r\nb"]]
    text = io.StringIO()
    csv.writer(text).writerows(rows)
    body = text.getvalue().encode()

    def serve(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=iter([body[i : i + 5] for i in range(0, len(body), 5)]))

    with httpx.Client(transport=httpx.MockTransport(serve)) as http:
        got = download(http, "https://files.example/x.csv", store, "x.csv", "csv")

    assert got.rows == len(rows) - 1 == len(list(csv.DictReader(io.StringIO(body.decode()))))
    assert (got.bytes, got.sha256) == (len(body), hashlib.sha256(body).hexdigest())
    assert store.digest("x.csv", "csv") == got
