"""Request and response schemas for Iterable's commerce actions (purchases and carts)."""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from prefect_iterable.api.models._base import ApiResponse, RequestModel
from prefect_iterable.api.types import Email, UserId, need_identifier

__all__ = ["CommerceItem", "CommerceUser", "TrackPurchaseResponse"]


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


_Text = Annotated[str, StringConstraints(min_length=1)]


class CommerceItem(RequestModel):
    """One product line in a purchase or a shopping cart."""

    id: _Text = Field(description="The product's unique identifier.")
    name: _Text = Field(description="The product's name.")
    price: Annotated[float, AfterValidator(_finite)] = Field(description="Unit price.")
    quantity: int = Field(ge=1, description="How many units.")
    sku: str | None = Field(None, description="Stock-keeping unit.")
    description: str | None = None
    categories: list[str] | None = Field(
        None, description="Categories the product belongs to, each a breadcrumb."
    )
    image_url: str | None = Field(None, description="URL of an image of the product.")
    url: str | None = Field(None, description="URL of the product's page.")
    data_fields: dict[str, Any] | None = Field(None, description="Further product properties.")


class CommerceUser(RequestModel):
    """The user who bought or holds the cart: created when unknown, updated otherwise."""

    email: Email | None = Field(None, description="The user's email address.")
    user_id: UserId | None = Field(
        None, description="The user's userId (with email too: both sent)."
    )
    data_fields: dict[str, Any] | None = Field(
        None, description="Profile fields to set on the user at the same time."
    )
    prefer_user_id: bool | None = Field(
        None,
        description="Create a new user when the userId is unknown (email-based projects only).",
    )
    merge_nested_objects: bool | None = Field(
        None, description="Merge top-level objects of data_fields instead of replacing them."
    )
    create_new_fields: bool | None = Field(
        None, description="Add unknown profile fields to the schema (default: project setting)."
    )

    @model_validator(mode="after")
    def _identified(self) -> CommerceUser:
        need_identifier(self.email, self.user_id)
        return self


class TrackPurchaseResponse(ApiResponse):
    """Iterable's envelope for a tracked purchase; ``params.id`` is the purchase's id."""

    @property
    def purchase_id(self) -> str | None:
        """The id Iterable stored the purchase under (the one sent, or the one it generated)."""
        value = (self.params or {}).get("id")
        return str(value) if value is not None else None
