"""The sandbox's user profiles, called with the client: field merging, create_new_fields,
identifier conflicts, an email change carrying the user's messages, channel alignment."""

from __future__ import annotations

import pytest

from prefect_iterable.api.errors import BadParams
from prefect_iterable.sandbox.data import User, record_message, users


class TestUpdateUser:
    def test_replaces_a_nested_object_unless_merging(self, client, project):
        client.call("ITERABLE_UPDATE_USER", email="b@example.com", data_fields={"p": {"a": 1}})
        client.call("ITERABLE_UPDATE_USER", email="b@example.com", data_fields={"p": {"b": 2}})
        assert users(project).find(email="b@example.com").data_fields == {"p": {"b": 2}}

    def test_create_new_fields_false_drops_unknown_fields(self, client, project):
        client.call("ITERABLE_UPDATE_USER", email="d@example.com", data_fields={"plan": "pro"})
        client.call(
            "ITERABLE_UPDATE_USER",
            email="d@example.com",
            data_fields={"plan": "team", "color": "red"},
            create_new_fields=False,
        )
        assert users(project).find(email="d@example.com").data_fields == {"plan": "team"}


class TestBulkUpdateUsers:
    def test_create_new_fields_false_reports_filtered_fields(self, client, project):
        client.call("ITERABLE_UPDATE_USER", email="e@example.com", data_fields={"plan": "pro"})
        result = client.call(
            "ITERABLE_BULK_UPDATE_USERS",
            users=[{"email": "e@example.com", "dataFields": {"plan": "team", "color": "red"}}],
            create_new_fields=False,
        )
        assert (result.success_count, result.filtered_out_fields) == (1, ["color"])
        assert users(project).find(email="e@example.com").data_fields == {"plan": "team"}

    def test_conflicting_identifiers_are_reported(self, client, make_project, credentials_for):
        key, hybrid = make_project(identity="hybrid")
        users(hybrid).add(User(email="one@example.com", user_id="u-1"))
        users(hybrid).add(User(email="two@example.com", user_id="u-2"))
        with credentials_for(key).get_client() as hybrid_client:
            result = hybrid_client.call(
                "ITERABLE_BULK_UPDATE_USERS",
                users=[{"email": "one@example.com", "userId": "u-2", "dataFields": {"x": 1}}],
            )
        assert [(r.identifier, r.reason) for r in result.rejected] == [
            ("one@example.com", "conflictEmails")
        ]


class TestUpdateUserEmail:
    def test_sent_messages_follow_the_new_email(self, client, project):
        users(project).add(User(email="before@example.com", user_id=None))
        record_message(
            project,
            kind="target",
            medium="Email",
            campaignId=3,
            templateId=4,
            email="before@example.com",
            userId=None,
        )
        client.call(
            "ITERABLE_UPDATE_USER_EMAIL",
            new_email="after@example.com",
            current_email="before@example.com",
        )
        sent = client.call("ITERABLE_GET_USER_SENT_MESSAGES", email="after@example.com")
        assert [(m["campaignId"], m["templateId"]) for m in sent["messages"]] == [(3, 4)]


class TestUpdateUserSubscriptions:
    def test_channel_alignment_is_checked(self, client, project):
        with pytest.raises(BadParams, match="validateChannelAlignment"):
            client.call(
                "ITERABLE_UPDATE_USER_SUBSCRIPTIONS",
                email="push@example.com",
                unsubscribed_channel_ids=[3],
                subscribed_message_type_ids=[13],
            )
        assert users(project).find(email="push@example.com") is None
        client.call(
            "ITERABLE_UPDATE_USER_SUBSCRIPTIONS",
            email="push@example.com",
            unsubscribed_channel_ids=[3],
            subscribed_message_type_ids=[13],
            validate_channel_alignment=False,
        )
        assert users(project).find(email="push@example.com").data_fields[
            "subscribedMessageTypeIds"
        ] == [13]
