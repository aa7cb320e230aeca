"""Tasks for Iterable's static lists: create, read, fill, empty and delete them."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from prefect_iterable.api.models import ApiResponse, BulkResult
from prefect_iterable.api.models.lists import (
    CreateListResponse,
    ListSize,
    ListsResponse,
    ListUsers,
    Subscriber,
    Unsubscriber,
)
from prefect_iterable.api.types import OneLine, PositiveId
from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.tasks._core import iterable_task
from prefect_iterable.tasks._records import Records

__all__ = [
    "create_list",
    "delete_list",
    "get_list_size",
    "list_list_users",
    "list_lists",
    "preview_list_users",
    "subscribe_to_list",
    "unsubscribe_from_list",
]

ListName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1), OneLine]


@iterable_task("ITERABLE_CREATE_LIST", run_name="create-list-{name}")
def create_list(
    name: ListName,
    description: str | None = None,
    *,
    credentials: IterableCredentials | None = None,
) -> CreateListResponse:
    """Create an empty static list.

    Use it to make a list that campaigns can send to, then fill it with ``subscribe_to_list``.
    List names are unique within a project: Iterable refuses a second list with the same name
    (``BadParams``). Each call creates a list, so this task is never retried automatically: check
    ``list_lists`` before running it again after a failure.

    ITERABLE_CREATE_LIST: POST /api/lists (no documented rate limit).

    Args:
        name: the list's name, non-empty and unique within the project.
        description: what the list is for, shown in Iterable's UI.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        The new list's id (``list_id``).
    """


@iterable_task("ITERABLE_LIST_LISTS")
def list_lists(*, credentials: IterableCredentials | None = None) -> ListsResponse:
    """List every list in the project: static, dynamic, suppression and internal.

    Use it to find a list's id by name before subscribing users to it or sending to it. The
    answer is not paged: it holds all lists at once.

    ITERABLE_LIST_LISTS: GET /api/lists (100 requests/s per project).

    Args:
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        The lists, each with its id, name, type, description and creation time (epoch ms).
    """


@iterable_task("ITERABLE_LIST_LIST_USERS", run_name="list-list-users-{list_id}")
def list_list_users(
    list_id: PositiveId,
    prefer_user_id: bool | None = None,
    *,
    credentials: IterableCredentials | None = None,
) -> ListUsers:
    """Get every member of a list, as identifiers.

    Use it to export a list's full membership; for a quick look at a large list use
    ``preview_list_users``. Iterable answers plain text, one identifier a line: the email
    address, or the userId in userID-based projects. The endpoint allows only 5 calls a minute,
    so the client spaces calls once its burst is used.

    ITERABLE_LIST_LIST_USERS: GET /api/lists/getUsers (5 requests/min per project).

    Args:
        list_id: the list's id (1 or more).
        prefer_user_id: in hybrid projects, give the userId instead of the email for users that
            have both (default false).
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        The members' identifiers (``identifiers``), in Iterable's order.
    """


@iterable_task("ITERABLE_PREVIEW_LIST_USERS", run_name="preview-list-users-{list_id}")
def preview_list_users(
    list_id: PositiveId,
    size: Annotated[int, Field(ge=1, le=5000)] | None = None,
    prefer_user_id: bool | None = None,
    *,
    credentials: IterableCredentials | None = None,
) -> ListUsers:
    """Get a sample of up to 5,000 members of a list, as identifiers.

    Use it to check who is in a list before a send without fetching the whole list. Like
    ``list_list_users`` it answers one identifier a line and allows only 5 calls a minute.

    ITERABLE_PREVIEW_LIST_USERS: GET /api/lists/previewUsers (5 requests/min per project).

    Args:
        list_id: the list's id (1 or more).
        size: how many members to return, 1 to 5000 (Iterable's default: 1000).
        prefer_user_id: in hybrid projects, give the userId instead of the email for users that
            have both (default false).
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        The sampled members' identifiers (``identifiers``).
    """


@iterable_task("ITERABLE_SUBSCRIBE_TO_LIST", run_name="subscribe-to-list-{list_id}")
def subscribe_to_list(
    list_id: PositiveId,
    subscribers: Records[Subscriber],
    update_existing_users_only: bool | None = None,
    *,
    credentials: IterableCredentials | None = None,
) -> BulkResult:
    """Add users to a static list, creating unknown users on the way.

    Use it to fill a list from your own data. Iterable answers 200 even when some subscribers
    were refused: check ``rejected`` (invalid addresses, GDPR-forgotten users, users not found
    when only existing users may be added). A subscriber naming no one is not sent and is
    reported there too. Subscribing a member again changes nothing, so the
    task is safe to retry.

    ITERABLE_SUBSCRIBE_TO_LIST: POST /api/lists/subscribe (no documented rate limit).

    Args:
        list_id: the list's id (1 or more).
        subscribers: the users to add (at least one), each named by ``email``, ``user_id`` or
            both, optionally with ``data_fields`` to store on their profile.
        update_existing_users_only: skip users Iterable does not know instead of creating them
            (respected in userID-based and hybrid projects; default false).
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        How many users were added, and each one refused with the reason.
    """


@iterable_task("ITERABLE_UNSUBSCRIBE_FROM_LIST", run_name="unsubscribe-from-list-{list_id}")
def unsubscribe_from_list(
    list_id: PositiveId,
    subscribers: Records[Unsubscriber],
    campaign_id: PositiveId | None = None,
    channel_unsubscribe: bool | None = None,
    *,
    credentials: IterableCredentials | None = None,
) -> BulkResult:
    """Remove users from a static list.

    Use it when users leave a segment you maintain, or to honour an unsubscribe from your own
    preference centre. Users Iterable does not know, or who are GDPR-forgotten, are reported in
    ``rejected``; removing a user who is not a member is not an error.

    ITERABLE_UNSUBSCRIBE_FROM_LIST: POST /api/lists/unsubscribe (no documented rate limit).

    Args:
        list_id: the list's id (1 or more).
        subscribers: the users to remove (at least one), each named by ``email``, ``user_id`` or
            both.
        campaign_id: the campaign to attribute the unsubscribe to, for reporting.
        channel_unsubscribe: also unsubscribe the users from the list's whole channel (a global
            unsubscribe for that channel; default false).
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        How many users were removed, and each one refused with the reason.
    """


@iterable_task("ITERABLE_DELETE_LIST", run_name="delete-list-{list_id}")
def delete_list(
    list_id: PositiveId, *, credentials: IterableCredentials | None = None
) -> ApiResponse:
    """Delete a list and its memberships (the users themselves stay).

    Use it to clean up lists you no longer send to. Iterable refuses to delete a list that a
    campaign still uses (``Conflict``, HTTP 409). Deletion cannot be undone.

    ITERABLE_DELETE_LIST: DELETE /api/lists/{listId} (no documented rate limit).

    Args:
        list_id: the list's id (1 or more).
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope.
    """


@iterable_task("ITERABLE_GET_LIST_SIZE", run_name="get-list-size-{list_id}")
def get_list_size(
    list_id: PositiveId, *, credentials: IterableCredentials | None = None
) -> ListSize:
    """Count the members of a list.

    Use it to check a list before a send, or to report growth. Iterable answers a bare number
    as plain text; the endpoint allows only 5 calls a minute.

    ITERABLE_GET_LIST_SIZE: GET /api/lists/{listId}/size (5 requests/min per project).

    Args:
        list_id: the list's id (1 or more).
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        The member count (``size``; ``int(result)`` works too).
    """
