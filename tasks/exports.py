"""Tasks for Iterable's exports: synchronous streamed exports and the asynchronous job API.

``export_data_csv``, ``export_data_json`` and ``export_user_events`` given a ``destination``
stream their answer into that local file as it arrives (never whole in memory) and return a
``StreamSummary`` (path, bytes, records, SHA-256). Without one they return the records
themselves: CSV rows as dicts, JSON lines parsed, up to ``RECORDS_LIMIT`` (10,000) records and
``BYTES_LIMIT`` (10 MiB) of answer; a larger export fails with ``ExportTooLarge``, naming
``destination`` and ``start_export``. Large or long windows belong to the job API: ``start_export``, then poll
``list_export_files`` (or walk ``iter_export_files``) and fetch each file's URL with
``download_export_file`` within 30 minutes of listing it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PlainSerializer,
    StringConstraints,
    ValidationInfo,
)

from prefect_iterable.api.errors import TransportError, error_from_response
from prefect_iterable.api.files import RecordFile, RecordKind
from prefect_iterable.api.models import ApiResponse
from prefect_iterable.api.models.exports import (
    ExportFile,
    ExportJobFiles,
    ExportJobs,
    ExportJobStarted,
)
from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.tasks._core import (
    StreamSummary,
    iterable_task,
    resolve_credentials,
)
from prefect_iterable.tasks._exported import BYTES_LIMIT, RECORDS_LIMIT, ExportTooLarge
from prefect_iterable.tasks._types import (
    Email,
    ExportDateTime,
    PositiveId,
    UserId,
    case_insensitive,
)

__all__ = [
    "BYTES_LIMIT",
    "DATA_TYPE_NAMES",
    "DateRange",
    "ExportDataType",
    "ExportJobState",
    "ExportTooLarge",
    "OutputFormat",
    "RECORDS_LIMIT",
    "cancel_export",
    "download_export_file",
    "export_data_csv",
    "export_data_json",
    "export_user_events",
    "iter_export_files",
    "list_export_files",
    "list_export_jobs",
    "start_export",
]

#: What an export can hold: message events by channel, subscriptions, purchases, custom
#: events, user profiles and usage records (Iterable's Swagger enum).
ExportDataType = Literal[
    "emailSend",
    "emailOpen",
    "emailClick",
    "hostedUnsubscribeClick",
    "emailComplaint",
    "emailBounce",
    "emailSendSkip",
    "pushSend",
    "pushOpen",
    "pushUninstall",
    "pushBounce",
    "pushSendSkip",
    "inAppSend",
    "inAppOpen",
    "inAppClick",
    "inAppClose",
    "inAppDelete",
    "inAppDelivery",
    "inAppSendSkip",
    "inAppRecall",
    "inboxSession",
    "inboxMessageImpression",
    "smsSend",
    "smsBounce",
    "smsClick",
    "smsReceived",
    "smsSendSkip",
    "webPushSend",
    "webPushClick",
    "webPushSendSkip",
    "rcsSend",
    "rcsSendSkip",
    "emailSubscribe",
    "emailUnSubscribe",
    "purchase",
    "customEvent",
    "user",
    "smsUsageInfo",
    "embeddedSend",
    "embeddedSendSkip",
    "embeddedClick",
    "embeddedReceived",
    "embeddedImpression",
    "embeddedSession",
    "unknownSession",
    "journeyExit",
    "whatsAppBounce",
    "whatsAppClick",
    "whatsAppReceived",
    "whatsAppSeen",
    "whatsAppSend",
    "whatsAppSendSkip",
    "whatsAppUsageInfo",
]
DATA_TYPE_NAMES: tuple[str, ...] = ExportDataType.__args__  # type: ignore[attr-defined]

#: Iterable's named windows, in UTC days.
DateRange = Annotated[
    Literal["Today", "Yesterday", "BeforeToday", "All"],
    case_insensitive("Today", "Yesterday", "BeforeToday", "All"),
]
OutputFormat = Literal["text/csv", "application/x-json-stream"]
_JOB_STATES = ("enqueued", "queued", "running", "completed", "failed", "cancelled", "cancelling")
#: Filter values for ``list_export_jobs``, in any case (Iterable answers ``Completed``), sent
#: in the lower case Iterable documents for the filter.
ExportJobState = Annotated[
    Literal["enqueued", "queued", "running", "completed", "failed", "cancelled", "cancelling"],
    case_insensitive(*_JOB_STATES),
]

_FieldName = Annotated[str, StringConstraints(min_length=1, pattern=r"^[^,\s]+$")]


def _split_fields(value: Any) -> Any:
    # Iterable's own spelling is one comma-separated string; a list is the Python one.
    if isinstance(value, str):
        return [name.strip() for name in value.split(",") if name.strip()]
    return value


#: Field names, as a list or as Iterable's comma-separated string; sent comma-separated as
#: ``onlyFields``/``omitFields`` expect.
FieldList = Annotated[
    list[_FieldName],
    BeforeValidator(_split_fields),
    Field(min_length=1),
    PlainSerializer(",".join, return_type=str),
]
_Delimiter = Annotated[str, StringConstraints(min_length=1, max_length=1, pattern=r"^[^\r\n\"]$")]


def _window_end(value: Any, info: ValidationInfo) -> Any:
    """``date_range`` or the pair start/end, not both; start before end.

    Runs on ``end_date_time`` (declared after the others, and validated even when omitted),
    because a task's signature has no place for a cross-field rule of its own. Giving neither
    leaves Iterable's default window, ``Today``.
    """
    data = info.data
    if "date_range" not in data or "start_date_time" not in data:
        return value  # an earlier argument failed; it is reported on its own
    date_range, start = data["date_range"], data["start_date_time"]
    if date_range is not None and (start is not None or value is not None):
        raise ValueError("give date_range or start_date_time/end_date_time, not both")
    if (start is None) != (value is None):
        raise ValueError("give both start_date_time and end_date_time")
    if start is not None and value is not None and not start < value:
        raise ValueError("end_date_time must be after start_date_time")
    return value


def _job_window_end(value: Any, info: ValidationInfo) -> Any:
    start = info.data.get("start_date_time")
    if start is not None and value is not None and not start < value:
        raise ValueError("end_date_time must be after start_date_time")
    return value


def _csv_only(value: Any, info: ValidationInfo) -> Any:
    if value is not None and info.data.get("output_format") != "text/csv":
        raise ValueError("delimiter applies only to output_format 'text/csv'")
    return value


_WindowEnd = Annotated[
    ExportDateTime | None, AfterValidator(_window_end), Field(validate_default=True)
]
_JobWindowEnd = Annotated[ExportDateTime | None, AfterValidator(_job_window_end)]


@iterable_task("ITERABLE_EXPORT_DATA_CSV", run_name="export-data-csv-{data_type_name}")
def export_data_csv(
    data_type_name: ExportDataType,
    date_range: DateRange | None = None,
    start_date_time: ExportDateTime | None = None,
    end_date_time: _WindowEnd = None,
    only_fields: FieldList | None = None,
    omit_fields: FieldList | None = None,
    campaign_id: PositiveId | None = None,
    delimiter: _Delimiter | None = None,
    *,
    destination: str | None = None,
    credentials: IterableCredentials | None = None,
) -> StreamSummary | list[dict[str, Any]]:
    """Export one data type for a window as CSV: into a local file, or returned as rows.

    Use it for windows small enough to download in one request (a day, a week); for larger
    ones use ``start_export``. Give either ``date_range`` or both ``start_date_time`` and
    ``end_date_time`` (neither: Iterable's default, ``Today``). A cut connection raises ``TransportError``; the task retries, rewriting
    the file from the start.

    ITERABLE_EXPORT_DATA_CSV: GET /api/export/data.csv (4 requests/minute per project).

    Args:
        data_type_name: what to export (``emailSend``, ``purchase``, ``user``, …).
        date_range: ``Today`` (the default), ``Yesterday``, ``BeforeToday`` or ``All`` (UTC
            days).
        start_date_time: start of the window, inclusive (naive times are UTC).
        end_date_time: end of the window, exclusive; after ``start_date_time``.
        only_fields: export only these fields.
        omit_fields: leave these fields out.
        campaign_id: only records of this campaign.
        delimiter: one character separating columns (Iterable's default ``,``).
        destination: the local file to stream into (parent directories are created); omitted,
            the records are returned instead (at most ``RECORDS_LIMIT`` records and
            ``BYTES_LIMIT`` bytes, else ``ExportTooLarge``).
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        With ``destination``: where the CSV was written, its size, its row count (header
        excluded) and SHA-256. Without: the rows, each a dict keyed by the header's column names
        (quoted cells may hold newlines and the delimiter).
    """


@iterable_task("ITERABLE_EXPORT_DATA_JSON", run_name="export-data-json-{data_type_name}")
def export_data_json(
    data_type_name: ExportDataType,
    date_range: DateRange | None = None,
    start_date_time: ExportDateTime | None = None,
    end_date_time: _WindowEnd = None,
    only_fields: FieldList | None = None,
    omit_fields: FieldList | None = None,
    campaign_id: PositiveId | None = None,
    *,
    destination: str | None = None,
    credentials: IterableCredentials | None = None,
) -> StreamSummary | list[dict[str, Any]]:
    """Export one data type for a window as newline-delimited JSON: into a file, or returned.

    Same rules as ``export_data_csv``: give either ``date_range`` or both ends of a window
    (neither: ``Today``), and prefer ``start_export`` for large windows. Each line of the file is one JSON record.

    ITERABLE_EXPORT_DATA_JSON: GET /api/export/data.json (4 requests/minute per project).

    Args:
        data_type_name: what to export (``emailSend``, ``purchase``, ``user``, …).
        date_range: ``Today`` (the default), ``Yesterday``, ``BeforeToday`` or ``All`` (UTC
            days).
        start_date_time: start of the window, inclusive (naive times are UTC).
        end_date_time: end of the window, exclusive; after ``start_date_time``.
        only_fields: export only these fields.
        omit_fields: leave these fields out.
        campaign_id: only records of this campaign.
        destination: the local file to stream into (parent directories are created); omitted,
            the records are returned instead (at most ``RECORDS_LIMIT`` records and
            ``BYTES_LIMIT`` bytes, else ``ExportTooLarge``).
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        With ``destination``: where the records were written, their size, their count (lines)
        and SHA-256. Without: the records, each a parsed JSON object.
    """


@iterable_task(
    "ITERABLE_EXPORT_USER_EVENTS",
    run_name="export-user-events",
    one_of=("email", "user_id"),
    need_one=True,
)
def export_user_events(
    email: Email | None = None,
    user_id: UserId | None = None,
    include_custom_events: bool | None = None,
    *,
    destination: str | None = None,
    credentials: IterableCredentials | None = None,
) -> StreamSummary | list[dict[str, Any]]:
    """Export every event of one user as newline-delimited JSON: into a file, or returned.

    Use it to answer a data-access request or to inspect one user's history. Identify the user
    by ``email`` or ``user_id`` (exactly one); an unknown user fails with Iterable's
    ``UnknownEmailError``/``UnknownUserIdError``.

    ITERABLE_EXPORT_USER_EVENTS: GET /api/export/userEvents (no documented rate limit).

    Args:
        email: the user's email address.
        user_id: the user's userId.
        include_custom_events: also export custom events (Iterable's default: no).
        destination: the local file to stream into (parent directories are created); omitted,
            the records are returned instead (at most ``RECORDS_LIMIT`` records and
            ``BYTES_LIMIT`` bytes, else ``ExportTooLarge``).
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        With ``destination``: where the events were written, their size, their count (lines)
        and SHA-256. Without: the events, each a parsed JSON object.
    """


@iterable_task("ITERABLE_START_EXPORT", run_name="start-export-{data_type_name}")
def start_export(
    data_type_name: ExportDataType,
    output_format: OutputFormat,
    start_date_time: ExportDateTime | None = None,
    end_date_time: _JobWindowEnd = None,
    only_fields: FieldList | None = None,
    omit_fields: FieldList | None = None,
    campaign_id: PositiveId | None = None,
    delimiter: Annotated[_Delimiter | None, AfterValidator(_csv_only)] = None,
    *,
    credentials: IterableCredentials | None = None,
) -> ExportJobStarted:
    """Start an asynchronous export job, for windows too large for one streamed request.

    Every call starts a new job, so the task never re-sends it: an unknown outcome raises
    ``OutcomeUnknown`` (check ``list_export_jobs`` before starting again). At most 4 jobs run
    at once per organization; the others wait Enqueued. Poll ``list_export_files``.

    ITERABLE_START_EXPORT: POST /api/export/start (1 request/s per organization; 4 running
    exports per organization).

    Args:
        data_type_name: what to export (``emailSend``, ``purchase``, ``user``, …).
        output_format: ``text/csv`` or ``application/x-json-stream`` (one JSON object a line).
        start_date_time: records from this time, inclusive (naive times are UTC).
        end_date_time: records before this time, exclusive; after ``start_date_time``.
        only_fields: export only these fields.
        omit_fields: leave these fields out.
        campaign_id: only records of this campaign.
        delimiter: one CSV column separator; only with ``text/csv``.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        The new job's ``job_id``.
    """


@iterable_task("ITERABLE_LIST_EXPORT_JOBS")
def list_export_jobs(
    job_state: ExportJobState | None = None,
    *,
    credentials: IterableCredentials | None = None,
) -> ExportJobs:
    """List the project's recent export jobs, optionally only those in one state.

    Use it to find jobs already running before starting another, or to recover a job id after
    an uncertain ``start_export``.

    ITERABLE_LIST_EXPORT_JOBS: GET /api/export/jobs (no documented rate limit).

    Args:
        job_state: ``enqueued`` (or ``queued``), ``running``, ``completed``, ``failed``,
            ``cancelled`` or ``cancelling``.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        The jobs, each with its id, data type, state, bytes exported and times.
    """


@iterable_task("ITERABLE_LIST_EXPORT_FILES", run_name="list-export-files-{job_id}")
def list_export_files(
    job_id: PositiveId,
    start_after: Annotated[str, StringConstraints(min_length=1)] | None = None,
    *,
    credentials: IterableCredentials | None = None,
) -> ExportJobFiles:
    """Read an export job's state and a page of its files, each with a download URL.

    Files appear while the job runs; page by passing the last file name seen as
    ``start_after``. A job may go back from Running to Enqueued when Iterable restarts it; it
    keeps its progress. URLs expire 30 minutes after this call.

    ITERABLE_LIST_EXPORT_FILES: GET /api/export/{jobId}/files (1 request/s per organization).

    Args:
        job_id: the id ``start_export`` returned.
        start_after: list only files named after this one.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        The job's state, whether the export was truncated, and the page of files.
    """


@iterable_task("ITERABLE_CANCEL_EXPORT", run_name="cancel-export-{job_id}")
def cancel_export(
    job_id: PositiveId, *, credentials: IterableCredentials | None = None
) -> ApiResponse:
    """Cancel an export job that is still enqueued or running.

    A job that already completed, failed or was cancelled cannot be cancelled (``BadParams``).

    ITERABLE_CANCEL_EXPORT: DELETE /api/export/{jobId} (1 request/s per project).

    Args:
        job_id: the id ``start_export`` returned.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope.
    """


def iter_export_files(
    job_id: int,
    credentials: IterableCredentials | None = None,
    *,
    start_after: str | None = None,
) -> Iterator[ExportFile]:
    """The files an export job has listed so far, walking ``startAfter`` pages.

    Stops at an empty page: for a finished job that is every file; for a running one, call
    again later with ``start_after`` set to the last file seen. Each file's URL is fresh.
    """
    client = resolve_credentials(credentials).get_client()
    while True:
        raw = client.call("ITERABLE_LIST_EXPORT_FILES", job_id=job_id, start_after=start_after)
        page = ExportJobFiles.model_validate(raw)
        if not page.files:
            return
        yield from page.files
        start_after = page.files[-1].file


def download_export_file(url: str, destination: str, *, timeout: float = 60.0) -> StreamSummary:
    """Stream one export file's URL into ``destination``, hashing and counting as it goes.

    The URL is pre-signed (no API key is sent). An expired URL answers 403, raised as
    ``PermissionDenied``: list the job's files again for a fresh URL.
    """
    kind: RecordKind = "csv" if Path(destination).suffix == ".csv" else "json"
    out = RecordFile(destination, kind)
    try:
        with httpx.stream("GET", url, timeout=timeout) as response:
            if not response.is_success:
                text = response.read().decode(errors="replace")
                headers = {k.lower(): v for k, v in response.headers.items()}
                raise error_from_response(response.status_code, headers, text)
            with out:
                for chunk in response.iter_bytes(65_536):
                    out.write(chunk)
    except httpx.HTTPError as exc:
        raise TransportError(
            f"download failed after {out.size} bytes: {type(exc).__name__}"
        ) from None
    return StreamSummary(path=str(out.path), bytes=out.size, records=out.records, sha256=out.sha256)
