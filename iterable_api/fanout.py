"""Many single-record calls of one action, sent concurrently under the shared limiter.

A task run per record cannot reach Iterable's single-record ceilings (500 ``users/update`` and
2,000 ``events/track`` per second): a Prefect task run costs ~10 ms and a server row. ``send_many``
sends them from one event loop instead, each through ``AsyncClient.call``, so the limiter, the
retry policy and the never-twice rules are the client's own. Each record ends in one outcome:

* ``done``: Iterable answered 2xx.
* ``failed``: Iterable refused it (a 4xx; its code is kept) or the input was invalid: sending it
  again cannot succeed.
* ``unknown``: a send Iterable cannot deduplicate got no clear answer (a 5xx, a dropped
  connection). It may have taken effect, so it is never sent again.
* ``deferred``: retries ran out on something another attempt may fix (a daily cap, no
  connection, a 5xx on a repeatable write). Still to do: a rerun sends it.

Records are known by their position in the input, never by their content (which holds emails).
With a checkpoint file every settled outcome is appended as it happens, and a send that cannot be
deduplicated is marked as started (on disk) before it leaves: a rerun over the same records skips
every settled record, and counts a started send without an outcome (the process died while it was
in flight, or before its outcome was flushed) as unknown rather than sending it again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from prefect_iterable.api._catalog_types import Action, Effect
from prefect_iterable.api.catalog import get_action
from prefect_iterable.api.client import AsyncClient
from prefect_iterable.api.errors import (
    ApiError,
    DailyCapReached,
    InputValidationError,
    IterableError,
    OutcomeUnknown,
    RateLimited,
    ResponseValidationError,
    ServerError,
    TransportError,
)

__all__ = ["Checkpoint", "FanOutResult", "Progress", "run_blocking", "send_many"]

DONE, FAILED, UNKNOWN, STARTED, RELEASED = b"d", b"f", b"u", b"s", b"r"
_HEADER = "# prefect-iterable fan-out v1 {action}\n"


@dataclass(frozen=True)
class Progress:
    """Where a run stands: records settled so far by outcome (earlier runs' included)."""

    done: int
    failed: int
    unknown: int
    deferred: int
    skipped: int
    total: int | None

    @property
    def settled(self) -> int:
        return self.done + self.failed + self.unknown + self.deferred

    @property
    def fraction(self) -> float | None:
        return min(1.0, self.settled / self.total) if self.total else None


@dataclass
class FanOutResult:
    """Every record's outcome, by position. Counts and lists include earlier runs' outcomes.

    ``failed`` pairs each position with Iterable's error code (or ``InputValidationError``);
    ``deferred`` lists the positions a rerun will send; ``sent`` counts this run's requests and
    ``skipped`` the records an earlier run had settled.
    """

    action: str
    done: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)
    unknown: list[int] = field(default_factory=list)
    deferred: list[int] = field(default_factory=list)
    sent: int = 0
    skipped: int = 0

    def progress(self, total: int | None) -> Progress:
        return Progress(
            self.done, len(self.failed), len(self.unknown), len(self.deferred), self.skipped, total
        )


class Checkpoint:
    """An append-only file of outcomes by record position, one line each (``d 17``, ``f 18 Code``,
    ``u 19``, ``s 20``: started, ``r 20``: released, never arrived).

    The line marking a send that cannot be deduplicated as started is flushed before it leaves,
    with the outcomes written since (one write a record, not two); the rest are flushed at least
    every ``flush_every`` seconds. A crash loses at most the outcomes of the requests in flight
    and of the last ``flush_every`` seconds: a lost outcome of a send reads as unknown (never
    sent again), of a repeatable write as still to do (repeating it is harmless).
    """

    def __init__(self, path: str | Path, action: Action, *, flush_every: float = 1.0) -> None:
        self.path = Path(path)
        self.flush_every = flush_every
        self.state = bytearray()  # by position: b"\0" nothing yet, else one of DONE, FAILED, …
        self.codes: dict[int, str] = {}
        header = _HEADER.format(action=action.id)
        if self.path.exists() and self.path.stat().st_size:
            self._load(header)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(header)
        self._file: IO[str] = self.path.open("a")
        self._flushed = time.monotonic()

    def _load(self, header: str) -> None:
        with self.path.open() as lines:
            first = next(lines, "")
            if first != header:
                raise ValueError(
                    f"{self.path} is not a fan-out checkpoint of {header.split()[-1]}: "
                    "give another checkpoint file"
                )
            for line in lines:
                kind, _, rest = line.rstrip("\n").partition(" ")
                position, _, code = rest.partition(" ")
                if not position.isdigit():  # a line cut short by a crash
                    continue
                state = kind.encode()
                self._set(int(position), b"\0" if state == RELEASED else state)
                if state == FAILED:
                    self.codes[int(position)] = code

    def _set(self, position: int, state: bytes) -> None:
        if position >= len(self.state):
            self.state.extend(b"\0" * (position + 1 - len(self.state)))
        self.state[position] = state[0]

    def get(self, position: int) -> bytes | None:
        if position < len(self.state) and self.state[position]:
            return bytes(self.state[position : position + 1])
        return None

    def write(self, kind: bytes, position: int, code: str = "", *, flush: bool = False) -> None:
        self._set(position, kind)
        self._file.write(f"{kind.decode()} {position}{' ' + code if code else ''}\n")
        if flush or time.monotonic() - self._flushed >= self.flush_every:
            self.flush()

    def release(self, position: int) -> None:
        """A started send that provably never took effect: a rerun may send it."""
        self._set(position, b"\0")
        self._file.write(f"{RELEASED.decode()} {position}\n")
        self.flush()

    def flush(self) -> None:
        self._file.flush()
        self._flushed = time.monotonic()

    def close(self) -> None:
        self._file.close()


