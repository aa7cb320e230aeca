"""Tasks for Iterable's custom events: track one, track many, read a user's history."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from prefect_iterable.api.models import BulkResult
from prefect_iterable.api.models.events import (
    EpochSeconds,
    EventName,
    TrackedEvent,
    TrackEventResponse,
    UserEventsResponse,
)
from prefect_iterable.api.types import Email, PositiveId, RecordId, UserId
from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.tasks._core import iterable_task
from prefect_iterable.tasks._records import Records

__all__ = ["get_user_events", "track_event", "track_events_bulk"]


@iterable_task(
    "ITERABLE_TRACK_EVENT",
    run_name="track-event-{event_name}",
    one_of=("email", "user_id"),
    need_one=True,
)
def track_event(
    event_name: EventName,
    email: Email | None = None,
    user_id: UserId | None = None,
    event_id: RecordId | None = None,
    created_at: EpochSeconds | None = None,
    campaign_id: PositiveId | None = None,
    data_fields: dict[str, Any] | None = None,
    template_id: PositiveId | None = None,
    create_new_fields: bool | None = None,
    *,
    credentials: IterableCredentials | None = None,
) -> TrackEventResponse:
    """Record a custom event for one user, creating the user when unknown.

    Use it for things users do outside Iterable (a sign-in, a booking) so journeys and segments
    can react. Give ``event_id`` (for example your own record's id) to make the event
    idempotent: Iterable then updates the event with that id instead of adding another, and the
    task may be retried safely; without it a retry could record the event twice. Events of
    GDPR-forgotten users are refused (``ForgottenUserError``). Send a user's events through
    either this task or ``track_events_bulk``, not both, to keep their order.

    ITERABLE_TRACK_EVENT: POST /api/events/track (2000 requests/s per project).

    Args:
        event_name: the event's name, non-empty.
        email: the user's email address; give this, ``user_id`` or both (Iterable uses the one your project identifies by).
        user_id: the user's userId; give this, ``email`` or both.
        event_id: the event's id, at most 512 bytes; an existing event with this id is updated.
        created_at: when it happened, as epoch seconds (or a ``datetime``); default: when
            Iterable receives it.
        campaign_id: the campaign to attribute the event to (a conversion).
        data_fields: the event's own fields; a field keeps its first type for this event name.
        template_id: the template to attribute the event to.
        create_new_fields: add unknown data fields to the schema (default: the project's
            setting).
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's envelope; ``event_id`` is the id the event was stored under.
    """


@iterable_task("ITERABLE_TRACK_EVENTS_BULK")
def track_events_bulk(
    events: Records[TrackedEvent],
    *,
    credentials: IterableCredentials | None = None,
) -> BulkResult:
    """Record many custom events in one request.

    Use it to load events in batches (backfills, streams). Iterable answers 200 even when some
    events were refused: check ``rejected`` (invalid or forgotten users, disallowed event
    names). An event Iterable could not read (no name, naming no user, a bad ``created_at``) is
    kept out of the request and reported there too, with its ``index`` and ``detail``. Give
    every event an ``event_id`` to make a retry safe: the task is retried only then, as
    Iterable updates events by id instead of adding them again.

    ITERABLE_TRACK_EVENTS_BULK: POST /api/events/trackBulk (10 requests/s per project).

    Args:
        events: the events (at least one), each with ``event_name``, ``email``, ``user_id`` or
            both, and optionally ``event_id``, ``created_at`` (epoch seconds),
            ``data_fields``, ``campaign_id`` and ``template_id``.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        How many events were tracked, and each one refused with the reason.
    """


@iterable_task("ITERABLE_GET_USER_EVENTS", run_name="get-user-events")
def get_user_events(
    user_id: UserId,
    limit: Annotated[int, Field(ge=1, le=200)] | None = None,
    *,
    credentials: IterableCredentials | None = None,
) -> UserEventsResponse:
    """Read a user's most recent events, newest first.

    Use it to inspect what Iterable recorded for a user (custom events, purchases) while
    debugging an integration; for full histories use an export. Tracking is asynchronous in
    Iterable, so an event may appear here a little after it was tracked.

    ITERABLE_GET_USER_EVENTS: GET /api/events/byUserId/{userId} (100 requests/s per project).

    Args:
        user_id: the user's userId.
        limit: how many events to return, 1 to 200 (Iterable's default: 30).
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        The events, newest first.
    """
