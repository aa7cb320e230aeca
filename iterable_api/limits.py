"""Client-side rate limiting, so that a client running at full speed never receives a 429.

Each documented limit becomes a bucket keyed by (endpoint, scope, scope key): the same key Iterable
counts by. A caller *reserves* a slot under a lock (pure arithmetic, so threads and asyncio tasks
share one limiter safely), then sleeps outside the lock until its slot comes.

The buckets run slightly under Iterable's numbers on purpose: requests leave in order but arrive
with jitter, so a client that spent Iterable's whole burst would see 429s whenever a late request
and an on-time one landed together. Half the burst and 99% of the rate leave that margin. A limit
of one request per period has no burst to halve, so its requests are spaced 10% further apart
instead: the only slack there is time.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from dataclasses import dataclass
from typing import Callable, Protocol

from prefect_iterable.api._catalog_types import Action, Limit, Scope
from prefect_iterable.api.errors import DailyCapReached

__all__ = [
    "BURST_FRACTION",
    "RATE_FRACTION",
    "paced_rate",
    "Limiter",
    "LocalLimiter",
    "NoLimiter",
    "ScopeKeys",
    "shared_limiter",
]

RATE_FRACTION = 0.99
SINGLE_TOKEN_RATE_FRACTION = 0.9
BURST_FRACTION = 0.5


def paced_rate(limit: Limit) -> float:
    """Requests per second a client sends at under ``limit``: a little under the documented rate.

    A limit of one request has no burst to absorb requests that arrive closer together than they
    left (a delay in the network or at Iterable), so its margin is in the gap itself: 10 %, a
    tenth of a second at 1 request/s, where 1 % elsewhere would be 10 ms.
    """
    fraction = SINGLE_TOKEN_RATE_FRACTION if limit.requests == 1 else RATE_FRACTION
    return limit.per_second * fraction


@dataclass(frozen=True)
class ScopeKeys:
    """What identifies the caller at each scope Iterable counts by (hashes, never the key)."""

    project: str
    api_key: str
    organization: str

    def for_scope(self, scope: Scope) -> str:
        return {
            Scope.PROJECT: self.project,
            Scope.API_KEY: self.api_key,
            Scope.ORGANIZATION: self.organization,
        }[scope]


class Limiter(Protocol):
    """Waits until an action may be sent. The client calls one of the two before every request."""

    def acquire(self, action: Action, keys: ScopeKeys) -> None: ...

    async def aacquire(self, action: Action, keys: ScopeKeys) -> None: ...


class NoLimiter:
    """Sends at once: for a sandbox with its limits off, or a benchmark baseline."""

    def acquire(self, action: Action, keys: ScopeKeys) -> None:
        return None

    async def aacquire(self, action: Action, keys: ScopeKeys) -> None:
        return None


class _Bucket:
    """A GCRA bucket: each reservation books the next free slot and says how long to wait for it."""

    def __init__(self, per_second: float, burst: int) -> None:
        self.interval = 1.0 / per_second
        self.tolerance = (burst - 1) * self.interval
        self.next_free = 0.0

    def reserve(self, now: float) -> float:
        start = max(self.next_free, now)
        self.next_free = start + self.interval
        return max(0.0, start - self.tolerance - now)


class _DailyCap:
    """Counts sends in a sliding 24-hour window; refuses rather than wait a day."""

    def __init__(self, limit: Limit) -> None:
        self.limit = limit
        self.sent: collections.deque[float] = collections.deque()

    def take(self, now: float, action: Action) -> None:
        window = self.limit.period.value
        while self.sent and self.sent[0] <= now - window:
            self.sent.popleft()
        if len(self.sent) >= self.limit.requests:
            wait = self.sent[0] + window - now
            raise DailyCapReached(
                429,
                "RateLimitExceeded",
                f"daily cap of {self.limit.requests} requests per 24 h reached for "
                f"{action.endpoint}; next slot in {wait:.0f} s",
                action=action.id,
                retry_after=wait,
            )
        self.sent.append(now)


class LocalLimiter:
    """Token buckets for every documented limit, shared by all clients in this process.

    Args:
        scale: multiplies every documented rate (not the daily caps); only for a sandbox that runs
            its limits faster.
        clock: the time source (monotonic seconds).
    """

    def __init__(self, *, scale: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.scale = scale
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str, str, float], _Bucket] = {}
        self._caps: dict[tuple[str, str, float], _DailyCap] = {}

    def reserve(self, action: Action, keys: ScopeKeys) -> float:
        """Book a slot for one request; return the seconds to wait before sending it."""
        if action.limit is None and action.daily_cap is None:
            return 0.0
        with self._lock:
            now = self._clock()
            if action.daily_cap is not None:
                cap_key = (action.endpoint, keys.for_scope(action.daily_cap.scope), self.scale)
                cap = self._caps.get(cap_key)
                if cap is None:
                    cap = self._caps[cap_key] = _DailyCap(action.daily_cap)
                cap.take(now, action)
            if action.limit is None:
                return 0.0
            limit = action.limit
            key = (action.endpoint, limit.scope.value, keys.for_scope(limit.scope), self.scale)
            bucket = self._buckets.get(key)
            if bucket is None:
                burst = max(1, int(limit.requests * BURST_FRACTION))
                bucket = self._buckets[key] = _Bucket(paced_rate(limit) * self.scale, burst)
            return bucket.reserve(now)

    def acquire(self, action: Action, keys: ScopeKeys) -> None:
        delay = self.reserve(action, keys)
        if delay > 0:
            time.sleep(delay)

    async def aacquire(self, action: Action, keys: ScopeKeys) -> None:
        delay = self.reserve(action, keys)
        if delay > 0:
            await asyncio.sleep(delay)


_shared: dict[float, LocalLimiter] = {}
_shared_lock = threading.Lock()


def shared_limiter(scale: float = 1.0) -> LocalLimiter:
    """The process-wide limiter for ``scale``: every client with the same scale shares its buckets."""
    with _shared_lock:
        if scale not in _shared:
            _shared[scale] = LocalLimiter(scale=scale)
        return _shared[scale]
