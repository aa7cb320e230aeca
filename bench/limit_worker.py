"""One worker of scenario 4: calls a rate-limited action in a loop until a deadline.

``python -m bench.limit_worker --url URL --mode prefect|local --duration S``; it prints
``ready`` once warmed up, then reads the start time (``time.time()``) from stdin.
Prints one JSON line: requests that succeeded, errors by type, acquire times.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter

ACTION = "ITERABLE_TRACK_EVENTS_BULK"  # 10 req/s per project


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--mode", choices=["prefect", "prefect-one-slot", "local"], required=True)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--worker", type=int, default=0)
    args = parser.parse_args()

    from bench.common import check_loopback
    from prefect_iterable.api import Client
    from prefect_iterable.api.retrying import RetryPolicy
    from prefect_iterable.sandbox import DEMO_API_KEY

    limiter = None
    if args.mode == "prefect-one-slot":  # Prefect's rate_limit(), one server call per request
        from prefect.concurrency.sync import rate_limit

        from prefect_iterable.blocks.limits import limit_name

        class OneSlot:
            def acquire(self, action, keys):
                rate_limit(limit_name(action), occupy=1, strict=True)

            async def aacquire(self, action, keys):
                self.acquire(action, keys)

        limiter = OneSlot()
        rate_limit(
            limit_name(__import__("prefect_iterable.api.catalog").api.catalog.get_action(ACTION)),
            occupy=1,
            strict=True,
        )  # warm up (takes one slot before the window)
    if args.mode == "prefect":
        from prefect_iterable.blocks.limits import PrefectGlobalLimiter

        limiter = PrefectGlobalLimiter()
    client = Client(
        DEMO_API_KEY,
        base_url=check_loopback(args.url),
        limiter=limiter,
        retry=RetryPolicy(attempts=6, max_elapsed=30),
    )
    event = {
        "email": f"worker{args.worker}@example.com",
        "eventName": "benchPing",
        "dataFields": {"worker": args.worker},
    }
    ok, errors = 0, Counter()
    # Warm up the Prefect client (import, connection) before the common start.
    if args.mode == "prefect":
        from prefect_iterable.api.catalog import get_action

        limiter._bank(get_action(ACTION))  # reads the limit: no slot taken
    print("ready", flush=True)
    start = float(sys.stdin.readline())  # time.time() to begin at, from the parent
    delay = start - time.time()
    if delay > 0:
        time.sleep(delay)
    late = time.time() - start
    deadline = start + args.duration
    while time.time() < deadline:
        try:
            client.call(ACTION, events=[event])
            ok += 1
        except Exception as exc:  # noqa: BLE001 - counted, reported
            errors[type(exc).__name__] += 1
    if limiter is not None and hasattr(limiter, "close"):
        limiter.close()
    client.close()
    stats = getattr(limiter, "stats", None)
    print(
        json.dumps(
            {
                "worker": args.worker,
                "ok": ok,
                "errors": dict(errors),
                "limiter": stats,
                "late_s": round(late, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
