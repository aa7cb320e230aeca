"""The export archive flow against the sandbox's export jobs, on the real Prefect test server.

Each test gets a project in an organization of its own (export slots and rate limits are per
organization), small export files (a day at 60 rows an hour is ~1440 rows in a handful of
files) and a few files per page, so that paging, splitting and retries all happen within
seconds at time scale 1.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import secrets
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import prefect_iterable.flows.export_archive as export_module
from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.flows.export_archive import (
    ExportJobFailed,
    ExportTruncated,
    export_archive,
)
from prefect_iterable.sandbox.data import export_settings, exports

START = "ITERABLE_START_EXPORT"
FILES = "ITERABLE_LIST_EXPORT_FILES"
CANCEL = "ITERABLE_CANCEL_EXPORT"
DOWNLOAD = "EXPORT_FILE_DOWNLOAD"
ALL_PERMISSIONS = ["read", "write", "send", "delete"]
DAY_ROWS = 24 * 60  # rows_per_hour=60 over one UTC day


@pytest.fixture
def org_project(sandbox, make_project):
    """A project alone in its organization, with small, fast exports."""
    key, project = make_project(organization_id=700_000 + secrets.randbelow(100_000))
    export_settings(project).update(
        rows_per_hour=60, file_size_bytes=64_000, files_per_page=3, start_delay_seconds=0.1
    )
    return key, project


@pytest.fixture
def block_name(prefect_server, sandbox_server, org_project) -> str:
    key, _ = org_project
    credentials = IterableCredentials(
        api_key=key, base_url=sandbox_server.url, permissions=ALL_PERMISSIONS, timeout=5.0
    )
    name = f"test-{uuid.uuid4().hex[:12]}"
    credentials.save(name, overwrite=True)
    return name


def logged(sandbox, project, action: str, status: int | None = None) -> list:
    entries = sandbox.state.requests(action, project_id=project.id)
    return [e for e in entries if status is None or e.status == status]


def manifest_of(result) -> dict:
    return json.loads(Path(result.manifest_path).read_text())


def csv_rows(data: bytes) -> int:
    return max(0, len(list(csv.reader(io.StringIO(data.decode())))) - 1)


def check_archive(result, root: Path) -> dict:
    """Every manifest entry matches its file (bytes, SHA-256, rows); returns the manifest."""
    manifest = manifest_of(result)
    assert manifest["files"], "the manifest lists no files"
    for entry in manifest["files"]:
        data = (root / entry["file"]).read_bytes()
        assert len(data) == entry["bytes"], entry["file"]
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["file"]
        assert csv_rows(data) == entry["rows"], entry["file"]
    return manifest


def yesterday() -> tuple[datetime, datetime]:
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=1), today


@pytest.fixture
def emitted(monkeypatch) -> list[tuple[str, str, dict]]:
    """The flow's events (event, resource id, payload), still sent to the server."""
    found: list[tuple[str, str, dict]] = []
    real = export_module.emit_event

    def record(event, resource, payload=None, **kwargs):
        found.append((event, resource["prefect.resource.id"], payload or {}))
        return real(event=event, resource=resource, payload=payload, **kwargs)

    monkeypatch.setattr(export_module, "emit_event", record)
    return found


