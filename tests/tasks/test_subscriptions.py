"""Subscription-group tasks (subscribe or unsubscribe one user by userId) against the sandbox."""

from __future__ import annotations

import pytest

from prefect_iterable.api.errors import (
    BadParams,
    Forbidden,
    ForgottenUserError,
    InputValidationError,
)
from prefect_iterable.sandbox.data import User, UserList, identifier_hash, lists, users
from prefect_iterable.tasks.subscriptions import subscribe_user_by_id, unsubscribe_user_by_id

ALL_PERMISSIONS = ["read", "write", "send", "delete"]


class TestSubscribeUserById:
    def test_adds_the_user_to_a_list(self, run_in_flow, credentials, sandbox, project):
        user = users(project).add(User(email="s@example.com", user_id="u-1"))
        lists(project)[12] = UserList(id=12, name="Digest")
        result = run_in_flow(subscribe_user_by_id, "u-1", "emailList", 12, credentials=credentials)
        assert result.code == "Success"
        assert list(lists(project)[12].members.values()) == [user]
        [request] = sandbox.state.requests("ITERABLE_SUBSCRIBE_USER_BY_ID", project_id=project.id)
        assert (request.method, request.path, request.status) == (
            "PATCH",
            "/api/subscriptions/emailList/12/byUserId/u-1",
            202,
        )

    def test_opts_in_to_a_message_type_and_lifts_an_unsubscription(
        self, run_in_flow, credentials, project
    ):
        user = users(project).add(
            User(
                email="t@example.com",
                user_id="u-2",
                data_fields={"unsubscribedMessageTypeIds": [13, 11]},
            )
        )
        run_in_flow(subscribe_user_by_id, "u-2", "messageType", 13, credentials=credentials)
        assert user.data_fields["unsubscribedMessageTypeIds"] == [11]
        assert user.data_fields["subscribedMessageTypeIds"] == [13]

    def test_user_id_projects_create_an_unknown_user(
        self, run_in_flow, make_project, credentials_for
    ):
        key, userid_project = make_project(identity="userId")
        run_in_flow(
            subscribe_user_by_id, "new-1", "messageChannel", 3, credentials=credentials_for(key)
        )
        assert users(userid_project).by_user_id["new-1"].data_fields == {
            "unsubscribedChannelIds": []
        }

    def test_projects_without_the_feature_get_403(
        self, run_in_flow, make_project, credentials_for, sandbox
    ):
        key, basic = make_project(features=[])
        users(basic).add(User(email="b@example.com", user_id="u-1"))
        with pytest.raises(Forbidden) as caught:
            run_in_flow(
                subscribe_user_by_id, "u-1", "messageType", 11, credentials=credentials_for(key)
            )
        assert caught.value.status == 403
        assert users(basic).by_user_id["u-1"].data_fields == {}

    def test_an_unknown_list_is_refused(self, run_in_flow, credentials, project):
        users(project).add(User(email="c@example.com", user_id="u-3"))
        with pytest.raises(BadParams, match="List 77"):
            run_in_flow(subscribe_user_by_id, "u-3", "emailList", 77, credentials=credentials)

    def test_refuses_an_unknown_group_before_sending(
        self, run_in_flow, credentials, sandbox, project
    ):
        with pytest.raises(InputValidationError, match="subscription_group"):
            subscribe_user_by_id.fn("u-1", "emailLists", 1, credentials=credentials)
        with pytest.raises(InputValidationError, match="subscription_group_id"):
            subscribe_user_by_id.fn("u-1", "emailList", 0, credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []


class TestUnsubscribeUserById:
    def test_unsubscribes_from_a_channel_and_a_list(
        self, run_in_flow, credentials, sandbox, project
    ):
        user = users(project).add(User(email="d@example.com", user_id="u-4"))
        lists(project)[15] = UserList(id=15, name="Offers", members={"d@example.com": user})
        run_in_flow(unsubscribe_user_by_id, "u-4", "messageChannel", 1, credentials=credentials)
        run_in_flow(unsubscribe_user_by_id, "u-4", "emailList", 15, credentials=credentials)
        assert user.data_fields["unsubscribedChannelIds"] == [1]
        assert lists(project)[15].members == {}
        entries = sandbox.state.requests("ITERABLE_UNSUBSCRIBE_USER_BY_ID", project_id=project.id)
        assert [(e.method, e.path, e.status) for e in entries] == [
            ("DELETE", "/api/subscriptions/messageChannel/1/byUserId/u-4", 202),
            ("DELETE", "/api/subscriptions/emailList/15/byUserId/u-4", 202),
        ]

    def test_a_forgotten_user_is_refused(self, run_in_flow, credentials, project):
        users(project).forgotten_user_ids.add(identifier_hash("u-5"))
        with pytest.raises(ForgottenUserError):
            run_in_flow(unsubscribe_user_by_id, "u-5", "messageType", 11, credentials=credentials)

    def test_projects_without_the_feature_get_403(self, run_in_flow, make_project, credentials_for):
        key, _ = make_project(features=[])
        with pytest.raises(Forbidden):
            run_in_flow(
                unsubscribe_user_by_id, "u-1", "messageChannel", 1, credentials=credentials_for(key)
            )

    def test_refuses_a_blank_user_id_before_sending(
        self, run_in_flow, credentials, sandbox, project
    ):
        with pytest.raises(InputValidationError, match="user_id"):
            unsubscribe_user_by_id.fn(" ", "messageType", 11, credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []
