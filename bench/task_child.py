"""Scenario 2B: N runs of ``prefect_iterable.tasks.channels.list_channels`` in one flow vs N client calls.

``python -m bench.task_child N``; ITERABLE_* and PREFECT_API_URL come from the parent.
Prints one JSON line (milliseconds per call for each, and the flow's own start/finish cost).
"""

from __future__ import annotations

import json
import sys
import time


def main() -> None:
    n = int(sys.argv[1])
    from prefect import flow
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from prefect_iterable.blocks import IterableCredentials
    from prefect_iterable.tasks.channels import list_channels

    credentials = IterableCredentials.from_env()
    client = credentials.get_client()
    client.call("ITERABLE_LIST_CHANNELS")  # warm the connection
    inside: dict[str, float] = {}

    @flow(name="bench-task-runs")
    def many() -> None:
        list_channels(credentials=credentials)  # the first run pays one-off setup
        started = time.perf_counter()
        for _ in range(n):
            list_channels(credentials=credentials)
        inside["loop"] = time.perf_counter() - started

    started = time.perf_counter()
    for _ in range(n):
        client.call("ITERABLE_LIST_CHANNELS")
    direct = time.perf_counter() - started
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        started = time.perf_counter()
        many()
        flow_total = time.perf_counter() - started
    print(
        json.dumps(
            {
                "calls": n,
                "client_ms_per_call": round(direct / n * 1000, 2),
                "task_ms_per_call": round(inside["loop"] / n * 1000, 2),
                "task_over_client": round(inside["loop"] / direct, 1),
                "flow_total_s": round(flow_total, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
