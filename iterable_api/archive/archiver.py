"""Archive one data type's window: skip it if archived, else export it (an export job, or the
synchronous endpoint) and stream its files into the archive, or report that it must be split.

``Archiver`` holds what the windows of one run share (client, store, manifest, jobs, stop flag)
and is safe to use from several threads, one window each. It knows nothing of Prefect: a flow
calls ``archive_window`` from its tasks, passing its run logger.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from prefect_iterable.api.archive.downloads import (
    CHUNK_BYTES,
    download_with_retries,
    presigned_client,
)
from prefect_iterable.api.archive.errors import (
    ExportArchiveError,
    ExportJobFailed,
    ExportTruncated,
)
from prefect_iterable.api.archive.jobs import ExportJobs, Log
from prefect_iterable.api.archive.manifest import Manifest, unit_key
from prefect_iterable.api.archive.store import ArchiveTarget, RecordKind
from prefect_iterable.api.archive.windows import Window, iterable_time, stamp, window_content
from prefect_iterable.api.client import Client
from prefect_iterable.api.files import FileSummary, copy_records
from prefect_iterable.api.models.exports import ExportFile, ExportJobFiles

__all__ = ["SYNC_ACTION", "Archiver", "ArchiveSettings", "WindowOutcome"]

EXTENSION = {"csv": ".csv", "json": ".json"}
SYNC_ACTION = {"csv": "ITERABLE_EXPORT_DATA_CSV", "json": "ITERABLE_EXPORT_DATA_JSON"}


@dataclass(frozen=True)
class ArchiveSettings:
    """How one run archives: the format, where, and what to do when jobs fail or truncate."""

    output_format: RecordKind
    prefix: str
    root: Window
    on_truncated: Literal["split", "fail"] = "split"
    max_split_depth: int = 4
    max_job_attempts: int = 3
    #: Files of one job downloaded at once.
    downloads: int = 2


@dataclass
class WindowOutcome:
    """What archiving one data type's window did; ``split`` asks for its two halves."""

    data_type: str
    window: Window
    depth: int
    split: bool = False
    files: list[dict[str, Any]] = field(default_factory=list)
    downloaded: int = 0
    skipped: int = 0
    jobs_started: int = 0


