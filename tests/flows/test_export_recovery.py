"""Export archive recovery: what a killed run leaves, and lost answers to an export start.

* A SIGKILL leaves temporary ``.part`` files (a data file mid-download, the manifest, the
  active-jobs file); the re-run removes those of dead writers and keeps a live writer's
  (issue #14 item 8).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from prefect_iterable.flows._storage import _HOST
from prefect_iterable.flows.export_archive import export_archive
from tests.flows.test_export_archive import (  # noqa: F401 - fixtures
    DAY_ROWS,
    block_name,
    check_archive,
    org_project,
    yesterday,
)

REPO = Path(__file__).resolve().parents[2]

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
