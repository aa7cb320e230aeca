"""Sending batches to users/bulkUpdate or events/trackBulk, and matching Iterable's refusals.

``Sender`` sends one batch (it may run in a worker thread, several at once sharing one client:
the client's limiter keeps them at the endpoint's documented rate, bulkUpdate 5/s, trackBulk
10/s, so Iterable never has to answer 429). Iterable answers a batch 200 and names each record it
refused (a malformed address, an unknown or forgotten user, a disallowed event name); a batch
it refuses as a whole with a 400 is split in halves and sent again, until the record at fault is
alone and can be rejected by itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prefect_iterable.api._requests import RawJson
from prefect_iterable.api.bulk.batches import BODY_OVERHEAD, Batch
from prefect_iterable.api.client import Client
from prefect_iterable.api.errors import BadRequest
from prefect_iterable.api.models import BulkResult

__all__ = ["ACTIONS", "Sender", "Sent", "match_refusals"]

ACTIONS = {"users": "ITERABLE_BULK_UPDATE_USERS", "events": "ITERABLE_TRACK_EVENTS_BULK"}
LIST_KEY = {"users": "users", "events": "events"}


@dataclass
class Sent:
    """A batch's outcome: per sendable record, ``None`` (done) or the reason it was refused."""

    reasons: list[str | None]
    requests: int
    bodies: list[int]


def match_refusals(kind: str, bodies: list[dict[str, Any]], result: BulkResult) -> list[str | None]:
    """Match Iterable's per-record refusals to the records (wire bodies) of one request."""
    reasons: list[str | None] = [None] * len(bodies)
    if not result.rejected:
        return reasons
    by_email: dict[str, list[int]] = {}
    by_user_id: dict[str, list[int]] = {}
    by_name: dict[str, list[int]] = {}
    for index, body in enumerate(bodies):
        if body.get("email"):
            by_email.setdefault(str(body["email"]).lower(), []).append(index)
        if body.get("userId"):
            by_user_id.setdefault(str(body["userId"]), []).append(index)
        if kind == "events":
            by_name.setdefault(str(body.get("eventName")), []).append(index)
    for rejection in result.rejected:
        if rejection.kind == "email":
            hits = by_email.get(rejection.identifier.lower(), [])
        elif rejection.kind == "userId":
            hits = by_user_id.get(rejection.identifier, [])
        else:
            hits = by_name.get(rejection.identifier, [])
        for index in hits:
            if reasons[index] is None:
                reasons[index] = f"Iterable: {rejection.reason}"
    return reasons


class Sender:
    """Sends one batch (in a worker thread); splits a batch Iterable refuses whole with a 400.

    The batch's records go as they were encoded when they were read (``RawJson``): the client
    neither decodes nor re-encodes them.
    """

    def __init__(self, client: Client, kind: str, create_new_fields: bool | None = None) -> None:
        if kind not in ACTIONS:
            raise ValueError(f"kind: {kind!r} is neither 'users' nor 'events'")
        self.client = client
        self.kind = kind
        self.action = ACTIONS[kind]
        self.create_new_fields = create_new_fields
        # Every event carries an id (its own or a deterministic one): Iterable deduplicates them,
        # so the client may resend a trackBulk after a 5xx.
        self.every_item_has = frozenset({"id"}) if kind == "events" else frozenset()

    def __call__(self, batch: Batch) -> Sent:
        """Send ``batch`` (splitting on a 400), then release its body; the per-record outcome."""
        sent = Sent([], 0, [])
        try:
            self._send(batch, 0, batch.count, sent)
        finally:
            batch.payload = None  # sent or not, the body is no longer needed
        return sent

    def _send(self, batch: Batch, first: int, stop: int, sent: Sent) -> None:
        array_json = RawJson(batch.part(first, stop), self.every_item_has)
        values: dict[str, Any] = {LIST_KEY[self.kind]: array_json}
        if self.kind == "users" and self.create_new_fields is not None:
            values["create_new_fields"] = self.create_new_fields
        sent.requests += 1
        sent.bodies.append(BODY_OVERHEAD + batch.starts[stop] - batch.starts[first])
        try:
            result = self.client.call(self.action, values)
        except BadRequest as exc:
            if stop - first == 1:
                sent.reasons.append(f"Iterable refused it: {exc.code or exc.status}: {exc.msg}")
                return
            middle = (first + stop) // 2
            self._send(batch, first, middle, sent)
            self._send(batch, middle, stop, sent)
            return
        if result.rejected:
            sent.reasons.extend(match_refusals(self.kind, batch.bodies(first, stop), result))
        else:
            sent.reasons.extend([None] * (stop - first))
