"""``export_archive``: archive Iterable exports of a time window into a folder or storage block.

For each data type (``emailSend``, ``emailOpen``, ``user`` …) and a window (by default
yesterday, UTC midnight to midnight):

1. **Plan.** Read the run's previous manifest. A data type whose window the manifest records as
   complete, with every file present and matching its size and SHA-256, is skipped without any
   request. A window the manifest records as split is planned as its two halves.
2. **Export.** Asynchronous mode starts one Iterable export job per window
   (``ITERABLE_START_EXPORT``), at most ``max_concurrent_jobs`` (4, Iterable's limit per
   organization) at a time: the next starts when one finishes. Each job is polled with
   ``ITERABLE_LIST_EXPORT_FILES`` with a growing pause (1 s, ×1.5, at most ``poll_max_seconds``).
   A job that goes back from Running to Enqueued (Iterable restarted it) is simply polled on. A
   job that ends Failed is started again, at most ``max_job_attempts`` times in all, then the run
   fails naming the job. A job that completes with ``exportTruncated`` (Iterable's size cap) is
   thrown away and its window exported as two halves (``on_truncated="split"``, at most
   ``max_split_depth`` times deep), or the run fails (``"fail"``).
   Synchronous mode streams ``ITERABLE_EXPORT_DATA_CSV``/``_JSON`` (4 requests a minute) instead;
   ``mode="auto"`` uses it for one data type and a window of at most an hour.
3. **Download.** The files of a completed job are listed page by page (``startAfter``) and each is
   streamed in chunks (never whole in memory) with a plain HTTP client that sends no API key (the
   URLs are pre-signed) into ``<prefix>/<dataType>/<start-date>/<file>``, hashing and counting
   records on the way. An expired URL (403) is listed again for a fresh one and the file retried.
   A file that the manifest already holds with the same checksum is not downloaded again.
4. **Manifest.** ``<prefix>/_runs/<window>/manifest.json`` lists every file (path, bytes, rows,
   SHA-256, data type, job id, window); it is rewritten as files arrive, so a crashed run resumes.
5. **Verify.** Every file of the run is read back and its size, SHA-256 and record count compared
   with the manifest; a mismatch fails the run naming the files.
6. **Report.** A table artifact (``export-archive-manifest``) and one ``iterable.export.archived``
   event per data type (payload: files, bytes, rows).

If the run fails or is cancelled while jobs run, the jobs are cancelled
(``ITERABLE_CANCEL_EXPORT``): in a ``finally`` for failures inside the run, and by the
``on_cancellation``/``on_crashed`` hooks, which find the jobs still running in
``<prefix>/_runs/active/<flow run id>.json`` when they run in another process.

File names: Iterable's own name for a whole-UTC-day window, otherwise prefixed with the window
(``20240501T000000Z-20240501T120000Z_emailSend-00001.csv``), so halves of a split window and
windows starting on the same day never collide.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Literal

import httpx
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.events import emit_event
from prefect.futures import PrefectFuture, as_completed
from prefect.futures import wait as wait_for_futures
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, Field

from prefect_iterable.api.errors import (
    BadRequest,
    IterableError,
    OutcomeUnknown,
    TransportError,
    error_from_response,
)
from prefect_iterable.api.models.exports import ExportJobFiles, ExportJobs
from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.flows._storage import ArchiveStore, RecordCounter
from prefect_iterable.tasks.exports import DATA_TYPE_NAMES

__all__ = [
    "DataTypeArchive",
    "ExportArchiveError",
    "ExportArchiveResult",
    "ExportJobFailed",
    "ExportTruncated",
    "export_archive",
]

OutputFormat = Literal["csv", "json"]
MIME = {"csv": "text/csv", "json": "application/x-json-stream"}
EXTENSION = {"csv": ".csv", "json": ".json"}
SYNC_ACTION = {"csv": "ITERABLE_EXPORT_DATA_CSV", "json": "ITERABLE_EXPORT_DATA_JSON"}
MANIFEST_VERSION = 1
_SYNC_MAX = timedelta(hours=1)
_DOWNLOAD_ATTEMPTS = 4
_CHUNK = 1 << 20
_MANIFEST_EVERY = 2.0  # seconds between manifest checkpoints while files arrive

# Runs of this process, by flow run id: what the cancellation hooks act on.
_RUNS: dict[str, _Run] = {}


class ExportArchiveError(RuntimeError):
    """The archive could not be completed; the message says what and what to do."""


class ExportJobFailed(ExportArchiveError):
    """An export job kept failing (or was cancelled outside the flow)."""


class ExportTruncated(ExportArchiveError):
    """Iterable truncated an export and the window may not (or can no longer) be split."""


class _Stopped(Exception):
    """The run is stopping (another window failed, or the flow was cancelled)."""


class _UrlExpired(Exception):
    """A download URL answered 403."""


# ---- windows -------------------------------------------------------------------------------


def _utc(value: datetime) -> datetime:
    return (
        value.replace(tzinfo=timezone.utc)
        if value.tzinfo is None
        else value.astimezone(timezone.utc)
    )


def _stamp(value: datetime) -> str:
    return value.strftime("%Y%m%dT%H%M%SZ")


def _iterable_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S +00:00")


@dataclass(frozen=True)
class Window:
    """A half-open UTC interval ``[start, end)``."""

    start: datetime
    end: datetime

    @property
    def whole_day(self) -> bool:
        midnight = self.start.replace(hour=0, minute=0, second=0, microsecond=0)
        return self.start == midnight and self.end - self.start == timedelta(days=1)

    @property
    def tag(self) -> str:
        """``2024-05-01`` for a whole UTC day, else ``<start>-<end>`` in compact UTC."""
        if self.whole_day:
            return self.start.strftime("%Y-%m-%d")
        return f"{_stamp(self.start)}-{_stamp(self.end)}"

    @property
    def label(self) -> str:
        return f"{self.start:%Y-%m-%d %H:%M:%S}..{self.end:%Y-%m-%d %H:%M:%S}Z"

    def halves(self) -> tuple[Window, Window] | None:
        seconds = int((self.end - self.start).total_seconds())
        if seconds < 2:
            return None
        middle = self.start + timedelta(seconds=seconds // 2)
        return Window(self.start, middle), Window(middle, self.end)

    def key(self) -> tuple[str, str]:
        return (self.start.isoformat(), self.end.isoformat())


def _default_window(now: datetime | None = None) -> Window:
    today = (now or datetime.now(timezone.utc)).replace(hour=0, minute=0, second=0, microsecond=0)
    return Window(today - timedelta(days=1), today)


# ---- results -------------------------------------------------------------------------------


# The field that dates a record: events carry createdAt, user profiles profileUpdatedAt.
_TIME_FIELDS = ("createdAt", "profileUpdatedAt", "updatedAt")
_ZONE_GAP = re.compile(r"\s+(?=[+-]\d\d:?\d\d$|Z$)")


def _record_time(record: Any) -> datetime | None:
    """When a record happened, read as Iterable writes it (epoch ms, its own format, ISO)."""
    if not isinstance(record, dict):
        return None
    value = next((record[f] for f in _TIME_FIELDS if record.get(f) not in (None, "")), None)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, timezone.utc)
    if not isinstance(value, str):
        return None
    try:
        return _utc(datetime.fromisoformat(_ZONE_GAP.sub("", value.strip())))
    except ValueError:
        return None


def _window_content(store: ArchiveStore, name: str, fmt: str, window: Window) -> tuple[int, int]:
    """Of the records of ``name`` that carry a time: how many there are, and how many fall
    outside ``window``. What proves (or disproves) that a file belongs to its window."""
    dated = outside = 0
    with store.fs.open(store.path(name), "rb") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        records = (
            csv.DictReader(text)
            if fmt == "csv"
            else (json.loads(line) for line in text if line.strip())
        )
        for record in records:
            when = _record_time(record)
            if when is None:
                continue
            dated += 1
            outside += not (window.start <= when < window.end)
    return dated, outside


class DataTypeArchive(BaseModel):
    """What one data type's export left in the archive."""

    data_type: str
    files: int = Field(description="Files of the window in the archive (downloaded + skipped).")
    bytes: int
    rows: int
    downloaded: int = Field(description="Files downloaded by this run.")
    skipped: int = Field(description="Files already archived with a matching checksum.")
    jobs_started: int = 0
    windows: int = Field(1, description="Windows exported (more than 1 after a split).")


