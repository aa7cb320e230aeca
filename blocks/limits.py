"""Iterable's rate limits shared by every worker, through Prefect global concurrency limits.

In one process the client's token buckets are enough. Workers in several processes or machines
must share one budget, so each documented limit becomes a Prefect global concurrency limit with
slot decay, which the Prefect server hands out to all of them. Create them once per server::

    python -m prefect_iterable.blocks.limits create        # or: python -m prefect_iterable.blocks.limits show

then set ``rate_limit_mode="prefect"`` on the ``IterableCredentials`` block. A missing limit fails
the request loudly (``strict=True``): running unthrottled would only trade it for 429s.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError
from prefect.exceptions import ObjectNotFound

from prefect_iterable.api.catalog import ACTIONS, Action, Limit
from prefect_iterable.api.limits import ScopeKeys, paced_rate

__all__ = ["SHARED_BURST_FRACTION", "PrefectGlobalLimiter", "limit_name", "limit_settings", "main"]

#: The part of Iterable's burst a shared limit hands out at once. Larger than the in-process
#: limiter's (0.5): every grant is a write on the Prefect server, so a grant must carry several
#: slots; the rest of the burst covers slots held while they are spent (``_Bank.shelf_life``).
SHARED_BURST_FRACTION = 0.8


def limit_name(action: Action) -> str:
    """The global concurrency limit that throttles ``action``: ``iterable-<action>``."""
    return "iterable-" + action.name.replace("_", "-")


def documented_limit(action: Action) -> Limit:
    """``action``'s documented rate limit; an action without one has nothing to share."""
    if action.limit is None:
        raise ValueError(f"{action.name} has no documented rate limit to share")
    return action.limit


def limit_settings(action: Action) -> tuple[int, float]:
    """``(slots, decay per second)`` for ``action``'s documented limit, with the client's margin."""
    limit = documented_limit(action)
    slots = max(1, int(limit.requests * SHARED_BURST_FRACTION))
    return slots, paced_rate(limit)


