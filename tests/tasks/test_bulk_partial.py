"""Bulk tasks never lose a batch for one bad record: a partial success, as Iterable answers.

Each of the five bulk tasks gets a batch with a malformed address (``user@``), a record naming
its user by both email and userId (Iterable accepts both) and a record Iterable could not read
at all. The sendable records reach the sandbox (its request log and state show them); Iterable's
per-record refusal and the task's own come back in one result, in Iterable's shape.
"""

from __future__ import annotations

import math

import pytest

from prefect_iterable.api.errors import InputValidationError
from prefect_iterable.api.models import BulkResult, Rejection
from prefect_iterable.sandbox.data import User, UserList, events, lists, users
from prefect_iterable.tasks.events import track_events_bulk
from prefect_iterable.tasks.lists import subscribe_to_list, unsubscribe_from_list
from prefect_iterable.tasks.users import bulk_update_users, update_user_subscriptions_bulk

BAD = "user@"


def _sent(sandbox, project, action: str, key: str) -> list[dict]:
    [request] = sandbox.state.requests(action, project_id=project.id)
    assert request.status == 200
    return request.body[key]


def _assert_partial(result: BulkResult, successes: int, local_index: int, local_reason: str):
    """Iterable's refusal of ``user@`` and the task's refusal of one record, both reported."""
    assert isinstance(result, BulkResult)
    assert (result.success_count, result.fail_count) == (successes, 2)
    assert result.failed_updates.invalid_emails == [BAD]
    iterable_said, task_said = result.rejected
    assert iterable_said == Rejection(identifier=BAD, kind="email", reason="invalidEmails")
    assert iterable_said.sent
    assert (task_said.index, task_said.reason, task_said.sent) == (local_index, local_reason, False)
    assert task_said.detail
    assert result.refused_before_sending == [task_said]


def test_bulk_update_users(run_in_flow, credentials, sandbox, project):
    result = run_in_flow(
        bulk_update_users,
        [
            {"email": "ok@example.com", "data_fields": {"plan": "gold"}},
            {"email": BAD, "data_fields": {"plan": "gold"}},
            {"email": "both@example.com", "user_id": "u-both"},
            {"data_fields": {"plan": "lost"}},  # names no one: never sent
        ],
        credentials=credentials,
    )

    _assert_partial(result, 2, 3, "invalidEmails")
    assert result.rejected[1].identifier == ""
    assert _sent(sandbox, project, "ITERABLE_BULK_UPDATE_USERS", "users") == [
        {"email": "ok@example.com", "dataFields": {"plan": "gold"}},
        {"email": BAD, "dataFields": {"plan": "gold"}},
        {"email": "both@example.com", "userId": "u-both"},
    ]
    store = users(project)
    assert store.find(email="ok@example.com").data_fields == {"plan": "gold"}
    assert store.find(email="both@example.com") is store.by_user_id["u-both"]
    assert store.find(email=BAD) is None


def test_update_user_subscriptions_bulk(run_in_flow, credentials, sandbox, project):
    lists(project)[31] = UserList(id=31, name="News")
    result = run_in_flow(
        update_user_subscriptions_bulk,
        [
            {"email": "ok@example.com", "email_list_ids": [31]},
            {"email": BAD, "email_list_ids": [31]},
            {"email": "both@example.com", "user_id": "u-both", "email_list_ids": [31]},
            {"email": "zero@example.com", "email_list_ids": [0]},  # no list 0: never sent
        ],
        credentials=credentials,
    )

    _assert_partial(result, 2, 3, "invalidDataEmails")
    assert result.rejected[1].identifier == "zero@example.com"
    assert "email_list_ids" in result.rejected[1].detail
    sent = _sent(
        sandbox, project, "ITERABLE_UPDATE_USER_SUBSCRIPTIONS_BULK", "updateSubscriptionsRequests"
    )
    assert [r.get("email") for r in sent] == ["ok@example.com", BAD, "both@example.com"]
    assert set(lists(project)[31].members) == {"ok@example.com", "both@example.com"}


def test_subscribe_to_list(run_in_flow, credentials, sandbox, project):
    lists(project)[7] = UserList(id=7, name="Members")
    result = run_in_flow(
        subscribe_to_list,
        7,
        [
            {"email": "ok@example.com"},
            {"email": BAD},
            {"email": "both@example.com", "user_id": "u-both"},
            {"user_id": 42},  # a number, not a userId: never sent
        ],
        credentials=credentials,
    )

    _assert_partial(result, 2, 3, "invalidUserIds")
    assert result.rejected[1].kind == "userId"
    sent = _sent(sandbox, project, "ITERABLE_SUBSCRIBE_TO_LIST", "subscribers")
    assert sent == [
        {"email": "ok@example.com"},
        {"email": BAD},
        {"email": "both@example.com", "userId": "u-both"},
    ]
    assert set(lists(project)[7].members) == {"ok@example.com", "both@example.com"}


