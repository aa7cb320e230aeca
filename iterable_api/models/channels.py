"""Response schemas for Iterable's channel and message-type actions."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from prefect_iterable.api.models._base import IterableModel

__all__ = ["Channel", "ChannelsResponse", "FrequencyCap", "MessageType", "MessageTypesResponse"]


class Channel(IterableModel):
    """A channel: a medium (email, push, SMS) used for marketing or transactional messages."""

    id: int
    name: str | None = None
    channel_type: Literal["Marketing", "Transactional"] | str | None = Field(
        None, description="Marketing or Transactional."
    )
    message_medium: str | None = Field(None, description="Email, Push, SMS, …")


class ChannelsResponse(IterableModel):
    channels: list[Channel] = Field(default_factory=list)


class FrequencyCap(IterableModel):
    days: int | None = None
    messages: int | None = None


class MessageType(IterableModel):
    """A message type within a channel; users subscribe to or unsubscribe from message types."""

    id: int
    name: str | None = None
    channel_id: int | None = None
    created_at: int | None = None
    updated_at: int | None = None
    subscription_policy: str | None = Field(None, description="OptIn or OptOut.")
    frequency_cap: FrequencyCap | None = None
    rate_limit_per_minute: int | None = None


class MessageTypesResponse(IterableModel):
    message_types: list[MessageType] = Field(default_factory=list)
