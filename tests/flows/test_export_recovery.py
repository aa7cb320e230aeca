"""Export archive recovery: what a killed run leaves, and lost answers to an export start.

* A lost answer to an export start while another run's job of the same data type (another day)
  is the newest: the flow adopts a job only when its records prove its window, otherwise it
  records the job as an orphan and starts its own (issue #14 item 2).
* A SIGKILL leaves temporary ``.part`` files (a data file mid-download, the manifest, the
  active-jobs file); the re-run removes those of dead writers and keeps a live writer's
  (issue #14 item 8).
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.flows._storage import _HOST
from prefect_iterable.flows.export_archive import export_archive
from prefect_iterable.sandbox.data import exports
from tests.flows.test_export_archive import (  # noqa: F401 - fixtures
    DAY_ROWS,
    block_name,
    check_archive,
    org_project,
    yesterday,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def client_for_key(sandbox_server):
    """A client of another run (another process, same project)."""
    opened = []

    def make(key: str):
        client = IterableCredentials(api_key=key, base_url=sandbox_server.url).get_client()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.close()


# Writes three files through the archive store, as the flow does, and hangs half-way through.
_WRITER = """
import sys, time
from prefect_iterable.flows._storage import ArchiveStore
store = ArchiveStore.open(None, sys.argv[1])
with store.writer(sys.argv[2]) as a, store.writer(sys.argv[3]) as b, store.writer(sys.argv[4]) as c:
    for out in (a, b, c):
        out.write(b"half of it")
        out.flush()
    print("writing", flush=True)
    time.sleep(600)
"""


def _parts(root: Path) -> list[Path]:
    return sorted(root.rglob(".*.part"))


def test_a_rerun_removes_the_part_files_a_killed_run_left(
    sandbox,
    org_project,  # noqa: F811
    block_name,  # noqa: F811
    tmp_path,
):
    start, end = yesterday()
    root = tmp_path / "archive"
    day = start.strftime("%Y-%m-%d")
    names = [
        f"exports/smsSend/{day}/{day}_smsSend-00000.csv",  # a data file mid-download
        f"exports/_runs/{day}/manifest.json",
        "exports/_runs/active/0d0e0a0d-run.json",
    ]
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(root), *names],
        cwd=REPO,
        stdout=subprocess.PIPE,
    )
    assert writer.stdout is not None and writer.stdout.readline() == b"writing\n"
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)
    left = _parts(root)
    assert len(left) == 3, left  # what SIGKILL leaves: no cleanup ran
    # A concurrent run's writer (this process, alive) keeps its file.
    live_writer = left[0].parent / f".x.csv.{_HOST}-{os.getpid()}-1badc0de.part"
    live_writer.write_bytes(b"in progress")

    result = export_archive(
        data_types=["smsSend"], start=start, end=end, mode="async", storage_path=str(root),
        credentials_block=block_name,
    )  # fmt: skip

    assert result.rows == DAY_ROWS and result.verified
    check_archive(result, root)
    assert _parts(root) == [live_writer], _parts(root)


def _records_days(root: Path, manifest: dict) -> set[str]:
    """The UTC days of the records (createdAt) in the archived files."""
    days: set[str] = set()
    for entry in manifest["files"]:
        with (root / entry["file"]).open(newline="") as handle:
            days |= {row["createdAt"][:10] for row in csv.DictReader(handle)}
    return days


def test_a_lost_start_answer_never_archives_another_days_job(
    sandbox,
    org_project,  # noqa: F811
    block_name,  # noqa: F811
    tmp_path,
    client_for_key,
):
    """Another run's job for another day is the newest of its data type when this run's start
    answer is lost: its records prove it is not this window's, so it is not archived."""
    key, project = org_project
    start, end = yesterday()
    other_day = start - timedelta(days=5)
    other = client_for_key(key).call(
        "ITERABLE_START_EXPORT",
        data_type_name="smsSend",
        output_format="text/csv",
        start_date_time=other_day.strftime("%Y-%m-%d %H:%M:%S"),
        end_date_time=(other_day + timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S"),
    )["jobId"]
    # The connection drops before Iterable saw this run's start: only the other job exists.
    sandbox.inject("ITERABLE_START_EXPORT", "reset")
    root = tmp_path / "archive"

    result = export_archive(
        data_types=["smsSend"], start=start, end=end, mode="async", storage_path=str(root),
        credentials_block=block_name,
    )  # fmt: skip

    manifest = check_archive(result, root)
    assert _records_days(root, manifest) == {start.strftime("%Y-%m-%d")}
    assert result.verified and manifest["verified"] is True
    assert result.rows == DAY_ROWS
    assert other not in {f["job_id"] for f in manifest["files"]}
    assert [o["job_id"] for o in manifest["orphan_jobs"]] == [other]
    assert "outside the window" in manifest["orphan_jobs"][0]["reason"]
    # The other run's job was left alone (it is not this run's to cancel).
    assert exports(project).jobs[other].state != "Cancelled"


def test_a_lost_start_answer_adopts_the_job_its_records_prove(
    sandbox,
    org_project,  # noqa: F811
    block_name,  # noqa: F811
    tmp_path,
):
    """The start was processed, its answer lost: the job is this window's; adopted, one job."""
    _, project = org_project
    start, end = yesterday()
    sandbox.inject("ITERABLE_START_EXPORT", "500", after_processing=True)
    root = tmp_path / "archive"

    result = export_archive(
        data_types=["smsSend"], start=start, end=end, mode="async", storage_path=str(root),
        credentials_block=block_name,
    )  # fmt: skip

    manifest = check_archive(result, root)
    assert result.verified and manifest["verified"] is True and manifest["orphan_jobs"] == []
    assert len(exports(project).jobs) == 1 and result.rows == DAY_ROWS
