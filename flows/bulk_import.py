"""``bulk_import``: stream users or events from a CSV or NDJSON file into Iterable, resumably.

An orchestration of ``prefect_iterable.api.bulk`` (reading, field rules, batching by bytes,
split-on-refusal sending, checkpoint and dead letter; see that package for the rules): the flow
checks its inputs before any request, runs the import as one task, and reports it as artifacts
and an event. Every record ends **done**, **rejected** (in the dead-letter file, with its line
and reason) or **still to do** (after the checkpoint; the next run continues there).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any, Literal

from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from prefect.runtime import flow_run
from pydantic import BaseModel, Field

from prefect_iterable.api.bulk import (
    MAX_BODY_BYTES,
    Checkpoint,
    ImportOutcome,
    ImportState,
    Reader,
    Sender,
    count_records,
    detect_format,
    event_id,
    prefix_hash,
    send_all,
    state_names,
)
from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.flows._storage import open_source, open_store

__all__ = ["BulkImportResult", "BulkImportStopped", "bulk_import", "event_id"]

#: Outside the checkout, with the other files the flows write by default.
DEFAULT_STATE_DIR = "~/.prefect-iterable/bulk-import-state"


class BulkImportStopped(RuntimeError):
    """The import stopped before the end of the file; the checkpoint says where to resume."""


class _Progress:
    """The progress artifact, updated after commits at most twice a second."""

    def __init__(self, kind: str, name: str, size: int, offset: int) -> None:
        self.size = size
        self._last = 0.0
        self.artifact_id: Any = create_progress_artifact(
            progress=self._percent(offset),
            key=f"bulk-import-{kind}-progress",
            description=f"bulk import of {kind} from {name}",
        )

    def _percent(self, offset: int) -> float:
        return 100.0 if self.size == 0 else min(100.0, 100.0 * offset / self.size)

    def __call__(self, checkpoint: Checkpoint, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < 0.5:
            return
        self._last = now
        update_progress_artifact(
            artifact_id=self.artifact_id,
            progress=self._percent(checkpoint.offset),
            description=f"{checkpoint.done} done, {checkpoint.rejected} rejected, "
            f"line {checkpoint.line}",
        )


@task(
    name="bulk-import-records",
    task_run_name="bulk-import-{kind}",
    cache_policy=NO_CACHE,
    persist_result=False,
    retries=0,
    tags=["iterable", "iterable-write"],
)
def import_records(
    reader: Reader,
    state: ImportState,
    *,
    kind: str,
    credentials: IterableCredentials,
    batch_bytes: int,
    max_batch_records: int | None,
    concurrency: int,
    create_new_fields: bool | None,
) -> ImportOutcome:
    """Send the file's records from the checkpoint on (``prefect_iterable.api.bulk.send_all``).

    One task for the whole file, not one per batch: a task run per batch would cost a server row
    and a result each, and grow with the file.
    """
    sender = Sender(credentials.get_client(), kind, create_new_fields)
    outcome = send_all(
        reader,
        sender,
        state,
        batch_bytes=batch_bytes,
        max_batch_records=max_batch_records,
        concurrency=concurrency,
    )
    if outcome.stopped:
        get_run_logger().error("import stopped: %s", outcome.stopped)
    return outcome


@task(name="bulk-import-report", cache_policy=NO_CACHE, persist_result=False)
def report(result: BulkImportResult, key: str, last_line: int) -> None:
    """The summary table artifact and the ``iterable.bulk-import.finished``/``stopped`` event."""
    name = Path(result.source).name
    create_table_artifact(
        table=[
            {"records": "done", "count": result.done},
            {"records": "rejected", "count": result.rejected},
            {"records": "to do", "count": result.to_do},
        ],
        key=f"bulk-import-{result.kind}",
        description=f"Bulk import of {result.kind} from {name}: "
        + ("complete" if result.complete else f"stopped at line {last_line}")
        + f". Dead letters: {Path(result.dead_letter).name}",
    )
    emit_event(
        event="iterable.bulk-import.finished"
        if result.complete
        else "iterable.bulk-import.stopped",
        resource={"prefect.resource.id": f"iterable.bulk-import.{key}"},
        payload={
            "kind": result.kind,
            "done": result.done,
            "rejected": result.rejected,
            "to_do": result.to_do,
            "requests": result.requests,
        },
    )


class BulkImportResult(BaseModel):
    """Where every record of the file ended up."""

    kind: Literal["users", "events"]
    source: str
    format: Literal["csv", "ndjson"]
    done: int = Field(description="Records Iterable accepted (all runs of this checkpoint).")
    rejected: int = Field(description="Records in the dead-letter file, with their reasons.")
    to_do: int = Field(description="Records after the checkpoint, not yet sent or not accepted.")
    complete: bool = Field(description="The whole file is accounted for.")
    resumed_from_line: int = Field(description="0 for a fresh start, else the checkpoint's line.")
    requests: int = Field(description="Requests this run sent.")
    max_body_bytes: int = Field(description="The largest request body this run sent.")
    checkpoint: str
    dead_letter: str
    stopped: str | None = None
    flow_run_id: str | None = None


@flow(name="bulk-import", log_prints=False)
def bulk_import(
    source: Annotated[
        str, Field(description="The file: a local path, or a path inside source_block.")
    ],
    kind: Annotated[
        Literal["users", "events"],
        Field(description="users (users/bulkUpdate) or events (events/trackBulk)."),
    ] = "users",
    format: Annotated[  # noqa: A002 - the parameter's name in the UI form
        Literal["auto", "csv", "ndjson"],
        Field(description="auto: by the file's extension (.csv, .ndjson/.jsonl), else by content."),
    ] = "auto",
    source_block: Annotated[
        str | None,
        Field(
            description="A saved filesystem block holding the file: 'local-file-system/NAME' or "
            "'remote-file-system/NAME'."
        ),
    ] = None,
    credentials_block: Annotated[
        str | None,
        Field(
            description="Name of a saved IterableCredentials block; empty: ITERABLE_* environment "
            "variables."
        ),
    ] = None,
    state_dir: Annotated[
        str,
        Field(
            description="Where the checkpoint and the dead-letter file go: a directory, or a "
            "saved 'local-file-system/NAME' or 'remote-file-system/NAME' block (a run on another "
            "worker then resumes from it)."
        ),
    ] = DEFAULT_STATE_DIR,
    resume: Annotated[
        bool,
        Field(description="Continue from the checkpoint; false starts the file over."),
    ] = True,
    batch_bytes: Annotated[
        int,
        Field(
            ge=1024,
            le=MAX_BODY_BYTES,
            description="Target request body size in bytes (the cap is 4 MB).",
        ),
    ] = 3_500_000,
    max_batch_records: Annotated[
        int | None, Field(ge=1, description="Also cap the records per request (optional).")
    ] = None,
    concurrency: Annotated[
        int,
        Field(
            ge=1,
            le=16,
            description="Requests in flight at once (the rate stays capped; at most 16 MiB of "
            "bodies are held at once).",
        ),
    ] = 4,
    max_record_bytes: Annotated[
        int, Field(ge=1024, description="A longer line or CSV record is rejected, not read whole.")
    ] = 1_000_000,
    create_new_fields: Annotated[
        bool | None,
        Field(description="users only: add unknown fields to the project (default: its setting)."),
    ] = None,
) -> BulkImportResult:
    """Import users or events from a CSV or NDJSON file into Iterable, resumably, in bulk.

    Steps:
        1. Check the parameters and the credentials' permission, open the file and detect its
           format; an unreadable file or a bad CSV header raises before any request.
        2. Read the checkpoint in ``state_dir`` (unless ``resume`` is false) and continue after
           it; the dead-letter file is cut back to what the checkpoint accounts for.
        3. Stream the records, map CSV columns to fields, give events without an id a
           deterministic one, and reject records that cannot be sent (bad encoding, broken CSV
           row or JSON line, over-long line, missing identifier) with a reason naming the line.
        4. Pack records into bodies under ``batch_bytes`` and send them, several in flight, at
           the endpoint's rate; Iterable's per-record refusals go to the dead-letter file.
        5. After each batch, in file order, write the dead letters and then the checkpoint
           (atomically), and update the progress artifact.
        6. Publish a table artifact (done, rejected, to do) and emit ``iterable.bulk-import.finished``.

    CSV columns: ``email``, ``userId`` (and for events ``eventName``, ``id``, ``createdAt``,
    ``campaignId``, ``templateId``) are top-level fields; ``dataFields.a.b`` nests; any other
    column goes into ``dataFields``. Empty cells are left out; ``true``/``false`` become booleans,
    plain integers (no leading zero, at most 16 digits) integers, decimals floats, and cells that
    are valid JSON arrays or objects JSON; the rest stays text. Events without an ``id`` get the
    first 32 hex digits of the SHA-256 of their canonical JSON, so a resend deduplicates.

    Args:
        source: the file's path (inside ``source_block`` when given).
        kind: ``users`` or ``events``.
        format: ``csv``, ``ndjson`` or ``auto``.
        source_block: a saved ``local-file-system/NAME`` or ``remote-file-system/NAME`` block.
        credentials_block: the saved ``IterableCredentials`` block's name; None reads the
            environment.
        state_dir: where the checkpoint and the dead-letter file go: a directory, or a
            filesystem block shared by the workers that may resume the import.
        resume: continue from the checkpoint (true) or start over (false).
        batch_bytes: target body size per request.
        max_batch_records: optional cap on records per request.
        concurrency: requests in flight.
        max_record_bytes: longest line (or CSV record) accepted.
        create_new_fields: for users, Iterable's ``createNewFields``.

    Returns:
        Counts of done, rejected and still-to-do records, and the checkpoint and dead-letter paths.

    Raises:
        BulkImportStopped: the import could not finish (Iterable kept failing); everything
            committed is in the checkpoint, and a new run continues from there.
    """
    logger = get_run_logger()
    credentials = IterableCredentials.load_or_env(credentials_block)
    handle, size, where = open_source(source, source_block)
    try:
        store = open_store(state_dir)
        fmt = detect_format(handle, where, format)
        reader = Reader(handle, kind, fmt, max_record_bytes)
        start = reader.read_header() if fmt == "csv" else (0, 0)
        state = ImportState.open(
            store,
            where=where,
            kind=kind,
            fmt=fmt,
            prefix=prefix_hash(handle),
            size=size,
            start=start,
            resume=resume,
        )
        checkpoint = state.checkpoint
        if state.resumed_from:
            logger.info(
                "resuming at line %s (%s done, %s rejected so far)",
                checkpoint.line + 1,
                checkpoint.done,
                checkpoint.rejected,
            )
        progress = _Progress(kind, Path(where).name, size, checkpoint.offset)
        state.on_commit = progress
        outcome = import_records(
            reader,
            state,
            kind=kind,
            credentials=credentials,
            batch_bytes=batch_bytes,
            max_batch_records=max_batch_records,
            concurrency=concurrency,
            create_new_fields=create_new_fields,
        )
        progress(checkpoint, force=True)
        complete = checkpoint.complete
        to_do = 0 if complete else count_records(reader, checkpoint.offset, checkpoint.line)
    finally:
        handle.close()

    result = BulkImportResult(
        kind=kind,
        source=where,
        format=fmt,
        done=checkpoint.done,
        rejected=checkpoint.rejected,
        to_do=to_do,
        complete=complete,
        resumed_from_line=state.resumed_from,
        requests=outcome.requests,
        max_body_bytes=outcome.max_body_bytes,
        checkpoint=state.checkpoint_where,
        dead_letter=state.dead_letter_where,
        stopped=outcome.stopped,
        flow_run_id=str(flow_run.id) if flow_run.id else None,
    )
    report(result, state_names(where, kind)[0], checkpoint.line)
    logger.info(
        "%s: %s done, %s rejected, %s to do (%s requests)",
        kind,
        result.done,
        result.rejected,
        result.to_do,
        result.requests,
    )
    if outcome.stopped:
        raise BulkImportStopped(
            f"{result.to_do} records still to do after line {checkpoint.line}: {outcome.stopped}. "
            "Run again to resume from the checkpoint."
        )
    return result
