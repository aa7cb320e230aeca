"""Request and response schemas for Iterable's embedded-messaging actions."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator

from prefect_iterable.api.models._base import IterableModel, RequestModel
from prefect_iterable.api.types import EpochSeconds

__all__ = [
    "EmbeddedDeviceInfo",
    "EmbeddedImpression",
    "EmbeddedMessage",
    "EmbeddedMessageAction",
    "EmbeddedMessageButton",
    "EmbeddedMessageElements",
    "EmbeddedMessageMetadata",
    "EmbeddedMessageText",
    "EmbeddedMessagesResponse",
    "EmbeddedPlacement",
    "EmbeddedSession",
]

_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=512)]


# ---- requests ------------------------------------------------------------------------------


class EmbeddedDeviceInfo(RequestModel):
    """``DeviceInfo``: the device and app an embedded event happened on."""

    app_package_name: _Text = Field(description="The app's package name, e.g. com.example.app.")
    device_id: _Text = Field(description="The device's unique identifier.")
    platform: Literal["iOS", "Android", "Web"] = Field(description="Case-sensitive.")


class EmbeddedSession(RequestModel):
    """``Session``: a stretch of time a screen able to show embedded messages was on view."""

    id: _Text = Field(description="A unique id for the session, such as a UUID.")
    start: EpochSeconds = Field(description="Session start, Unix seconds.")
    end: EpochSeconds = Field(description="Session end, Unix seconds.")

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> EmbeddedSession:
        if self.end < self.start:
            raise ValueError(f"end ({self.end}) is before start ({self.start})")
        return self


class EmbeddedImpression(RequestModel):
    """``Impression``: how often and how long one message was visible during a session."""

    message_id: _Text = Field(description="The embedded message that was shown.")
    placement_id: Annotated[int, Field(ge=1)] | None = Field(
        None, description="The placement it was shown in."
    )
    display_count: Annotated[int, Field(ge=0)] | None = Field(
        None, description="How many times it became visible."
    )
    display_duration: Annotated[float, Field(ge=0)] | None = Field(
        None, description="Total seconds visible, across all appearances."
    )


# ---- responses -----------------------------------------------------------------------------


class EmbeddedMessageAction(IterableModel):
    """What a tap does: ``type`` ``openUrl`` with a URL in ``data``, or a custom action URL."""

    type: str | None = None
    data: str | None = None


class EmbeddedMessageButton(IterableModel):
    id: str | None = None
    title: str | None = None
    action: EmbeddedMessageAction | None = None


class EmbeddedMessageText(IterableModel):
    """An extra text field; ``label`` is the placement's key for it, not content to display."""

    label: str | None = None
    text: str | None = None


class EmbeddedMessageElements(IterableModel):
    """The content to display and the actions it offers."""

    title: str | None = None
    body: str | None = None
    media_url: str | None = None
    media_url_caption: str | None = None
    default_action: EmbeddedMessageAction | None = None
    buttons: list[EmbeddedMessageButton] = Field(default_factory=list)
    text: list[EmbeddedMessageText] = Field(default_factory=list)


class EmbeddedMessageMetadata(IterableModel):
    message_id: str
    campaign_id: int | None = None
    placement_id: int | None = None
    is_proof: bool = False
    priority_order: int | None = Field(None, description="1 is the highest priority.")


class EmbeddedMessage(IterableModel):
    """One message the user is eligible for.

    ``elements`` is absent when the device already holds the message (``current_message_ids``).
    """

    metadata: EmbeddedMessageMetadata
    elements: EmbeddedMessageElements | None = None
    payload: dict[str, Any] | None = None


class EmbeddedPlacement(IterableModel):
    placement_id: int
    embedded_messages: list[EmbeddedMessage] = Field(default_factory=list)


class EmbeddedMessagesResponse(IterableModel):
    """``EmbeddedMessagesResponse``: the user's messages, grouped by placement."""

    placements: list[EmbeddedPlacement] = Field(default_factory=list)