def _classify(error: Exception, effect: Effect) -> tuple[bytes | None, str]:
    """The outcome of a call that raised: (state, code); ``None`` means deferred (still to do)."""
    if isinstance(error, ResponseValidationError):
        return DONE, ""  # a 2xx answer in an unexpected shape: Iterable did it
    if isinstance(error, OutcomeUnknown):
        return UNKNOWN, ""
    if isinstance(error, InputValidationError):
        return FAILED, "InputValidationError"
    if isinstance(error, (DailyCapReached, RateLimited, ServerError, TransportError)):
        # The client raises these for a send only when it provably did not arrive (it turns the
        # ambiguous ones into OutcomeUnknown); for a repeatable write, another try is harmless.
        return None, ""
    if isinstance(error, ApiError):
        return FAILED, error.code or f"HTTP{error.status}"
    if isinstance(error, IterableError) or effect is not Effect.SEND:
        return None, ""
    return UNKNOWN, ""  # something unforeseen after a send may have left: never repeat it


async def send_many(
    client: AsyncClient,
    action: str | Action,
    records: Iterable[Mapping[str, Any]],
    *,
    concurrency: int = 4,
    checkpoint: str | Path | None = None,
    prepare: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None,
    on_progress: Callable[[Progress], Awaitable[None] | None] | None = None,
    progress_every: float = 2.0,
    total: int | None = None,
) -> FanOutResult:
    """Send ``action`` once per record (Python-named values), ``concurrency`` at a time.

    Args:
        client: the client to send through; its limiter paces every request.
        action: the catalog id (or ``Action``) of a single-record action.
        records: each record's values, read lazily and once: a generator keeps memory flat.
        concurrency: requests in flight at most; a few are enough on loopback and more slow
            httpx down.
        checkpoint: a file that makes a rerun over the same records skip the settled ones.
        prepare: turns a record into the values to send; an ``InputValidationError`` it raises
            fails that record before any request. Anything else it raises stops the run.
        on_progress: called with a ``Progress`` at most every ``progress_every`` seconds, and
            once at the end (a coroutine function is awaited).
        total: the number of records, when ``records`` has no ``len``, for progress fractions.

    Returns:
        Every record's outcome; see ``FanOutResult``.
    """
    act = get_action(action)
    if total is None and hasattr(records, "__len__"):
        total = len(records)  # type: ignore[arg-type]
    book = Checkpoint(checkpoint, act) if checkpoint is not None else None
    result = FanOutResult(act.id)
    if book is not None:
        # What earlier runs settled counts as this run's too; a started send without an outcome
        # was in flight when the process stopped.
        for position, state in enumerate(book.state):
            if state == DONE[0]:
                result.done += 1
            elif state == FAILED[0]:
                result.failed.append((position, book.codes.get(position, "")))
            elif state in (UNKNOWN[0], STARTED[0]):
                result.unknown.append(position)
    source = iter(enumerate(records))
    last_report = time.monotonic()

    async def report(force: bool = False) -> None:
        nonlocal last_report
        if on_progress is None or not force and time.monotonic() - last_report < progress_every:
            return
        last_report = time.monotonic()
        if book is not None:
            book.flush()
        outcome = on_progress(result.progress(total))
        if outcome is not None:
            await outcome

    async def settle(position: int, state: bytes | None, code: str, effect: Effect) -> None:
        send = effect is Effect.SEND
        if state is None:
            result.deferred.append(position)
            if book is not None and send:
                book.release(position)
        else:
            if state == DONE:
                result.done += 1
            elif state == FAILED:
                result.failed.append((position, code))
            else:
                result.unknown.append(position)
            if book is not None:
                # A send's outcome goes out with the next start mark, a report or the close: until
                # then its start mark alone makes a rerun count it unknown, never send it again.
                book.write(state, position, code)
        await report()

    async def worker() -> None:
        for position, record in source:
            if book is not None and book.get(position) is not None:
                result.skipped += 1
                continue
            try:
                values = prepare(record) if prepare is not None else dict(record)
            except InputValidationError:
                await settle(position, FAILED, "InputValidationError", act.effect)
                continue
            effect = act.effect_for(values)
            if book is not None and effect is Effect.SEND:
                book.write(STARTED, position, flush=True)
            try:
                await client.call(act, values)
            except Exception as error:  # noqa: BLE001 - every failure becomes an outcome
                # The client refuses bad input before anything is sent.
                result.sent += not isinstance(error, InputValidationError)
                state, code = _classify(error, effect)
                await settle(position, state, code, effect)
            else:
                result.sent += 1
                await settle(position, DONE, "", effect)

    workers = [asyncio.ensure_future(worker()) for _ in range(max(1, concurrency))]
    try:
        finished, _ = await asyncio.wait(workers, return_when=asyncio.FIRST_EXCEPTION)
        for task in finished:
            task.result()  # a failing prepare, a failing input: stop the run with its error
        result.failed.sort()
        result.unknown.sort()
        result.deferred.sort()
        await report(force=True)
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        if book is not None:
            book.close()
    return result


def run_blocking(make: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``make()`` to completion from synchronous code, also where an event loop already runs
    in this thread (then in a fresh thread, with this thread's context)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())  # type: ignore[arg-type]
    import contextvars

    context = contextvars.copy_context()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(context.run, asyncio.run, make()).result()  # type: ignore[arg-type]
