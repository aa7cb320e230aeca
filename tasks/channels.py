"""Tasks for Iterable's channels and message types: the project's messaging configuration."""

from __future__ import annotations

from prefect_iterable.api.models.channels import ChannelsResponse, MessageTypesResponse
from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.tasks._core import iterable_task

__all__ = ["list_channels", "list_message_types"]


@iterable_task("ITERABLE_LIST_CHANNELS")
def list_channels(*, credentials: IterableCredentials | None = None) -> ChannelsResponse:
    """List the project's channels (email, push, SMS; marketing or transactional).

    Use it to find the channel ids that subscription and message-type settings refer to.

    ITERABLE_LIST_CHANNELS: GET /api/channels (100 requests/s per project).

    Args:
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        The channels, each with its id, name, type and medium.
    """


@iterable_task("ITERABLE_LIST_MESSAGE_TYPES")
def list_message_types(*, credentials: IterableCredentials | None = None) -> MessageTypesResponse:
    """List the project's message types, with their channel, subscription policy and caps.

    Use it to find the message type ids that campaigns, templates and subscriptions refer to.

    ITERABLE_LIST_MESSAGE_TYPES: GET /api/messageTypes (100 requests/s per project).

    Args:
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        The message types, each with its id, name, channel id and subscription policy.
    """
