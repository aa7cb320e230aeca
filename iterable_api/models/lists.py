"""Request and response schemas for Iterable's list actions (static lists and their members)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from prefect_iterable.api.models._base import IterableModel
from prefect_iterable.api.models._bulk import IdentifiedRecord

__all__ = [
    "CreateListResponse",
    "ListDetails",
    "ListSize",
    "ListUsers",
    "ListsResponse",
    "Subscriber",
    "Unsubscriber",
]


class Unsubscriber(IdentifiedRecord):
    """A user to remove from a list, named by email, userId or both."""


class Subscriber(Unsubscriber):
    """A user to add to a list, named by email, userId or both, with profile fields to store.

    Iterable creates the user when it is unknown (unless the request sets
    ``update_existing_users_only``); a userId alone creates one in an email-based project only
    with ``prefer_user_id``.
    """

    data_fields: dict[str, Any] | None = Field(
        None, description="Profile fields to set on the user while subscribing them."
    )
    prefer_user_id: bool | None = Field(
        None,
        description="Create a new user when the userId is unknown (email-based projects only).",
    )
    merge_nested_objects: bool | None = Field(
        None, description="Merge top-level objects of data_fields instead of replacing them."
    )


class ListDetails(IterableModel):
    """A list of users: static (Standard), Dynamic, Suppression or Internal."""

    id: int
    name: str | None = None
    created_at: int | None = Field(None, description="Creation time, epoch milliseconds.")
    list_type: Literal["Standard", "Dynamic", "Suppression", "Internal"] | str | None = None
    description: str | None = None
    is_global_suppression_enabled: bool | None = Field(
        None, description="Only for Suppression lists: whether the list suppresses globally."
    )


class ListsResponse(IterableModel):
    lists: list[ListDetails] = Field(default_factory=list)


class CreateListResponse(IterableModel):
    list_id: int


class ListUsers(IterableModel):
    """Members of a list, read from Iterable's plain-text answer (one identifier a line).

    Each identifier is an email, or a userId in userID-based projects (and in hybrid projects
    when ``preferUserId`` was asked for and the user has one).
    """

    identifiers: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, (str, bytes)):
            text = value.decode() if isinstance(value, bytes) else value
            return {"identifiers": [line.strip() for line in text.splitlines() if line.strip()]}
        if isinstance(value, list):
            return {"identifiers": value}
        return value


class ListSize(IterableModel):
    """The number of users in a list, read from Iterable's bare-number text answer."""

    size: int = Field(ge=0)

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, bytes):
            value = value.decode()
        if isinstance(value, str):
            text = value.strip()
            if not text.isdigit():
                raise ValueError(f"expected a bare number, got {text[:50]!r}")
            return {"size": int(text)}
        if isinstance(value, int) and not isinstance(value, bool):
            return {"size": value}
        return value

    def __int__(self) -> int:
        return self.size
