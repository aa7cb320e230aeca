"""Helpers of the fault matrix (``test_fault_matrix.py``): the cells, running a flow to completion,
killing a flow process, and reading the sandbox's request log.

The matrix is (flow × fault). Each applicable cell names the test that covers it; a cell that makes
no sense for a flow carries the reason instead. ``docs/RELIABILITY.md`` shows the same table, and a
test checks that the two agree.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from prefect_iterable.api.retrying import RetryPolicy

REPO = Path(__file__).resolve().parents[2]

FLOWS = ("campaign_launch", "gdpr_forget", "export_archive", "bulk_import")
FAULTS = (
    "429-storm",
    "500",
    "503",
    "reset",
    "timeout-after-processing",
    "stream-cut",
    "expired-url",
    "export-job-failed-restarted",
    "sigkill",
)

#: Cells that make no sense, and why.
NOT_APPLICABLE: dict[tuple[str, str], str] = {
    ("campaign_launch", "stream-cut"): "the launch streams no body (JSON requests only)",
    ("campaign_launch", "expired-url"): "the launch downloads no export file",
    ("campaign_launch", "export-job-failed-restarted"): "the launch starts no export job",
    ("gdpr_forget", "stream-cut"): "forget and the forgotten-userId list are plain JSON answers",
    ("gdpr_forget", "expired-url"): "the GDPR flow downloads no export file",
    ("gdpr_forget", "export-job-failed-restarted"): "the GDPR flow starts no export job",
    ("bulk_import", "stream-cut"): (
        "the import reads a local/fsspec file and sends JSON bodies; no Iterable answer is "
        "streamed (a truncated source line is bad input: it goes to the dead-letter file)"
    ),
    ("bulk_import", "expired-url"): "the import downloads no export file",
    ("bulk_import", "export-job-failed-restarted"): "the import starts no export job",
}

#: Cells covered (also, or only) by a test of the flow's own test module.
ALSO_COVERED: dict[tuple[str, str], list[str]] = {
    ("campaign_launch", "reset"): [
        "test_campaign_launch.py::test_a_proof_with_an_unknown_outcome_is_not_sent_again"
    ],
    ("gdpr_forget", "429-storm"): [
        "test_gdpr.py::test_daily_cap_stops_cleanly_and_a_rerun_finishes_without_reforgetting"
    ],
    ("export_archive", "expired-url"): [
        "test_export_archive.py::test_expired_url_is_listed_again_and_retried"
    ],
    ("export_archive", "export-job-failed-restarted"): [
        "test_export_archive.py::test_failed_job_is_resubmitted",
        "test_export_archive.py::test_job_failing_every_time_fails_the_run",
    ],
    ("bulk_import", "429-storm"): [
        "test_bulk_import.py::test_a_failing_batch_stops_cleanly_and_a_rerun_finishes"
    ],
    ("bulk_import", "sigkill"): ["test_bulk_import.py::test_resumes_after_the_process_is_killed"],
}


def applicable_cells() -> list[tuple[str, str]]:
    return [(f, k) for f in FLOWS for k in FAULTS if (f, k) not in NOT_APPLICABLE]


def cell_id(flow: str, fault: str) -> str:
    return f"{flow}-{fault}"


# ---- fast client retries -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FastRetry(RetryPolicy):
    """The client's policy with short backoffs and fewer attempts: same decisions, milliseconds.

    (Fewer attempts keep storms short where a limiter paces every attempt, e.g. export starts at
    1/s; no flow depends on the number.)
    """

    attempts: int = 4
    backoff_base: float = 0.02
    backoff_cap: float = 0.1


# ---- running a flow until it completes ---------------------------------------------------------


class KnownBug(AssertionError):
    """A cell reproduced a bug reported to the lead (the cell is ``xfail(raises=KnownBug)``)."""


@dataclasses.dataclass
class Runs:
    """The states of the runs a cell needed (one, or a failed one and its re-run)."""

    states: list[Any]
    known_bug: str | None = None  # the first run's failure, when it is a known bug

    def raise_known_bug(self) -> None:
        """Call after the invariants: the cell held up, except for the known bug."""
        if self.known_bug is not None:
            raise KnownBug(self.known_bug)

    @property
    def result(self) -> Any:
        return self.states[-1].result()

    @property
    def first_failure(self) -> str | None:
        first = self.states[0]
        return None if first.is_completed() else failure_text(first)


def failure_text(state: Any) -> str:
    """The state's message and the exception's own text (what an operator sees)."""
    try:
        state.result()
    except BaseException as exc:  # noqa: BLE001 - we want the text of whatever it was
        return f"{state.message or ''} | {type(exc).__name__}: {exc}"
    return state.message or ""


def run_to_completion(
    run: Callable[[], Any],
    *,
    fails_first: str | None,
    between: Callable[[], None] | None = None,
    known_bug: str | None = None,
) -> Runs:
    """Run a flow (``run`` returns its final state); if ``fails_first``, the first run must fail
    with a message matching that regex, and a re-run (after ``between``) must complete.

    ``known_bug``: a regex of a failure the first run should not have but currently has (a bug
    reported to the lead); then the re-run must complete, and ``Runs.known_bug`` is set so that
    the scenario can check its invariants before ``raise_known_bug``.
    """
    first = run()
    if fails_first is None:
        if known_bug is not None and first.is_failed():
            text = failure_text(first)
            assert re.search(known_bug, text, re.I | re.S), f"unexpected failure: {text}"
            second = run()
            assert second.is_completed(), f"the re-run failed too: {failure_text(second)}"
            return Runs([first, second], known_bug=text)
        assert first.is_completed(), f"the run should have completed: {failure_text(first)}"
        return Runs([first])
    assert first.is_failed(), f"the first run should have failed, it is {first.type}"
    text = failure_text(first)
    assert re.search(fails_first, text, re.I | re.S), f"unclear failure: {text}"
    if between is not None:
        between()
    second = run()
    assert second.is_completed(), f"the re-run should have completed: {failure_text(second)}"
    return Runs([first, second])


# ---- the request log -------------------------------------------------------------------------


def logged(sandbox: Any, project: Any, action: str) -> list[Any]:
    return sandbox.state.requests(action, project_id=project.id)


def processed(sandbox: Any, project: Any, action: str) -> list[Any]:
    """Requests of ``action`` whose handler ran and accepted them (state may have changed)."""
    return [e for e in logged(sandbox, project, action) if e.processed]


def per_key(entries: Iterable[Any], key: Callable[[Any], Iterable[str]]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for entry in entries:
        counts.update(key(entry))
    return counts


# ---- archives ----------------------------------------------------------------------------------


def check_archive(root: Path, manifest_path: str | Path) -> dict[str, Any]:
    """The manifest lists exactly the data files on disk, each with its size and SHA-256.

    Returns the manifest. Leftover ``.part`` files (an interrupted download) are returned under
    ``"_leftovers"`` for the caller to judge.
    """
    manifest = json.loads(Path(manifest_path).read_text())
    listed = {entry["file"]: entry for entry in manifest["files"]}
    assert listed, "the manifest lists no files"
    on_disk: set[str] = set()
    leftovers: list[str] = []
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        name = path.relative_to(root).as_posix()
        if "/_runs/" in f"/{name}":
            continue
        if path.name.startswith(".") and path.name.endswith(".part"):
            leftovers.append(name)
            continue
        on_disk.add(name)
    assert on_disk == set(listed), (
        f"not in the manifest: {sorted(on_disk - set(listed))}; "
        f"missing on disk: {sorted(set(listed) - on_disk)}"
    )
    for name, entry in listed.items():
        data = (root / name).read_bytes()
        assert len(data) == entry["bytes"], name
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], name
    manifest["_leftovers"] = leftovers
    return manifest


# ---- a flow in a process of its own, killed with SIGKILL --------------------------------------


def spawn(code: str) -> subprocess.Popen[bytes]:
    """Run ``code`` in a fresh Python process on this test's Prefect server."""
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def kill_when(
    process: subprocess.Popen[bytes], ready: Callable[[], bool], *, timeout: float = 60.0
) -> str:
    """SIGKILL ``process`` as soon as ``ready()``; return its stderr. Fails if never ready."""
    deadline = time.monotonic() + timeout
    reached = False
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if ready():
                reached = True
                break
            time.sleep(0.05)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        _, stderr = process.communicate(timeout=30)
    text = stderr.decode(errors="replace")
    assert reached, (
        f"the flow process never reached the kill point (rc {process.returncode}):\n{text[-3000:]}"
    )
    assert process.returncode == -signal.SIGKILL, f"not killed (rc {process.returncode})"
    return text
