"""Tasks for Iterable's subscription groups: subscribe or unsubscribe one user by userId.

These endpoints are enabled per project by Iterable (ask your CSM); projects without them answer
403. To set a user's whole subscription state at once, use ``update_user_subscriptions``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from prefect_iterable.api.models import ApiResponse
from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.tasks._core import iterable_task
from prefect_iterable.tasks._types import PositiveId, UserId, case_insensitive

__all__ = ["SubscriptionGroup", "subscribe_user_by_id", "unsubscribe_user_by_id"]

#: What a subscription group id refers to: a list, a message type or a channel.
SubscriptionGroup = Annotated[
    Literal["emailList", "messageType", "messageChannel"],
    case_insensitive("emailList", "messageType", "messageChannel"),
]


@iterable_task(
    "ITERABLE_SUBSCRIBE_USER_BY_ID",
    run_name="subscribe-{subscription_group}-{subscription_group_id}-{user_id}",
)
def subscribe_user_by_id(
    user_id: UserId,
    subscription_group: SubscriptionGroup,
    subscription_group_id: PositiveId,
    *,
    credentials: IterableCredentials | None = None,
) -> ApiResponse:
    """Subscribe one user to a list, a message type or a channel.

    Iterable accepts the request (202) and applies it shortly after. Subscribing to a list adds
    the user to it; to a message type or channel, lifts the user's unsubscription (and opts in
    to an opt-in message type). Needs Iterable's subscription-group API for the project.

    ITERABLE_SUBSCRIBE_USER_BY_ID: PATCH
    /api/subscriptions/{subscriptionGroup}/{subscriptionGroupId}/byUserId/{userId} (no
    documented rate limit).

    Args:
        user_id: the user's userId.
        subscription_group: what the id names: emailList, messageType or messageChannel.
        subscription_group_id: the list, message type or channel id.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's envelope for an accepted request.
    """


@iterable_task(
    "ITERABLE_UNSUBSCRIBE_USER_BY_ID",
    run_name="unsubscribe-{subscription_group}-{subscription_group_id}-{user_id}",
)
def unsubscribe_user_by_id(
    user_id: UserId,
    subscription_group: SubscriptionGroup,
    subscription_group_id: PositiveId,
    *,
    credentials: IterableCredentials | None = None,
) -> ApiResponse:
    """Unsubscribe one user from a list, a message type or a channel.

    Iterable accepts the request (202) and applies it shortly after; the user gets no messages
    of that group until subscribed again. Needs Iterable's subscription-group API for the
    project.

    ITERABLE_UNSUBSCRIBE_USER_BY_ID: DELETE
    /api/subscriptions/{subscriptionGroup}/{subscriptionGroupId}/byUserId/{userId} (no
    documented rate limit).

    Args:
        user_id: the user's userId.
        subscription_group: what the id names: emailList, messageType or messageChannel.
        subscription_group_id: the list, message type or channel id.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's envelope for an accepted request.
    """