@dataclass
class _Bank:
    """Slots this process holds for one limit: each must be spent before its expiry."""

    name: str
    slots: int  # the limit's size on the server
    decay: float  # slots per second
    shelf_life: float  # seconds a held slot stays spendable
    batch: int = 1  # slots asked for per server call; adapts between 1 and ``slots``
    held: list[float] = field(default_factory=list)  # expiry times, oldest first
    lock: threading.Lock = field(default_factory=threading.Lock)
    expired: int = 0

    def take(self, now: float) -> bool:
        expired = 0
        while self.held and self.held[0] <= now:
            self.held.pop(0)
            expired += 1
        self.expired += expired
        if expired:  # asked for more than this process could spend in time: ask for fewer
            self.batch = max(1, self.batch // 2)
        if self.held:
            self.held.pop(0)
            if not self.held:  # spent a whole batch in time: ask for more next time
                self.batch = min(self.slots, self.batch * 2)
            return True
        return False


class PrefectGlobalLimiter:
    """A ``Limiter`` that shares Iterable's limits across processes through Prefect.

    Each documented limit is a Prefect global concurrency limit with slot decay (see ``main``).
    Prefect's own ``rate_limit()`` takes one slot per server call and, when refused, retries
    after the server's Retry-After (which grows with the denied slots); every grant and every
    refusal is a write on the server's database, and every grant drops the fractional part of
    the decay (``floor(decay × seconds since the last update)``), so several workers reach only
    65-85 % of the limit (68 % in our benchmark). This limiter instead:

    * asks for several slots per server call (a batch that grows while this process spends whole
      batches in time, up to the limit's size, and shrinks when slots expire unspent), and hands
      them to this process's requests without further server calls;
    * reads the limit (a read changes nothing on the server) to learn how many slots are free and
      when the next ones decay, and asks only then, so it is rarely refused;
    * lets a held slot expire after ``shelf_life`` (the documented burst the limit leaves unused,
      at the documented rate), so that slots held by one process and spent late can never add up
      to more than Iterable's own bucket allows: in any window of Δ seconds at most
      ``slots + decay × (Δ + shelf_life)`` requests leave, which stays under Iterable's
      ``requests + rate × Δ``.

    A limit missing on the server raises ``ConcurrencySlotAcquisitionError`` on first use (as
    ``rate_limit(strict=True)``): running unthrottled would only trade it for 429s. Clocks of the
    workers and the server should agree (NTP); a skewed clock costs throughput, not 429s, since
    the server still grants every slot.
    """

    def __init__(self) -> None:
        self._banks: dict[str, _Bank] = {}
        self._lock = threading.Lock()
        self._client: Any = None
        self._client_cm: Any = None
        #: Counters for benchmarks and logs: server reads, grants, refusals, slots, expired.
        self.stats: dict[str, int] = dict.fromkeys(
            ("reads", "grants", "refusals", "slots", "expired"), 0
        )
        self._timing = {"read": 0.0, "inc": 0.0, "sleep": 0.0}

    # ---- the Limiter protocol ----------------------------------------------------------------

    def acquire(self, action: Action, keys: ScopeKeys) -> None:
        if action.limit is None:
            return
        bank = self._bank(action)
        with bank.lock:  # one thread refills; the others wait for its slots
            while not bank.take(time.time()):
                self._refill(bank)

    async def aacquire(self, action: Action, keys: ScopeKeys) -> None:
        if action.limit is None:
            return
        await asyncio.to_thread(self.acquire, action, keys)

    def close(self) -> None:
        self.stats["expired"] = sum(bank.expired for bank in self._banks.values())
        self.stats.update({k: round(v, 2) for k, v in self._timing.items()})  # type: ignore[misc]
        with self._lock:
            if self._client_cm is not None:
                self._client_cm.__exit__(None, None, None)
                self._client = self._client_cm = None

    # ---- the server side --------------------------------------------------------------------

    def _prefect(self) -> Any:
        with self._lock:
            if self._client is None:
                from prefect.client.orchestration import get_client

                self._client_cm = get_client(sync_client=True)
                self._client = self._client_cm.__enter__()
            return self._client

    def _bank(self, action: Action) -> _Bank:
        name = limit_name(action)
        bank = self._banks.get(name)
        if bank is not None:
            return bank
        try:
            gcl = self._prefect().read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            raise ConcurrencySlotAcquisitionError(
                f"the global concurrency limit {name!r} does not exist on this Prefect server; "
                "create it with: python -m prefect_iterable.blocks.limits create"
            ) from None
        if not gcl.slot_decay_per_second or gcl.slot_decay_per_second <= 0:
            raise ConcurrencySlotAcquisitionError(
                f"the global concurrency limit {name!r} has no slot decay, so it cannot rate "
                "limit; recreate it with: python -m prefect_iterable.blocks.limits create"
            )
        limit = documented_limit(action)
        # Half of the burst the limit leaves unused, at the documented rate: the time a held slot
        # may wait before it is spent.
        headroom = max(0.0, limit.requests - gcl.limit) / limit.per_second / 2
        bank = _Bank(name, gcl.limit, gcl.slot_decay_per_second, max(0.05, headroom))
        with self._lock:
            return self._banks.setdefault(name, bank)

    def _refill(self, bank: _Bank) -> None:
        """Wait until slots are free on the server, then take a batch of them."""
        from httpx import HTTPStatusError

        client = self._prefect()
        t0 = time.monotonic()
        gcl = client.read_global_concurrency_limit_by_name(bank.name)
        self._timing["read"] += time.monotonic() - t0
        self.stats["reads"] += 1
        free = gcl.limit - gcl.active_slots  # active_slots is read after decay
        want = max(1, min(bank.batch, gcl.limit))
        if free < want:
            # The server lets floor(decay × seconds since `updated`) slots go at every update.
            updated = gcl.updated.timestamp() if gcl.updated else time.time()
            elapsed = max(0.0, time.time() - updated)
            decayed = math.floor(bank.decay * elapsed)
            needed = decayed + (want - free)  # total decay since `updated` that frees `want`
            wait = needed / bank.decay - elapsed
            self._timing["sleep"] += min(max(wait, 0.0) + 0.002, 5.0)
            time.sleep(min(max(wait, 0.0) + 0.002, 5.0))
            free = want
        asked = max(1, min(want, free))
        t0 = time.monotonic()
        try:
            response = client.increment_concurrency_slots(
                names=[bank.name], slots=asked, mode="rate_limit"
            )
        except HTTPStatusError as exc:
            if exc.response.status_code != 423:
                raise
            self.stats["refusals"] += 1
            self._timing["inc"] += time.monotonic() - t0
            # Another worker was first: look again shortly. A refusal is a write on the server
            # too (it counts denied slots), so never hammer it with attempts.
            time.sleep(random.uniform(0.5, 1.0) / bank.decay)
            return
        if not response.json():
            raise ConcurrencySlotAcquisitionError(
                f"the global concurrency limit {bank.name!r} does not exist on this Prefect "
                "server; create it with: python -m prefect_iterable.blocks.limits create"
            )
        self._timing["inc"] += time.monotonic() - t0
        self.stats["grants"] += 1
        self.stats["slots"] += asked
        expires = time.time() + bank.shelf_life
        bank.held.extend([expires] * asked)


def _existing(client: Any) -> dict[str, Any]:
    """Every global concurrency limit on the server, by name."""
    found: dict[str, Any] = {}
    offset = 0
    while True:
        page = client.read_global_concurrency_limits(limit=200, offset=offset)
        found.update((gcl.name, gcl) for gcl in page)
        if len(page) < 200:
            return found
        offset += len(page)


def main(argv: list[str] | None = None) -> None:
    """Create (or show) a global concurrency limit for every documented Iterable rate limit."""
    parser = argparse.ArgumentParser(
        prog="python -m prefect_iterable.blocks.limits", description=main.__doc__
    )
    parser.add_argument("command", choices=["create", "show"])
    args = parser.parse_args(argv)

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import (
        GlobalConcurrencyLimitCreate,
        GlobalConcurrencyLimitUpdate,
    )

    limited = [a for a in ACTIONS if a.limit is not None]
    with get_client(sync_client=True) as client:
        existing = _existing(client)
        for action in limited:
            slots, decay = limit_settings(action)
            name = limit_name(action)
            gcl = existing.get(name)
            if gcl is None:
                state = "missing"
                if args.command == "create":
                    client.create_global_concurrency_limit(
                        GlobalConcurrencyLimitCreate(
                            name=name, limit=slots, slot_decay_per_second=decay
                        )
                    )
                    state = "created"
            elif gcl.limit != slots or not math.isclose(gcl.slot_decay_per_second or 0, decay):
                # Made by an earlier version with other margins: brought up to date by create.
                state = f"differs ({gcl.limit} slots, {gcl.slot_decay_per_second or 0:.4f}/s)"
                if args.command == "create":
                    client.update_global_concurrency_limit(
                        name,
                        GlobalConcurrencyLimitUpdate(limit=slots, slot_decay_per_second=decay),
                    )
                    state = "updated"
            else:
                state = "exists"
            print(f"{name:45} {slots:4} slots, {decay:8.4f}/s decay  {state}")


if __name__ == "__main__":
    main()
