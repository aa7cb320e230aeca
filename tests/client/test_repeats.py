"""A write Iterable refuses to repeat, retried after a lost answer, is never a false failure.

For every action the catalog marks ``refuses_repeat`` that these tests can set up, the sandbox
processes the first attempt and then fails its answer (500 after processing, or an answer after
the read timeout); the client's repeat is refused by Iterable ("already exists", unknown email
after the merge, not found after the delete). The call must succeed or raise ``OutcomeUnknown``
(issue #14 item 3), and the effect must have happened once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from prefect_iterable.api import errors
from prefect_iterable.api.catalog import ACTIONS
from prefect_iterable.api.retrying import RetryPolicy
from prefect_iterable.sandbox.data import users

FAST = RetryPolicy(attempts=3, backoff_base=0.01, backoff_cap=0.02)


def _create_list(client: Any) -> dict[str, Any]:
    return {"list_id": client.call("ITERABLE_CREATE_LIST", name="to delete")["listId"]}


def _two_users(client: Any) -> dict[str, Any]:
    for email in ("source@example.com", "destination@example.com"):
        client.call("ITERABLE_UPDATE_USER", email=email, data_fields={"n": 1})
    return {"source_email": "source@example.com", "destination_email": "destination@example.com"}


def _one_user(client: Any) -> dict[str, Any]:
    client.call("ITERABLE_UPDATE_USER", email="old@example.com", data_fields={"n": 1})
    return {"current_email": "old@example.com", "new_email": "new@example.com"}


def _snippet(client: Any) -> dict[str, Any]:
    client.call("ITERABLE_CREATE_SNIPPET", name="gone-soon", content="<p>x</p>")
    return {"identifier": "gone-soon"}


def _catalog(client: Any) -> dict[str, Any]:
    client.call("ITERABLE_CREATE_CATALOG", catalog_name="gone-soon")
    return {"catalog_name": "gone-soon"}


def _gone(client: Any, action: str, **params: Any) -> bool:
    try:
        client.call(action, **params)
    except errors.NotFound:
        return True
    return False


# action -> (set-up returning the call's parameters, a check that the effect holds)
CASES: dict[str, tuple[Callable[[Any], dict[str, Any]], Callable[[Any, dict, Any], bool]]] = {
    "ITERABLE_CREATE_SNIPPET": (
        lambda c: {"name": "welcome", "content": "<p>hi</p>"},
        lambda c, p, store: not _gone(c, "ITERABLE_GET_SNIPPET", identifier="welcome"),
    ),
    "ITERABLE_CREATE_CATALOG": (
        lambda c: {"catalog_name": "products"},
        lambda c, p, store: "products" in str(c.call("ITERABLE_LIST_CATALOGS")),
    ),
    "ITERABLE_UPDATE_USER_EMAIL": (
        _one_user,
        lambda c, p, store: (
            store.find(email="new@example.com") is not None
            and store.find(email="old@example.com") is None
        ),
    ),
    "ITERABLE_MERGE_USERS": (
        _two_users,
        lambda c, p, store: (
            store.find(email="source@example.com") is None
            and store.find(email="destination@example.com") is not None
        ),
    ),
    "ITERABLE_DELETE_LIST": (
        _create_list,
        lambda c, p, store: all(
            x["id"] != p["list_id"] for x in c.call("ITERABLE_LIST_LISTS")["lists"]
        ),
    ),
    "ITERABLE_DELETE_SNIPPET": (
        _snippet,
        lambda c, p, store: _gone(c, "ITERABLE_GET_SNIPPET", identifier="gone-soon"),
    ),
    "ITERABLE_DELETE_CATALOG": (
        _catalog,
        lambda c, p, store: "gone-soon" not in str(c.call("ITERABLE_LIST_CATALOGS")),
    ),
}


def test_every_refused_repeat_action_is_classified():
    marked = {a.id for a in ACTIONS if a.refuses_repeat}
    assert set(CASES) <= marked
    # A refused repeat only matters for writes the client repeats (a SEND is never repeated).
    assert all(a.effect.value == "write" for a in ACTIONS if a.refuses_repeat)


@pytest.mark.parametrize("kind", ["500", "delay"])
@pytest.mark.parametrize("action", sorted(CASES))
def test_a_lost_answer_then_a_refused_repeat_is_no_false_failure(
    action, kind, credentials, sandbox, project
):
    setup, happened = CASES[action]
    with credentials.get_client(timeout=1.0, retry=FAST) as client:
        params = setup(client)
        if kind == "delay":
            sandbox.inject(action, "delay", seconds=1.5)
        else:
            sandbox.inject(action, "500", after_processing=True)
        try:
            client.call(action, **params)
        except errors.OutcomeUnknown as unknown:
            assert "refused" in str(unknown)
        processed = [
            e for e in sandbox.state.requests(action, project_id=project.id) if e.processed
        ]
        assert len(processed) == 1, "the effect happened once"
        assert happened(client, params, users(project))
