"""Event tasks, run in a real flow against the sandbox."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from prefect_iterable.api.errors import ForgottenUserError, InputValidationError, UnknownUserIdError
from prefect_iterable.sandbox.data import User, blocked_event_names, events, identifier_hash, users
from prefect_iterable.tasks.events import get_user_events, track_event, track_events_bulk


class TestTrackEvent:
    def test_tracks_an_event_and_creates_the_user(self, run_in_flow, credentials, sandbox, project):
        result = run_in_flow(
            track_event,
            "signedIn",
            email="ann@example.com",
            event_id="login-1",
            created_at=1_700_000_000,
            data_fields={"device": "ios"},
            campaign_id=12,
            credentials=credentials,
        )
        assert (result.code, result.event_id) == ("Success", "login-1")
        stored = events(project)["login-1"]
        assert (
            stored["eventName"],
            stored["email"],
            stored["createdAt"],
            stored["dataFields"],
        ) == (
            "signedIn",
            "ann@example.com",
            1_700_000_000,
            {"device": "ios"},
        )
        assert users(project).find(email="ann@example.com") is not None
        [request] = sandbox.state.requests("ITERABLE_TRACK_EVENT", project_id=project.id)
        assert (request.method, request.path, request.body) == (
            "POST",
            "/api/events/track",
            {
                "eventName": "signedIn",
                "email": "ann@example.com",
                "id": "login-1",
                "createdAt": 1_700_000_000,
                "campaignId": 12,
                "dataFields": {"device": "ios"},
            },
        )

    def test_the_same_id_twice_is_stored_once(self, run_in_flow, credentials, project):
        users(project).add(User(email="u1@example.com", user_id="u-1"))
        for plan in ("silver", "gold"):
            run_in_flow(
                track_event,
                "upgraded",
                user_id="u-1",
                event_id="order-9",
                data_fields={"plan": plan},
                credentials=credentials,
            )
        assert [e["dataFields"] for e in events(project).values()] == [{"plan": "gold"}]

    def test_without_an_id_iterable_generates_one(self, run_in_flow, credentials, project):
        before = int(time.time())
        result = run_in_flow(
            track_event, "visited", email="bo@example.com", credentials=credentials
        )
        assert result.event_id and result.event_id in events(project)
        assert events(project)[result.event_id]["createdAt"] >= before  # seconds, default now

    def test_a_datetime_is_sent_as_epoch_seconds(self, run_in_flow, credentials, sandbox, project):
        when = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
        run_in_flow(
            track_event, "x", email="cy@example.com", created_at=when, credentials=credentials
        )
        [request] = sandbox.state.requests("ITERABLE_TRACK_EVENT", project_id=project.id)
        assert request.body["createdAt"] == int(when.timestamp())

    def test_sends_both_identifiers(self, run_in_flow, credentials, sandbox, project):
        run_in_flow(track_event, "x", email="a@example.com", user_id="u-1", credentials=credentials)
        [request] = sandbox.state.requests("ITERABLE_TRACK_EVENT", project_id=project.id)
        assert (request.body["email"], request.body["userId"], request.status) == (
            "a@example.com",
            "u-1",
            200,
        )

    @pytest.mark.parametrize(
        "spelling", ["2023-11-14 22:13:20 +0000", "2023-11-14T22:13:20Z", "2023-11-14 22:13:20"]
    )
    def test_created_at_takes_a_date_string_and_sends_epoch_seconds(
        self, run_in_flow, credentials, sandbox, project, spelling
    ):
        run_in_flow(
            track_event, "x", email="a@example.com", created_at=spelling, credentials=credentials
        )
        [request] = sandbox.state.requests("ITERABLE_TRACK_EVENT", project_id=project.id)
        assert request.body["createdAt"] == 1_700_000_000

    @pytest.mark.parametrize(
        "arguments",
        [
            {},  # neither
            {"email": "a@example.com", "created_at": 1_700_000_000_000},  # milliseconds
            {"email": "a@example.com", "event_id": "x" * 513},  # over 512 bytes
            {"email": "a@example.com", "created_at": -1},
        ],
    )
    def test_rejects_bad_input_before_sending(
        self, run_in_flow, credentials, sandbox, project, arguments
    ):
        with pytest.raises(InputValidationError):
            track_event.fn("x", **arguments, credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []

    def test_an_unknown_user_id_cannot_create_a_user_in_an_email_project(
        self, run_in_flow, credentials, project
    ):
        with pytest.raises(UnknownUserIdError):
            run_in_flow(track_event, "x", user_id="stranger", credentials=credentials)
        assert events(project) == {}

    def test_a_forgotten_user_is_refused(self, run_in_flow, credentials, project):
        users(project).forgotten_emails.add(identifier_hash("gone@example.com"))
        with pytest.raises(ForgottenUserError):
            run_in_flow(track_event, "x", email="gone@example.com", credentials=credentials)
        assert events(project) == {}


class TestTrackEventsBulk:
    def test_tracks_every_event(self, run_in_flow, credentials, sandbox, project):
        users(project).add(User(email="u2@example.com", user_id="u-2"))
        result = run_in_flow(
            track_events_bulk,
            [
                {"event_name": "a", "email": "a@example.com", "event_id": "e-1"},
                {
                    "event_name": "b",
                    "user_id": "u-2",
                    "event_id": "e-2",
                    "created_at": 1_700_000_000,
                },
            ],
            credentials=credentials,
        )
        assert (result.success_count, result.ok) == (2, True)
        assert {k: v["eventName"] for k, v in events(project).items()} == {"e-1": "a", "e-2": "b"}
        [request] = sandbox.state.requests("ITERABLE_TRACK_EVENTS_BULK", project_id=project.id)
        assert request.body == {
            "events": [
                {"eventName": "a", "email": "a@example.com", "id": "e-1"},
                {"eventName": "b", "userId": "u-2", "id": "e-2", "createdAt": 1_700_000_000},
            ]
        }

    def test_reports_refused_records_and_tracks_the_rest(self, run_in_flow, credentials, project):
        users(project).forgotten_user_ids.add(identifier_hash("gone"))
        blocked_event_names(project).add("spam")
        result = run_in_flow(
            track_events_bulk,
            [
                {"event_name": "ok", "email": "ok@example.com"},
                {"event_name": "ok", "user_id": "gone"},
                {"event_name": "spam", "email": "ok@example.com"},
            ],
            credentials=credentials,
        )
        assert (result.success_count, result.fail_count) == (1, 2)
        assert sorted((r.identifier, r.kind, r.reason) for r in result.rejected) == [
            ("gone", "userId", "forgottenUserIds"),
            ("spam", "eventName", "disallowedEventNames"),
        ]
        assert [e["email"] for e in events(project).values()] == ["ok@example.com"]

    @pytest.mark.parametrize(
        "batch",
        [
            [],
            [{"event_name": "", "email": "a@example.com"}],
            [{"event_name": "a"}],
            [{"event_name": "a", "email": "a@example.com", "extra": 1}],
        ],
    )
    def test_rejects_bad_events_before_sending(
        self, run_in_flow, credentials, sandbox, project, batch
    ):
        with pytest.raises(InputValidationError, match="events"):
            track_events_bulk.fn(batch, credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []


class TestGetUserEvents:
    def test_returns_the_newest_events_first(
        self, run_in_flow, credentials, client, sandbox, project
    ):
        users(project).add(User(email="dee@example.com", user_id="u-dee"))
        for n, at in enumerate([1_700_000_100, 1_700_000_300, 1_700_000_200]):
            client.call(
                "ITERABLE_TRACK_EVENT",
                event_name=f"step{n}",
                email="dee@example.com",
                created_at=at,
            )
        client.call("ITERABLE_TRACK_EVENT", event_name="other", email="other@example.com")
        result = run_in_flow(get_user_events, "u-dee", limit=2, credentials=credentials)
        assert [e.event_name for e in result.events] == ["step1", "step2"]
        assert result.events[0].created_at == "2023-11-14 22:18:20 +00:00"
        [request] = sandbox.state.requests("ITERABLE_GET_USER_EVENTS", project_id=project.id)
        assert (request.path, request.query) == ("/api/events/byUserId/u-dee", {"limit": ["2"]})

    def test_an_unknown_user_has_no_events(self, run_in_flow, credentials, project):
        assert run_in_flow(get_user_events, "nobody", credentials=credentials).events == []

    @pytest.mark.parametrize("limit", [0, 201])
    def test_rejects_a_limit_outside_1_to_200_before_sending(
        self, run_in_flow, credentials, sandbox, project, limit
    ):
        with pytest.raises(InputValidationError, match="limit"):
            get_user_events.fn("u-1", limit=limit, credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []
