"""When to try a request again, and how long to wait first.

The decision is keyed by the action's side-effect class (see ``Effect``):

* 429: always retried, after the wait Iterable asked for (never sooner); a request Iterable refused
  for its rate did not take effect. A wait longer than ``max_server_wait`` (a daily cap) is raised.
* No connection: always retried; the request never left.
* 5xx, timeouts, dropped connections: retried with capped, jittered exponential backoff for reads
  and repeatable writes. For a send they are ambiguous, so the client raises ``OutcomeUnknown``
  instead and this module never sees them.
* Every other 4xx is final: sending the same bad request again cannot succeed.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import tenacity

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
        max_elapsed: give up once this many seconds have passed since the first attempt.
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
        """Call ``attempt`` until it succeeds or this policy gives up.

        The first try runs bare: most calls succeed at once, and only a failure pays for
        tenacity's bookkeeping, which takes over from the second attempt.
        """
        try:
            return attempt()
        except Exception as error:
            if self.attempts <= 1 or not is_retryable(error, self):
                raise
            time.sleep(self.wait_for(error, 1))
        return self._retrying(tenacity.Retrying)(attempt)

    async def arun(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """The asyncio twin of ``run``."""
        try:
            return await attempt()
        except Exception as error:
            if self.attempts <= 1 or not is_retryable(error, self):
                raise
            await asyncio.sleep(self.wait_for(error, 1))
        return await self._retrying(tenacity.AsyncRetrying)(attempt)

    def _retrying(self, cls: type[Any]) -> Any:
        """A tenacity controller for the attempts after the first."""
        return cls(
            retry=tenacity.retry_if_exception(lambda e: is_retryable(e, self)),
            wait=lambda state: self.wait_for(state.outcome.exception(), state.attempt_number + 1),
            stop=tenacity.stop_after_attempt(self.attempts - 1)
            | tenacity.stop_after_delay(self.max_elapsed),
            reraise=True,
        )


def is_retryable(error: BaseException, policy: RetryPolicy) -> bool:
    """Whether ``error`` (already classified by the client) is worth another attempt."""
    if isinstance(error, DailyCapReached):
        return False
    if isinstance(error, RateLimited):
        return error.retry_after is None or error.retry_after <= policy.max_server_wait
    return isinstance(error, (TransportError, ServerError))
