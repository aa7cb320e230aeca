"""Tasks for Iterable's commerce actions: purchases and shopping carts."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from prefect_iterable.api.models import ApiResponse
from prefect_iterable.api.models.commerce import CommerceItem, CommerceUser, TrackPurchaseResponse
from prefect_iterable.api.models.events import EpochSeconds
from prefect_iterable.api.types import PositiveId, RecordId
from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.tasks._core import iterable_task

__all__ = ["track_purchase", "update_cart"]


@iterable_task("ITERABLE_TRACK_PURCHASE", run_name="track-purchase")
def track_purchase(
    user: CommerceUser,
    items: Annotated[list[CommerceItem], Field(min_length=1)],
    total: Annotated[float, Field(ge=0, allow_inf_nan=False)],
    purchase_id: RecordId | None = None,
    created_at: EpochSeconds | None = None,
    campaign_id: PositiveId | None = None,
    data_fields: dict[str, Any] | None = None,
    template_id: PositiveId | None = None,
    *,
    credentials: IterableCredentials | None = None,
) -> TrackPurchaseResponse:
    """Record a purchase for a user, creating or updating the user's profile.

    Use it when an order completes, so revenue is attributed to campaigns and journeys can react
    to purchases. Iterable also records a ``purchase`` event and empties the user's shopping
    cart (``shoppingCartItems``). Give ``purchase_id`` (your order id) to make the call
    idempotent: Iterable then updates that purchase instead of adding another, and the task may
    be retried safely.

    ITERABLE_TRACK_PURCHASE: POST /api/commerce/trackPurchase (no documented rate limit).

    Args:
        user: the buyer, named by exactly one of ``email`` and ``user_id``, with optional
            ``data_fields`` to store on their profile.
        items: the products bought (at least one), each with ``id``, ``name``, ``price`` and
            ``quantity`` and optionally ``sku``, ``categories``, ``url``, ``image_url``,
            ``description`` and ``data_fields``.
        total: the order's total amount, 0 or more.
        purchase_id: the purchase's id, at most 512 bytes; an existing purchase with this id is
            updated.
        created_at: when the purchase happened, as epoch seconds (or a ``datetime``); default:
            when Iterable receives it.
        campaign_id: the campaign to attribute the purchase to.
        data_fields: further fields of the purchase.
        template_id: the template to attribute the purchase to (A/B test attribution).
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's envelope; ``purchase_id`` is the id the purchase was stored under.
    """


@iterable_task("ITERABLE_UPDATE_CART", run_name="update-cart")
def update_cart(
    user: CommerceUser,
    items: list[CommerceItem],
    *,
    credentials: IterableCredentials | None = None,
) -> ApiResponse:
    """Replace a user's shopping cart, creating the user when unknown.

    Use it whenever a cart changes, so abandoned-cart journeys see the current items. The items
    replace the profile's ``shoppingCartItems`` as a whole; an empty list empties the cart.
    Sending the same cart again changes nothing, so the task is safe to retry.

    ITERABLE_UPDATE_CART: POST /api/commerce/updateCart (no documented rate limit).

    Args:
        user: the cart's owner, named by exactly one of ``email`` and ``user_id``, with optional
            ``data_fields`` to store on their profile.
        items: every product now in the cart, each with ``id``, ``name``, ``price`` and
            ``quantity``; empty to clear the cart.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope.
    """
