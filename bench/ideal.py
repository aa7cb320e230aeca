"""The ideal client: a minimal httpx loop sending pre-encoded bodies at exactly a documented rate.

It is the yardstick each rate scenario measures beside ours, in the same run against the same
sandbox process: whatever stops it short of the ceiling (the sandbox, the machine) stops ours
too, so ``ours / ideal`` is the client's own share. Request ``i`` leaves at ``start + i / rate``
(no burst, no throttle, no retry, no validation); the bodies are encoded before the clock starts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence

import httpx

from bench.common import check_loopback


def paced(url: str, api_key: str, path: str, bodies: Iterable[bytes], rate: float) -> float:
    """Send ``bodies`` one after another at ``rate`` per second (for large bodies, a few a
    second); return the wall time."""
    headers = {"Api-Key": api_key, "Content-Type": "application/json"}
    with httpx.Client(base_url=check_loopback(url), headers=headers, timeout=120) as client:
        started = time.monotonic()
        for i, body in enumerate(bodies):
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            client.post(path, content=body)
        return time.monotonic() - started


def paced_concurrent(
    url: str,
    api_key: str,
    path: str,
    bodies: Sequence[bytes],
    rate: float,
    concurrency: int = 4,
) -> float:
    """The same for many small bodies: ``concurrency`` requests in flight, each leaving at its
    slot; return the wall time."""

    async def run() -> float:
        headers = {"Api-Key": api_key, "Content-Type": "application/json"}
        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(
            base_url=check_loopback(url), headers=headers, timeout=60, limits=limits
        ) as client:
            positions = iter(range(len(bodies)))
            started = time.monotonic()

            async def worker() -> None:
                for i in positions:
                    delay = started + i / rate - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    await client.post(path, content=bodies[i])

            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return time.monotonic() - started

    return asyncio.run(run())
