"""Request and response schemas for Iterable's user profile, field and GDPR actions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from prefect_iterable.api.models._base import IterableModel, RequestModel
from prefect_iterable.api.models._bulk import IdentifiedRecord
from prefect_iterable.api.types import MANAGED_FIELDS, DataFields, PositiveId, UserId

__all__ = [
    "MANAGED_FIELDS",
    "ArrayMergeField",
    "BulkUpdateUser",
    "DataFields",
    "PathUserId",
    "UpdateSubscriptionsRequest",
    "ForgottenUserIdsResponse",
    "SentMessage",
    "SentMessagesResponse",
    "UserProfile",
    "UserFieldsResponse",
    "UserResponse",
]


#: A userId in a path: percent-encoded there, so any character Iterable allows may be in it.
PathUserId = UserId


class BulkUpdateUser(IdentifiedRecord):
    """One user of a bulk update: an identifier (or both) and the fields to add or overwrite."""

    data_fields: DataFields | None = None
    prefer_user_id: bool | None = Field(
        None, description="Create the user when its userId is unknown (email-based projects)."
    )
    merge_nested_objects: bool | None = Field(
        None, description="Merge top-level objects into the stored ones instead of replacing them."
    )


class UpdateSubscriptionsRequest(IdentifiedRecord):
    """One user's subscription state; each list given replaces the stored one."""

    email_list_ids: list[PositiveId] | None = None
    unsubscribed_channel_ids: list[PositiveId] | None = None
    unsubscribed_message_type_ids: list[PositiveId] | None = None
    subscribed_message_type_ids: list[PositiveId] | None = None
    campaign_id: PositiveId | None = None
    template_id: PositiveId | None = None
    validate_channel_alignment: bool | None = None


class ArrayMergeField(RequestModel):
    """A custom array field whose items are combined (not replaced) when two users merge."""

    field: str = Field(min_length=1, description="A top-level array field of the profiles.")
    dedupe_by: str | None = Field(
        None, min_length=1, description="The item key that makes two array items the same."
    )


class UserProfile(IterableModel):
    """A user profile: its identifiers and every data field Iterable holds for it.

    ``data_fields`` also carries Iterable-managed fields (``signupDate``, ``profileUpdatedAt``,
    ``emailListIds``, subscription ids), which can be read but not written with profile updates.
    """

    email: str | None = Field(None, description="Absent for userId-only profiles.")
    user_id: str | None = None
    data_fields: dict[str, Any] = Field(default_factory=dict)


class UserResponse(IterableModel):
    """The answer of a user lookup; Iterable answers a missing user with no ``user`` at all."""

    user: UserProfile | None = None

    @property
    def found(self) -> bool:
        return self.user is not None


class UserFieldsResponse(IterableModel):
    """Every user profile field of the project, mapped to its type (``string``, ``long``…).

    Nested object fields appear under dotted paths (``address.city``).
    """

    fields: dict[str, str] = Field(default_factory=dict)


class SentMessage(IterableModel):
    """One message Iterable sent to the user."""

    message_id: str
    campaign_id: int | None = None
    template_id: int | None = None
    created_at: str | None = Field(
        None, description="When it was sent, as 'yyyy-MM-dd HH:mm:ss +00:00'."
    )

    @property
    def created(self) -> datetime | None:
        """``created_at`` as an aware datetime, when it is in Iterable's profile-date format."""
        if not self.created_at:
            return None
        try:
            return datetime.strptime(self.created_at, "%Y-%m-%d %H:%M:%S %z")
        except ValueError:
            return None


class SentMessagesResponse(IterableModel):
    messages: list[SentMessage] = Field(default_factory=list)


class ForgottenUserIdsResponse(IterableModel):
    """SHA-256 hashes (of the lower-cased, trimmed userId) of every forgotten userId."""

    hashed_user_ids: list[str] = Field(default_factory=list)
