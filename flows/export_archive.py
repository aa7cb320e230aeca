"""``export_archive``: archive Iterable exports of a time window into a folder or storage block.

For each data type (``emailSend``, ``emailOpen``, ``user`` …) and a window (by default yesterday,
UTC midnight to midnight): skip what the previous manifest holds whole (files present, size and
SHA-256 matching); export the rest, one Iterable export job per window (at most
``max_concurrent_jobs`` at a time; a failed job is started again, a truncated one split in two
halves), or the synchronous endpoint for one data type and at most an hour (``mode="auto"``);
stream each file into ``<prefix>/<dataType>/<start-date>/``, hashed and counted on the way;
record it in ``<prefix>/_runs/<window>/manifest.json``; read everything back to verify it; then
publish a table artifact (``export-archive-manifest``) and one ``iterable.export.archived`` event
per data type.

The work itself is the library's (``prefect_iterable.api.archive``: windows, manifest, job
lifecycle, downloads); this module only orchestrates it. Each window is one task run; the flow
keeps ``max_concurrent_jobs`` of them submitted. Export jobs still running when the run fails are
cancelled in the flow; when it is cancelled or crashes, the ``on_cancellation``/``on_crashed``
hooks (often in another process) cancel those recorded in ``<prefix>/_runs/active/<run id>.json``.
"""

from __future__ import annotations

import contextlib
from collections import deque
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.events import emit_event
from prefect.futures import PrefectFuture, as_completed
from prefect.futures import wait as wait_for_futures
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, Field

from prefect_iterable.api.archive import (
    Archiver,
    ArchiveSettings,
    DataTypeArchive,
    ExportArchiveError,
    ExportJobFailed,
    ExportJobs,
    ExportTruncated,
    Manifest,
    Window,
    WindowOutcome,
    active_jobs_name,
    cancel_recorded_jobs,
    manifest_table,
)
from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.flows._storage import ArchiveStore
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
DEFAULT_STORAGE_PATH = "~/.prefect-iterable/archive"
_SYNC_MAX = timedelta(hours=1)


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


@task(
    name="archive-export-window",
    task_run_name="archive-{data_type}-{window.tag}",
    cache_policy=NO_CACHE,
    retries=0,
)
def archive_window(
    archiver: Archiver, data_type: str, window: Window, depth: int, mode: Literal["async", "sync"]
) -> WindowOutcome:
    """Archive one data type's window: skip it, export it (async or sync) or report a split."""
    return archiver.archive_window(data_type, window, depth, mode, get_run_logger())


@task(name="verify-export-archive", cache_policy=NO_CACHE, retries=0)
def verify_archive(archiver: Archiver, files: list[dict[str, Any]]) -> list[str]:
    """Read every archived file back: the mismatches with the manifest, one line each."""
    return archiver.verify(files)


def _archive_all(
    archiver: Archiver, data_types: list[str], window: Window, mode: Literal["async", "sync"],
    slots: int,
) -> dict[str, list[WindowOutcome]]:  # fmt: skip
    """Run the windows as tasks, ``slots`` at a time; a split window queues its halves."""
    outcomes: dict[str, list[WindowOutcome]] = {d: [] for d in data_types}
    queue = deque((d, window, 0) for d in data_types)
    running: list[PrefectFuture[WindowOutcome]] = []
    try:
        while queue or running:
            while queue and len(running) < slots:
                running.append(archive_window.submit(archiver, *queue.popleft(), mode))
            finished = next(as_completed(list(running)))
            running.remove(finished)
            outcome = finished.result()
            halves = archiver.record(outcome)
            queue.extend((outcome.data_type, h, outcome.depth + 1) for h in halves or ())
            outcomes[outcome.data_type].append(outcome)
    except BaseException:
        cancelled = archiver.jobs.cancel_all(get_run_logger())
        if cancelled:
            get_run_logger().error("the run failed; cancelled export jobs %s", cancelled)
        for settled in wait_for_futures(running, timeout=60).done:
            with contextlib.suppress(BaseException):
                settled.result()
        with contextlib.suppress(Exception):
            archiver.manifest.write()
        raise
    return outcomes


def _cancel_on_exit(flow: Any, flow_run: Any, state: Any) -> None:
    """on_cancellation / on_crashed: cancel the export jobs the run recorded as running."""
    from prefect.logging import get_logger

    logger = get_logger("iterable.export_archive")
    params = dict(flow_run.parameters or {})
    try:
        store = ArchiveStore.open(
            params.get("storage_block"), params.get("storage_path") or DEFAULT_STORAGE_PATH
        )
        prefix = _check_prefix(str(params.get("prefix") or "exports"))
        if not store.exists(active_jobs_name(prefix, str(flow_run.id))):
            return
        credentials = IterableCredentials.load_or_env(params.get("credentials_block"))
        cancel_recorded_jobs(credentials.get_client(), store, prefix, str(flow_run.id), logger)
    except Exception as exc:  # a hook must not raise
        logger.error("could not cancel the export jobs of flow run %s: %s", flow_run.id, exc)


