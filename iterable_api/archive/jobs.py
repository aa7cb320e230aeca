"""One archive's export jobs: started, adopted after a lost answer, polled, cancelled.

Iterable runs a few export jobs per organization at a time and cannot deduplicate a start: the
client never repeats ``ITERABLE_START_EXPORT`` once it may have arrived (``OutcomeUnknown``), so
``ExportJobs.start`` looks for the job it may have started instead. Every job still running is
recorded in a small JSON document in the archive (``active_jobs_name``), so that whoever cleans
up after the run (another process, a cancellation hook) can cancel it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any, Protocol

from prefect_iterable.api.archive.errors import ExportJobFailed, Stopped
from prefect_iterable.api.archive.store import ArchiveTarget
from prefect_iterable.api.archive.windows import Window, iterable_time
from prefect_iterable.api.client import Client
from prefect_iterable.api.errors import BadRequest, IterableError, OutcomeUnknown
from prefect_iterable.api.models.exports import ExportJobFiles
from prefect_iterable.api.models.exports import ExportJobs as JobList

__all__ = ["MIME", "ExportJobs", "Log", "active_jobs_name", "cancel_jobs", "cancel_recorded_jobs"]

MIME = {"csv": "text/csv", "json": "application/x-json-stream"}


class Log(Protocol):
    """Where progress goes: a ``logging.Logger`` or a Prefect run logger."""

    def info(self, msg: str, *args: Any) -> None: ...

    def warning(self, msg: str, *args: Any) -> None: ...

    def error(self, msg: str, *args: Any) -> None: ...


def active_jobs_name(prefix: str, run_id: str) -> str:
    """Where the archive run ``run_id`` records the export jobs it has running."""
    folder = f"{prefix}/_runs/active" if prefix else "_runs/active"
    return f"{folder}/{run_id}.json"


def cancel_jobs(client: Client, job_ids: list[int], logger: Log) -> list[int]:
    """Cancel each job; returns those cancelled (a job that already ended is not an error)."""
    cancelled = []
    for job_id in job_ids:
        try:
            client.call("ITERABLE_CANCEL_EXPORT", job_id=job_id)
            cancelled.append(job_id)
            logger.warning("cancelled export job %s", job_id)
        except BadRequest:
            logger.info("export job %s had already ended", job_id)
        except IterableError as exc:
            logger.error("could not cancel export job %s: %s", job_id, exc)
    return cancelled


def cancel_recorded_jobs(
    client: Client, store: ArchiveTarget, prefix: str, run_id: str, logger: Log
) -> list[int]:
    """Cancel the jobs the run ``run_id`` recorded as running, then forget the record."""
    name = active_jobs_name(prefix, run_id)
    document = store.read_json(name) or {}
    jobs = [int(j) for j in (document.get("jobs") or {})]
    cancelled = cancel_jobs(client, jobs, logger) if jobs else []
    store.remove(name)
    return cancelled


class ExportJobs:
    """The export jobs of one archive run, shared by the threads that archive its windows.

    ``stop`` is the run's stop flag: once set, waits end and no job starts (``Stopped``).
    """

    def __init__(
        self,
        client: Client,
        store: ArchiveTarget,
        active_name: str,
        *,
        output_format: str,
        poll_max_seconds: float = 30.0,
        stop: threading.Event | None = None,
    ) -> None:
        self.client = client
        self.store = store
        self.active_name = active_name
        self.output_format = output_format
        self.poll_max_seconds = poll_max_seconds
        self.stop = stop or threading.Event()
        self.lock = threading.Lock()
        self.active: dict[int, dict[str, str]] = {}
        self.started: set[int] = set()  # every job this run started, finished ones included
        # Jobs adopted after a lost start answer: their window is unknown until their files
        # are read (Iterable's job list carries none).
        self.unproven: set[int] = set()

    def check(self) -> None:
        """Raise ``Stopped`` if the run is stopping."""
        if self.stop.is_set():
            raise Stopped()

    def wait(self, seconds: float) -> None:
        """Sleep, or raise ``Stopped`` as soon as the run stops."""
        if self.stop.wait(seconds):
            raise Stopped()

    def start(self, data_type: str, window: Window) -> int:
        """Start an export job and record it as active (under the lock, so a stop sees it)."""
        with self.lock:
            self.check()
            requested = time.time()
            values = {
                "data_type_name": data_type,
                "output_format": MIME[self.output_format],
                "start_date_time": iterable_time(window.start),
                "end_date_time": iterable_time(window.end),
            }
            try:
                job_id = int(self.client.call("ITERABLE_START_EXPORT", **values)["jobId"])
            except OutcomeUnknown:
                job_id = self._recover_started(data_type, requested)
                self.unproven.add(job_id)
            self.started.add(job_id)
            self.active[job_id] = {
                "data_type": data_type,
                "start": window.start.isoformat(),
                "end": window.end.isoformat(),
            }
            self._write_active()
            return job_id

    def _recover_started(self, data_type: str, requested: float) -> int:
        """After an uncertain start: the newest job of this data type this run did not start.

        A small job can be Completed by the time the answer is given up on, so any state but
        Cancelled counts; jobs this run started itself (the other half of a split window) don't.
        The job may also be another run's (another window of the same data type): it is adopted
        only on probation (``unproven``), until its records prove its window.
        """
        jobs = JobList.model_validate(self.client.call("ITERABLE_LIST_EXPORT_JOBS")).jobs
        for job in sorted(jobs, key=lambda j: j.id, reverse=True):
            if (
                job.data_type_name == data_type
                and job.id not in self.started
                and job.job_state != "Cancelled"
                and (
                    job.scheduled_start_time is None
                    or job.scheduled_start_time.timestamp() >= requested - 5
                )
            ):
                return job.id
        raise ExportJobFailed(
            f"starting the {data_type} export may or may not have worked (no answer) and no new "
            "job of that data type is listed; run the flow again"
        )

    def prove(self, job_id: int) -> None:
        """An adopted job's records lie in its window: it is ours."""
        with self.lock:
            self.unproven.discard(job_id)

    def finish(self, job_id: int) -> None:
        """The job ended: no longer ours to cancel."""
        with self.lock:
            if self.active.pop(job_id, None) is not None:
                self._write_active()

    def _write_active(self) -> None:
        with contextlib.suppress(Exception):  # a convenience for clean-up, never fatal
            self.store.write_json(
                self.active_name, {"jobs": {str(k): v for k, v in self.active.items()}}
            )

    def cancel_all(self, logger: Log) -> list[int]:
        """Stop the run and cancel every job still active; returns the ids cancelled."""
        self.stop.set()
        with self.lock:
            cancelled = cancel_jobs(self.client, list(self.active), logger)
            self.active.clear()
            with contextlib.suppress(Exception):
                self.store.remove(self.active_name)
            return cancelled

    def list_files(self, job_id: int, start_after: str | None = None) -> ExportJobFiles:
        """One page of a job's state and files (URLs fresh at each call)."""
        raw = self.client.call("ITERABLE_LIST_EXPORT_FILES", job_id=job_id, start_after=start_after)
        return ExportJobFiles.model_validate(raw)

    def wait_for(self, job_id: int, data_type: str, logger: Log) -> ExportJobFiles:
        """Poll until the job ends (pauses of 1 s growing ×1.5 up to ``poll_max_seconds``);
        returns the first page of its final listing.

        A job that goes back from Running to Enqueued (Iterable restarted it) is polled on.
        """
        delay, state = 1.0, None
        while True:
            self.wait(min(delay, self.poll_max_seconds))
            delay *= 1.5
            page = self.list_files(job_id)
            if page.job_state != state:
                if state == "Running" and page.job_state == "Enqueued":
                    logger.warning("export job %s was restarted by Iterable; still polling", job_id)
                else:
                    logger.info("export job %s (%s): %s", job_id, data_type, page.job_state)
                state = page.job_state
            if page.finished:
                return page
