"""Iterable's rate limits as the sandbox enforces them: a token bucket per (endpoint, scope key).

A bucket holds a full period's worth of requests and refills continuously, which is how Iterable
describes its limiter ("token capacity"). Written apart from the client's limiter on purpose: the
sandbox checks the client, so it must not share the client's arithmetic.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class _Bucket:
    capacity: float
    refill_per_second: float
    tokens: float
    updated: float

    def refill(self, now: float) -> None:
        self.tokens = min(
            self.capacity, self.tokens + (now - self.updated) * self.refill_per_second
        )
        self.updated = now


class RateLimits:
    """All buckets of a sandbox. ``time_scale`` > 1 runs every rate that many times faster."""

    def __init__(self, time_scale: float = 1.0) -> None:
        self.time_scale = time_scale
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._daily: dict[tuple[str, str], list[float]] = {}

    def reset(self) -> None:
        self._buckets.clear()
        self._daily.clear()

    def take(self, endpoint: str, scope_key: str, requests: int, period: float) -> float | None:
        """Spend one token; ``None`` if allowed, else the seconds until one is available."""
        now = time.monotonic()
        key = (endpoint, scope_key)
        refill = requests / period * self.time_scale
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(requests, refill, float(requests), now)
        bucket.refill(now)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / bucket.refill_per_second

    def remaining(self, endpoint: str, scope_key: str) -> int:
        bucket = self._buckets.get((endpoint, scope_key))
        return int(bucket.tokens) if bucket else 0

    def take_daily(self, endpoint: str, scope_key: str, cap: int) -> float | None:
        """Count one request against a 24-hour cap; ``None`` if allowed, else seconds to wait."""
        now = time.monotonic()
        sent = [t for t in self._daily.get((endpoint, scope_key), []) if t > now - 86_400.0]
        self._daily[(endpoint, scope_key)] = sent
        if len(sent) >= cap:
            return sent[0] + 86_400.0 - now
        sent.append(now)
        return None