class ExportArchiveResult(BaseModel):
    """Where the run archived what, per data type."""

    window_start: datetime
    window_end: datetime
    mode: Literal["async", "sync"]
    output_format: OutputFormat
    location: str = Field(description="The archive's root (folder or block URL).")
    manifest_path: str
    data_types: list[DataTypeArchive]
    files: int
    bytes: int
    rows: int
    downloaded: int
    skipped: int
    jobs_started: int
    verified: bool
    flow_run_id: str | None = None


# ---- the manifest --------------------------------------------------------------------------


def _unit_key(data_type: str, output_format: str, window: Window) -> str:
    return f"{data_type}|{output_format}|{window.start.isoformat()}|{window.end.isoformat()}"


class _Manifest:
    """The run folder's ``manifest.json``: units (windows per data type) and files.

    Shared by the window tasks (threads); every change is made under a lock, and the document is
    written at most every ``_MANIFEST_EVERY`` seconds while files arrive, and always when a
    window completes or splits.
    """

    def __init__(self, store: ArchiveStore, name: str, root: Window, output_format: str) -> None:
        self.store = store
        self.name = name
        self.lock = threading.RLock()
        previous = store.read_json(name) or {}
        if previous and previous.get("version") != MANIFEST_VERSION:
            raise ExportArchiveError(
                f"{store.path(name)} has manifest version {previous.get('version')!r}, this "
                f"flow writes version {MANIFEST_VERSION}: move it away or use another prefix"
            )
        self.units: dict[str, dict[str, Any]] = dict(previous.get("units") or {})
        self.files: dict[str, dict[str, Any]] = {f["file"]: f for f in previous.get("files") or []}
        self.orphans: list[dict[str, Any]] = list(previous.get("orphan_jobs") or [])
        self.verified: bool | None = None
        self.window = {"start": root.start.isoformat(), "end": root.end.isoformat()}
        self.output_format = output_format
        self._written = 0.0

    def unit(self, key: str) -> dict[str, Any] | None:
        with self.lock:
            unit = self.units.get(key)
            return dict(unit) if unit else None

    def file(self, name: str) -> dict[str, Any] | None:
        with self.lock:
            entry = self.files.get(name)
            return dict(entry) if entry else None

    def add_file(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.files[entry["file"]] = entry
            if time.monotonic() - self._written >= _MANIFEST_EVERY:
                self.write()

    def drop_files(self, names: list[str]) -> None:
        with self.lock:
            for name in names:
                self.files.pop(name, None)
            self.write()

    def add_orphan(self, orphan: dict[str, Any]) -> None:
        """An export job that may be ours but is not used: its window could not be proven."""
        with self.lock:
            self.orphans.append(orphan)
            self.write()

    def set_unit(self, key: str, unit: dict[str, Any]) -> None:
        with self.lock:
            self.units[key] = unit
            self.write()

    def write(self) -> None:
        with self.lock:
            document = {
                "version": MANIFEST_VERSION,
                "window": self.window,
                "output_format": self.output_format,
                "updated_at": datetime.now(timezone.utc).isoformat(),
                "units": self.units,
                "files": sorted(self.files.values(), key=lambda f: f["file"]),
                "orphan_jobs": self.orphans,
                # True only once every file was read back and its records lie in its window.
                "verified": self.verified,
            }
            self.store.write_json(self.name, document)
            self._written = time.monotonic()


# ---- one run's shared state ----------------------------------------------------------------


@dataclass
class _Settings:
    output_format: OutputFormat
    prefix: str
    root: Window
    on_truncated: Literal["split", "fail"]
    max_split_depth: int
    max_job_attempts: int
    poll_max_seconds: float


class _Run:
    """What the window tasks of one flow run share: client, store, manifest, jobs, stop flag.

    A plain class (not a dataclass or model), so Prefect passes it to tasks as is.
    """

    def __init__(
        self,
        credentials: IterableCredentials,
        store: ArchiveStore,
        manifest: _Manifest,
        settings: _Settings,
        active_name: str,
    ) -> None:
        self.credentials = credentials
        self.client = credentials.get_client()
        self.http = httpx.Client(timeout=httpx.Timeout(120.0, connect=15.0), follow_redirects=True)
        self.store = store
        self.manifest = manifest
        self.settings = settings
        self.active_name = active_name
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.active: dict[int, dict[str, str]] = {}
        self.started: set[int] = set()  # every job this run started, finished ones included
        # Jobs adopted after a lost start answer: their window is unknown until their files
        # are read (Iterable's job list carries none).
        self.unproven: set[int] = set()
        self.verified: set[str] = set()

    def check(self) -> None:
        if self.stop.is_set():
            raise _Stopped()

    def wait(self, seconds: float) -> None:
        if self.stop.wait(seconds):
            raise _Stopped()

    # jobs ----------------------------------------------------------------------------------

    def start_job(self, data_type: str, window: Window) -> int:
        """Start an export job and record it as active (under the lock, so a stop sees it)."""
        with self.lock:
            self.check()
            requested = time.time()
            values = {
                "data_type_name": data_type,
                "output_format": MIME[self.settings.output_format],
                "start_date_time": _iterable_time(window.start),
                "end_date_time": _iterable_time(window.end),
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
        only on probation, until its records prove its window (``_prove_window``).
        """
        jobs = ExportJobs.model_validate(self.client.call("ITERABLE_LIST_EXPORT_JOBS")).jobs
        known = self.started
        for job in sorted(jobs, key=lambda j: j.id, reverse=True):
            if (
                job.data_type_name == data_type
                and job.id not in known
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

    def finish_job(self, job_id: int) -> None:
        with self.lock:
            if self.active.pop(job_id, None) is not None:
                self._write_active()

    def _write_active(self) -> None:
        with contextlib.suppress(Exception):  # a convenience for the hooks, never fatal
            self.store.write_json(
                self.active_name, {"jobs": {str(k): v for k, v in self.active.items()}}
            )

    def cancel_all(self, logger: Any) -> list[int]:
        """Stop the tasks and cancel every job still active; returns the ids cancelled."""
        self.stop.set()
        with self.lock:
            jobs = list(self.active)
            cancelled = _cancel_jobs(self.client, jobs, logger)
            self.active.clear()
            with contextlib.suppress(Exception):
                self.store.remove(self.active_name)
            return cancelled

    def close(self) -> None:
        self.http.close()


def _cancel_jobs(client: Any, job_ids: list[int], logger: Any) -> list[int]:
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


# ---- one window of one data type -----------------------------------------------------------


@dataclass
class _Outcome:
    data_type: str
    window: Window
    depth: int
    split: bool = False
    files: list[dict[str, Any]] = field(default_factory=list)
    downloaded: int = 0
    skipped: int = 0
    jobs_started: int = 0


def _file_name(run: _Run, data_type: str, window: Window, source_name: str) -> str:
    """``<prefix>/<dataType>/<start-date>/<name>``; see the module docstring for the name."""
    root = run.settings.root
    own = (
        source_name
        if (window == root and root.whole_day)
        else (f"{_stamp(window.start)}-{_stamp(window.end)}_{source_name}")
    )
    folder = f"{data_type}/{root.start:%Y-%m-%d}/{own}"
    return f"{run.settings.prefix}/{folder}" if run.settings.prefix else folder


def _already_archived(run: _Run, name: str) -> dict[str, Any] | None:
    """The manifest entry of ``name`` if the stored file matches it (size, then SHA-256)."""
    entry = run.manifest.file(name)
    if entry is None or run.store.size(name) != entry.get("bytes"):
        return None
    digest = run.store.digest(name, run.settings.output_format)
    if digest is None or digest.sha256 != entry.get("sha256"):
        return None
    run.verified.add(name)
    return entry


def _stream_into(run: _Run, chunks: Any, name: str) -> tuple[int, str, int]:
    digest = hashlib.sha256()
    counter = RecordCounter(run.settings.output_format)
    size = 0
    with run.store.writer(name) as out:
        for chunk in chunks:
            run.check()
            out.write(chunk)
            digest.update(chunk)
            counter.feed(chunk)
            size += len(chunk)
    return size, digest.hexdigest(), counter.records


def _download(run: _Run, url: str, name: str) -> tuple[int, str, int]:
    """Stream one pre-signed URL into ``name`` (no API key is sent)."""
    try:
        with run.http.stream("GET", url) as response:
            if response.status_code == 403:
                response.read()
                raise _UrlExpired()
            if not response.is_success:
                text = response.read().decode(errors="replace")
                headers = {k.lower(): v for k, v in response.headers.items()}
                raise error_from_response(response.status_code, headers, text)
            return _stream_into(run, response.iter_bytes(_CHUNK), name)
    except httpx.HTTPError as exc:
        raise TransportError(f"download of {name} failed: {type(exc).__name__}") from None


def _list_files(run: _Run, job_id: int, start_after: str | None = None) -> ExportJobFiles:
    raw = run.client.call("ITERABLE_LIST_EXPORT_FILES", job_id=job_id, start_after=start_after)
    return ExportJobFiles.model_validate(raw)


def _fresh_url(run: _Run, job_id: int, previous: str | None, file_name: str) -> str:
    page = _list_files(run, job_id, previous)
    for listed in page.files:
        if listed.file == file_name:
            return listed.url
    raise ExportArchiveError(f"export job {job_id} no longer lists {file_name}")


def _wait_for_job(run: _Run, job_id: int, data_type: str, window: Window) -> ExportJobFiles:
    """Poll until the job ends; returns the first page of the final listing."""
    logger = get_run_logger()
    delay, state = 1.0, None
    while True:
        run.wait(min(delay, run.settings.poll_max_seconds))
        delay *= 1.5
        page = _list_files(run, job_id)
        if page.job_state != state:
            if state == "Running" and page.job_state == "Enqueued":
                logger.warning("export job %s was restarted by Iterable; still polling", job_id)
            else:
                logger.info("export job %s (%s): %s", job_id, data_type, page.job_state)
            state = page.job_state
        if page.finished:
            return page


def _archive_job_files(
    run: _Run, job_id: int, first: ExportJobFiles, data_type: str, window: Window, outcome: _Outcome
) -> None:
    logger = get_run_logger()
    page: ExportJobFiles | None = first
    previous: str | None = None  # the file listed before the current one (for startAfter)
    while page is not None and page.files:
        for listed in page.files:
            run.check()
            name = _file_name(run, data_type, window, listed.file)
            entry = _already_archived(run, name)
            if entry is not None:
                outcome.skipped += 1
                outcome.files.append(entry)
                previous = listed.file
                continue
            url = listed.url
            for attempt in range(1, _DOWNLOAD_ATTEMPTS + 1):
                try:
                    size, sha, rows = _download(run, url, name)
                    break
                except _UrlExpired:
                    logger.warning("download URL of %s expired; listing it again", listed.file)
                    url = _fresh_url(run, job_id, previous, listed.file)
                except TransportError as exc:
                    logger.warning("%s (attempt %s)", exc, attempt)
                    run.wait(min(2.0**attempt, 30.0))
                    url = _fresh_url(run, job_id, previous, listed.file)
            else:
                raise ExportArchiveError(
                    f"could not download {listed.file} of export job {job_id} after "
                    f"{_DOWNLOAD_ATTEMPTS} attempts"
                )
            entry = {
                "file": name,
                "source": listed.file,
                "bytes": size,
                "rows": rows,
                "sha256": sha,
                "data_type": data_type,
                "job_id": job_id,
                "window_start": window.start.isoformat(),
                "window_end": window.end.isoformat(),
                "format": run.settings.output_format,
            }
            run.manifest.add_file(entry)
            outcome.files.append(entry)
            outcome.downloaded += 1
            previous = listed.file
        page = _list_files(run, job_id, page.files[-1].file)


def _archive_async(run: _Run, outcome: _Outcome) -> None:
    logger = get_run_logger()
    data_type, window, settings = outcome.data_type, outcome.window, run.settings
    for attempt in range(1, settings.max_job_attempts + 1):
        job_id = run.start_job(data_type, window)
        outcome.jobs_started += 1
        logger.info("started export job %s: %s %s", job_id, data_type, window.label)
        # An error while waiting leaves the job active: the flow cancels it.
        first = _wait_for_job(run, job_id, data_type, window)
        run.finish_job(job_id)
        if first.job_state == "Completed":
            if first.export_truncated:
                if settings.on_truncated == "fail":
                    raise ExportTruncated(
                        f"Iterable truncated the {data_type} export for {window.label} (job "
                        f"{job_id}, exportTruncated: it hit the export size cap). Nothing of it "
                        "was archived. Use on_truncated='split' or a shorter window."
                    )
                if outcome.depth >= settings.max_split_depth or window.halves() is None:
                    raise ExportTruncated(
                        f"the {data_type} export for {window.label} (job {job_id}) is still "
                        f"truncated after splitting the window {outcome.depth} times "
                        f"(max_split_depth={settings.max_split_depth}); nothing of this window "
                        "was archived. Raise max_split_depth or export a shorter window."
                    )
                logger.warning(
                    "export job %s (%s %s) was truncated; exporting the window in two halves",
                    job_id, data_type, window.label,
                )  # fmt: skip
                outcome.split = True
                return
            _archive_job_files(run, job_id, first, data_type, window, outcome)
            if job_id not in run.unproven or _prove_window(run, job_id, outcome):
                return
            continue
        why = "was cancelled outside this flow" if first.job_state == "Cancelled" else "failed"
        logger.warning(
            "export job %s (%s %s) %s (attempt %s of %s)",
            job_id, data_type, window.label, why, attempt, settings.max_job_attempts,
        )  # fmt: skip
    raise ExportJobFailed(
        f"the {data_type} export for {window.label} failed {settings.max_job_attempts} times "
        f"(last job {job_id}); nothing of this window was archived. Check Iterable's export "
        "jobs page, then run the flow again: archived windows are skipped."
    )


def _prove_window(run: _Run, job_id: int, outcome: _Outcome) -> bool:
    """Whether the files of an adopted job hold records of this window only.

    If not (another window's job, or no dated record to tell), its files are removed, the job is
    recorded in the manifest as an orphan, and the caller starts a job of its own.
    """
    logger = get_run_logger()
    mine = [f for f in outcome.files if f["job_id"] == job_id]
    dated = outside = 0
    for entry in mine:
        found = _window_content(
            run.store, entry["file"], run.settings.output_format, outcome.window
        )
        dated, outside = dated + found[0], outside + found[1]
    if dated and not outside:
        logger.info(
            "export job %s, adopted after a lost answer: its %d dated records lie in %s",
            job_id, dated, outcome.window.label,
        )  # fmt: skip
        with run.lock:
            run.unproven.discard(job_id)
        return True
    reason = (
        f"{outside} of {dated} records outside the window"
        if dated
        else "no dated record to prove its window"
    )
    logger.warning(
        "export job %s (%s), found after a lost start answer, is not this window's (%s): not "
        "archived; recorded as an orphan; starting a job of its own",
        job_id, outcome.data_type, reason,
    )  # fmt: skip
    names = [f["file"] for f in mine]
    for name in names:
        run.store.remove(name)
    run.manifest.drop_files(names)
    run.manifest.add_orphan(
        {
            "job_id": job_id,
            "data_type": outcome.data_type,
            "window_start": outcome.window.start.isoformat(),
            "window_end": outcome.window.end.isoformat(),
            "reason": reason,
        }
    )
    outcome.files = [f for f in outcome.files if f["job_id"] != job_id]
    outcome.downloaded -= len(mine)
    return False


def _archive_sync(run: _Run, outcome: _Outcome) -> None:
    data_type, window, fmt = outcome.data_type, outcome.window, run.settings.output_format
    source = f"{data_type}{EXTENSION[fmt]}"
    name = _file_name(run, data_type, window, source)
    entry = _already_archived(run, name)
    if entry is not None:
        outcome.skipped += 1
        outcome.files.append(entry)
        return
    values = {
        "data_type_name": data_type,
        "start_date_time": _iterable_time(window.start),
        "end_date_time": _iterable_time(window.end),
    }
    with run.client.stream(SYNC_ACTION[fmt], **values) as body:
        size, sha, rows = _stream_into(run, body.iter_bytes(_CHUNK), name)
    entry = {
        "file": name,
        "source": source,
        "bytes": size,
        "rows": rows,
        "sha256": sha,
        "data_type": data_type,
        "job_id": None,
        "window_start": window.start.isoformat(),
        "window_end": window.end.isoformat(),
        "format": fmt,
    }
    run.manifest.add_file(entry)
    outcome.files.append(entry)
    outcome.downloaded += 1


@task(
    name="archive-export-window",
    task_run_name="archive-{data_type}-{window.tag}",
    cache_policy=NO_CACHE,
    retries=0,
)
def archive_window(
    run: _Run, data_type: str, window: Window, depth: int, mode: Literal["async", "sync"]
) -> _Outcome:
    """Archive one data type's window: skip it, export it (async or sync) or report a split."""
    logger = get_run_logger()
    outcome = _Outcome(data_type, window, depth)
    key = _unit_key(data_type, run.settings.output_format, window)
    unit = run.manifest.unit(key)
    if unit is not None and unit.get("status") == "split":
        outcome.split = True
        return outcome
    if unit is not None and unit.get("status") == "complete":
        entries = [run.manifest.file(name) for name in unit.get("files", [])]
        if all(e is not None and _already_archived(run, e["file"]) for e in entries):
            outcome.files = [e for e in entries if e is not None]
            outcome.skipped = len(outcome.files)
            logger.info(
                "%s %s: all %s files already archived", data_type, window.label, outcome.skipped
            )
            return outcome
    if mode == "sync":
        _archive_sync(run, outcome)
    else:
        _archive_async(run, outcome)
    return outcome


# ---- the flow ------------------------------------------------------------------------------


def _active_name(prefix: str, flow_run_id: str) -> str:
    folder = f"{prefix}/_runs/active" if prefix else "_runs/active"
    return f"{folder}/{flow_run_id}.json"


def _cancel_on_exit(flow: Any, flow_run: Any, state: Any) -> None:
    """on_cancellation / on_crashed: cancel the export jobs the run left running."""
    from prefect.logging import get_logger

    logger = get_logger("iterable.export_archive")
    run = _RUNS.get(str(flow_run.id))
    if run is not None:
        run.cancel_all(logger)
        return
    # Another process (the runner): find the jobs through the run's parameters.
    params = dict(flow_run.parameters or {})
    try:
        store = ArchiveStore.open(
            params.get("storage_block"), params.get("storage_path") or "./iterable-archive"
        )
        prefix = str(params.get("prefix") or "exports").strip("/")
        name = _active_name(prefix, str(flow_run.id))
        document = store.read_json(name) or {}
        jobs = [int(j) for j in (document.get("jobs") or {})]
        if not jobs:
            return
        block = params.get("credentials_block")
        credentials = IterableCredentials.load_or_env(block)
        _cancel_jobs(credentials.get_client(), jobs, logger)
        store.remove(name)
    except Exception as exc:  # a hook must not raise
        logger.error("could not cancel the export jobs of flow run %s: %s", flow_run.id, exc)


def _check_prefix(prefix: str) -> str:
    cleaned = prefix.strip().strip("/")
    parts = cleaned.split("/") if cleaned else []
    if any(p in ("", ".", "..") for p in parts) or "\\" in cleaned:
        raise ValueError(f"prefix: {prefix!r} must be a relative folder path without '..'")
    return cleaned


@flow(
    name="export-archive",
    log_prints=False,
    # Prefect's flow() types its task runner invariantly in the future type (Prefect 3.4).
    task_runner=ThreadPoolTaskRunner(max_workers=4),  # type: ignore[arg-type]
    on_cancellation=[_cancel_on_exit],
    on_crashed=[_cancel_on_exit],
)
def export_archive(
    data_types: Annotated[
        list[str],
        Field(
            min_length=1,
            description="Iterable export data types, e.g. emailSend, emailOpen, user.",
        ),
    ],
    start: Annotated[
        datetime | None,
        Field(description="Start of the window, inclusive (naive = UTC). Default: yesterday."),
    ] = None,
    end: Annotated[
        datetime | None,
        Field(description="End of the window, exclusive (naive = UTC). Default: today 00:00."),
    ] = None,
    output_format: Annotated[
        OutputFormat, Field(description="csv, or json (one JSON object per line).")
    ] = "csv",
    mode: Annotated[
        Literal["async", "sync", "auto"],
        Field(description="auto: sync for one data type and a window of at most an hour."),
    ] = "auto",
    storage_block: Annotated[
        str | None,
        Field(description="Name of a LocalFileSystem or RemoteFileSystem block to write into."),
    ] = None,
    storage_path: Annotated[
        str, Field(description="Local folder used when no storage_block is given.")
    ] = "./iterable-archive",
    prefix: Annotated[
        str, Field(description="Folder inside the storage for this archive.")
    ] = "exports",
    on_truncated: Annotated[
        Literal["split", "fail"],
        Field(description="A truncated export: split its window in two, or fail."),
    ] = "split",
    max_split_depth: Annotated[int, Field(ge=0, le=12)] = 4,
    max_job_attempts: Annotated[
        int, Field(ge=1, le=10, description="Jobs started per window when jobs fail.")
    ] = 3,
    max_concurrent_jobs: Annotated[
        int, Field(ge=1, le=4, description="Export jobs running at once (Iterable allows 4).")
    ] = 4,
    poll_max_seconds: Annotated[
        float, Field(ge=1.0, le=300.0, description="Longest pause between status polls.")
    ] = 30.0,
    verify: Annotated[
        bool, Field(description="Read every archived file back and check it against the manifest.")
    ] = True,
    credentials_block: Annotated[
        str | None, Field(description="Name of a saved IterableCredentials block.")
    ] = None,
) -> ExportArchiveResult:
    """Export Iterable data types for a window and archive the files with a verified manifest.

    Step by step: check the parameters; read the previous manifest and skip windows already
    archived with matching checksums; export each remaining data type (asynchronous jobs, at
    most ``max_concurrent_jobs`` at a time, or the synchronous endpoint for small windows);
    stream each file into ``<prefix>/<dataType>/<start-date>/`` of the storage; write
    ``<prefix>/_runs/<window>/manifest.json``; read every file back to verify it; publish the
    manifest as a table artifact and emit ``iterable.export.archived`` per data type. Jobs still
    running when the run fails or is cancelled are cancelled.

    Args:
        data_types: Iterable export data type names (``emailSend``, ``emailOpen``, ``user`` …).
        start: start of the window, inclusive; naive times are UTC. Default: yesterday 00:00 UTC.
        end: end of the window, exclusive. Default: today 00:00 UTC (``start`` + 1 day when
            only ``start`` is given).
        output_format: ``csv`` or ``json`` (newline-delimited JSON).
        mode: ``async`` (export jobs), ``sync`` (the streamed endpoints, 4 requests/minute), or
            ``auto``: sync for a single data type and a window of at most one hour.
        storage_block: name of a ``LocalFileSystem`` or fsspec ``RemoteFileSystem`` block
            (``NAME`` or ``local-file-system/NAME``); files are written through it as streams.
        storage_path: the local folder used when ``storage_block`` is not given.
        prefix: folder inside the storage that holds the archive.
        on_truncated: what to do when Iterable truncates an export: ``split`` its window in two
            halves (recursively, at most ``max_split_depth`` deep) or ``fail``.
        max_split_depth: how many times a window may be halved.
        max_job_attempts: export jobs started per window when they end Failed.
        max_concurrent_jobs: export jobs running at once (Iterable runs 4 per organization).
        poll_max_seconds: the longest pause between two status polls (pauses start at 1 s and
            grow ×1.5).
        verify: read every archived file back and compare size, SHA-256 and rows.
        credentials_block: name of a saved ``IterableCredentials`` block; default: ``ITERABLE_*``
            environment variables.

    Returns:
        Per data type the files, bytes and rows archived, the files downloaded and skipped, the
        manifest's path and whether the archive verified.
    """
    logger = get_run_logger()

    # ---- parameters, before any request ----
    unknown = [d for d in data_types if d not in DATA_TYPE_NAMES]
    if unknown:
        raise ValueError(
            f"data_types: unknown Iterable export data type(s) {', '.join(map(repr, unknown))}"
        )
    if len(set(data_types)) != len(data_types):
        raise ValueError("data_types: a data type is listed twice")
    if start is None and end is not None:
        raise ValueError("start: give start when you give end")
    if start is None:
        window = _default_window()
    else:
        begin = _utc(start)
        window = Window(begin, _utc(end) if end is not None else begin + timedelta(days=1))
    if window.start.microsecond or window.end.microsecond:
        raise ValueError("start/end: Iterable windows are in whole seconds")
    if not window.start < window.end:
        raise ValueError("end: must be after start")
    prefix = _check_prefix(prefix)
    chosen: Literal["async", "sync"]
    if mode == "auto":
        small = window.end - window.start <= _SYNC_MAX and len(data_types) == 1
        chosen = "sync" if small else "async"
    else:
        chosen = mode
    credentials = IterableCredentials.load_or_env(credentials_block)
    store = ArchiveStore.open(storage_block, storage_path)
    run_folder = f"{prefix}/_runs/{window.tag}" if prefix else f"_runs/{window.tag}"
    manifest_name = f"{run_folder}/manifest.json"
    # A killed run leaves its half-written files (data, manifest, active jobs) behind.
    data_folders = [f"{prefix}/{d}/{window.start:%Y-%m-%d}".lstrip("/") for d in data_types]
    swept = store.sweep_parts(
        [*data_folders, run_folder, _active_name(prefix, "x").rsplit("/", 1)[0]]
    )
    if swept:
        logger.warning("removed %d partial file(s) left by a killed run: %s", len(swept), swept)
    manifest = _Manifest(store, manifest_name, window, output_format)

    flow_run = FlowRunContext.get()
    run_id = str(flow_run.flow_run.id) if flow_run and flow_run.flow_run else "local"
    settings = _Settings(
        output_format, prefix, window, on_truncated, max_split_depth, max_job_attempts,
        poll_max_seconds,
    )  # fmt: skip
    run = _Run(credentials, store, manifest, settings, _active_name(prefix, run_id))
    _RUNS[run_id] = run
    logger.info(
        "archiving %s for %s (%s mode, %s) into %s",
        ", ".join(data_types), window.label, chosen, output_format, store.label,
    )  # fmt: skip

    outcomes: dict[str, list[_Outcome]] = {d: [] for d in data_types}
    queue: deque[tuple[str, Window, int]] = deque((d, window, 0) for d in data_types)
    running: list[PrefectFuture[_Outcome]] = []
    try:
        while queue or running:
            while queue and len(running) < max_concurrent_jobs:
                data_type, part, depth = queue.popleft()
                running.append(archive_window.submit(run, data_type, part, depth, chosen))
            # One finished unit at a time (Prefect's public as_completed), then refill the slots.
            finished = next(as_completed(list(running)))
            running.remove(finished)
            outcome = finished.result()
            key = _unit_key(outcome.data_type, output_format, outcome.window)
            if outcome.split:
                halves = outcome.window.halves()
                assert halves is not None
                queue.extend((outcome.data_type, h, outcome.depth + 1) for h in halves)
                manifest.set_unit(
                    key,
                    {
                        "data_type": outcome.data_type,
                        "start": outcome.window.start.isoformat(),
                        "end": outcome.window.end.isoformat(),
                        "status": "split",
                        "halves": [[h.start.isoformat(), h.end.isoformat()] for h in halves],
                    },
                )
            else:
                manifest.set_unit(
                    key,
                    {
                        "data_type": outcome.data_type,
                        "start": outcome.window.start.isoformat(),
                        "end": outcome.window.end.isoformat(),
                        "status": "complete",
                        "files": [f["file"] for f in outcome.files],
                        "job_ids": sorted({f["job_id"] for f in outcome.files if f["job_id"]}),
                    },
                )
            outcomes[outcome.data_type].append(outcome)
    except BaseException:
        cancelled = run.cancel_all(logger)
        if cancelled:
            logger.error("the run failed; cancelled export jobs %s", cancelled)
        for settled in wait_for_futures(running, timeout=60).done:
            with contextlib.suppress(BaseException):
                settled.result()
        with contextlib.suppress(Exception):
            manifest.write()
        raise
    finally:
        _RUNS.pop(run_id, None)
        run.close()
        with contextlib.suppress(Exception):
            store.remove(run.active_name)

    # ---- verify, report ----
    files = [f for d in data_types for o in outcomes[d] for f in o.files]
    problems: list[str] = []
    if verify:
        for entry in files:
            if entry["file"] in run.verified:
                continue  # hashed this run when it was found already archived
            digest = store.digest(entry["file"], output_format)
            if digest is None:
                problems.append(f"{entry['file']}: missing")
            elif (digest.bytes, digest.sha256, digest.rows) != (
                entry["bytes"],
                entry["sha256"],
                entry["rows"],
            ):
                problems.append(
                    f"{entry['file']}: {digest.bytes} bytes, sha256 {digest.sha256[:12]}…, "
                    f"{digest.rows} rows; the manifest says {entry['bytes']} bytes, "
                    f"{entry['sha256'][:12]}…, {entry['rows']} rows"
                )
        for entry in files:
            # The content must be the window's too: a file of another day under this day's
            # name would otherwise be skipped by every re-run.
            if entry.get("in_window") or not store.exists(entry["file"]):
                continue
            entry_window = Window(
                datetime.fromisoformat(entry["window_start"]),
                datetime.fromisoformat(entry["window_end"]),
            )
            dated, outside = _window_content(store, entry["file"], output_format, entry_window)
            if outside:
                problems.append(
                    f"{entry['file']}: {outside} of {dated} records lie outside its window "
                    f"{entry_window.label}"
                )
            else:
                with manifest.lock:
                    if entry["file"] in manifest.files:
                        manifest.files[entry["file"]]["in_window"] = True
    manifest.verified = verify and not problems
    manifest.write()
    create_table_artifact(
        key="export-archive-manifest",
        table=[
            {
                "data type": f["data_type"],
                "file": f["file"],
                "bytes": f["bytes"],
                "rows": f["rows"],
                "sha256": f["sha256"][:16],
                "job": f["job_id"] or "sync",
                "window": f"{f['window_start']} .. {f['window_end']}",
            }
            for f in files
        ],
        description=(
            f"Iterable exports {window.label} ({output_format}, {chosen}) in {store.label}; "
            f"manifest {store.path(manifest_name)}; "
            + (
                "verified"
                if verify and not problems
                else "NOT verified"
                if problems
                else "not checked"
            )
        ),
    )
    if problems:
        raise ExportArchiveError(
            "the archive does not match its manifest:\n" + "\n".join(problems[:20])
        )

    per_type: list[DataTypeArchive] = []
    for data_type in data_types:
        whole = [o for o in outcomes[data_type] if not o.split]
        type_files = [f for o in whole for f in o.files]
        summary = DataTypeArchive(
            data_type=data_type,
            files=len(type_files),
            bytes=sum(f["bytes"] for f in type_files),
            rows=sum(f["rows"] for f in type_files),
            downloaded=sum(o.downloaded for o in whole),
            skipped=sum(o.skipped for o in whole),
            jobs_started=sum(o.jobs_started for o in outcomes[data_type]),
            windows=len(whole),
        )
        per_type.append(summary)
        emit_event(
            event="iterable.export.archived",
            resource={
                "prefect.resource.id": f"iterable.export.{data_type}",
                "prefect.resource.name": data_type,
            },
            payload={
                "files": summary.files,
                "bytes": summary.bytes,
                "rows": summary.rows,
                "downloaded": summary.downloaded,
                "skipped": summary.skipped,
                "window_start": window.start.isoformat(),
                "window_end": window.end.isoformat(),
                "manifest": store.path(manifest_name),
            },
        )
        logger.info(
            "%s: %s files, %s bytes, %s rows (%s downloaded, %s skipped)",
            data_type, summary.files, summary.bytes, summary.rows, summary.downloaded,
            summary.skipped,
        )  # fmt: skip
    return ExportArchiveResult(
        window_start=window.start,
        window_end=window.end,
        mode=chosen,
        output_format=output_format,
        location=store.root,
        manifest_path=store.path(manifest_name),
        data_types=per_type,
        files=sum(s.files for s in per_type),
        bytes=sum(s.bytes for s in per_type),
        rows=sum(s.rows for s in per_type),
        downloaded=sum(s.downloaded for s in per_type),
        skipped=sum(s.skipped for s in per_type),
        jobs_started=sum(s.jobs_started for s in per_type),
        verified=verify and not problems,
        flow_run_id=run_id if flow_run else None,
    )
