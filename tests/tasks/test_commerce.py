"""Commerce tasks, run in a real flow against the sandbox."""

from __future__ import annotations

import pytest

from prefect_iterable.api.errors import ForgottenUserError, InputValidationError
from prefect_iterable.sandbox.data import User, events, identifier_hash, users
from prefect_iterable.tasks.commerce import track_purchase, update_cart

SHOES = {"id": "sku-1", "name": "Shoes", "price": 59.5, "quantity": 2, "categories": ["Apparel"]}
HAT = {
    "id": "sku-2",
    "name": "Hat",
    "price": 20.0,
    "quantity": 1,
    "image_url": "https://x.io/h.png",
}


class TestTrackPurchase:
    def test_records_a_purchase_event_and_empties_the_cart(
        self, run_in_flow, credentials, sandbox, project
    ):
        buyer = users(project).add(User(email="ann@example.com", user_id=None))
        buyer.data_fields["shoppingCartItems"] = [{"id": "sku-1"}]
        result = run_in_flow(
            track_purchase,
            {"email": "ann@example.com", "data_fields": {"vip": True}},
            [SHOES],
            119.0,
            purchase_id="order-1",
            created_at=1_700_000_000,
            campaign_id=5,
            credentials=credentials,
        )
        assert (result.code, result.purchase_id) == ("Success", "order-1")
        stored = events(project)["order-1"]
        assert (stored["eventType"], stored["total"], stored["email"], stored["createdAt"]) == (
            "purchase",
            119.0,
            "ann@example.com",
            1_700_000_000,
        )
        assert buyer.data_fields["shoppingCartItems"] == []
        assert buyer.data_fields["vip"] is True
        [request] = sandbox.state.requests("ITERABLE_TRACK_PURCHASE", project_id=project.id)
        assert (request.method, request.path) == ("POST", "/api/commerce/trackPurchase")
        assert request.body == {
            "user": {"email": "ann@example.com", "dataFields": {"vip": True}},
            "items": [
                {
                    "id": "sku-1",
                    "name": "Shoes",
                    "price": 59.5,
                    "quantity": 2,
                    "categories": ["Apparel"],
                }
            ],
            "total": 119.0,
            "id": "order-1",
            "createdAt": 1_700_000_000,
            "campaignId": 5,
        }

    def test_the_same_purchase_id_twice_is_stored_once_and_creates_the_user(
        self, run_in_flow, credentials, project
    ):
        for total in (10.0, 12.5):
            run_in_flow(
                track_purchase,
                {"email": "new@example.com"},
                [HAT],
                total,
                purchase_id="order-7",
                credentials=credentials,
            )
        assert [(k, e["total"]) for k, e in events(project).items()] == [("order-7", 12.5)]
        assert users(project).find(email="new@example.com") is not None

    def test_a_forgotten_buyer_is_refused(self, run_in_flow, credentials, project):
        users(project).forgotten_emails.add(identifier_hash("gone@example.com"))
        with pytest.raises(ForgottenUserError):
            run_in_flow(
                track_purchase, {"email": "gone@example.com"}, [HAT], 20.0, credentials=credentials
            )
        assert events(project) == {}

    @pytest.mark.parametrize(
        ("user", "items", "total"),
        [
            ({"email": "a@example.com"}, [], 1.0),  # no items
            ({"email": "a@example.com"}, [HAT], -1.0),  # negative total
            ({}, [HAT], 1.0),  # no identifier
            ({"email": "a@example.com"}, [{"id": "x", "name": "X", "price": 1}], 1.0),  # quantity
        ],
    )
    def test_rejects_bad_input_before_sending(
        self, run_in_flow, credentials, sandbox, project, user, items, total
    ):
        with pytest.raises(InputValidationError):
            track_purchase.fn(user, items, total, credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []

    def test_sends_both_identifiers_of_the_buyer(self, run_in_flow, credentials, sandbox, project):
        # Hybrid and userId-based projects name the buyer by both; Iterable accepts that.
        user = {"email": "both@example.com", "user_id": "u-both"}
        run_in_flow(track_purchase, user, [HAT], 20.0, credentials=credentials)
        [request] = sandbox.state.requests("ITERABLE_TRACK_PURCHASE", project_id=project.id)
        assert request.body["user"] == {"email": "both@example.com", "userId": "u-both"}
        assert request.status == 200


class TestUpdateCart:
    def test_replaces_the_users_cart(self, run_in_flow, credentials, sandbox, project):
        result = run_in_flow(
            update_cart, {"email": "bo@example.com"}, [SHOES, HAT], credentials=credentials
        )
        assert result.code == "Success"
        cart = users(project).find(email="bo@example.com").data_fields["shoppingCartItems"]
        assert [(item["id"], item["quantity"]) for item in cart] == [("sku-1", 2), ("sku-2", 1)]
        [request] = sandbox.state.requests("ITERABLE_UPDATE_CART", project_id=project.id)
        assert request.body["items"][1] == {
            "id": "sku-2",
            "name": "Hat",
            "price": 20.0,
            "quantity": 1,
            "imageUrl": "https://x.io/h.png",
        }

    def test_an_empty_list_clears_the_cart(self, run_in_flow, credentials, project):
        shopper = users(project).add(User(email="cy@example.com", user_id=None))
        shopper.data_fields["shoppingCartItems"] = [SHOES]
        run_in_flow(update_cart, {"email": "cy@example.com"}, [], credentials=credentials)
        assert shopper.data_fields["shoppingCartItems"] == []

    @pytest.mark.parametrize(
        "items",
        [[{**HAT, "quantity": 0}], [{**HAT, "name": ""}], [{**HAT, "price": float("nan")}]],
    )
    def test_rejects_bad_items_before_sending(
        self, run_in_flow, credentials, sandbox, project, items
    ):
        with pytest.raises(InputValidationError, match="items"):
            update_cart.fn({"email": "a@example.com"}, items, credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []
