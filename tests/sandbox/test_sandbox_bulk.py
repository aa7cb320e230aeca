"""The sandbox's bulk endpoints, called with the client: a batch of only malformed records is
still a 200 naming each one, and a catalog batch over Iterable's cap is refused."""

from __future__ import annotations

import pytest

from prefect_iterable.api.errors import BatchTooLarge
from prefect_iterable.sandbox.data import UserList, lists, users


@pytest.mark.parametrize(
    ("action", "key", "extra"),
    [
        ("ITERABLE_BULK_UPDATE_USERS", "users", {}),
        ("ITERABLE_UPDATE_USER_SUBSCRIPTIONS_BULK", "update_subscriptions_requests", {}),
        ("ITERABLE_SUBSCRIBE_TO_LIST", "subscribers", {"list_id": 5}),
        ("ITERABLE_UNSUBSCRIBE_FROM_LIST", "subscribers", {"list_id": 5}),
        ("ITERABLE_TRACK_EVENTS_BULK", "events", {}),
    ],
)
def test_the_sandbox_answers_an_all_bad_batch_with_200(client, project, action, key, extra):
    """Every record malformed: still a 200 that names each one, as Iterable answers. One
    address rule for every endpoint: a doubled dot is as malformed for a list as for a profile."""
    lists(project)[5] = UserList(id=5, name="Members")
    records = [{"email": "user@"}, {"email": "bad..dots@example.com"}, {"userId": "bad id "}]
    if action == "ITERABLE_TRACK_EVENTS_BULK":
        records = [{**r, "eventName": "x"} for r in records]
    result = client.call(action, **{key: records}, **extra)
    assert (result.success_count, result.fail_count) == (0, 3)
    assert result.failed_updates.invalid_emails == ["user@", "bad..dots@example.com"]
    assert result.failed_updates.invalid_user_ids == ["bad id "]
    assert users(project).all() == []


def test_the_sandbox_refuses_an_oversized_catalog_batch(client):
    client.call("ITERABLE_CREATE_CATALOG", catalog_name="Shop")
    documents = {f"sku-{n}": {"n": n} for n in range(1001)}
    with pytest.raises(BatchTooLarge):
        client.call("ITERABLE_CREATE_CATALOG_ITEMS", catalog_name="Shop", documents=documents)
