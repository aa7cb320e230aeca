"""The flows scenario 6 runs in a child process: many single-record calls through one
``send_many_records`` task, and the peer, one Prefect task run per record (``.map``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import orjson
from prefect import flow

from prefect_iterable.tasks import ACTIONS, send_many_records
from prefect_iterable.tasks.many import SendManySummary

PATHS = {"ITERABLE_UPDATE_USER": "/api/users/update", "ITERABLE_TRACK_EVENT": "/api/events/track"}


def records(action: str, count: int) -> Iterator[dict[str, Any]]:
    """Generated records for ``action`` (Python names), lazily."""
    for i in range(count):
        if action == "ITERABLE_UPDATE_USER":
            yield {"email": f"fan.{i}@example.com", "data_fields": {"plan": "plus", "n": i}}
        else:  # events without an id: sends Iterable cannot deduplicate
            yield {
                "email": f"fan.{i % 10_000}@example.com",
                "event_name": "pageView",
                "data_fields": {"page": f"/p/{i % 97}", "n": i},
            }


def wire_bodies(action: str, count: int) -> list[bytes]:
    """The same records as JSON bodies, encoded ahead (for the ideal client)."""
    names = {"data_fields": "dataFields", "event_name": "eventName"}
    return [
        orjson.dumps({names.get(k, k): v for k, v in r.items()}) for r in records(action, count)
    ]


@flow(name="bench-fan-out")
def fan_out(action: str, count: int, checkpoint: str) -> SendManySummary:
    return send_many_records(action, records(action, count), checkpoint=checkpoint, total=count)


@flow(name="bench-task-per-record")
def task_per_record(action: str, count: int) -> dict[str, Any]:
    rows = list(records(action, count))
    columns = {name: [r[name] for r in rows] for name in rows[0]}
    futures = ACTIONS[action].map(**columns)
    for future in futures:
        future.wait()
    states = Counter(future.state.type.value for future in futures)
    return {"states": dict(states), "count": count}