def artifacts(flow_run_id: str) -> dict:
    """This flow run's artifacts, by key."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key: a for a in found}


def test_archives_two_data_types_with_a_verified_manifest(
    sandbox, org_project, block_name, tmp_path, emitted
):
    _, project = org_project

    result = export_archive(
        data_types=["emailSend", "user"],
        storage_path=str(tmp_path),
        credentials_block=block_name,
    )

    start, end = yesterday()
    assert (result.window_start, result.window_end, result.mode) == (start, end, "async")
    assert result.verified
    by_type = {d.data_type: d for d in result.data_types}
    assert set(by_type) == {"emailSend", "user"}
    for summary in by_type.values():
        assert summary.rows == DAY_ROWS
        assert summary.files > 3  # more than one page of files
        assert summary.downloaded == summary.files and summary.skipped == 0
        assert summary.jobs_started == 1
    manifest = check_archive(result, tmp_path)
    assert len(manifest["files"]) == result.files
    day = f"{start:%Y-%m-%d}"
    assert Path(result.manifest_path) == tmp_path / "exports" / "_runs" / day / "manifest.json"
    for entry in manifest["files"]:
        assert entry["file"] == f"exports/{entry['data_type']}/{day}/{entry['source']}"
        assert entry["job_id"] and entry["window_start"] == start.isoformat()
    assert sum(f["bytes"] for f in manifest["files"]) == result.bytes
    # What the sandbox saw: two jobs, every file downloaded once, URLs without the API key.
    assert len(logged(sandbox, project, START, 200)) == 2
    downloads = logged(sandbox, project, DOWNLOAD)
    assert len(downloads) == result.files and {e.status for e in downloads} == {200}
    assert not list(tmp_path.rglob("*.part"))
    assert not list((tmp_path / "exports" / "_runs").glob("active/*.json"))
    # One event per data type, and the manifest as a table artifact.
    assert sorted((e, r) for e, r, _ in emitted) == [
        ("iterable.export.archived", "iterable.export.emailSend"),
        ("iterable.export.archived", "iterable.export.user"),
    ]
    for _, resource, payload in emitted:
        summary = by_type[resource.rsplit(".", 1)[1]]
        assert (payload["files"], payload["bytes"], payload["rows"]) == (
            summary.files,
            summary.bytes,
            summary.rows,
        )
    table = artifacts(result.flow_run_id)["export-archive-manifest"]
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    assert sorted(r["file"] for r in rows) == sorted(f["file"] for f in manifest["files"])


def test_rerun_downloads_nothing_and_repairs_a_damaged_file(
    sandbox, org_project, block_name, tmp_path
):
    _, project = org_project
    params = dict(
        data_types=["emailOpen", "purchase"],
        storage_path=str(tmp_path),
        credentials_block=block_name,
    )
    first = export_archive(**params)
    jobs, downloads = len(logged(sandbox, project, START)), len(logged(sandbox, project, DOWNLOAD))

    second = export_archive(**params)

    assert second.verified and second.downloaded == 0 and second.skipped == first.files
    assert (second.files, second.bytes, second.rows) == (first.files, first.bytes, first.rows)
    assert len(logged(sandbox, project, START)) == jobs  # no job started again
    assert len(logged(sandbox, project, DOWNLOAD)) == downloads  # nothing downloaded again

    damaged = manifest_of(first)["files"][0]
    (tmp_path / damaged["file"]).write_bytes(b"not the export\n")
    third = export_archive(**params)

    assert third.verified and third.downloaded == 1 and third.skipped == first.files - 1
    assert len(logged(sandbox, project, START)) == jobs + 1  # only the damaged data type
    assert len(logged(sandbox, project, DOWNLOAD)) == downloads + 1
    check_archive(third, tmp_path)


def test_truncated_export_is_split_in_halves(sandbox, org_project, block_name, tmp_path):
    _, project = org_project
    export_settings(project)["truncate_next"] = 1

    result = export_archive(
        data_types=["emailClick"],
        mode="async",
        storage_path=str(tmp_path),
        credentials_block=block_name,
    )

    assert result.verified and result.rows == DAY_ROWS  # nothing lost, nothing twice
    assert result.data_types[0].windows == 2 and result.jobs_started == 3
    manifest = check_archive(result, tmp_path)
    start, end = yesterday()
    middle = start + timedelta(hours=12)
    units = manifest["units"]
    whole = units[f"emailClick|csv|{start.isoformat()}|{end.isoformat()}"]
    assert whole["status"] == "split"
    for half in ((start, middle), (middle, end)):
        unit = units[f"emailClick|csv|{half[0].isoformat()}|{half[1].isoformat()}"]
        assert unit["status"] == "complete" and unit["files"]
    prefixes = {Path(f["file"]).name.split("_")[0] for f in manifest["files"]}
    assert prefixes == {
        f"{start:%Y%m%dT%H%M%SZ}-{middle:%Y%m%dT%H%M%SZ}",
        f"{middle:%Y%m%dT%H%M%SZ}-{end:%Y%m%dT%H%M%SZ}",
    }
    truncated = [j for j in exports(project).jobs.values() if j.truncated]
    assert len(truncated) == 1  # its files were not downloaded
    assert len(logged(sandbox, project, DOWNLOAD)) == result.files


def test_truncated_export_fails_loudly_when_asked(sandbox, org_project, block_name, tmp_path):
    _, project = org_project
    export_settings(project)["truncate_next"] = 1

    with pytest.raises(ExportTruncated, match="exportTruncated"):
        export_archive(
            data_types=["emailClick"],
            on_truncated="fail",
            storage_path=str(tmp_path),
            credentials_block=block_name,
        )
    assert not logged(sandbox, project, DOWNLOAD)


def test_expired_url_is_listed_again_and_retried(
    sandbox, org_project, block_name, tmp_path, monkeypatch
):
    _, project = org_project
    import prefect_iterable.api.archive.downloads as download_module

    real_download = download_module.download
    expired = []

    def download_after_expiry(http, url, *args, **kwargs):
        if not expired:  # every URL handed out so far expires now
            area = exports(project)
            area.tokens = {k: (job, index, 0.0) for k, (job, index, _) in area.tokens.items()}
            expired.append(url)
        return real_download(http, url, *args, **kwargs)

    monkeypatch.setattr(download_module, "download", download_after_expiry)

    result = export_archive(
        data_types=["smsSend"],
        mode="async",
        storage_path=str(tmp_path),
        credentials_block=block_name,
    )

    assert result.verified and result.rows == DAY_ROWS
    check_archive(result, tmp_path)
    downloads = logged(sandbox, project, DOWNLOAD)
    assert [e.status for e in downloads].count(403) >= 1
    by_file: dict[str, list] = {}
    for entry in downloads:  # files download two at a time: group each file's attempts
        by_file.setdefault(entry.path.rsplit("/", 1)[1], []).append(entry)
    assert len(by_file) == result.files
    assert all([e.status for e in tries][-1:] == [200] for tries in by_file.values())
    expired_first = [tries for tries in by_file.values() if tries[0].status == 403]
    assert expired_first
    for tries in expired_first:  # then a fresh URL for the same file
        assert [e.status for e in tries] == [403, 200] and tries[0].path != tries[1].path


def test_failed_job_is_resubmitted(sandbox, org_project, block_name, tmp_path):
    _, project = org_project
    export_settings(project).update(fail_next=1, restart_next=1)

    result = export_archive(
        data_types=["pushSend"],
        mode="async",
        storage_path=str(tmp_path),
        credentials_block=block_name,
    )

    assert result.verified and result.rows == DAY_ROWS and result.jobs_started == 2
    states = sorted(j.state for j in exports(project).jobs.values())
    assert states == ["Completed", "Failed"]
    check_archive(result, tmp_path)


def test_job_failing_every_time_fails_the_run(sandbox, org_project, block_name, tmp_path):
    _, project = org_project
    export_settings(project)["fail_next"] = 5

    with pytest.raises(ExportJobFailed, match="failed 2 times"):
        export_archive(
            data_types=["pushOpen"],
            mode="async",
            max_job_attempts=2,
            storage_path=str(tmp_path),
            credentials_block=block_name,
        )
    assert [j.state for j in exports(project).jobs.values()] == ["Failed", "Failed"]


def test_running_jobs_are_cancelled_when_the_run_fails(sandbox, org_project, block_name, tmp_path):
    _, project = org_project
    # About 300 KB per job at 50 KB/s: six seconds of work; the first job fails halfway.
    export_settings(project).update(bytes_per_second=50_000, fail_next=1)

    with pytest.raises(ExportJobFailed):
        export_archive(
            data_types=["emailSend", "emailOpen"],
            mode="async",
            max_job_attempts=1,
            poll_max_seconds=1.0,
            storage_path=str(tmp_path),
            credentials_block=block_name,
        )

    jobs = sorted(exports(project).jobs.values(), key=lambda j: j.id)
    assert sorted(j.state for j in jobs) == ["Cancelled", "Failed"]
    cancelled = [j for j in jobs if j.state == "Cancelled"]
    assert len(logged(sandbox, project, CANCEL, 200)) == 1
    assert f"/api/export/{cancelled[0].id}" in logged(sandbox, project, CANCEL)[0].path
    assert not list((tmp_path / "exports" / "_runs" / "active").glob("*.json"))


def test_small_window_uses_the_streamed_endpoint(sandbox, org_project, block_name, tmp_path):
    _, project = org_project
    start = yesterday()[0] + timedelta(hours=5)

    result = export_archive(
        data_types=["emailSend"],
        start=start,
        end=start + timedelta(hours=1),
        storage_path=str(tmp_path),
        credentials_block=block_name,
    )

    assert result.mode == "sync" and result.rows == 60 and result.files == 1
    entry = check_archive(result, tmp_path)["files"][0]
    name = f"{start:%Y%m%dT%H%M%SZ}-{start + timedelta(hours=1):%Y%m%dT%H%M%SZ}_emailSend.csv"
    assert entry["file"] == f"exports/emailSend/{start:%Y-%m-%d}/{name}"
    assert len(logged(sandbox, project, "ITERABLE_EXPORT_DATA_CSV")) == 1
    assert not logged(sandbox, project, START)


def test_writes_into_a_remote_file_system_block(sandbox, org_project, block_name):
    from prefect.filesystems import RemoteFileSystem

    base = f"memory://archive-{uuid.uuid4().hex[:8]}"
    storage = f"test-fs-{uuid.uuid4().hex[:8]}"
    RemoteFileSystem(basepath=base).save(storage, overwrite=True)
    start = yesterday()[0]

    result = export_archive(
        data_types=["user"],
        start=start,
        end=start + timedelta(hours=1),
        output_format="json",
        storage_block=storage,
        prefix="iterable/daily",
        credentials_block=block_name,
    )

    fs = RemoteFileSystem.load(storage).filesystem
    manifest = json.loads(fs.cat_file(result.manifest_path))
    assert result.manifest_path.startswith(base + "/iterable/daily/_runs/")
    (entry,) = manifest["files"]
    data = fs.cat_file(f"{base}/{entry['file']}")
    assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["bytes"]
    assert entry["rows"] == 60 == len(data.decode().splitlines())
    assert json.loads(data.decode().splitlines()[0])["email"]


def test_bad_parameters_fail_before_any_request(sandbox, org_project, block_name, tmp_path):
    _, project = org_project
    with pytest.raises(ValueError, match="data_types: unknown"):
        export_archive(
            data_types=["emailSent"], storage_path=str(tmp_path), credentials_block=block_name
        )
    with pytest.raises(ValueError, match="prefix"):
        export_archive(
            data_types=["user"],
            prefix="../up",
            storage_path=str(tmp_path),
            credentials_block=block_name,
        )
    assert not sandbox.state.requests(project_id=project.id)


def test_cancellation_hook_cancels_jobs_recorded_by_another_process(
    sandbox, org_project, block_name, tmp_path
):
    """The runner runs on_cancellation in a process of its own: the jobs come from the file."""
    from types import SimpleNamespace

    from prefect_iterable.api.archive import active_jobs_name
    from prefect_iterable.flows._storage import ArchiveStore
    from prefect_iterable.flows.export_archive import _cancel_on_exit

    _, project = org_project
    export_settings(project)["bytes_per_second"] = 1_000  # stays Running
    credentials = IterableCredentials.load(block_name)
    with credentials.get_client() as client:
        start, end = yesterday()
        job_id = client.call(
            START,
            data_type_name="emailSend",
            output_format="text/csv",
            start_date_time=f"{start:%Y-%m-%d %H:%M:%S} +00:00",
            end_date_time=f"{end:%Y-%m-%d %H:%M:%S} +00:00",
        )["jobId"]
    flow_run = SimpleNamespace(
        id=uuid.uuid4(),
        parameters={
            "storage_path": str(tmp_path),
            "prefix": "exports",
            "credentials_block": block_name,
        },
    )
    store = ArchiveStore.open(None, str(tmp_path))
    active = active_jobs_name("exports", str(flow_run.id))
    store.write_json(active, {"jobs": {str(job_id): {"data_type": "emailSend"}}})

    _cancel_on_exit(None, flow_run, None)

    assert exports(project).jobs[job_id].state == "Cancelled"
    assert not store.exists(active)
