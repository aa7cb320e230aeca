"""Tasks for messages to one user: targeted sends, cancels of scheduled sends, in-app inboxes.

A targeted send (``*/target``) delivers an API-triggered campaign to one recipient now or at a
``send_at`` up to a year ahead; the matching ``*/cancel`` stops it while it is still scheduled.
The media share their parameters, so the types below are defined once and reused by each stub.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StringConstraints, ValidationInfo

from prefect_iterable.api.models import ApiResponse
from prefect_iterable.api.models.messaging import InAppMessagesResponse, TargetSendResponse
from prefect_iterable.api.types import Email, IterableDateTime, PositiveId, UserId, within_days
from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.tasks._core import iterable_task

__all__ = [
    "cancel_email",
    "cancel_in_app",
    "cancel_push",
    "cancel_web_push",
    "cancel_whats_app",
    "get_in_app_messages",
    "get_web_in_app_messages",
    "send_in_app",
    "send_push",
    "send_whats_app",
]

# ---- shared parameter types ----------------------------------------------------------------

#: Iterable refuses a ``sendAt`` more than a year ahead; a past time sends at once.
SendAt = Annotated[IterableDateTime, within_days(365)]
DataFields = dict[str, Any]
InAppCount = Annotated[int, Field(ge=1, le=100)]
InAppPlatform = Literal["iOS", "Android", "Web", "OTT"]
SdkVersion = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^\d+(?:\.\d+){0,3}(?:[-+][0-9A-Za-z.-]+)?$"),
]
PackageName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255, pattern=r"^\S+$")
]


def _check_cancel_target(value: int | None, info: ValidationInfo) -> int | None:
    # The decorator only knows "one of"; this rule spans three fields. It sits on the last
    # parameter, so pydantic has validated the others into ``info.data`` by the time it runs.
    has_campaign = info.data.get("campaign_id") is not None
    has_user = info.data.get("email") is not None or info.data.get("user_id") is not None
    if value is not None and (has_campaign or has_user):
        raise ValueError("give scheduled_message_id alone, without campaign_id, email or user_id")
    if value is None and not (has_campaign and has_user):
        raise ValueError("give campaign_id with email or user_id, or scheduled_message_id alone")
    return value


#: The last cancel parameter: validated even when omitted, to enforce the cancel rule.
ScheduledMessageId = Annotated[
    PositiveId | None, Field(validate_default=True), AfterValidator(_check_cancel_target)
]


# ---- targeted sends --------------------------------------------------------------------------


@iterable_task(
    "ITERABLE_SEND_IN_APP",
    run_name="send-in-app-{campaign_id}",
    one_of=("recipient_email", "recipient_user_id"),
    need_one=True,
)
def send_in_app(
    campaign_id: PositiveId,
    recipient_email: Email | None = None,
    recipient_user_id: UserId | None = None,
    data_fields: DataFields | None = None,
    send_at: SendAt | None = None,
    allow_repeat_marketing_sends: bool | None = None,
    *,
    credentials: IterableCredentials | None = None,
) -> TargetSendResponse:
    """Send an API-triggered in-app campaign to one user, now or at a scheduled time.

    The campaign must be an activated (Running) triggered campaign with an in-app template. The
    message lands in the user's in-app queue, where ``get_in_app_messages`` finds it. This is a
    send: it needs the ``send`` permission and is never retried once the request may have
    reached Iterable (a lost answer raises ``OutcomeUnknown`` rather than risk a duplicate).

    ITERABLE_SEND_IN_APP: POST /api/inApp/target (no documented rate limit).

    Args:
        campaign_id: the triggered in-app campaign to send (≥ 1).
        recipient_email: the recipient's email; give this, ``recipient_user_id`` or both,
            as the project identifies users.
        recipient_user_id: the recipient's userId; give this or ``recipient_email``.
        data_fields: merge fields for the template; they override profile fields of the same
            name for this message only and are not saved on the profile.
        send_at: when to send (UTC when naive), at most 365 days ahead; a past time sends at
            once. Omit to send now.
        allow_repeat_marketing_sends: whether a marketing message may go again to a user who
            already got this campaign; Iterable's default is true.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's envelope; ``scheduled_message_id`` is the id ``cancel_in_app`` takes.

    Raises:
        BadParams: unknown campaign, a campaign of another medium or not running.
        OutcomeUnknown: the request was sent but no answer came back.
    """


@iterable_task(
    "ITERABLE_SEND_PUSH",
    run_name="send-push-{campaign_id}",
    one_of=("recipient_email", "recipient_user_id"),
    need_one=True,
)
def send_push(
    campaign_id: PositiveId,
    recipient_email: Email | None = None,
    recipient_user_id: UserId | None = None,
    data_fields: DataFields | None = None,
    send_at: SendAt | None = None,
    allow_repeat_marketing_sends: bool | None = None,
    metadata: dict[str, Any] | None = None,
    *,
    credentials: IterableCredentials | None = None,
) -> TargetSendResponse:
    """Send an API-triggered push campaign to one user, now or at a scheduled time.

    The campaign must be an activated (Running) triggered campaign with a push template; the push
    goes to the user's registered devices. This is a send: it needs the ``send`` permission and
    is never retried once the request may have reached Iterable (a lost answer raises
    ``OutcomeUnknown`` rather than risk a duplicate push).

    ITERABLE_SEND_PUSH: POST /api/push/target (no documented rate limit).

    Args:
        campaign_id: the triggered push campaign to send (≥ 1).
        recipient_email: the recipient's email; give this, ``recipient_user_id`` or both,
            as the project identifies users.
        recipient_user_id: the recipient's userId; give this or ``recipient_email``.
        data_fields: merge fields for the template; they override profile fields of the same
            name for this message only and are not saved on the profile.
        send_at: when to send (UTC when naive), at most 365 days ahead; a past time sends at
            once. Omit to send now.
        allow_repeat_marketing_sends: whether a marketing message may go again to a user who
            already got this campaign; Iterable's default is true.
        metadata: data Iterable passes back in system webhooks; not used to render the push.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's envelope; ``scheduled_message_id`` is the id ``cancel_push`` takes.

    Raises:
        BadParams: unknown campaign, a campaign of another medium or not running.
        OutcomeUnknown: the request was sent but no answer came back.
    """


@iterable_task(
    "ITERABLE_SEND_WHATS_APP",
    run_name="send-whats-app-{campaign_id}",
    one_of=("recipient_email", "recipient_user_id"),
    need_one=True,
)
def send_whats_app(
    campaign_id: PositiveId,
    recipient_email: Email | None = None,
    recipient_user_id: UserId | None = None,
    data_fields: DataFields | None = None,
    send_at: SendAt | None = None,
    allow_repeat_marketing_sends: bool | None = None,
    *,
    credentials: IterableCredentials | None = None,
) -> TargetSendResponse:
    """Send an API-triggered WhatsApp campaign to one user, now or at a scheduled time.

    Typically used for transactional WhatsApp messages; the campaign must be an activated
    (Running) triggered WhatsApp campaign. This is a send: it needs the ``send`` permission and
    is never retried once the request may have reached Iterable (a lost answer raises
    ``OutcomeUnknown`` rather than risk a duplicate message).

    ITERABLE_SEND_WHATS_APP: POST /api/whatsApp/target (no documented rate limit).

    Args:
        campaign_id: the triggered WhatsApp campaign to send (≥ 1).
        recipient_email: the recipient's email; give this, ``recipient_user_id`` or both,
            as the project identifies users.
        recipient_user_id: the recipient's userId; give this or ``recipient_email``.
        data_fields: fields the template or campaign content can reference; they override
            profile fields of the same name for this message only.
        send_at: when to send (UTC when naive), at most 365 days ahead; a past time sends at
            once. Omit to send now.
        allow_repeat_marketing_sends: whether a marketing message may go again to a user who
            already got this campaign; Iterable's default is true.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's envelope; ``scheduled_message_id`` is the id ``cancel_whats_app`` takes.

    Raises:
        BadParams: unknown campaign, a campaign of another medium or not running.
        OutcomeUnknown: the request was sent but no answer came back.
    """


# ---- cancels -------------------------------------------------------------------------------


@iterable_task(
    "ITERABLE_CANCEL_EMAIL",
    run_name="cancel-email-{campaign_id}-{scheduled_message_id}",
)
def cancel_email(
    campaign_id: PositiveId | None = None,
    email: Email | None = None,
    user_id: UserId | None = None,
    scheduled_message_id: ScheduledMessageId = None,
    *,
    credentials: IterableCredentials | None = None,
) -> ApiResponse:
    """Cancel a scheduled email to one user before it goes out.

    Name the message either by ``campaign_id`` plus the user's ``email`` or ``user_id``, or by
    ``scheduled_message_id`` alone (as returned by the targeted send). Only a message still
    waiting for its send time can be cancelled; a cancelled message cannot be revived. Safe to
    repeat: a second cancel fails rather than acts twice.

    ITERABLE_CANCEL_EMAIL: POST /api/email/cancel (no documented rate limit).

    Args:
        campaign_id: the campaign of the scheduled email; needs ``email`` or ``user_id``.
        email: the user's email, with ``campaign_id`` (with ``user_id`` too, both are sent).
        user_id: the user's userId, with ``campaign_id`` (with ``email`` too, both are sent).
        scheduled_message_id: the scheduled message to cancel, given alone (≥ 1).
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope.

    Raises:
        BadParams: no such scheduled email, or it was already sent or cancelled.
    """


@iterable_task(
    "ITERABLE_CANCEL_IN_APP",
    run_name="cancel-in-app-{campaign_id}-{scheduled_message_id}",
)
def cancel_in_app(
    campaign_id: PositiveId | None = None,
    email: Email | None = None,
    user_id: UserId | None = None,
    scheduled_message_id: ScheduledMessageId = None,
    *,
    credentials: IterableCredentials | None = None,
) -> ApiResponse:
    """Cancel a scheduled in-app message to one user before it is delivered.

    Name the message either by ``campaign_id`` plus the user's ``email`` or ``user_id``, or by
    ``scheduled_message_id`` alone (as returned by ``send_in_app``). Only a message still
    waiting for its send time can be cancelled; once delivered it stays in the user's queue.

    ITERABLE_CANCEL_IN_APP: POST /api/inApp/cancel (no documented rate limit).

    Args:
        campaign_id: the campaign of the scheduled message; needs ``email`` or ``user_id``.
        email: the user's email, with ``campaign_id`` (with ``user_id`` too, both are sent).
        user_id: the user's userId, with ``campaign_id`` (with ``email`` too, both are sent).
        scheduled_message_id: the scheduled message to cancel, given alone (≥ 1).
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope.

    Raises:
        BadParams: no such scheduled message, or it was already sent or cancelled.
    """


@iterable_task(
    "ITERABLE_CANCEL_PUSH",
    run_name="cancel-push-{campaign_id}-{scheduled_message_id}",
)
def cancel_push(
    campaign_id: PositiveId | None = None,
    email: Email | None = None,
    user_id: UserId | None = None,
    scheduled_message_id: ScheduledMessageId = None,
    *,
    credentials: IterableCredentials | None = None,
) -> ApiResponse:
    """Cancel a scheduled push notification to one user before it goes out.

    Name the message either by ``campaign_id`` plus the user's ``email`` or ``user_id``, or by
    ``scheduled_message_id`` alone (as returned by ``send_push``). Only a push still waiting for
    its send time can be cancelled.

    ITERABLE_CANCEL_PUSH: POST /api/push/cancel (no documented rate limit).

    Args:
        campaign_id: the campaign of the scheduled push; needs ``email`` or ``user_id``.
        email: the user's email, with ``campaign_id`` (with ``user_id`` too, both are sent).
        user_id: the user's userId, with ``campaign_id`` (with ``email`` too, both are sent).
        scheduled_message_id: the scheduled push to cancel, given alone (≥ 1).
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope.

    Raises:
        BadParams: no such scheduled push, or it was already sent or cancelled.
    """


@iterable_task(
    "ITERABLE_CANCEL_WEB_PUSH",
    run_name="cancel-web-push-{campaign_id}-{scheduled_message_id}",
)
def cancel_web_push(
    campaign_id: PositiveId | None = None,
    email: Email | None = None,
    user_id: UserId | None = None,
    scheduled_message_id: ScheduledMessageId = None,
    *,
    credentials: IterableCredentials | None = None,
) -> ApiResponse:
    """Cancel a scheduled web push notification to one user before it goes out.

    Name the message either by ``campaign_id`` plus the user's ``email`` or ``user_id``, or by
    ``scheduled_message_id`` alone. Only a web push still waiting for its send time can be
    cancelled.

    ITERABLE_CANCEL_WEB_PUSH: POST /api/webPush/cancel (no documented rate limit).

    Args:
        campaign_id: the campaign of the scheduled web push; needs ``email`` or ``user_id``.
        email: the user's email, with ``campaign_id`` (with ``user_id`` too, both are sent).
        user_id: the user's userId, with ``campaign_id`` (with ``email`` too, both are sent).
        scheduled_message_id: the scheduled web push to cancel, given alone (≥ 1).
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope.

    Raises:
        BadParams: no such scheduled web push, or it was already sent or cancelled.
    """


@iterable_task(
    "ITERABLE_CANCEL_WHATS_APP",
    run_name="cancel-whats-app-{campaign_id}-{scheduled_message_id}",
)
def cancel_whats_app(
    campaign_id: PositiveId | None = None,
    email: Email | None = None,
    user_id: UserId | None = None,
    scheduled_message_id: ScheduledMessageId = None,
    *,
    credentials: IterableCredentials | None = None,
) -> ApiResponse:
    """Cancel a scheduled WhatsApp message to one user before it goes out.

    Name the message either by ``campaign_id`` plus the user's ``email`` or ``user_id``, or by
    ``scheduled_message_id`` alone (as returned by ``send_whats_app``). Only a message still
    waiting for its send time can be cancelled.

    ITERABLE_CANCEL_WHATS_APP: POST /api/whatsApp/cancel (no documented rate limit).

    Args:
        campaign_id: the campaign of the scheduled message; needs ``email`` or ``user_id``.
        email: the user's email, with ``campaign_id`` (with ``user_id`` too, both are sent).
        user_id: the user's userId, with ``campaign_id`` (with ``email`` too, both are sent).
        scheduled_message_id: the scheduled message to cancel, given alone (≥ 1).
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope.

    Raises:
        BadParams: no such scheduled message, or it was already sent or cancelled.
    """


# ---- in-app queues -------------------------------------------------------------------------


@iterable_task(
    "ITERABLE_GET_IN_APP_MESSAGES",
    run_name="get-in-app-messages-{count}",
    one_of=("email", "user_id"),
    need_one=True,
)
def get_in_app_messages(
    count: InAppCount,
    email: Email | None = None,
    user_id: UserId | None = None,
    platform: InAppPlatform | None = None,
    sdk_version: SdkVersion | None = None,
    package_name: PackageName | None = None,
    *,
    credentials: IterableCredentials | None = None,
) -> InAppMessagesResponse:
    """Get a user's in-app messages, as Iterable's mobile SDKs fetch them.

    Always returns the user's messages that are not tied to one app; give ``platform`` and
    ``package_name`` together to also get the messages of that app. The answer holds new
    messages and those already saved to the inbox, each with a ``read`` flag. Use it to check
    what a targeted in-app send delivered or to build an inbox outside the SDK.

    ITERABLE_GET_IN_APP_MESSAGES: GET /api/inApp/getMessages (no documented rate limit).

    Args:
        count: how many messages to return at most, 1 to 100.
        email: the user's email; give this, ``user_id`` or both (Iterable uses the one your project identifies by).
        user_id: the user's userId; give this or ``email``.
        platform: the app's platform for app-specific messages: ``iOS``, ``Android``, ``Web``
            or ``OTT`` (case-sensitive).
        sdk_version: the Iterable SDK version the app runs, e.g. ``6.2.17``.
        package_name: the app's package name for app-specific messages.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        The messages, newest first, each with its content, campaign, times and trigger.
    """


@iterable_task(
    "ITERABLE_GET_WEB_IN_APP_MESSAGES",
    run_name="get-web-in-app-messages-{count}",
    one_of=("email", "user_id"),
    need_one=True,
)
def get_web_in_app_messages(
    count: InAppCount,
    email: Email | None = None,
    user_id: UserId | None = None,
    sdk_version: SdkVersion | None = None,
    package_name: PackageName | None = None,
    *,
    credentials: IterableCredentials | None = None,
) -> InAppMessagesResponse:
    """Get a user's web in-app messages, as Iterable's web SDK fetches them.

    Always returns the user's messages that are not tied to one app; give ``package_name`` to
    also get the messages of that web app. Each message carries a ``read`` flag.

    ITERABLE_GET_WEB_IN_APP_MESSAGES: GET /api/inApp/web/getMessages (no documented rate
    limit).

    Args:
        count: how many messages to return at most, 1 to 100.
        email: the user's email; give this, ``user_id`` or both (Iterable uses the one your project identifies by).
        user_id: the user's userId; give this or ``email``.
        sdk_version: the Iterable web SDK version, e.g. ``1.1.0``.
        package_name: the web app's package name for app-specific messages.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        The messages, newest first, each with its content, campaign, times and trigger.
    """