class Archiver:
    """The windows of one run, archived into ``store`` and recorded in ``manifest``."""

    def __init__(
        self,
        client: Client,
        store: ArchiveTarget,
        manifest: Manifest,
        settings: ArchiveSettings,
        jobs: ExportJobs,
    ) -> None:
        self.client = client
        self.store = store
        self.manifest = manifest
        self.settings = settings
        self.jobs = jobs
        self.http = presigned_client()
        self.lock = threading.Lock()
        self.verified: set[str] = set()  # files hashed this run and found to match

    def close(self) -> None:
        self.http.close()

    # ---- names and what is already there -----------------------------------------------

    def file_name(self, data_type: str, window: Window, source_name: str) -> str:
        """``<prefix>/<dataType>/<start-date>/<name>``: Iterable's own name for the whole-day
        root window, else prefixed with the window, so that halves never collide."""
        root = self.settings.root
        own = (
            source_name
            if (window == root and root.whole_day)
            else f"{stamp(window.start)}-{stamp(window.end)}_{source_name}"
        )
        folder = f"{data_type}/{root.start:%Y-%m-%d}/{own}"
        return f"{self.settings.prefix}/{folder}" if self.settings.prefix else folder

    def already_archived(self, name: str) -> dict[str, Any] | None:
        """The manifest entry of ``name`` if the stored file matches it (size, then SHA-256)."""
        entry = self.manifest.file(name)
        if entry is None or self.store.size(name) != entry.get("bytes"):
            return None
        digest = self.store.digest(name, self.settings.output_format)
        if digest is None or digest.sha256 != entry.get("sha256"):
            return None
        with self.lock:
            self.verified.add(name)
        return entry

    def _entry(
        self, name: str, source: str, got: FileSummary, outcome: WindowOutcome, job: int | None
    ) -> dict[str, Any]:
        return {
            "file": name,
            "source": source,
            "bytes": got.bytes,
            "rows": got.rows,
            "sha256": got.sha256,
            "data_type": outcome.data_type,
            "job_id": job,
            "window_start": outcome.window.start.isoformat(),
            "window_end": outcome.window.end.isoformat(),
            "format": self.settings.output_format,
        }

    # ---- one window ----------------------------------------------------------------------

    def archive_window(
        self,
        data_type: str,
        window: Window,
        depth: int,
        mode: Literal["async", "sync"],
        logger: Log,
    ) -> WindowOutcome:
        """Skip the window if the manifest holds it whole, else export and archive it."""
        outcome = WindowOutcome(data_type, window, depth)
        unit = self.manifest.unit(unit_key(data_type, self.settings.output_format, window))
        if unit is not None and unit.get("status") == "split":
            outcome.split = True
            return outcome
        if unit is not None and unit.get("status") == "complete":
            entries = [self.manifest.file(name) for name in unit.get("files", [])]
            if all(e is not None and self.already_archived(e["file"]) for e in entries):
                outcome.files = [e for e in entries if e is not None]
                outcome.skipped = len(outcome.files)
                logger.info(
                    "%s %s: all %s files already archived",
                    data_type, window.label, outcome.skipped,
                )  # fmt: skip
                return outcome
        if mode == "sync":
            self._archive_sync(outcome)
        else:
            self._archive_async(outcome, logger)
        return outcome

    def record(self, outcome: WindowOutcome) -> tuple[Window, Window] | None:
        """Write a finished window into the manifest; returns its halves if it was split."""
        if not outcome.split:
            self.manifest.set_complete(outcome.data_type, outcome.window, outcome.files)
            return None
        halves = outcome.window.halves()
        if halves is None:  # archive_window splits only a window that has halves
            raise ExportArchiveError(f"{outcome.window.label} cannot be split")
        self.manifest.set_split(outcome.data_type, outcome.window, halves)
        return halves

    def _archive_sync(self, outcome: WindowOutcome) -> None:
        data_type, window, fmt = outcome.data_type, outcome.window, self.settings.output_format
        source = f"{data_type}{EXTENSION[fmt]}"
        name = self.file_name(data_type, window, source)
        entry = self.already_archived(name)
        if entry is not None:
            outcome.skipped += 1
            outcome.files.append(entry)
            return
        values = {
            "data_type_name": data_type,
            "start_date_time": iterable_time(window.start),
            "end_date_time": iterable_time(window.end),
        }
        with (
            self.client.stream(SYNC_ACTION[fmt], **values) as body,
            self.store.writer(name) as out,
        ):
            got = copy_records(body.iter_bytes(CHUNK_BYTES), out, fmt, check=self.jobs.check)
        entry = self._entry(name, source, got, outcome, None)
        self.manifest.add_file(entry)
        outcome.files.append(entry)
        outcome.downloaded += 1

    def _archive_async(self, outcome: WindowOutcome, logger: Log) -> None:
        data_type, window, settings = outcome.data_type, outcome.window, self.settings
        job_id = 0
        for attempt in range(1, settings.max_job_attempts + 1):
            job_id = self.jobs.start(data_type, window)
            outcome.jobs_started += 1
            logger.info("started export job %s: %s %s", job_id, data_type, window.label)
            # An error while waiting leaves the job active: the run cancels it.
            first = self.jobs.wait_for(job_id, data_type, logger)
            self.jobs.finish(job_id)
            if first.job_state == "Completed":
                if first.export_truncated:
                    self._truncated(outcome, job_id, logger)
                    return
                self._archive_job_files(job_id, first, outcome)
                if job_id not in self.jobs.unproven or self._prove_window(job_id, outcome, logger):
                    return
                continue
            why = "was cancelled outside this run" if first.job_state == "Cancelled" else "failed"
            logger.warning(
                "export job %s (%s %s) %s (attempt %s of %s)",
                job_id, data_type, window.label, why, attempt, settings.max_job_attempts,
            )  # fmt: skip
        raise ExportJobFailed(
            f"the {data_type} export for {window.label} failed {settings.max_job_attempts} "
            f"times (last job {job_id}); nothing of this window was archived. Check Iterable's "
            "export jobs page, then run the flow again: archived windows are skipped."
        )

    def _truncated(self, outcome: WindowOutcome, job_id: int, logger: Log) -> None:
        data_type, window, settings = outcome.data_type, outcome.window, self.settings
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

    def _listed(
        self, job_id: int, first: ExportJobFiles
    ) -> Iterator[tuple[ExportFile, str | None]]:
        """Every file of a finished job, page by page, with the file listed before it."""
        page, previous = first, None
        while page.files:
            for listed in page.files:
                yield listed, previous
                previous = listed.file
            page = self.jobs.list_files(job_id, page.files[-1].file)

    def _archive_job_files(
        self, job_id: int, first: ExportJobFiles, outcome: WindowOutcome
    ) -> None:
        """Download the job's files, ``downloads`` at a time, recorded in listing order.

        Concurrent downloads keep the link busy while one file's chunks are written and hashed
        (and while one server is slow to start a file); each is a stream of its own, so memory
        grows with the count, not with the files.
        """
        pending: deque[tuple[str, str, dict[str, Any] | Future[FileSummary]]] = deque()
        with ThreadPoolExecutor(self.settings.downloads, thread_name_prefix="export-file") as pool:
            try:
                for listed, previous in self._listed(job_id, first):
                    self.jobs.check()
                    name = self.file_name(outcome.data_type, outcome.window, listed.file)
                    found: dict[str, Any] | Future[FileSummary] | None = self.already_archived(name)
                    if found is None:
                        found = pool.submit(
                            download_with_retries,
                            self.http,
                            listed.url,
                            _FreshUrl(self.jobs, job_id, previous, listed.file),
                            self.store,
                            name,
                            self.settings.output_format,
                            policy=self.client.retry,
                            check=self.jobs.check,
                        )
                    pending.append((name, listed.file, found))
                    while len(pending) >= self.settings.downloads:
                        self._settle(*pending.popleft(), outcome, job_id)
                while pending:
                    self._settle(*pending.popleft(), outcome, job_id)
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise

    def _settle(
        self,
        name: str,
        source: str,
        found: dict[str, Any] | Future[FileSummary],
        outcome: WindowOutcome,
        job_id: int,
    ) -> None:
        if isinstance(found, dict):
            outcome.skipped += 1
            outcome.files.append(found)
            return
        entry = self._entry(name, source, found.result(), outcome, job_id)
        self.manifest.add_file(entry)
        outcome.downloaded += 1
        outcome.files.append(entry)

    def _prove_window(self, job_id: int, outcome: WindowOutcome, logger: Log) -> bool:
        """Whether the files of an adopted job hold records of this window only.

        If not (another window's job, or no dated record to tell), its files are removed, the
        job is recorded in the manifest as an orphan, and the caller starts a job of its own.
        """
        mine = [f for f in outcome.files if f["job_id"] == job_id]
        dated = outside = 0
        for entry in mine:
            found = self.window_content(entry["file"], outcome.window)
            dated, outside = dated + found[0], outside + found[1]
        if dated and not outside:
            logger.info(
                "export job %s, adopted after a lost answer: its %d dated records lie in %s",
                job_id, dated, outcome.window.label,
            )  # fmt: skip
            self.jobs.prove(job_id)
            return True
        reason = (
            f"{outside} of {dated} records outside the window"
            if dated
            else "no dated record to prove its window"
        )
        logger.warning(
            "export job %s (%s), found after a lost start answer, is not this window's (%s): "
            "not archived; recorded as an orphan; starting a job of its own",
            job_id, outcome.data_type, reason,
        )  # fmt: skip
        names = [f["file"] for f in mine]
        for name in names:
            self.store.remove(name)
        self.manifest.drop_files(names)
        self.manifest.add_orphan(
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

    def window_content(self, name: str, window: Window) -> tuple[int, int]:
        """``window_content`` of a stored file: (records with a time, of them outside)."""
        with self.store.fs.open(self.store.path(name), "rb") as raw:
            return window_content(raw, self.settings.output_format, window)

    # ---- verification --------------------------------------------------------------------

    def verify(self, files: list[dict[str, Any]]) -> list[str]:
        """Read back every file of the run: what does not match the manifest (size, SHA-256,
        records) or holds records outside its window, one line each; empty when all is well."""
        problems: list[str] = []
        for entry in files:
            if entry["file"] in self.verified:
                continue  # hashed this run when it was found already archived
            digest = self.store.digest(entry["file"], self.settings.output_format)
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
            if entry.get("in_window") or not self.store.exists(entry["file"]):
                continue
            window = Window.from_iso(entry["window_start"], entry["window_end"])
            dated, outside = self.window_content(entry["file"], window)
            if outside:
                problems.append(
                    f"{entry['file']}: {outside} of {dated} records lie outside its window "
                    f"{window.label}"
                )
            else:
                self.manifest.mark_file(entry["file"], in_window=True)
        return problems


class _FreshUrl:
    """A fresh pre-signed URL for one file of a job, listed again from the file before it."""

    def __init__(self, jobs: ExportJobs, job_id: int, previous: str | None, file: str) -> None:
        self.jobs, self.job_id, self.previous, self.file = jobs, job_id, previous, file

    def __call__(self) -> str:
        for listed in self.jobs.list_files(self.job_id, self.previous).files:
            if listed.file == self.file:
                return listed.url
        raise ExportArchiveError(f"export job {self.job_id} no longer lists {self.file}")
