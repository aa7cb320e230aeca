"""Archive Iterable exports of a time window: windows, the manifest, export jobs and downloads.

No Prefect here: ``prefect_iterable.flows.export_archive`` orchestrates these pieces as tasks, and
a user's own flow (or a plain script) can do the same.

Examples:
    >>> from prefect_iterable.api import Client  # doctest: +SKIP
    >>> from prefect_iterable.api.archive import (  # doctest: +SKIP
    ...     Archiver, ArchiveSettings, ExportJobs, Manifest, Window, active_jobs_name)
    >>> window = Window.of(None, None)  # yesterday, UTC  # doctest: +SKIP
    >>> with Client("KEY") as client:  # doctest: +SKIP
    ...     jobs = ExportJobs(client, store, active_jobs_name("exports", "run-1"), output_format="csv")
    ...     manifest = Manifest(store, f"exports/_runs/{window.tag}/manifest.json", window, "csv")
    ...     archiver = Archiver(client, store, manifest, ArchiveSettings("csv", "exports", window), jobs)
    ...     outcome = archiver.archive_window("emailSend", window, 0, "async", logging.getLogger())
    ...     archiver.record(outcome)
"""

from prefect_iterable.api.archive.archiver import (
    SYNC_ACTION,
    Archiver,
    ArchiveSettings,
    WindowOutcome,
)
from prefect_iterable.api.archive.downloads import (
    CHUNK_BYTES,
    UrlExpired,
    download,
    download_with_retries,
    presigned_client,
)
from prefect_iterable.api.archive.errors import (
    ExportArchiveError,
    ExportJobFailed,
    ExportTruncated,
    Stopped,
)
from prefect_iterable.api.archive.jobs import (
    MIME,
    ExportJobs,
    Log,
    active_jobs_name,
    cancel_jobs,
    cancel_recorded_jobs,
)
from prefect_iterable.api.archive.manifest import MANIFEST_VERSION, Manifest, unit_key
from prefect_iterable.api.archive.results import DataTypeArchive, manifest_table
from prefect_iterable.api.archive.store import ArchiveTarget, Digest, RecordKind
from prefect_iterable.api.archive.windows import (
    Window,
    default_window,
    iterable_time,
    record_time,
    utc,
    window_content,
)

__all__ = [
    "CHUNK_BYTES",
    "MANIFEST_VERSION",
    "MIME",
    "SYNC_ACTION",
    "ArchiveSettings",
    "ArchiveTarget",
    "Archiver",
    "DataTypeArchive",
    "Digest",
    "ExportArchiveError",
    "ExportJobFailed",
    "ExportJobs",
    "ExportTruncated",
    "Log",
    "Manifest",
    "RecordKind",
    "Stopped",
    "UrlExpired",
    "Window",
    "WindowOutcome",
    "active_jobs_name",
    "cancel_jobs",
    "cancel_recorded_jobs",
    "default_window",
    "download",
    "download_with_retries",
    "iterable_time",
    "manifest_table",
    "presigned_client",
    "record_time",
    "unit_key",
    "utc",
    "window_content",
]