def test_unsubscribe_from_list(run_in_flow, credentials, sandbox, project):
    members = [User(email="ok@example.com", user_id=None), User("both@example.com", "u-both")]
    lists(project)[8] = UserList(id=8, name="Members")
    for user in members:
        users(project).add(user)
        lists(project)[8].members[user.email] = user
    result = run_in_flow(
        unsubscribe_from_list,
        8,
        [
            {"email": "ok@example.com"},
            {"email": BAD},
            {"email": "both@example.com", "user_id": "u-both"},
            {"email": "typo@example.com", "emial": "x"},  # an unknown key: never sent
        ],
        credentials=credentials,
    )

    _assert_partial(result, 2, 3, "invalidDataEmails")
    assert "emial" in result.rejected[1].detail
    sent = _sent(sandbox, project, "ITERABLE_UNSUBSCRIBE_FROM_LIST", "subscribers")
    assert len(sent) == 3
    assert lists(project)[8].members == {}


def test_track_events_bulk(run_in_flow, credentials, sandbox, project):
    result = run_in_flow(
        track_events_bulk,
        [
            {"event_name": "opened", "email": "ok@example.com", "event_id": "e-1"},
            {"event_name": "opened", "email": BAD, "event_id": "e-2"},
            {"event_name": "opened", "email": "both@example.com", "user_id": "u-both"},
            {"event_name": "opened", "email": "nan@example.com", "data_fields": {"v": math.nan}},
        ],
        credentials=credentials,
    )

    _assert_partial(result, 2, 3, "invalidDataEmails")
    assert result.rejected[1].identifier == "nan@example.com"
    assert "dataFields.v" in result.rejected[1].detail
    sent = _sent(sandbox, project, "ITERABLE_TRACK_EVENTS_BULK", "events")
    assert [e["email"] for e in sent] == ["ok@example.com", BAD, "both@example.com"]
    assert sorted(e["email"] for e in events(project).values()) == [
        "both@example.com",
        "ok@example.com",
    ]


def test_a_batch_with_nothing_sendable_is_refused_by_name(
    run_in_flow, credentials, sandbox, project
):
    with pytest.raises(InputValidationError, match="events.*no record can be sent"):
        track_events_bulk.fn(
            [{"event_name": "", "email": "a@example.com"}, {"event_name": "x"}],
            credentials=credentials,
        )
    assert sandbox.state.requests(project_id=project.id) == []


class TestReadingBulkAnswers:
    """``BulkResult.from_body`` reads every shape Iterable gives and never fails a 200."""

    def test_reads_every_reason_and_keeps_new_ones(self):
        result = BulkResult.from_body(
            {
                "successCount": 3,
                "failCount": 3,
                "failedUpdates": {
                    "invalidEmails": ["a@"],
                    "notFoundUserIds": ["u-9"],
                    "someNewReason": ["x"],
                },
                "invalidEmails": ["a@", "b@"],  # deprecated copy, plus one only there
                "disallowedEventNames": ["itblSpam"],
            }
        )
        assert [(r.identifier, r.reason) for r in result.rejected] == [
            ("a@", "invalidEmails"),
            ("u-9", "notFoundUserIds"),
            ("b@", "invalidEmails"),
            ("itblSpam", "disallowedEventNames"),
        ]
        assert result.failed_updates.invalid_emails == ["a@", "b@"]
        assert result.failed_updates.model_extra == {"someNewReason": ["x"]}
        assert result.disallowed_event_names == ["itblSpam"]

    @pytest.mark.parametrize(
        "body",
        [
            {},
            {"successCount": "2", "failCount": None},
            {"successCount": "many", "failedUpdates": ["a@"]},
            {"failedUpdates": {"invalidEmails": "a@"}, "createdFields": {"x": 1}},
            {"failedUpdates": None, "invalidEmails": None, "disallowedEventNames": 3},
        ],
    )
    def test_odd_shapes_never_raise(self, body):
        result = BulkResult.from_body(body)
        assert result.success_count in (0, 2)
        assert result.rejected == []

    def test_refused_records_are_merged_into_the_same_fields(self):
        result = BulkResult.from_body(
            {"successCount": 1, "failCount": 1, "failedUpdates": {"invalidUserIds": ["u "]}}
        )
        local = Rejection(
            identifier="n@example.com",
            kind="email",
            reason="invalidDataEmails",
            detail="nan",
            index=4,
        )
        merged = result.with_refused([local])
        assert (merged.success_count, merged.fail_count) == (1, 2)
        assert merged.failed_updates.invalid_user_ids == ["u "]
        assert merged.failed_updates.invalid_data_emails == ["n@example.com"]
        assert merged.rejected[-1] == local
        assert result.with_refused([]) is result
