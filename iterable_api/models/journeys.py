"""Response schemas for Iterable's journey (workflow) actions."""

from __future__ import annotations

from pydantic import Field

from prefect_iterable.api.models._base import IterableModel

__all__ = ["Journey", "JourneyDraft", "JourneysResponse"]


class JourneyDraft(IterableModel):
    """The unpublished draft of a published journey."""

    id: int
    name: str | None = None
    creator_user_id: str | None = None
    created_at: int | None = None
    updated_at: int | None = None


class Journey(IterableModel):
    """A journey (``JourneyDetails``); timestamps are epoch milliseconds."""

    id: int
    name: str | None = None
    description: str | None = None
    enabled: bool | None = Field(None, description="Whether the journey accepts new entrances.")
    is_archived: bool | None = None
    journey_type: str | None = Field(None, description="Published or Draft.")
    created_at: int | None = None
    updated_at: int | None = None
    creator_user_id: str | None = None
    lifetime_limit: int | None = None
    simultaneous_limit: int | None = None
    start_tile_id: int | None = None
    trigger_event_names: list[str] = Field(default_factory=list)
    draft: JourneyDraft | None = None


class JourneysResponse(IterableModel):
    """One page of journeys; ``next_page_url`` is absent on the last page."""

    journeys: list[Journey] = Field(default_factory=list)
    total_journeys_count: int = 0
    next_page_url: str | None = None
    previous_page_url: str | None = None
