"""User, GDPR and subscription-update tasks, run in a real flow against the sandbox.

getFields, getSentMessages, forget, unforget and forgottenUserIds allow 3 calls a second, so the
client spaces them about a third of a second apart; tests keep to a few calls of each.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import pytest

from prefect_iterable.api.errors import (
    BadParams,
    Conflict,
    ForgottenUserError,
    InputValidationError,
    RequestFieldsTypesMismatched,
    UnknownEmailError,
    UnknownUserIdError,
)
from prefect_iterable.api.models import BulkResult
from prefect_iterable.api.models.users import BulkUpdateUser, UpdateSubscriptionsRequest
from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.blocks.credentials import MissingPermission
from prefect_iterable.sandbox.data import (
    User,
    UserList,
    identifier_hash,
    lists,
    record_message,
    users,
)
from prefect_iterable.tasks.users import (
    bulk_update_users,
    delete_user_by_id,
    forget_user,
    get_user_by_id,
    get_user_by_id_path,
    get_user_sent_messages,
    list_forgotten_user_ids,
    list_user_fields,
    merge_users,
    unforget_user,
    update_user,
    update_user_email,
    update_user_subscriptions,
    update_user_subscriptions_bulk,
)

ALL_PERMISSIONS = ["read", "write", "send", "delete"]


def _requests(sandbox, project, action):
    return sandbox.state.requests(action, project_id=project.id)


def _sha256(value: str) -> str:
    return hashlib.sha256(value.strip().lower().encode()).hexdigest()


def _add_list(project, list_id: int, name: str = "Members") -> UserList:
    lists(project)[list_id] = UserList(id=list_id, name=name)
    return lists(project)[list_id]


class TestUpdateUser:
    def test_creates_then_merges_fields(self, run_in_flow, credentials, sandbox, project):
        first = run_in_flow(
            update_user,
            email="ada@example.com",
            data_fields={"plan": "pro", "prefs": {"sms": True}},
            credentials=credentials,
        )
        run_in_flow(
            update_user,
            email="ada@example.com",
            data_fields={"prefs": {"email": False}},
            merge_nested_objects=True,
            credentials=credentials,
        )
        assert first.code == "Success"
        stored = users(project).find(email="ada@example.com")
        assert stored.data_fields == {"plan": "pro", "prefs": {"sms": True, "email": False}}
        bodies = [e.body for e in _requests(sandbox, project, "ITERABLE_UPDATE_USER")]
        assert bodies == [
            {"email": "ada@example.com", "dataFields": {"plan": "pro", "prefs": {"sms": True}}},
            {
                "email": "ada@example.com",
                "dataFields": {"prefs": {"email": False}},
                "mergeNestedObjects": True,
            },
        ]

    def test_sends_both_identifiers(self, run_in_flow, sandbox, make_project, credentials_for):
        # Hybrid projects send both; Iterable accepts them (its docs only prefer one).
        key, hybrid = make_project(identity="hybrid")
        run_in_flow(
            update_user, email="a@example.com", user_id="u-1", credentials=credentials_for(key)
        )
        [request] = _requests(sandbox, hybrid, "ITERABLE_UPDATE_USER")
        assert (request.body["email"], request.body["userId"]) == ("a@example.com", "u-1")
        assert users(hybrid).find(user_id="u-1").email == "a@example.com"

    def test_sends_fields_iterable_manages_itself(self, run_in_flow, credentials, sandbox, project):
        # Iterable accepts the request and ignores what it maintains; nothing is refused.
        run_in_flow(
            update_user,
            email="a@example.com",
            data_fields={"signupDate": "2024-01-01 00:00:00", "plan": "pro"},
            credentials=credentials,
        )
        [request] = _requests(sandbox, project, "ITERABLE_UPDATE_USER")
        assert request.body["dataFields"] == {"signupDate": "2024-01-01 00:00:00", "plan": "pro"}
        assert users(project).find(email="a@example.com").data_fields["plan"] == "pro"

    def test_refuses_a_field_value_over_32k_characters_before_sending(
        self, run_in_flow, credentials, sandbox, project
    ):
        with pytest.raises(InputValidationError, match="data_fields.*32768"):
            update_user.fn(
                email="a@example.com", data_fields={"bio": "x" * 40_000}, credentials=credentials
            )
        assert sandbox.state.requests(project_id=project.id) == []

    def test_a_field_cannot_change_type(self, run_in_flow, client, credentials, project):
        client.call("ITERABLE_UPDATE_USER", email="c@example.com", data_fields={"age": 30})
        with pytest.raises(RequestFieldsTypesMismatched) as caught:
            run_in_flow(
                update_user,
                email="c@example.com",
                data_fields={"age": "thirty", "plan": "pro"},
                credentials=credentials,
            )
        assert caught.value.status == 400
        mismatch = caught.value.validation_errors["age"]
        assert (mismatch["expectedType"], mismatch["incomingTypes"]) == (
            "long",
            ["string", "keyword"],
        )
        # The whole update was refused: no field of it was stored.
        assert users(project).find(email="c@example.com").data_fields == {"age": 30}

    def test_email_project_needs_prefer_user_id_for_an_unknown_user_id(
        self, run_in_flow, credentials, project
    ):
        with pytest.raises(UnknownUserIdError):
            run_in_flow(update_user, user_id="u-1", credentials=credentials)
        run_in_flow(update_user, user_id="u-1", prefer_user_id=True, credentials=credentials)
        created = users(project).by_user_id["u-1"]
        assert created.email.endswith("@placeholder.email")

    def test_user_id_project_creates_by_user_id_only(
        self, run_in_flow, make_project, credentials_for
    ):
        key, userid_project = make_project(identity="userId")
        creds = credentials_for(key)
        with pytest.raises(UnknownEmailError):
            run_in_flow(update_user, email="new@example.com", credentials=creds)
        run_in_flow(update_user, user_id="u-7", data_fields={"tier": 2}, credentials=creds)
        assert users(userid_project).by_user_id["u-7"].data_fields == {"tier": 2}
        assert users(userid_project).find(email="new@example.com") is None


class TestBulkUpdateUsers:
    def test_reports_each_refused_record_and_stores_the_others(
        self, run_in_flow, credentials, sandbox, project
    ):
        store = users(project)
        store.forgotten_emails.add(identifier_hash("gone@example.com"))
        store.field_types["score"] = "long"
        result = run_in_flow(
            bulk_update_users,
            [
                BulkUpdateUser(email="ok@example.com", data_fields={"score": 1, "city": "Oslo"}),
                BulkUpdateUser(email="bad..dots@example.com", data_fields={"score": 2}),
                BulkUpdateUser(email="gone@example.com", data_fields={"score": 3}),
                BulkUpdateUser(email="typed@example.com", data_fields={"score": "high"}),
            ],
            credentials=credentials,
        )
        assert isinstance(result, BulkResult)
        assert (result.success_count, result.fail_count) == (1, 3)
        assert {(r.identifier, r.kind, r.reason) for r in result.rejected} == {
            ("bad..dots@example.com", "email", "invalidEmails"),
            ("gone@example.com", "email", "forgottenEmails"),
            ("typed@example.com", "email", "invalidDataEmails"),
        }
        assert result.created_fields == ["city"]
        assert store.find(email="ok@example.com").data_fields == {"score": 1, "city": "Oslo"}
        assert store.find(email="typed@example.com") is None
        assert store.find(email="gone@example.com") is None
        [request] = _requests(sandbox, project, "ITERABLE_BULK_UPDATE_USERS")
        assert request.body["users"][0] == {
            "email": "ok@example.com",
            "dataFields": {"score": 1, "city": "Oslo"},
        }

    def test_unknown_user_ids_need_prefer_user_id(self, run_in_flow, credentials, project):
        result = run_in_flow(
            bulk_update_users,
            [BulkUpdateUser(user_id="u-9"), BulkUpdateUser(user_id="u-10", prefer_user_id=True)],
            credentials=credentials,
        )
        assert [(r.identifier, r.reason) for r in result.rejected] == [("u-9", "notFoundUserIds")]
        assert "u-10" in users(project).by_user_id and "u-9" not in users(project).by_user_id

    def test_refuses_an_empty_batch_before_sending(
        self, run_in_flow, credentials, sandbox, project
    ):
        with pytest.raises(InputValidationError, match="users"):
            bulk_update_users.fn([], credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []

    def test_a_record_may_carry_both_identifiers(self):
        record = BulkUpdateUser(email="a@example.com", user_id="u-1")
        assert record.model_dump(by_alias=True, exclude_none=True) == {
            "email": "a@example.com",
            "userId": "u-1",
        }

    def test_refuses_a_body_over_4_mb_before_sending(
        self, run_in_flow, credentials, sandbox, project
    ):
        big = "x" * 30_000  # under Iterable's ~32k per value; 150 of them pass 4 MB
        batch = [
            BulkUpdateUser(email=f"u{i}@example.com", data_fields={"blob": big}) for i in range(150)
        ]
        with pytest.raises(InputValidationError, match="4 MB"):
            bulk_update_users.fn(batch, credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []


class TestGetUserById:
    def test_finds_a_user_by_query(self, run_in_flow, credentials, sandbox, project):
        users(project).add(User(email="f@example.com", user_id="u/1", data_fields={"plan": "pro"}))
        _add_list(project, 5).members["f@example.com"] = users(project).by_user_id["u/1"]
        result = run_in_flow(get_user_by_id, "u/1", credentials=credentials)
        assert result.found
        assert (result.user.email, result.user.user_id) == ("f@example.com", "u/1")
        assert result.user.data_fields["plan"] == "pro"
        assert result.user.data_fields["emailListIds"] == [5]
        [request] = _requests(sandbox, project, "ITERABLE_GET_USER_BY_ID")
        assert (request.path, request.query) == ("/api/users/byUserId", {"userId": ["u/1"]})

    def test_an_unknown_user_is_not_an_error(self, run_in_flow, credentials):
        assert not run_in_flow(get_user_by_id, "nobody", credentials=credentials).found

    def test_refuses_an_empty_user_id_before_sending(
        self, run_in_flow, credentials, sandbox, project
    ):
        with pytest.raises(InputValidationError, match="user_id"):
            get_user_by_id.fn("", credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []


class TestGetUserByIdPath:
    def test_finds_a_user_by_path(self, run_in_flow, credentials, sandbox, project):
        users(project).add(User(email="g@example.com", user_id="user 7"))
        result = run_in_flow(get_user_by_id_path, "user 7", credentials=credentials)
        assert result.user.email == "g@example.com"
        [request] = _requests(sandbox, project, "ITERABLE_GET_USER_BY_ID_PATH")
        assert (request.method, request.path) == ("GET", "/api/users/byUserId/user 7")

    def test_sends_a_slash_percent_encoded(self, run_in_flow, credentials, sandbox, project):
        users(project).add(User(email="s@example.com", user_id="a/b"))
        result = run_in_flow(get_user_by_id_path, "a/b", credentials=credentials)
        assert result.user.email == "s@example.com"
        [request] = _requests(sandbox, project, "ITERABLE_GET_USER_BY_ID_PATH")
        assert request.raw_path == "/api/users/byUserId/a%2Fb"

    @pytest.mark.parametrize("dots", [".", ".."])
    def test_refuses_dot_segments_before_sending(
        self, run_in_flow, credentials, sandbox, project, dots
    ):
        with pytest.raises(InputValidationError, match="user_id.*path segment"):
            get_user_by_id_path.fn(dots, credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []


class TestDeleteUserById:
    def test_deletes_the_user_and_its_memberships(self, run_in_flow, credentials, sandbox, project):
        user = users(project).add(User(email="h@example.com", user_id="u-3"))
        members = _add_list(project, 8).members
        members["h@example.com"] = user
        result = run_in_flow(delete_user_by_id, "u-3", credentials=credentials)
        assert result.code == "Success"
        assert users(project).find("h@example.com", "u-3") is None
        assert members == {}
        [request] = _requests(sandbox, project, "ITERABLE_DELETE_USER_BY_ID")
        assert (request.method, request.path) == ("DELETE", "/api/users/byUserId/u-3")
        # A delete does not block the user from coming back (forget does).
        run_in_flow(update_user, email="h@example.com", credentials=credentials)

    def test_an_unknown_user_id_is_refused(self, run_in_flow, credentials):
        with pytest.raises(UnknownUserIdError):
            run_in_flow(delete_user_by_id, "u-missing", credentials=credentials)

    def test_needs_the_delete_permission(
        self, run_in_flow, sandbox_server, api_key, sandbox, project
    ):
        read_write = IterableCredentials(api_key=api_key, base_url=sandbox_server.url)
        with pytest.raises(MissingPermission, match="delete"):
            run_in_flow(delete_user_by_id, "u-3", credentials=read_write)
        assert sandbox.state.requests(project_id=project.id) == []


class TestMergeUsers:
    def test_merges_the_source_into_the_destination(
        self, run_in_flow, credentials, sandbox, project
    ):
        store = users(project)
        source = store.add(
            User(
                email="old@example.com",
                user_id=None,
                data_fields={"plan": "free", "city": "Oslo", "pets": [{"n": "a"}, {"n": "b"}]},
            )
        )
        dest = store.add(
            User(
                email="new@example.com",
                user_id=None,
                data_fields={"plan": "pro", "pets": [{"n": "b"}, {"n": "c"}]},
            )
        )
        _add_list(project, 4).members["old@example.com"] = source
        run_in_flow(
            merge_users,
            source_email="old@example.com",
            destination_email="new@example.com",
            array_merge=[{"field": "pets", "dedupe_by": "n"}],
            credentials=credentials,
        )
        assert store.find(email="old@example.com") is None
        assert dest.data_fields == {
            "plan": "pro",
            "city": "Oslo",
            "pets": [{"n": "b"}, {"n": "c"}, {"n": "a"}],
        }
        assert list(lists(project)[4].members.values()) == [dest]
        [request] = _requests(sandbox, project, "ITERABLE_MERGE_USERS")
        assert request.body == {
            "sourceEmail": "old@example.com",
            "destinationEmail": "new@example.com",
            "arrayMerge": [{"field": "pets", "dedupeBy": "n"}],
        }

    def test_a_missing_destination_renames_the_source(self, run_in_flow, credentials, project):
        source = users(project).add(User(email="only@example.com", user_id=None))
        run_in_flow(
            merge_users,
            source_email="only@example.com",
            destination_email="renamed@example.com",
            credentials=credentials,
        )
        assert users(project).find(email="renamed@example.com") is source
        assert users(project).find(email="only@example.com") is None

    def test_a_forgotten_user_cannot_be_merged(self, run_in_flow, credentials, project):
        users(project).add(User(email="src@example.com", user_id=None))
        users(project).forgotten_emails.add(identifier_hash("dst@example.com"))
        with pytest.raises(ForgottenUserError) as caught:
            run_in_flow(
                merge_users,
                source_email="src@example.com",
                destination_email="dst@example.com",
                credentials=credentials,
            )
        assert caught.value.status == 409

    def test_needs_a_destination_before_sending(self, run_in_flow, credentials, sandbox, project):
        with pytest.raises(InputValidationError, match="destination"):
            merge_users.fn(source_email="a@example.com", credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []

    def test_sends_both_identifiers_of_each_user(self, run_in_flow, credentials, sandbox, project):
        users(project).add(User(email="a@example.com", user_id="u-1"))
        users(project).add(User(email="b@example.com", user_id="u-2"))
        run_in_flow(
            merge_users,
            source_email="a@example.com",
            source_user_id="u-1",
            destination_email="b@example.com",
            destination_user_id="u-2",
            credentials=credentials,
        )
        [request] = _requests(sandbox, project, "ITERABLE_MERGE_USERS")
        assert request.body == {
            "sourceEmail": "a@example.com",
            "sourceUserId": "u-1",
            "destinationEmail": "b@example.com",
            "destinationUserId": "u-2",
        }
        assert users(project).find(email="a@example.com") is None


class TestUpdateUserEmail:
    def test_moves_the_profile_to_the_new_email(self, run_in_flow, credentials, sandbox, project):
        user = users(project).add(User(email="was@example.com", user_id=None, data_fields={"a": 1}))
        members = _add_list(project, 6).members
        members["was@example.com"] = user
        run_in_flow(
            update_user_email,
            "now@example.com",
            current_email="was@example.com",
            credentials=credentials,
        )
        assert users(project).find(email="now@example.com") is user
        assert users(project).find(email="was@example.com") is None
        assert list(members) == ["now@example.com"]
        [request] = _requests(sandbox, project, "ITERABLE_UPDATE_USER_EMAIL")
        assert request.body == {"newEmail": "now@example.com", "currentEmail": "was@example.com"}

    def test_a_taken_email_is_a_conflict(self, run_in_flow, credentials, project):
        users(project).add(User(email="x@example.com", user_id=None))
        users(project).add(User(email="y@example.com", user_id=None))
        with pytest.raises(Conflict):
            run_in_flow(
                update_user_email,
                "y@example.com",
                current_email="x@example.com",
                credentials=credentials,
            )

    def test_only_email_based_projects(self, run_in_flow, make_project, credentials_for):
        key, userid_project = make_project(identity="userId")
        users(userid_project).add(User(email="z@example.com", user_id="u-5"))
        with pytest.raises(BadParams, match="email-based"):
            run_in_flow(
                update_user_email,
                "new@example.com",
                current_user_id="u-5",
                credentials=credentials_for(key),
            )

    def test_refuses_a_malformed_new_email_before_sending(
        self, run_in_flow, credentials, sandbox, project
    ):
        with pytest.raises(InputValidationError, match="new_email"):
            update_user_email.fn(
                "not-an-email", current_email="a@example.com", credentials=credentials
            )
        assert sandbox.state.requests(project_id=project.id) == []


class TestUpdateUserSubscriptions:
    def test_overwrites_only_the_fields_given(self, run_in_flow, credentials, sandbox, project):
        _add_list(project, 21)
        _add_list(project, 22)
        run_in_flow(
            update_user_subscriptions,
            email="sub@example.com",
            email_list_ids=[21, 22],
            unsubscribed_channel_ids=[1],
            credentials=credentials,
        )
        user = users(project).find(email="sub@example.com")
        assert {lid for lid, ul in lists(project).items() if user in ul.members.values()} == {
            21,
            22,
        }
        run_in_flow(
            update_user_subscriptions,
            email="sub@example.com",
            email_list_ids=[22],
            campaign_id=9,
            credentials=credentials,
        )
        assert list(lists(project)[21].members.values()) == []
        assert user.data_fields["unsubscribedChannelIds"] == [1]  # not sent: kept
        bodies = [e.body for e in _requests(sandbox, project, "ITERABLE_UPDATE_USER_SUBSCRIPTIONS")]
        assert bodies[1] == {"email": "sub@example.com", "emailListIds": [22], "campaignId": 9}

    def test_refuses_a_non_positive_list_id_before_sending(
        self, run_in_flow, credentials, sandbox, project
    ):
        with pytest.raises(InputValidationError, match="email_list_ids"):
            update_user_subscriptions.fn(
                email="a@example.com", email_list_ids=[0], credentials=credentials
            )
        assert sandbox.state.requests(project_id=project.id) == []


class TestUpdateUserSubscriptionsBulk:
    def test_reports_each_refused_user(self, run_in_flow, credentials, sandbox, project):
        _add_list(project, 31)
        users(project).forgotten_emails.add(identifier_hash("gone@example.com"))
        result = run_in_flow(
            update_user_subscriptions_bulk,
            [
                UpdateSubscriptionsRequest(email="one@example.com", email_list_ids=[31]),
                UpdateSubscriptionsRequest(email="gone@example.com", email_list_ids=[31]),
                UpdateSubscriptionsRequest(email="two@example.com", email_list_ids=[99]),
                UpdateSubscriptionsRequest(email="bad..dots@example.com", email_list_ids=[31]),
            ],
            credentials=credentials,
        )
        assert (result.success_count, result.fail_count) == (1, 3)
        assert {(r.identifier, r.reason) for r in result.rejected} == {
            ("gone@example.com", "validEmailFailures"),
            ("two@example.com", "validEmailFailures"),
            ("bad..dots@example.com", "invalidEmails"),
        }
        member = users(project).find(email="one@example.com")
        assert list(lists(project)[31].members.values()) == [member]
        assert users(project).find(email="two@example.com") is None
        [request] = _requests(sandbox, project, "ITERABLE_UPDATE_USER_SUBSCRIPTIONS_BULK")
        assert request.body["updateSubscriptionsRequests"][0] == {
            "email": "one@example.com",
            "emailListIds": [31],
        }

    def test_refuses_an_empty_batch_before_sending(
        self, run_in_flow, credentials, sandbox, project
    ):
        with pytest.raises(InputValidationError):
            update_user_subscriptions_bulk.fn([], credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []


class TestListUserFields:
    def test_lists_fields_with_their_types(
        self, run_in_flow, client, credentials, sandbox, project
    ):
        client.call(
            "ITERABLE_UPDATE_USER",
            email="k@example.com",
            data_fields={"plan": "pro", "seats": 3, "prefs": {"sms": True}, "since": "2024-05-01"},
        )
        result = run_in_flow(list_user_fields, credentials=credentials)
        assert result.fields == {
            "email": "string",
            "userId": "string",
            "signupDate": "date",
            "profileUpdatedAt": "date",
            "plan": "string",
            "seats": "long",
            "prefs": "object",
            "prefs.sms": "boolean",
            "since": "date",
        }
        assert len(_requests(sandbox, project, "ITERABLE_LIST_USER_FIELDS")) == 1

    def test_takes_no_parameters(self, run_in_flow, credentials, sandbox, project):
        with pytest.raises(TypeError):
            run_in_flow(list_user_fields, page=1, credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp() * 1000)


class TestGetUserSentMessages:
    def test_filters_and_orders_the_users_messages(
        self, run_in_flow, credentials, sandbox, project
    ):
        users(project).add(User(email="m@example.com", user_id=None))
        for campaign, medium, day in (
            (1, "Email", 2),
            (2, "SMS", 3),
            (1, "Email", 4),
            (1, "Email", 9),
        ):
            record_message(
                project,
                kind="campaign",
                medium=medium,
                campaignId=campaign,
                templateId=campaign * 10,
                email="m@example.com",
                userId=None,
                sendAt=_ms(f"2024-03-0{day} 12:00:00"),
            )
        record_message(
            project, kind="campaign", medium="Email", campaignId=1, email="x@example.com"
        )
        result = run_in_flow(
            get_user_sent_messages,
            email="m@example.com",
            campaign_ids=[1],
            message_medium="Email",
            start_date_time=datetime(2024, 3, 1),
            end_date_time=datetime(2024, 3, 5),
            limit=5,
            credentials=credentials,
        )
        assert [m.created_at for m in result.messages] == [
            "2024-03-04 12:00:00 +00:00",
            "2024-03-02 12:00:00 +00:00",
        ]
        assert {(m.campaign_id, m.template_id) for m in result.messages} == {(1, 10)}
        [request] = _requests(sandbox, project, "ITERABLE_GET_USER_SENT_MESSAGES")
        assert request.query == {
            "email": ["m@example.com"],
            "limit": ["5"],
            "campaignIds": ["1"],
            "messageMedium": ["Email"],
            "startDateTime": ["2024-03-01 00:00:00 +00:00"],
            "endDateTime": ["2024-03-05 00:00:00 +00:00"],
        }

    @pytest.mark.parametrize(
        "bad",
        [
            {"limit": 0},
            {"limit": 1001},
            {"message_medium": "Fax"},
            {"start_date_time": datetime(2024, 3, 5), "end_date_time": datetime(2024, 3, 1)},
        ],
    )
    def test_refuses_bad_filters_before_sending(
        self, bad, run_in_flow, credentials, sandbox, project
    ):
        with pytest.raises(InputValidationError):
            get_user_sent_messages.fn(user_id="u-1", **bad, credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []


class TestForgetUser:
    def test_forgets_the_user_and_blocks_later_writes(
        self, run_in_flow, credentials, sandbox, project
    ):
        user = users(project).add(User(email="Forget.Me@example.com", user_id=None))
        _add_list(project, 41).members["forget.me@example.com"] = user
        run_in_flow(forget_user, email="Forget.Me@example.com", credentials=credentials)
        store = users(project)
        assert store.find(email="forget.me@example.com") is None
        assert lists(project)[41].members == {}
        assert store.forgotten_emails == {_sha256(" forget.me@example.com ")}
        with pytest.raises(ForgottenUserError) as caught:
            run_in_flow(
                update_user,
                email="forget.me@example.com",
                data_fields={"a": 1},
                credentials=credentials,
            )
        assert caught.value.status == 409
        [request] = _requests(sandbox, project, "ITERABLE_FORGET_USER")
        assert (request.method, request.body) == ("POST", {"email": "Forget.Me@example.com"})

    def test_needs_the_delete_permission_before_sending(
        self, run_in_flow, sandbox_server, api_key, sandbox, project
    ):
        read_write = IterableCredentials(api_key=api_key, base_url=sandbox_server.url)
        with pytest.raises(MissingPermission, match="delete"):
            run_in_flow(forget_user, email="a@example.com", credentials=read_write)
        assert sandbox.state.requests(project_id=project.id) == []

    def test_user_id_projects_forget_by_user_id(self, run_in_flow, make_project, credentials_for):
        key, userid_project = make_project(identity="userId")
        creds = credentials_for(key)
        with pytest.raises(BadParams, match="by userId"):
            run_in_flow(forget_user, email="a@example.com", credentials=creds)
        users(userid_project).add(User(email=None, user_id="U-8"))
        run_in_flow(forget_user, user_id="U-8", credentials=creds)
        assert users(userid_project).forgotten_user_ids == {_sha256("u-8")}
        assert users(userid_project).by_user_id == {}

    def test_sends_both_identifiers(self, run_in_flow, credentials, sandbox, project):
        users(project).add(User(email="a@example.com", user_id="u"))
        run_in_flow(forget_user, email="a@example.com", user_id="u", credentials=credentials)
        [request] = _requests(sandbox, project, "ITERABLE_FORGET_USER")
        assert request.body == {"email": "a@example.com", "userId": "u"}
        assert users(project).forgotten_emails == {_sha256("a@example.com")}


class TestUnforgetUser:
    def test_lifts_the_block_without_restoring_data(
        self, run_in_flow, client, credentials, sandbox, project
    ):
        client.call("ITERABLE_UPDATE_USER", email="back@example.com", data_fields={"plan": "pro"})
        client.call("ITERABLE_FORGET_USER", email="back@example.com")
        run_in_flow(unforget_user, email="back@example.com", credentials=credentials)
        assert users(project).forgotten_emails == set()
        assert users(project).find(email="back@example.com") is None
        run_in_flow(update_user, email="back@example.com", credentials=credentials)
        assert users(project).find(email="back@example.com").data_fields == {}
        [request] = _requests(sandbox, project, "ITERABLE_UNFORGET_USER")
        assert request.body == {"email": "back@example.com"}

    def test_refuses_a_malformed_email_before_sending(
        self, run_in_flow, credentials, sandbox, project
    ):
        with pytest.raises(InputValidationError, match="email"):
            unforget_user.fn(email="nope", credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []


class TestListForgottenUserIds:
    def test_lists_hashes_in_user_id_projects(
        self, run_in_flow, make_project, credentials_for, sandbox
    ):
        key, hybrid = make_project(identity="hybrid")
        creds = credentials_for(key)
        run_in_flow(forget_user, user_id="Gone-1", credentials=creds)
        result = run_in_flow(list_forgotten_user_ids, credentials=creds)
        assert result.hashed_user_ids == [_sha256("gone-1")]
        [request] = sandbox.state.requests("ITERABLE_LIST_FORGOTTEN_USER_IDS", project_id=hybrid.id)
        assert (request.method, request.path) == ("GET", "/api/users/forgottenUserIds")

    def test_email_projects_are_refused(self, run_in_flow, credentials):
        with pytest.raises(BadParams, match="email-based"):
            run_in_flow(list_forgotten_user_ids, credentials=credentials)

    def test_takes_no_parameters(self, run_in_flow, credentials, sandbox, project):
        with pytest.raises(TypeError):
            run_in_flow(list_forgotten_user_ids, user_id="u", credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []
