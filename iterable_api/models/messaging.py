"""Response schemas for Iterable's messaging actions: targeted sends, cancels and in-app messages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from prefect_iterable.api.models._base import ApiResponse, IterableModel

__all__ = [
    "InAppContent",
    "InAppInboxMetadata",
    "InAppMessage",
    "InAppMessagesResponse",
    "InAppTrigger",
    "TargetSendResponse",
]


class TargetSendResponse(ApiResponse):
    """The envelope a ``*/target`` send answers with.

    ``params.scheduledMessageId`` identifies the message for the matching ``*/cancel`` action;
    it is there whether the message went out at once or waits for its ``sendAt``.
    """

    @property
    def scheduled_message_id(self) -> int | None:
        """The id to cancel this message by, when Iterable returned one."""
        value = (self.params or {}).get("scheduledMessageId")
        return int(value) if value is not None else None


class InAppTrigger(IterableModel):
    """When the SDK shows the message: ``immediate``, ``event`` or ``never`` (inbox only)."""

    type: str | None = None


class InAppInboxMetadata(IterableModel):
    """How the message is listed in a mobile inbox."""

    title: str | None = None
    subtitle: str | None = None
    icon: str | None = None


class InAppContent(IterableModel):
    """What the SDK renders: the HTML and its display settings."""

    html: str | None = None
    in_app_display_settings: dict[str, Any] | None = None
    web_in_app_display_settings: dict[str, Any] | None = None
    ott_payload: dict[str, Any] | None = None


class InAppMessage(IterableModel):
    """One in-app message waiting for (or already saved by) the user's app."""

    message_id: str | None = Field(None, description="Iterable's id of this send.")
    campaign_id: int | None = None
    content: InAppContent | None = None
    created_at: int | datetime | None = Field(
        None, description="When the message was sent (epoch ms; ISO-8601 in the Swagger)."
    )
    expires_at: int | datetime | None = Field(
        None, description="When the message stops being shown (epoch ms)."
    )
    custom_payload: dict[str, Any] | None = None
    inbox_metadata: InAppInboxMetadata | None = None
    json_only: bool = False
    message_type: Any = None
    type_of_content: Any = None
    priority_level: float | None = Field(
        None, description="Lower shows first: 100.5 critical, 200.5 high, 300.5 medium, 400.5 low."
    )
    read: bool | None = None
    save_to_inbox: bool | None = None
    trigger: InAppTrigger | None = None


class InAppMessagesResponse(IterableModel):
    """``ApiInAppMessagesResponse``: the user's in-app messages, newest first."""

    in_app_messages: list[InAppMessage] = Field(default_factory=list)