def _check_prefix(prefix: str) -> str:
    cleaned = prefix.strip().strip("/")
    parts = cleaned.split("/") if cleaned else []
    if any(p in ("", ".", "..") for p in parts) or "\\" in cleaned:
        raise ValueError(f"prefix: {prefix!r} must be a relative folder path without '..'")
    return cleaned


def _check_data_types(data_types: list[str]) -> None:
    unknown = [d for d in data_types if d not in DATA_TYPE_NAMES]
    if unknown:
        raise ValueError(
            f"data_types: unknown Iterable export data type(s) {', '.join(map(repr, unknown))}"
        )
    if len(set(data_types)) != len(data_types):
        raise ValueError("data_types: a data type is listed twice")


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
    ] = DEFAULT_STORAGE_PATH,
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
    _check_data_types(data_types)
    window = Window.of(start, end)
    prefix = _check_prefix(prefix)
    small = window.duration <= _SYNC_MAX and len(data_types) == 1
    chosen: Literal["async", "sync"] = ("sync" if small else "async") if mode == "auto" else mode
    credentials = IterableCredentials.load_or_env(credentials_block)
    store = ArchiveStore.open(storage_block, storage_path)
    run_folder = f"{prefix}/_runs/{window.tag}".lstrip("/")
    manifest_name = f"{run_folder}/manifest.json"
    flow_run = FlowRunContext.get()
    run_id = str(flow_run.flow_run.id) if flow_run and flow_run.flow_run else "local"
    active_name = active_jobs_name(prefix, run_id)
    # A killed run leaves its half-written files (data, manifest, active jobs) behind.
    data_folders = [f"{prefix}/{d}/{window.start:%Y-%m-%d}".lstrip("/") for d in data_types]
    swept = store.sweep_parts([*data_folders, run_folder, active_name.rsplit("/", 1)[0]])
    if swept:
        logger.warning("removed %d partial file(s) left by a killed run: %s", len(swept), swept)

    client = credentials.get_client()
    manifest = Manifest(store, manifest_name, window, output_format)
    jobs = ExportJobs(
        client, store, active_name, output_format=output_format, poll_max_seconds=poll_max_seconds
    )
    settings = ArchiveSettings(
        output_format, prefix, window, on_truncated, max_split_depth, max_job_attempts
    )
    archiver = Archiver(client, store, manifest, settings, jobs)
    logger.info(
        "archiving %s for %s (%s mode, %s) into %s",
        ", ".join(data_types), window.label, chosen, output_format, store.label,
    )  # fmt: skip
    try:
        outcomes = _archive_all(archiver, data_types, window, chosen, max_concurrent_jobs)
        files = [f for d in data_types for o in outcomes[d] for f in o.files]
        problems = verify_archive(archiver, files) if verify else []
    finally:
        archiver.close()
        with contextlib.suppress(Exception):
            store.remove(active_name)
    manifest.verified = verify and not problems
    manifest.write()
    status = (
        "verified" if verify and not problems else "NOT verified" if problems else "not checked"
    )
    create_table_artifact(
        key="export-archive-manifest",
        table=manifest_table(files),
        description=f"Iterable exports {window.label} ({output_format}, {chosen}) in "
        f"{store.label}; manifest {store.path(manifest_name)}; {status}",
    )
    if problems:
        raise ExportArchiveError(
            "the archive does not match its manifest:\n" + "\n".join(problems[:20])
        )

    per_type = [DataTypeArchive.of(d, outcomes[d]) for d in data_types]
    for summary in per_type:
        emit_event(
            event="iterable.export.archived",
            resource={
                "prefect.resource.id": f"iterable.export.{summary.data_type}",
                "prefect.resource.name": summary.data_type,
            },
            payload={
                **summary.model_dump(include={"files", "bytes", "rows", "downloaded", "skipped"}),
                "window_start": window.start.isoformat(),
                "window_end": window.end.isoformat(),
                "manifest": store.path(manifest_name),
            },
        )
        logger.info(
            "%s: %s files, %s bytes, %s rows (%s downloaded, %s skipped)",
            summary.data_type, summary.files, summary.bytes, summary.rows, summary.downloaded,
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
        verified=verify and not problems,
        flow_run_id=run_id if flow_run else None,
        **{
            k: sum(getattr(s, k) for s in per_type)
            for k in ("files", "bytes", "rows", "downloaded", "skipped", "jobs_started")
        },
    )
