"""Commerce: purchases (stored as ``purchase`` events, deduplicated by id) and shopping carts.

A purchase is one more event in ``project.area("events", dict)`` (see ``events``), with
``eventType`` "purchase", its ``items`` and ``total``; tracking it empties the buyer's cart. A
cart is the profile field ``dataFields.shoppingCartItems``.
"""

from __future__ import annotations

import math
from typing import Any

from prefect_iterable.sandbox.handlers._base import Call, bad_params, handles, success
from prefect_iterable.sandbox.handlers.events import (
    created_at,
    event_id,
    store_event,
    user_for_single,
)
from prefect_iterable.sandbox.handlers.lists import merge_fields

_ITEM_REQUIRED = ("id", "name", "price", "quantity")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _items(call: Call, *, allow_empty: bool) -> list[dict[str, Any]]:
    items = call.arg("items")
    if not isinstance(items, list) or (not items and not allow_empty):
        raise bad_params(
            "items must be a non-empty array" if not allow_empty else "items must be an array"
        )
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            raise bad_params(f"items[{position}] must be an object")
        missing = [key for key in _ITEM_REQUIRED if item.get(key) in (None, "")]
        if missing:
            raise bad_params(f"items[{position}] is missing {', '.join(missing)}")
        if not _number(item["price"]):
            raise bad_params(f"items[{position}].price must be a number")
        if isinstance(item["quantity"], bool) or not isinstance(item["quantity"], int):
            raise bad_params(f"items[{position}].quantity must be an integer")
    return [dict(item) for item in items]


def _user_body(call: Call) -> dict[str, Any]:
    call.require("user")
    user = call.arg("user")
    if not isinstance(user, dict):
        raise bad_params("user must be an object")
    return user


@handles("ITERABLE_TRACK_PURCHASE")
def track_purchase(call: Call) -> dict[str, Any]:
    call.require("user", "items")
    user_body = _user_body(call)
    items = _items(call, allow_empty=False)
    total = call.arg("total")
    if not _number(total):
        raise bad_params("total is required and must be a number")
    data_fields = call.arg("dataFields")
    if data_fields is not None and not isinstance(data_fields, dict):
        raise bad_params("dataFields must be an object")
    record: dict[str, Any] = {
        "id": event_id(call.arg("id")),
        "eventName": "purchase",
        "eventType": "purchase",
        "createdAt": created_at(call.arg("createdAt")),
        "items": items,
        "total": total,
        "dataFields": dict(data_fields or {}),
    }
    for key in ("campaignId", "templateId"):
        if call.arg(key) is not None:
            record[key] = call.arg(key)
    user = user_for_single(call.project, user_body)
    merge_fields(
        user, user_body.get("dataFields"), nested=bool(user_body.get("mergeNestedObjects"))
    )
    # A purchase completes the cart.
    user.data_fields["shoppingCartItems"] = []
    record["email"], record["userId"] = user.email, user.user_id
    store_event(call.project, record)
    return success(f"Purchase with id: {record['id']} tracked.", id=record["id"])


@handles("ITERABLE_UPDATE_CART")
def update_cart(call: Call) -> dict[str, Any]:
    call.require("user")
    user_body = _user_body(call)
    items = _items(call, allow_empty=True)
    user = user_for_single(call.project, user_body)
    merge_fields(
        user, user_body.get("dataFields"), nested=bool(user_body.get("mergeNestedObjects"))
    )
    merge_fields(user, {"shoppingCartItems": items})
    return success("Cart updated")
