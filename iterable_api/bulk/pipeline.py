"""The import loop: read, pack, send a few batches at once, commit them in file order.

Memory is bounded by design, whatever the file's size: one batch is being packed while at most
``concurrency`` are in flight, a body is released as soon as it is sent (``Sender``), a batch
that waits to be committed keeps only its offsets, and the checkpoint holds counts, never
records. The pool's queue never holds a batch: one is submitted only when a worker is free.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from prefect_iterable.api.bulk.batches import Batch, batches
from prefect_iterable.api.bulk.records import Reader, Record
from prefect_iterable.api.bulk.sending import Sent
from prefect_iterable.api.bulk.state import ImportState
from prefect_iterable.api.errors import IterableError

__all__ = ["MAX_BYTES_IN_FLIGHT", "ImportOutcome", "count_records", "send_all"]

#: The request bodies held at once (being sent, and the one being packed), whatever the
#: concurrency: four bodies of 4 MiB, enough for bulkUpdate's 5 requests a second.
MAX_BYTES_IN_FLIGHT = 16 * 1024 * 1024


@dataclass(frozen=True)
class ImportOutcome:
    """What one run got through: its requests, its largest body, and why it stopped (if it did)."""

    requests: int
    max_body_bytes: int
    stopped: str | None = None


def send_all(
    reader: Reader,
    send: Callable[[Batch], Sent],
    state: ImportState,
    *,
    batch_bytes: int,
    max_batch_records: int | None = None,
    concurrency: int = 4,
    max_bytes_in_flight: int = MAX_BYTES_IN_FLIGHT,
) -> ImportOutcome:
    """Send the file's records from the checkpoint on, a few batches in flight, in file order.

    A batch's outcome is committed (dead letters, then the checkpoint) only when every batch before
    it has been committed. On an error that another run may get past (a timeout, a 5xx after the
    client's retries, a 429 it would not wait for), the batches in flight are finished, the
    committed prefix is kept, and the reason is returned; nothing after it is counted as done.

    At most ``concurrency`` batches are in flight, and the next one is read and packed while the
    others are: it is started once there is room for it, after the batches ahead have been
    settled, so that no batch is sent after one before it was refused, and at most
    ``concurrency`` bodies are held at once, of at most ``max_bytes_in_flight`` bytes in all (the
    one being packed included; the budget is at least one batch).
    """
    if concurrency < 1:
        raise ValueError(f"concurrency: {concurrency} must be at least 1")
    budget = max(max_bytes_in_flight, batch_bytes) - batch_bytes  # room left for the next one
    checkpoint = state.checkpoint
    records = reader.records(checkpoint.offset, checkpoint.line + 1)
    inflight: deque[tuple[Batch, Future[Sent] | None]] = deque()
    stopped: str | None = None

    def held() -> int:
        """Bytes of the bodies not yet sent (a sent batch's body is released at once)."""
        return sum(b.body_bytes for b, f in inflight if f is not None and not f.done())

    def settle_head() -> None:
        nonlocal stopped
        batch, future = inflight.popleft()
        if stopped is not None:
            if future is not None:
                future.exception()  # wait for it; its records stay "to do"
            return
        try:
            sent = future.result() if future is not None else None
        except IterableError as exc:
            stopped = f"batch {batch.number} (from line {batch.first_line}): {exc}"
            return
        state.commit(batch, sent, reader)

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="bulk-import") as pool:
        try:
            for batch in batches(
                records, batch_bytes=batch_bytes, max_records=max_batch_records, first_number=1
            ):
                future = pool.submit(send, batch) if batch.count else None
                inflight.append((batch, future))
                # Settle finished batches in order, and make room for the next batch before it
                # is read: a worker is free for it when it is submitted (none waits in the
                # pool's queue, to be sent after a batch before it was refused), and its body
                # fits in the budget beside those still being sent.
                while inflight and (
                    len(inflight) >= concurrency
                    or inflight[0][1] is None
                    or inflight[0][1].done()
                    or held() > budget
                ):
                    settle_head()
                if stopped is not None:
                    break
            while inflight:
                settle_head()
        finally:
            while inflight:  # an unexpected error: wait for what is in flight, commit nothing
                _, future = inflight.popleft()
                if future is not None:
                    future.exception()
    if stopped is None:
        state.finish()
    return ImportOutcome(requests=state.requests, max_body_bytes=state.max_body, stopped=stopped)


def count_records(reader: Reader, offset: int, line: int) -> int:
    """How many records the file holds after ``offset`` (the last line accounted for: ``line``)."""
    return sum(1 for item in reader.records(offset, line + 1) if isinstance(item, Record))
