"""Tasks for Iterable's embedded messaging: fetching a user's messages and tracking what they did.

Embedded messages live in placements inside an app or site. Iterable's SDKs fetch them and report
receipts, clicks and viewing sessions; these tasks do the same from a flow, for apps without an
SDK or for back-filling events.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from prefect_iterable.api.models import ApiResponse
from prefect_iterable.api.models.embedded import (
    EmbeddedDeviceInfo,
    EmbeddedImpression,
    EmbeddedMessagesResponse,
    EmbeddedSession,
)
from prefect_iterable.api.types import Email, EpochSeconds, PositiveId, UserId
from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.tasks._core import iterable_task
from prefect_iterable.tasks.messaging import PackageName, SdkVersion

__all__ = [
    "get_embedded_messages",
    "track_embedded_click",
    "track_embedded_received",
    "track_embedded_session",
]

MessageId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=512)]
EmbeddedPlatform = Literal["iOS", "Android", "Web"]
TargetUrl = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2048)]


@iterable_task("ITERABLE_GET_EMBEDDED_MESSAGES", one_of=("email", "user_id"), need_one=True)
def get_embedded_messages(
    email: Email | None = None,
    user_id: UserId | None = None,
    platform: EmbeddedPlatform | None = None,
    sdk_version: SdkVersion | None = None,
    package_name: PackageName | None = None,
    placement_ids: Annotated[list[PositiveId], Field(min_length=1)] | None = None,
    current_message_ids: Annotated[list[MessageId], Field(min_length=1)] | None = None,
    *,
    credentials: IterableCredentials | None = None,
) -> EmbeddedMessagesResponse:
    """Get the embedded messages a user is eligible for, grouped by placement.

    Without ``placement_ids`` the answer lists every placement holding messages for the user;
    with them, exactly those placements, empty ones included. Pass the ids the device already
    holds in ``current_message_ids`` to get those back without their content (or not at all if
    the user is no longer eligible). After fetching, report receipt with
    ``track_embedded_received`` once per message, as the SDKs do.

    ITERABLE_GET_EMBEDDED_MESSAGES: GET /api/embedded-messaging/messages (no documented rate
    limit).

    Args:
        email: the user's email; give this, ``user_id`` or both (Iterable uses the one your project identifies by).
        user_id: the user's userId; give this or ``email``.
        platform: the app's platform: ``iOS``, ``Android`` or ``Web`` (case-sensitive).
        sdk_version: the Iterable SDK version the app runs, e.g. ``6.5.0``.
        package_name: the app's package name.
        placement_ids: placements to answer for (each ≥ 1), even when they hold no message.
        current_message_ids: embedded message ids the device already has.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        The placements, each with its messages (metadata, elements, payload).
    """


@iterable_task(
    "ITERABLE_TRACK_EMBEDDED_CLICK",
    run_name="track-embedded-click-{message_id}",
    one_of=("email", "user_id"),
    need_one=True,
)
def track_embedded_click(
    message_id: MessageId,
    email: Email | None = None,
    user_id: UserId | None = None,
    target_url: TargetUrl | None = None,
    button_identifier: MessageId | None = None,
    device_info: EmbeddedDeviceInfo | None = None,
    created_at: EpochSeconds | None = None,
    *,
    credentials: IterableCredentials | None = None,
) -> ApiResponse:
    """Record that a user clicked an embedded message (an ``embeddedClick`` event).

    Call it once per click; Iterable cannot tell a repeat from a second click, so the task is
    never retried once the request may have arrived. Clicks on test messages (proofs) are
    accepted but create no event.

    ITERABLE_TRACK_EMBEDDED_CLICK: POST /api/embedded-messaging/events/click (no documented rate
    limit).

    Args:
        message_id: the embedded message that was clicked.
        email: the user's email; give this, ``user_id`` or both (Iterable uses the one your project identifies by).
        user_id: the user's userId; give this or ``email``.
        target_url: the URL the click opened.
        button_identifier: the id of the clicked button, as defined in the template.
        device_info: the device and app the click happened on.
        created_at: when the click happened, Unix seconds; omitted means when Iterable
            receives it.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope.
    """


@iterable_task(
    "ITERABLE_TRACK_EMBEDDED_RECEIVED",
    run_name="track-embedded-received-{message_id}",
    one_of=("email", "user_id"),
    need_one=True,
)
def track_embedded_received(
    message_id: MessageId,
    email: Email | None = None,
    user_id: UserId | None = None,
    device_info: EmbeddedDeviceInfo | None = None,
    created_at: EpochSeconds | None = None,
    *,
    credentials: IterableCredentials | None = None,
) -> ApiResponse:
    """Record that a device retrieved an embedded message (an ``embeddedReceived`` event).

    Receipt means fetched, not displayed. Iterable's SDKs report it for every message they fetch;
    without an SDK, call this once per message from ``get_embedded_messages``. Never retried
    once the request may have arrived, since a repeat would count twice. Proofs create no event.

    ITERABLE_TRACK_EMBEDDED_RECEIVED: POST /api/embedded-messaging/events/received (no
    documented rate limit).

    Args:
        message_id: the embedded message the device retrieved.
        email: the user's email; give this, ``user_id`` or both (Iterable uses the one your project identifies by).
        user_id: the user's userId; give this or ``email``.
        device_info: the device and app that retrieved it.
        created_at: when it was retrieved, Unix seconds; omitted means when Iterable
            receives it.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope.
    """


@iterable_task(
    "ITERABLE_TRACK_EMBEDDED_SESSION",
    run_name="track-embedded-session",
    one_of=("email", "user_id"),
    need_one=True,
)
def track_embedded_session(
    session: EmbeddedSession,
    device_info: EmbeddedDeviceInfo,
    email: Email | None = None,
    user_id: UserId | None = None,
    impressions: list[EmbeddedImpression] | None = None,
    created_at: EpochSeconds | None = None,
    *,
    credentials: IterableCredentials | None = None,
) -> ApiResponse:
    """Record a viewing session of embedded placements and the impressions within it.

    Creates one ``embeddedSession`` event and one ``embeddedImpression`` event per impression:
    how many times each message became visible and for how long. Impressions of proofs create
    no event. Never retried once the request may have arrived, since a repeat would count twice.

    ITERABLE_TRACK_EMBEDDED_SESSION: POST /api/embedded-messaging/events/session (no documented
    rate limit).

    Args:
        session: the session's id (such as a UUID) and its start and end, Unix seconds; the end
            may not precede the start.
        device_info: the device and app: package name, device id and platform (``iOS``,
            ``Android`` or ``Web``).
        email: the user's email; give this, ``user_id`` or both (Iterable uses the one your project identifies by).
        user_id: the user's userId; give this or ``email``.
        impressions: per message shown: its id, placement, display count and seconds visible.
        created_at: when the session was recorded, Unix seconds; omitted means when Iterable
            receives it.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope.
    """
