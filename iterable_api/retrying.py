"""When to try a request again, and how long to wait first.

The decision is keyed by the action's side-effect class (see ``Effect``):

* 429: always retried, after the wait Iterable asked for (never sooner); a request Iterable refused
  for its rate did not take effect. A wait longer than ``max_server_wait`` (a daily cap) is raised.
* No connection: always retried; the request never left.
* 5xx, timeouts, dropped connections: retried with capped, jittered exponential backoff for reads
  and repeatable writes. For a send they are ambiguous, so the client raises ``OutcomeUnknown``
  instead and this module never sees them.
* Every other 4xx is final: sending the same bad request again cannot succeed; so is a daily cap.

Attempts are bounded by count and by ``max_elapsed`` from the first attempt. This is the only retry
layer: the Prefect tasks built on the client do not retry on top of it (a task retry would repeat
every attempt, and wait out in seconds a limit Iterable set in hours).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from prefect_iterable.api.errors import (
    DailyCapReached,
    RateLimited,
    ServerError,
    TransportError,
)

__all__ = ["RetryPolicy", "is_retryable"]

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard the client tries before it gives up.

    Args:
        attempts: total attempts per request, the first included.
        max_elapsed: give up once this many seconds have passed since the first attempt; a wait
            that would end later is not started.
        backoff_base: the first backoff, in seconds; it doubles per attempt.
        backoff_cap: the largest single backoff, in seconds.
        max_server_wait: a 429 that asks for a longer wait than this is raised, not waited out.
    """

    attempts: int = 6
    max_elapsed: float = 300.0
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    max_server_wait: float = 120.0

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff for the ``attempt``-th failure (1-based)."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)

    def wait_for(self, error: BaseException, attempt: int) -> float:
        if isinstance(error, RateLimited) and error.retry_after is not None:
            # Never sooner than asked; a little later, so that waiting clients do not stampede.
            return error.retry_after * random.uniform(1.0, 1.1) + 0.01
        return self.backoff(attempt)

    def run(self, attempt: Callable[[], T]) -> T:
        """Call ``attempt`` until it succeeds or this policy gives up; raise its last error.

        This is the one retry loop of the library: Prefect tasks add no retries of their own.
        """
        started = time.monotonic()
        number = 1
        while True:
            try:
                return attempt()
            except Exception as error:
                wait = self.next_wait(error, number, started)
                if wait is None:
                    raise
            time.sleep(wait)
            number += 1

    async def arun(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """The asyncio twin of ``run``."""
        started = time.monotonic()
        number = 1
        while True:
            try:
                return await attempt()
            except Exception as error:
                wait = self.next_wait(error, number, started)
                if wait is None:
                    raise
            await asyncio.sleep(wait)
            number += 1

    def next_wait(self, error: BaseException, number: int, started: float) -> float | None:
        """The wait before attempt ``number + 1`` after ``error``, or ``None`` to give up.

        ``started`` is the ``time.monotonic()`` of the first attempt: a wait that would end past
        ``max_elapsed`` from it gives up now rather than sleeping first.
        """
        if number >= self.attempts or not is_retryable(error, self):
            return None
        wait = self.wait_for(error, number)
        if time.monotonic() - started + wait > self.max_elapsed:
            return None
        return wait


def is_retryable(error: BaseException, policy: RetryPolicy) -> bool:
    """Whether ``error`` (already classified by the client) is worth another attempt."""
    if isinstance(error, DailyCapReached):
        return False
    if isinstance(error, RateLimited):
        return error.retry_after is None or error.retry_after <= policy.max_server_wait
    return isinstance(error, (TransportError, ServerError))
