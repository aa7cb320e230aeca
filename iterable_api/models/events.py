"""Request and response schemas for Iterable's custom-event actions."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints

from prefect_iterable.api.models._base import ApiResponse, IterableModel
from prefect_iterable.api.models._bulk import IdentifiedRecord
from prefect_iterable.api.types import EpochSeconds, PositiveId, RecordId

__all__ = [
    "EpochSeconds",
    "EventName",
    "TrackEventResponse",
    "TrackedEvent",
    "UserEvent",
    "UserEventsResponse",
]

#: An event name: non-empty.
EventName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]


class TrackedEvent(IdentifiedRecord):
    """One custom event for ``track_events_bulk``: what happened, to whom, and when.

    Name the user by ``email``, ``user_id`` or both. Give ``event_id`` to make a retry safe:
    Iterable updates the event with that id instead of adding a second one.
    """

    event_name: EventName = Field(description="The event's name.")
    event_id: RecordId | None = Field(
        None, alias="id", description="The event's id (at most 512 bytes); deduplicates."
    )
    created_at: EpochSeconds | None = Field(None, description="When it happened, epoch seconds.")
    data_fields: dict[str, Any] | None = Field(None, description="The event's own fields.")
    campaign_id: PositiveId | None = Field(None, description="Campaign to attribute it to.")
    template_id: PositiveId | None = Field(None, description="Template to attribute it to.")
    create_new_fields: bool | None = Field(
        None, description="Add unknown data fields to the schema (default: project setting)."
    )


class TrackEventResponse(ApiResponse):
    """Iterable's envelope for a tracked event; ``params.id`` is the event's id."""

    @property
    def event_id(self) -> str | None:
        """The id Iterable stored the event under (the one sent, or the one it generated)."""
        value = (self.params or {}).get("id")
        return str(value) if value is not None else None


class UserEvent(IterableModel):
    """One event in a user's history; Iterable adds fields by event type, all kept."""

    id: str | None = None
    event_name: str | None = None
    event_type: str | None = Field(None, description="customEvent, purchase, emailSend, …")
    created_at: str | int | None = Field(
        None, description="When it happened: 'YYYY-MM-DD HH:MM:SS +00:00' or epoch ms."
    )
    email: str | None = None
    user_id: str | None = None
    campaign_id: int | None = None
    template_id: int | None = None
    data_fields: dict[str, Any] | None = None


class UserEventsResponse(IterableModel):
    events: list[UserEvent] = Field(default_factory=list)
