"""Embedded-messaging tasks, run in a real flow against the sandbox."""

from __future__ import annotations

import pytest

from prefect_iterable.api.errors import BadParams, InputValidationError, UnknownEmailError
from prefect_iterable.api.models.embedded import (
    EmbeddedDeviceInfo,
    EmbeddedImpression,
    EmbeddedSession,
)
from prefect_iterable.sandbox.data import User, embedded_events, user_messages, users
from prefect_iterable.tasks.embedded import (
    get_embedded_messages,
    track_embedded_click,
    track_embedded_received,
    track_embedded_session,
)

DEVICE = EmbeddedDeviceInfo(app_package_name="com.example.shop", device_id="dev-1", platform="iOS")
DEVICE_WIRE = {"appPackageName": "com.example.shop", "deviceId": "dev-1", "platform": "iOS"}


def ada(project) -> list[dict]:
    """A user with a profile, and the embedded messages the sandbox made for her."""
    user = users(project).add(User(email="ada@example.com", user_id=None))
    return user_messages(project, user)


class TestGetEmbeddedMessages:
    def test_groups_the_users_messages_by_placement(
        self, run_in_flow, credentials, sandbox, project
    ):
        held = ada(project)
        result = run_in_flow(
            get_embedded_messages,
            email="ada@example.com",
            sdk_version="6.5.0",
            credentials=credentials,
        )
        assert [p.placement_id for p in result.placements] == [101, 102]
        banner = result.placements[0].embedded_messages
        assert [m.metadata.priority_order for m in banner] == [1, 2]
        assert banner[0].elements.buttons[0].action.type == "openUrl"
        assert {m.metadata.message_id for p in result.placements for m in p.embedded_messages} == {
            m["messageId"] for m in held
        }
        [request] = sandbox.state.requests("ITERABLE_GET_EMBEDDED_MESSAGES", project_id=project.id)
        assert (request.method, request.query) == (
            "GET",
            {"email": ["ada@example.com"], "sdkVersion": ["6.5.0"]},
        )

    def test_filters_by_placement_platform_and_what_the_device_holds(
        self, run_in_flow, credentials, sandbox, project
    ):
        held = ada(project)
        first_banner = next(m for m in held if m["placementId"] == 101 and m["priorityOrder"] == 1)
        result = run_in_flow(
            get_embedded_messages,
            email="ada@example.com",
            platform="Web",
            placement_ids=[101, 102, 555],
            current_message_ids=[first_banner["messageId"]],
            credentials=credentials,
        )
        placements = {p.placement_id: p.embedded_messages for p in result.placements}
        assert list(placements) == [101, 102, 555]
        assert placements[102] == []  # an app-only campaign: not on the web
        assert placements[555] == []
        assert [m.elements is None for m in placements[101]] == [True, False]
        [request] = sandbox.state.requests("ITERABLE_GET_EMBEDDED_MESSAGES", project_id=project.id)
        assert request.query["placementIds"] == ["101", "102", "555"]
        assert request.query["currentMessageIds"] == [first_banner["messageId"]]

    def test_a_user_without_a_profile_has_no_messages(self, run_in_flow, credentials, project):
        result = run_in_flow(
            get_embedded_messages, email="new@example.com", credentials=credentials
        )
        assert result.placements == []

    @pytest.mark.parametrize(
        "bad",
        [
            pytest.param({}, id="no-user"),
            pytest.param({"email": "a@example.com", "placement_ids": [0]}, id="placement-0"),
            pytest.param({"email": "a@example.com", "platform": "OTT"}, id="platform"),
        ],
    )
    def test_rejects_invalid_input_before_sending(self, bad, credentials, sandbox, project):
        with pytest.raises(InputValidationError):
            get_embedded_messages.fn(**bad, credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []


class TestTrackEmbeddedClick:
    def test_records_one_click_event(self, run_in_flow, credentials, sandbox, project):
        message = ada(project)[0]
        result = run_in_flow(
            track_embedded_click,
            message_id=message["messageId"],
            email="ada@example.com",
            target_url="https://example.com/shop",
            button_identifier="shop",
            device_info=DEVICE,
            created_at=1_767_225_600,
            credentials=credentials,
        )
        assert result.code == "Success"
        [event] = embedded_events(project)
        assert (event["eventName"], event["campaignId"], event["buttonIdentifier"]) == (
            "embeddedClick",
            message["campaignId"],
            "shop",
        )
        [request] = sandbox.state.requests("ITERABLE_TRACK_EMBEDDED_CLICK", project_id=project.id)
        assert request.body == {
            "messageId": message["messageId"],
            "email": "ada@example.com",
            "targetUrl": "https://example.com/shop",
            "buttonIdentifier": "shop",
            "deviceInfo": DEVICE_WIRE,
            "createdAt": 1_767_225_600,
        }

    def test_a_message_of_another_user_is_refused(self, run_in_flow, credentials, project):
        message = ada(project)[0]
        users(project).add(User(email="bob@example.com", user_id=None))
        with pytest.raises(BadParams, match="Unknown embedded message"):
            run_in_flow(
                track_embedded_click,
                message_id=message["messageId"],
                email="bob@example.com",
                credentials=credentials,
            )
        assert embedded_events(project) == []

    def test_rejects_a_millisecond_timestamp_before_sending(self, credentials, sandbox, project):
        with pytest.raises(InputValidationError, match="created_at"):
            track_embedded_click.fn(
                message_id="m1",
                email="a@example.com",
                created_at=1_767_225_600_000,
                credentials=credentials,
            )
        assert sandbox.state.requests(project_id=project.id) == []


class TestTrackEmbeddedReceived:
    def test_records_receipt_but_not_for_proofs(self, run_in_flow, credentials, sandbox, project):
        real, proof = ada(project)[:2]
        proof["isProof"] = True
        for message in (real, proof):
            run_in_flow(
                track_embedded_received,
                message_id=message["messageId"],
                email="ada@example.com",
                device_info=DEVICE,
                credentials=credentials,
            )
        assert [(e["eventName"], e["messageId"]) for e in embedded_events(project)] == [
            ("embeddedReceived", real["messageId"])
        ]
        assert embedded_events(project)[0]["deviceInfo"] == DEVICE_WIRE
        requests = sandbox.state.requests("ITERABLE_TRACK_EMBEDDED_RECEIVED", project_id=project.id)
        assert [r.body["messageId"] for r in requests] == [real["messageId"], proof["messageId"]]

    def test_an_unknown_user_is_refused(self, run_in_flow, credentials, project):
        with pytest.raises(UnknownEmailError):
            run_in_flow(
                track_embedded_received,
                message_id="abc",
                email="ghost@example.com",
                credentials=credentials,
            )

    def test_rejects_an_incomplete_device_before_sending(self, credentials, sandbox, project):
        with pytest.raises(InputValidationError, match="device_info"):
            track_embedded_received.fn(
                message_id="m1",
                email="a@example.com",
                device_info={"deviceId": "dev-1", "platform": "iOS"},
                credentials=credentials,
            )
        assert sandbox.state.requests(project_id=project.id) == []


class TestTrackEmbeddedSession:
    def test_records_the_session_and_one_event_per_impression(
        self, run_in_flow, credentials, sandbox, project
    ):
        banner, shipping, _ = ada(project)
        result = run_in_flow(
            track_embedded_session,
            session=EmbeddedSession(id="s-1", start=1_767_225_600, end=1_767_225_660),
            device_info=DEVICE,
            email="ada@example.com",
            impressions=[
                EmbeddedImpression(
                    message_id=banner["messageId"],
                    placement_id=101,
                    display_count=2,
                    display_duration=12.5,
                ),
                EmbeddedImpression(message_id=shipping["messageId"], display_count=1),
            ],
            credentials=credentials,
        )
        assert result.code == "Success"
        recorded = embedded_events(project)
        assert [e["eventName"] for e in recorded] == [
            "embeddedSession",
            "embeddedImpression",
            "embeddedImpression",
        ]
        assert (recorded[0]["sessionStart"], recorded[0]["sessionEnd"]) == (
            1_767_225_600,
            1_767_225_660,
        )
        assert recorded[1]["displayDuration"] == 12.5
        [request] = sandbox.state.requests("ITERABLE_TRACK_EMBEDDED_SESSION", project_id=project.id)
        assert request.body["session"] == {
            "id": "s-1",
            "start": 1_767_225_600,
            "end": 1_767_225_660,
        }
        assert request.body["impressions"][0] == {
            "messageId": banner["messageId"],
            "placementId": 101,
            "displayCount": 2,
            "displayDuration": 12.5,
        }

    def test_takes_plain_dicts_as_the_prefect_form_sends_them(
        self, run_in_flow, credentials, sandbox, project
    ):
        ada(project)
        run_in_flow(
            track_embedded_session,
            session={"id": "s-2", "start": 10, "end": 20},
            device_info={"app_package_name": "web-shop", "device_id": "b-1", "platform": "Web"},
            email="ada@example.com",
            credentials=credentials,
        )
        [request] = sandbox.state.requests("ITERABLE_TRACK_EMBEDDED_SESSION", project_id=project.id)
        assert request.body["deviceInfo"] == {
            "appPackageName": "web-shop",
            "deviceId": "b-1",
            "platform": "Web",
        }
        assert [e["sessionId"] for e in embedded_events(project)] == ["s-2"]

    @pytest.mark.parametrize(
        "bad",
        [
            pytest.param({"session": {"id": "s", "start": 20, "end": 10}}, id="ends-before-start"),
            pytest.param({"session": {"id": "", "start": 1, "end": 2}}, id="empty-id"),
            pytest.param({"session": {"id": "s", "start": 1, "end": 2, "x": 1}}, id="unknown-key"),
            pytest.param(
                {"device_info": {"app_package_name": "a", "device_id": "d", "platform": "OTT"}},
                id="device-platform",
            ),
            pytest.param({"impressions": [{"display_count": -1, "message_id": "m"}]}, id="count"),
        ],
    )
    def test_rejects_invalid_input_before_sending(self, bad, credentials, sandbox, project):
        args = {
            "session": {"id": "s", "start": 1, "end": 2},
            "device_info": DEVICE,
            "email": "a@example.com",
        }
        with pytest.raises(InputValidationError):
            track_embedded_session.fn(**(args | bad), credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []
