"""Iterable's rate limits shared by every worker, through Prefect global concurrency limits.

In one process the client's token buckets are enough. Workers in several processes or machines
must share one budget, so each documented limit becomes a Prefect global concurrency limit with
slot decay, which the Prefect server hands out to all of them. Create them once per server::

    python -m blocks.limits create        # or: python -m blocks.limits show

then set ``rate_limit_mode="prefect"`` on the ``IterableCredentials`` block. A missing limit fails
the request loudly (``strict=True``): running unthrottled would only trade it for 429s.
"""

from __future__ import annotations

import argparse

from prefect.concurrency.asyncio import rate_limit as arate_limit
from prefect.concurrency.sync import rate_limit

from iterable_api.catalog import ACTIONS, Action
from iterable_api.limits import BURST_FRACTION, RATE_FRACTION, ScopeKeys

__all__ = ["PrefectGlobalLimiter", "limit_name", "limit_settings", "main"]


def limit_name(action: Action) -> str:
    """The global concurrency limit that throttles ``action``: ``iterable-<action>``."""
    return "iterable-" + action.name.replace("_", "-")


def limit_settings(action: Action) -> tuple[int, float]:
    """``(slots, decay per second)`` for ``action``'s documented limit, with the client's margin."""
    assert action.limit is not None
    slots = max(1, int(action.limit.requests * BURST_FRACTION))
    return slots, action.limit.per_second * RATE_FRACTION


class PrefectGlobalLimiter:
    """A ``Limiter`` that takes one slot of the action's global concurrency limit per request."""

    def acquire(self, action: Action, keys: ScopeKeys) -> None:
        if action.limit is not None:
            rate_limit(limit_name(action), occupy=1, strict=True)

    async def aacquire(self, action: Action, keys: ScopeKeys) -> None:
        if action.limit is not None:
            await arate_limit(limit_name(action), occupy=1, strict=True)


def main(argv: list[str] | None = None) -> None:
    """Create (or show) a global concurrency limit for every documented Iterable rate limit."""
    parser = argparse.ArgumentParser(prog="python -m blocks.limits", description=main.__doc__)
    parser.add_argument("command", choices=["create", "show"])
    args = parser.parse_args(argv)

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    limited = [a for a in ACTIONS if a.limit is not None]
    with get_client(sync_client=True) as client:
        existing = {gcl.name for gcl in client.read_global_concurrency_limits(limit=1000)}
        for action in limited:
            slots, decay = limit_settings(action)
            name = limit_name(action)
            if args.command == "create" and name not in existing:
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(
                        name=name, limit=slots, slot_decay_per_second=decay
                    )
                )
            state = (
                "exists"
                if name in existing
                else ("created" if args.command == "create" else "missing")
            )
            print(f"{name:45} {slots:4} slots, {decay:8.4f}/s decay  {state}")


if __name__ == "__main__":
    main()
