"""Tasks for Iterable's user profiles: updates, lookups, merges, subscriptions and GDPR.

Users are identified by ``email`` or ``user_id``, depending on how the project identifies them
(email-based, userID-based or hybrid). A task that takes both needs one and sends both when
both are given: Iterable accepts that (hybrid projects send both) and says which one wins.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import AfterValidator, Field, ValidationInfo

from prefect_iterable.api.models import ApiResponse, BulkResult
from prefect_iterable.api.models.users import (
    ArrayMergeField,
    BulkUpdateUser,
    DataFields,
    ForgottenUserIdsResponse,
    PathUserId,
    SentMessagesResponse,
    UpdateSubscriptionsRequest,
    UserFieldsResponse,
    UserResponse,
)
from prefect_iterable.api.types import (
    Email,
    ExportDateTime,
    MessageMedium,
    PositiveId,
    UserId,
    need_identifier,
)
from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.tasks._core import iterable_task
from prefect_iterable.tasks._records import Records, sendable

__all__ = [
    "bulk_update_users",
    "delete_user_by_id",
    "forget_user",
    "get_user_by_id",
    "get_user_by_id_path",
    "get_user_sent_messages",
    "list_forgotten_user_ids",
    "list_user_fields",
    "merge_users",
    "unforget_user",
    "update_user",
    "update_user_email",
    "update_user_subscriptions",
    "update_user_subscriptions_bulk",
]

# users/bulkUpdate refuses bodies over 4 MB; leave room for the envelope around the users.
_BULK_BODY_BYTES = 4 * 1024 * 1024 - 1024


def _fits_bulk_body(users: list[BulkUpdateUser]) -> list[BulkUpdateUser]:
    size = len(
        json.dumps(
            [u.model_dump(mode="json", by_alias=True, exclude_none=True) for u in sendable(users)],
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
    )
    if size > _BULK_BODY_BYTES:
        raise ValueError(f"the users take {size} bytes; a bulk update carries at most 4 MB")
    return users


def _one_destination(value: str | None, info: ValidationInfo) -> str | None:
    # one_of covers the source pair; the destination pair is checked here, on its last field.
    need_identifier(
        info.data.get("destination_email"), value, "destination_email or destination_user_id"
    )
    return value


def _not_before_start(value: Any, info: ValidationInfo) -> Any:
    start = info.data.get("start_date_time")
    if value is not None and start is not None and value < start:
        raise ValueError("end_date_time is before start_date_time")
    return value


@iterable_task("ITERABLE_UPDATE_USER", one_of=("email", "user_id"), need_one=True)
def update_user(
    email: Email | None = None,
    user_id: UserId | None = None,
    data_fields: DataFields | None = None,
    prefer_user_id: bool | None = None,
    create_new_fields: bool | None = None,
    merge_nested_objects: bool | None = None,
    *,
    credentials: IterableCredentials | None = None,
) -> ApiResponse:
    """Create a user, or update the fields of an existing one.

    Fields not sent are kept. A top-level object replaces the stored one unless
    ``merge_nested_objects`` is set. A field keeps the type it was first stored with: sending
    another type fails with ``RequestFieldsTypesMismatched``. Writes to a GDPR-forgotten user
    fail with ``ForgottenUserError``. Iterable applies updates asynchronously: allow about a
    minute before dependent calls (sends to the user, lookups).

    ITERABLE_UPDATE_USER: POST /api/users/update (500 requests/s per project).

    Args:
        email: the user's email (email-based and hybrid projects). Give email or user_id.
        user_id: the user's userId (userID-based and hybrid projects; in email-based projects
            with ``prefer_user_id``).
        data_fields: profile fields to add or overwrite. Fields Iterable maintains itself
            (emailListIds, signupDate, profileUpdatedAt, itblInternal) are sent as given, and
            Iterable may ignore them (a log line says so). A string value is at most ~32k
            characters.
        prefer_user_id: in email-based projects, create the user when ``user_id`` is unknown.
        create_new_fields: whether fields the project does not know yet are created (True) or
            dropped (False); defaults to the project setting.
        merge_nested_objects: merge top-level objects into the stored objects instead of
            replacing them.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope.
    """


@iterable_task("ITERABLE_BULK_UPDATE_USERS")
def bulk_update_users(
    users: Annotated[Records[BulkUpdateUser], AfterValidator(_fits_bulk_body)],
    create_new_fields: bool | None = None,
    *,
    credentials: IterableCredentials | None = None,
) -> BulkResult:
    """Create or update many users in one request, each record accepted or refused on its own.

    Each record adds or overwrites top-level fields and keeps the others. Iterable answers 200
    even when records fail: each refused record is in ``rejected`` with the reason Iterable
    gave (invalidEmails, forgottenUserIds, invalidDataEmails for a type change, conflict…,
    notFound… for an unknown userId without ``prefer_user_id``). A malformed address does not
    stop the others: it is sent, and Iterable reports it. Only a record Iterable could not read
    (naming no user, wrong types, a value JSON cannot carry) is kept out of the request and
    reported in ``rejected`` too, with its ``index`` and ``detail``. Do not mix bulk and single
    updates of the same user in a short window.

    ITERABLE_BULK_UPDATE_USERS: POST /api/users/bulkUpdate (5 requests/s per project; body at
    most 4 MB).

    Args:
        users: the users, at least one; each with email, user_id or both.
        create_new_fields: whether unknown fields are created (True) or dropped (False, reported
            in ``filtered_out_fields``); defaults to the project setting.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Counts of accepted and refused records, each refused record with its reason, and the
        fields created or dropped.
    """


@iterable_task("ITERABLE_GET_USER_BY_ID", run_name="get-user-{user_id}")
def get_user_by_id(
    user_id: UserId, *, credentials: IterableCredentials | None = None
) -> UserResponse:
    """Look a user up by userId, sent as a query parameter.

    Prefer it to ``get_user_by_id_path`` for userIds with characters such as ``/``. An unknown
    userId is not an error: the answer has no user (``found`` is False).

    ITERABLE_GET_USER_BY_ID: GET /api/users/byUserId (100 requests/s per project).

    Args:
        user_id: the userId to look up.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        The user's email, userId and data fields, or no user.
    """


@iterable_task("ITERABLE_GET_USER_BY_ID_PATH", run_name="get-user-{user_id}")
def get_user_by_id_path(
    user_id: PathUserId, *, credentials: IterableCredentials | None = None
) -> UserResponse:
    """Look a user up by userId, sent in the path.

    The userId is percent-encoded into the path (``/`` travels as ``%2F``); ``.`` and ``..``
    cannot name a path segment and are refused: use ``get_user_by_id``. An unknown userId
    answers with no user (``found`` is False).

    ITERABLE_GET_USER_BY_ID_PATH: GET /api/users/byUserId/{userId} (100 requests/s per
    project).

    Args:
        user_id: the userId to look up.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        The user's email, userId and data fields, or no user.
    """


@iterable_task("ITERABLE_DELETE_USER_BY_ID", run_name="delete-user-{user_id}")
def delete_user_by_id(
    user_id: PathUserId, *, credentials: IterableCredentials | None = None
) -> ApiResponse:
    """Delete every user with this userId, in any kind of project.

    Deletion is asynchronous and irreversible, and does not stop later data from creating the
    user again; to also block future collection (GDPR), use ``forget_user``. Needs the
    ``delete`` permission on the credentials block.

    ITERABLE_DELETE_USER_BY_ID: DELETE /api/users/byUserId/{userId} (100 requests/s per
    project).

    Args:
        user_id: the userId to delete; percent-encoded into the path (``.`` and ``..`` are
            refused: they cannot name a path segment).
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope.
    """


@iterable_task("ITERABLE_MERGE_USERS", one_of=("source_email", "source_user_id"), need_one=True)
def merge_users(
    source_email: Email | None = None,
    source_user_id: UserId | None = None,
    destination_email: Email | None = None,
    destination_user_id: Annotated[
        UserId | None, Field(validate_default=True), AfterValidator(_one_destination)
    ] = None,
    array_merge: list[ArrayMergeField] | None = None,
    *,
    credentials: IterableCredentials | None = None,
) -> ApiResponse:
    """Merge one user profile (the source) into another (the destination).

    Profile data and events move to the destination and the source is deleted; irreversible.
    The source must exist. When the destination does not, the source is renamed to the
    destination's identifier instead. Fails with ``ForgottenUserError`` when either user is
    GDPR-forgotten. Needs a server-side API key.

    ITERABLE_MERGE_USERS: POST /api/users/merge (50 requests/s per API key).

    Args:
        source_email: the email of the user merged away. Give source_email or source_user_id
            or both (both are sent); the same for the destination.
        source_user_id: the userId of the user merged away.
        destination_email: the email of the user that remains. Give destination_email or
            destination_user_id.
        destination_user_id: the userId of the user that remains.
        array_merge: custom array fields whose items are combined, deduplicated by a key of
            the items, instead of keeping the destination's array (not Iterable-managed arrays
            such as devices).
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope.
    """


@iterable_task(
    "ITERABLE_UPDATE_USER_EMAIL", one_of=("current_email", "current_user_id"), need_one=True
)
def update_user_email(
    new_email: Email,
    current_email: Email | None = None,
    current_user_id: UserId | None = None,
    *,
    credentials: IterableCredentials | None = None,
) -> ApiResponse:
    """Change a user's email, moving the profile and its events to the new address.

    For email-based projects only; in userID-based and hybrid projects set the email with
    ``update_user``. Fails with a conflict when another user has the new email, and with
    ``ForgottenUserError`` when either address was forgotten.

    ITERABLE_UPDATE_USER_EMAIL: POST /api/users/updateEmail (no documented rate limit).

    Args:
        new_email: the address the user will have.
        current_email: the user's current email. Give current_email, current_user_id or both;
            with both, Iterable goes by current_email.
        current_user_id: the user's userId.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope.
    """


@iterable_task("ITERABLE_UPDATE_USER_SUBSCRIPTIONS", one_of=("email", "user_id"), need_one=True)
def update_user_subscriptions(
    email: Email | None = None,
    user_id: UserId | None = None,
    email_list_ids: list[PositiveId] | None = None,
    unsubscribed_channel_ids: list[PositiveId] | None = None,
    unsubscribed_message_type_ids: list[PositiveId] | None = None,
    subscribed_message_type_ids: list[PositiveId] | None = None,
    campaign_id: PositiveId | None = None,
    template_id: PositiveId | None = None,
    validate_channel_alignment: bool | None = None,
    *,
    credentials: IterableCredentials | None = None,
) -> ApiResponse:
    """Set a user's lists, channel and message-type subscriptions.

    Every list given replaces the stored one (an empty list clears it); lists left out (None)
    are kept. ``email_list_ids`` sets the lists the user belongs to. Opting in with
    ``subscribed_message_type_ids`` needs Iterable's opt-in message types feature.

    ITERABLE_UPDATE_USER_SUBSCRIPTIONS: POST /api/users/updateSubscriptions (no documented rate
    limit).

    Args:
        email: the user's email. Give email or user_id.
        user_id: the user's userId.
        email_list_ids: the ids of every list the user should belong to.
        unsubscribed_channel_ids: the channels the user is unsubscribed from.
        unsubscribed_message_type_ids: the message types the user is unsubscribed from.
        subscribed_message_type_ids: the opt-in message types the user is subscribed to.
        campaign_id: the campaign unsubscribes are attributed to.
        template_id: the template unsubscribes are attributed to.
        validate_channel_alignment: refuse (True, Iterable's default) or allow (False)
            subscribing to message types of channels the user is unsubscribed from.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope.
    """


@iterable_task("ITERABLE_UPDATE_USER_SUBSCRIPTIONS_BULK")
def update_user_subscriptions_bulk(
    update_subscriptions_requests: Records[UpdateSubscriptionsRequest],
    *,
    credentials: IterableCredentials | None = None,
) -> BulkResult:
    """Set the subscriptions of many users at once, each accepted or refused on its own.

    Each request overwrites the lists it gives, as ``update_user_subscriptions`` does. Refused
    users are in ``rejected``: invalidEmails/invalidUserIds for malformed identifiers,
    validEmailFailures/validUserIdFailures for users Iterable could not update. A request
    Iterable could not read (naming no user, a list id below 1) is kept out of the call and
    reported there too, with its ``index`` and ``detail``.

    ITERABLE_UPDATE_USER_SUBSCRIPTIONS_BULK: POST /api/users/bulkUpdateSubscriptions (no
    documented rate limit).

    Args:
        update_subscriptions_requests: one request per user, at least one, each with email,
            user_id or both.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Counts of updated and refused users, each refused user with its reason.
    """


@iterable_task("ITERABLE_LIST_USER_FIELDS")
def list_user_fields(*, credentials: IterableCredentials | None = None) -> UserFieldsResponse:
    """List every user profile field of the project with its type.

    Use it to check field names and types before an import: a field cannot change type.

    ITERABLE_LIST_USER_FIELDS: GET /api/users/getFields (3 requests/s per project).

    Args:
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Field names (nested ones as dotted paths) mapped to their types.
    """


@iterable_task("ITERABLE_GET_USER_SENT_MESSAGES", one_of=("email", "user_id"), need_one=True)
def get_user_sent_messages(
    email: Email | None = None,
    user_id: UserId | None = None,
    limit: Annotated[int, Field(ge=1, le=1000)] | None = None,
    campaign_ids: list[PositiveId] | None = None,
    message_medium: MessageMedium | None = None,
    start_date_time: ExportDateTime | None = None,
    end_date_time: Annotated[ExportDateTime | None, AfterValidator(_not_before_start)] = None,
    exclude_blast_campaigns: bool | None = None,
    *,
    credentials: IterableCredentials | None = None,
) -> SentMessagesResponse:
    """List the messages sent to one user, newest first.

    Not paged: ``limit`` caps the answer (10 by default, 1000 at most).

    ITERABLE_GET_USER_SENT_MESSAGES: GET /api/users/getSentMessages (3 requests/s per project).

    Args:
        email: the user's email. Give email or user_id.
        user_id: the user's userId.
        limit: how many messages at most, 1 to 1000; Iterable's default is 10.
        campaign_ids: only messages of these campaigns.
        message_medium: only messages of this medium: Email, Push, InApp or SMS.
        start_date_time: only messages sent at or after this time (naive times are UTC).
        end_date_time: only messages sent at or before this time; not before the start.
        exclude_blast_campaigns: leave out messages of blast campaigns (ignored with
            campaign_ids).
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        The messages, each with its message id, campaign id, template id and send time.
    """


@iterable_task("ITERABLE_FORGET_USER", one_of=("email", "user_id"), need_one=True)
def forget_user(
    email: Email | None = None,
    user_id: UserId | None = None,
    *,
    credentials: IterableCredentials | None = None,
) -> ApiResponse:
    """Forget a user under GDPR: delete their data and block any further collection or sends.

    Email-based projects forget by email, userID-based projects by userId, hybrid projects by
    either. Iterable keeps only a SHA-256 hash of the identifier; later writes for it fail with
    ``ForgottenUserError`` until ``unforget_user``. Taking effect can take up to 10 minutes.
    Needs the ``delete`` permission on the credentials block.

    ITERABLE_FORGET_USER: POST /api/users/forget (3 requests/s and 1000 requests per 24 h per
    project).

    Args:
        email: the email to forget. Give email or user_id.
        user_id: the userId to forget.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope.
    """


@iterable_task("ITERABLE_UNFORGET_USER", one_of=("email", "user_id"), need_one=True)
def unforget_user(
    email: Email | None = None,
    user_id: UserId | None = None,
    *,
    credentials: IterableCredentials | None = None,
) -> ApiResponse:
    """Lift a GDPR forget: Iterable collects data for the identifier again.

    The data deleted by the forget is not restored. Email-based projects unforget by email,
    userID-based by userId, hybrid projects by either. Needs the ``delete`` permission on the
    credentials block.

    ITERABLE_UNFORGET_USER: POST /api/users/unforget (3 requests/s and 1000 requests per 24 h
    per project).

    Args:
        email: the email to unforget. Give email or user_id.
        user_id: the userId to unforget.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope.
    """


@iterable_task("ITERABLE_LIST_FORGOTTEN_USER_IDS")
def list_forgotten_user_ids(
    *, credentials: IterableCredentials | None = None
) -> ForgottenUserIdsResponse:
    """List the hashes of every forgotten userId, for GDPR audits.

    Each hash is the SHA-256 of the lower-cased, trimmed userId, so a userId can be checked
    without Iterable storing it. Only userID-based and hybrid projects answer; email-based
    projects get an error.

    ITERABLE_LIST_FORGOTTEN_USER_IDS: GET /api/users/forgottenUserIds (3 requests/s per
    project).

    Args:
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        The hex SHA-256 hashes of the forgotten userIds.
    """
