"""Targeted sends, cancels and in-app queues, run in a real flow against the sandbox."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from prefect_iterable.api.errors import BadParams, InputValidationError, OutcomeUnknown
from prefect_iterable.blocks import IterableCredentials, MissingPermission
from prefect_iterable.sandbox.data import (
    User,
    messages,
    now_ms,
    record_message,
    templates,
    users,
)
from prefect_iterable.tasks.messaging import (
    cancel_email,
    cancel_in_app,
    cancel_push,
    cancel_web_push,
    cancel_whats_app,
    get_in_app_messages,
    get_web_in_app_messages,
    send_in_app,
    send_push,
    send_whats_app,
)
from tests.conftest import ALL_PERMISSIONS

SENDS = [
    pytest.param(send_in_app, "InApp", "ITERABLE_SEND_IN_APP", id="in-app"),
    pytest.param(send_push, "Push", "ITERABLE_SEND_PUSH", id="push"),
    pytest.param(send_whats_app, "WhatsApp", "ITERABLE_SEND_WHATS_APP", id="whats-app"),
]
CANCELS = [
    pytest.param(cancel_email, "Email", "ITERABLE_CANCEL_EMAIL", id="email"),
    pytest.param(cancel_in_app, "InApp", "ITERABLE_CANCEL_IN_APP", id="in-app"),
    pytest.param(cancel_push, "Push", "ITERABLE_CANCEL_PUSH", id="push"),
    pytest.param(cancel_web_push, "WebPush", "ITERABLE_CANCEL_WEB_PUSH", id="web-push"),
    pytest.param(cancel_whats_app, "WhatsApp", "ITERABLE_CANCEL_WHATS_APP", id="whats-app"),
]
IN_APP_READS = [
    pytest.param(get_in_app_messages, "ITERABLE_GET_IN_APP_MESSAGES", id="mobile"),
    pytest.param(get_web_in_app_messages, "ITERABLE_GET_WEB_IN_APP_MESSAGES", id="web"),
]


def add_campaign(project, medium: str, **fields: Any) -> int:
    """An API-triggered campaign as the campaigns area stores it (activated unless told)."""
    campaign_id = project.next_id()
    project.area("campaigns", dict)[campaign_id] = {
        "id": campaign_id,
        "name": f"{medium} welcome",
        "campaignState": "Running",
        "templateId": project.next_id(),
        "messageMedium": medium,
        "type": "Triggered",
        **fields,
    }
    return campaign_id


def targets(project) -> list[dict[str, Any]]:
    return [m for m in messages(project) if m["kind"] == "target"]


def schedule(project, medium: str, campaign_id: int, email: str, *, sent: bool = False) -> int:
    """A targeted message in the log, as any area's send records it."""
    users(project).add(User(email=email, user_id=None))
    entry = record_message(
        project,
        kind="target",
        medium=medium,
        campaignId=campaign_id,
        templateId=None,
        email=email,
        userId=None,
        status="sent" if sent else "scheduled",
        sendAt=now_ms() + (-1000 if sent else 86_400_000),
        dataFields={},
    )
    return int(entry["scheduledMessageId"])


# ---- targeted sends --------------------------------------------------------------------------


@pytest.mark.parametrize("task, medium, action", SENDS)
class TestTargetSends:
    def test_sends_now_and_records_the_message_once(
        self, task, medium, action, run_in_flow, credentials, sandbox, project
    ):
        campaign_id = add_campaign(project, medium)
        result = run_in_flow(
            task,
            campaign_id=campaign_id,
            recipient_email="ada@example.com",
            data_fields={"firstName": "Ada"},
            credentials=credentials,
        )
        [sent] = targets(project)
        assert result.code == "Success"
        assert result.scheduled_message_id == sent["scheduledMessageId"]
        assert (sent["medium"], sent["campaignId"], sent["email"], sent["status"]) == (
            medium,
            campaign_id,
            "ada@example.com",
            "sent",
        )
        assert sent["templateId"] == project.area("campaigns", dict)[campaign_id]["templateId"]
        [request] = sandbox.state.requests(action, project_id=project.id)
        assert request.method == "POST"
        assert request.body == {
            "campaignId": campaign_id,
            "recipientEmail": "ada@example.com",
            "dataFields": {"firstName": "Ada"},
        }
        assert users(project).find(email="ada@example.com") is not None

    def test_sends_both_recipient_identifiers(
        self, task, medium, action, run_in_flow, credentials, sandbox, project
    ):
        campaign_id = add_campaign(project, medium)
        run_in_flow(
            task,
            campaign_id=campaign_id,
            recipient_email="ada@example.com",
            recipient_user_id="u-ada",
            credentials=credentials,
        )
        [request] = sandbox.state.requests(action, project_id=project.id)
        assert request.status == 200
        assert (request.body["recipientEmail"], request.body["recipientUserId"]) == (
            "ada@example.com",
            "u-ada",
        )

    @pytest.mark.parametrize(
        "spelling",
        [
            "2099-08-04 08:04:37 +0000",
            "2099-08-04 08:04:37 +00:00",
            "2099-08-04 08:04:37",
            "2099-08-04T08:04:37Z",
            "2099-08-04T10:04:37+02:00",
        ],
    )
    def test_send_at_in_iterables_spellings(
        self, task, medium, action, run_in_flow, credentials, sandbox, project, spelling
    ):
        campaign_id = add_campaign(project, medium)
        when = datetime.now(timezone.utc) + timedelta(days=30)
        spelling = spelling.replace("2099-08-04", when.strftime("%Y-%m-%d"))
        run_in_flow(
            task,
            campaign_id=campaign_id,
            recipient_email="ada@example.com",
            send_at=spelling,
            credentials=credentials,
        )
        [request] = sandbox.state.requests(action, project_id=project.id)
        assert request.body["sendAt"] == when.strftime("%Y-%m-%d") + " 08:04:37"
        assert request.status == 200

    def test_a_future_send_at_schedules_the_message(
        self, task, medium, action, run_in_flow, credentials, sandbox, project
    ):
        campaign_id = add_campaign(project, medium)
        when = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=2)
        run_in_flow(
            task,
            campaign_id=campaign_id,
            recipient_email="ada@example.com",
            send_at=when,
            credentials=credentials,
        )
        [request] = sandbox.state.requests(action, project_id=project.id)
        assert request.body["sendAt"] == when.strftime("%Y-%m-%d %H:%M:%S")
        [scheduled] = targets(project)
        assert scheduled["status"] == "scheduled"
        assert scheduled["sendAt"] == int(when.timestamp() * 1000)

    def test_a_campaign_of_another_medium_is_refused(
        self, task, medium, action, run_in_flow, credentials, project
    ):
        campaign_id = add_campaign(project, "Email")
        with pytest.raises(BadParams, match="not " + medium):
            run_in_flow(
                task,
                campaign_id=campaign_id,
                recipient_email="a@example.com",
                credentials=credentials,
            )
        assert targets(project) == []

    def test_needs_the_send_permission(
        self, task, medium, action, run_in_flow, sandbox_server, api_key, sandbox, project
    ):
        read_write = IterableCredentials(api_key=api_key, base_url=sandbox_server.url)
        with pytest.raises(MissingPermission, match="'send'"):
            run_in_flow(
                task,
                campaign_id=add_campaign(project, medium),
                recipient_email="a@example.com",
                credentials=read_write,
            )
        assert sandbox.state.requests(project_id=project.id) == []

    @pytest.mark.parametrize(
        "bad",
        [
            pytest.param({"campaign_id": 0, "recipient_email": "a@example.com"}, id="campaign-0"),
            pytest.param({"campaign_id": 5}, id="no-recipient"),
            pytest.param({"campaign_id": 5, "recipient_email": "not-an-email"}, id="bad-email"),
            pytest.param(
                {
                    "campaign_id": 5,
                    "recipient_email": "a@example.com",
                    "send_at": datetime.now(timezone.utc) + timedelta(days=366),
                },
                id="send-at-beyond-a-year",
            ),
        ],
    )
    def test_rejects_invalid_input_before_sending(
        self, task, medium, action, bad, credentials, sandbox, project
    ):
        with pytest.raises(InputValidationError):
            task.fn(**bad, credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []


class TestSendInApp:
    def test_a_past_send_at_sends_at_once(self, run_in_flow, credentials, project):
        campaign_id = add_campaign(project, "InApp")
        run_in_flow(
            send_in_app,
            campaign_id=campaign_id,
            recipient_email="ada@example.com",
            send_at=datetime(2020, 1, 1),
            credentials=credentials,
        )
        assert [m["status"] for m in targets(project)] == ["sent"]

    def test_an_inactive_campaign_is_refused(self, run_in_flow, credentials, project):
        campaign_id = add_campaign(project, "InApp", campaignState="Ready")
        with pytest.raises(BadParams, match="activate"):
            run_in_flow(
                send_in_app,
                campaign_id=campaign_id,
                recipient_email="a@example.com",
                credentials=credentials,
            )
        assert targets(project) == []

    def test_sends_by_user_id_in_a_user_id_project(
        self, run_in_flow, sandbox_server, sandbox, make_project
    ):
        key, userid_project = make_project(identity="userId")
        creds = IterableCredentials(
            api_key=key, base_url=sandbox_server.url, permissions=ALL_PERMISSIONS
        )
        campaign_id = add_campaign(userid_project, "InApp")
        run_in_flow(
            send_in_app, campaign_id=campaign_id, recipient_user_id="user-42", credentials=creds
        )
        assert [(m["userId"], m["email"]) for m in targets(userid_project)] == [("user-42", None)]
        [request] = sandbox.state.requests("ITERABLE_SEND_IN_APP", project_id=userid_project.id)
        assert request.body == {"campaignId": campaign_id, "recipientUserId": "user-42"}


class TestSendPush:
    def test_passes_metadata_and_refuses_a_repeat_when_asked(
        self, run_in_flow, credentials, sandbox, project
    ):
        campaign_id = add_campaign(project, "Push")
        run_in_flow(
            send_push,
            campaign_id=campaign_id,
            recipient_email="ada@example.com",
            metadata={"orderId": "A-1"},
            credentials=credentials,
        )
        with pytest.raises(BadParams, match="allowRepeatMarketingSends"):
            run_in_flow(
                send_push,
                campaign_id=campaign_id,
                recipient_email="ada@example.com",
                allow_repeat_marketing_sends=False,
                credentials=credentials,
            )
        bodies = [
            r.body for r in sandbox.state.requests("ITERABLE_SEND_PUSH", project_id=project.id)
        ]
        assert bodies[0]["metadata"] == {"orderId": "A-1"}
        assert bodies[1]["allowRepeatMarketingSends"] is False
        assert [m["metadata"] for m in targets(project)] == [{"orderId": "A-1"}]

    def test_a_lost_answer_is_an_unknown_outcome_and_is_not_resent(
        self, run_in_flow, sandbox_server, api_key, sandbox, project
    ):
        impatient = IterableCredentials(
            api_key=api_key, base_url=sandbox_server.url, permissions=ALL_PERMISSIONS, timeout=1.0
        )
        sandbox.inject("ITERABLE_SEND_PUSH", "delay", seconds=2.5)
        with pytest.raises(OutcomeUnknown):
            run_in_flow(
                send_push,
                campaign_id=add_campaign(project, "Push"),
                recipient_email="ada@example.com",
                credentials=impatient,
            )
        assert len(sandbox.state.requests("ITERABLE_SEND_PUSH", project_id=project.id)) == 1
        # The sandbox did act before its answer was lost: exactly why a retry would duplicate.
        assert len(targets(project)) == 1


class TestSendWhatsApp:
    def test_a_finished_blast_campaign_is_refused(self, run_in_flow, credentials, project):
        campaign_id = add_campaign(project, "WhatsApp", type="Blast", campaignState="Finished")
        with pytest.raises(BadParams, match="API-triggered"):
            run_in_flow(
                send_whats_app,
                campaign_id=campaign_id,
                recipient_email="a@example.com",
                credentials=credentials,
            )


# ---- cancels ---------------------------------------------------------------------------------


@pytest.mark.parametrize("task, medium, action", CANCELS)
class TestCancels:
    def test_cancels_a_scheduled_message_by_its_id(
        self, task, medium, action, run_in_flow, credentials, sandbox, project
    ):
        message_id = schedule(project, medium, add_campaign(project, medium), "ada@example.com")
        result = run_in_flow(task, scheduled_message_id=message_id, credentials=credentials)
        assert result.code == "Success"
        assert [m["status"] for m in targets(project)] == ["cancelled"]
        [request] = sandbox.state.requests(action, project_id=project.id)
        assert (request.method, request.body) == ("POST", {"scheduledMessageId": message_id})

    def test_cancels_by_campaign_and_email(
        self, task, medium, action, run_in_flow, credentials, sandbox, project
    ):
        campaign_id = add_campaign(project, medium)
        schedule(project, medium, campaign_id, "ada@example.com")
        schedule(project, medium, campaign_id, "bob@example.com")
        run_in_flow(task, campaign_id=campaign_id, email="ada@example.com", credentials=credentials)
        assert {m["email"]: m["status"] for m in targets(project)} == {
            "ada@example.com": "cancelled",
            "bob@example.com": "scheduled",
        }
        [request] = sandbox.state.requests(action, project_id=project.id)
        assert request.body == {"campaignId": campaign_id, "email": "ada@example.com"}

    def test_sends_both_identifiers_of_the_user(
        self, task, medium, action, run_in_flow, credentials, sandbox, project
    ):
        campaign_id = add_campaign(project, medium)
        schedule(project, medium, campaign_id, "ada@example.com")
        run_in_flow(
            task,
            campaign_id=campaign_id,
            email="ada@example.com",
            user_id="u1",
            credentials=credentials,
        )
        [request] = sandbox.state.requests(action, project_id=project.id)
        assert request.body == {
            "campaignId": campaign_id,
            "email": "ada@example.com",
            "userId": "u1",
        }

    def test_cancelling_a_sent_message_fails(
        self, task, medium, action, run_in_flow, credentials, project
    ):
        message_id = schedule(
            project, medium, add_campaign(project, medium), "ada@example.com", sent=True
        )
        with pytest.raises(BadParams, match="already sent"):
            run_in_flow(task, scheduled_message_id=message_id, credentials=credentials)
        assert [m["status"] for m in targets(project)] == ["sent"]

    def test_cancelling_an_unknown_message_fails(
        self, task, medium, action, run_in_flow, credentials, project
    ):
        with pytest.raises(BadParams):
            run_in_flow(task, scheduled_message_id=987_654, credentials=credentials)

    @pytest.mark.parametrize(
        "bad",
        [
            pytest.param({}, id="nothing"),
            pytest.param({"campaign_id": 7}, id="campaign-without-user"),
            pytest.param({"email": "a@example.com"}, id="user-without-campaign"),
            pytest.param({"scheduled_message_id": 9, "campaign_id": 7}, id="id-and-campaign"),
            pytest.param({"scheduled_message_id": 0}, id="id-0"),
        ],
    )
    def test_rejects_an_incomplete_target_before_sending(
        self, task, medium, action, bad, credentials, sandbox, project
    ):
        with pytest.raises(InputValidationError):
            task.fn(**bad, credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []


class TestCancelPush:
    def test_a_scheduled_push_can_be_cancelled_once(self, run_in_flow, credentials, project):
        campaign_id = add_campaign(project, "Push")
        sent = run_in_flow(
            send_push,
            campaign_id=campaign_id,
            recipient_email="ada@example.com",
            send_at=datetime.now(timezone.utc) + timedelta(hours=3),
            credentials=credentials,
        )
        run_in_flow(
            cancel_push, scheduled_message_id=sent.scheduled_message_id, credentials=credentials
        )
        with pytest.raises(BadParams, match="already cancelled"):
            run_in_flow(
                cancel_push, scheduled_message_id=sent.scheduled_message_id, credentials=credentials
            )

    def test_another_mediums_message_is_not_found(self, run_in_flow, credentials, project):
        message_id = schedule(project, "Email", add_campaign(project, "Email"), "ada@example.com")
        with pytest.raises(BadParams, match="No scheduled Push message"):
            run_in_flow(cancel_push, scheduled_message_id=message_id, credentials=credentials)
        assert [m["status"] for m in targets(project)] == ["scheduled"]


# ---- in-app queues ---------------------------------------------------------------------------


def in_app_campaign(project, **fields: Any) -> int:
    campaign_id = add_campaign(project, "InApp", **fields)
    template_id = project.area("campaigns", dict)[campaign_id]["templateId"]
    templates(project)[template_id] = {
        "templateId": template_id,
        "name": "welcome",
        "messageMedium": "InApp",
        "html": "<p>Hello {{firstName}}</p>",
        "inboxMetadata": {"title": "Welcome", "subtitle": "Say hi"},
        "expirationDuration": "now+30d",
    }
    return campaign_id


@pytest.mark.parametrize("task, action", IN_APP_READS)
class TestInAppReads:
    def test_returns_the_users_delivered_messages_newest_first(
        self, task, action, run_in_flow, credentials, client, sandbox, project
    ):
        users(project).add(
            User(email="ada@example.com", user_id=None, data_fields={"firstName": "Ada"})
        )
        first, second = in_app_campaign(project), in_app_campaign(project)
        client.call("ITERABLE_SEND_IN_APP", campaign_id=first, recipient_email="ada@example.com")
        client.call(
            "ITERABLE_SEND_IN_APP",
            campaign_id=second,
            recipient_email="ada@example.com",
            data_fields={"firstName": "Countess"},
        )
        later = (datetime.now(timezone.utc) + timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
        client.call(
            "ITERABLE_SEND_IN_APP",
            campaign_id=first,
            recipient_email="ada@example.com",
            send_at=later,
        )
        result = run_in_flow(
            task, count=5, email="ada@example.com", sdk_version="6.2.17", credentials=credentials
        )
        assert [m.campaign_id for m in result.in_app_messages] == [second, first]
        newest = result.in_app_messages[0]
        assert newest.content.html == "<p>Hello Countess</p>"
        assert newest.inbox_metadata.title == "Welcome"
        assert newest.save_to_inbox is True
        assert newest.expires_at - newest.created_at == 30 * 86_400_000
        [request] = sandbox.state.requests(action, project_id=project.id)
        assert request.method == "GET"
        assert request.query == {
            "count": ["5"],
            "email": ["ada@example.com"],
            "SDKVersion": ["6.2.17"],
        }

    def test_sends_both_identifiers(self, task, action, run_in_flow, credentials, sandbox, project):
        run_in_flow(task, count=5, email="a@example.com", user_id="u", credentials=credentials)
        [request] = sandbox.state.requests(action, project_id=project.id)
        assert (request.query["email"], request.query["userId"]) == (["a@example.com"], ["u"])
        assert request.status == 200

    def test_count_caps_the_answer(self, task, action, run_in_flow, credentials, client, project):
        campaign_id = in_app_campaign(project)
        for _ in range(3):
            client.call(
                "ITERABLE_SEND_IN_APP", campaign_id=campaign_id, recipient_email="a@example.com"
            )
        result = run_in_flow(task, count=2, email="a@example.com", credentials=credentials)
        assert len(result.in_app_messages) == 2

    @pytest.mark.parametrize(
        "bad",
        [
            pytest.param({"count": 0, "email": "a@example.com"}, id="count-0"),
            pytest.param({"count": 101, "email": "a@example.com"}, id="count-101"),
            pytest.param({"count": 5}, id="no-user"),
            pytest.param({"count": 5, "user_id": "u", "sdk_version": "latest"}, id="sdk-version"),
        ],
    )
    def test_rejects_invalid_input_before_sending(
        self, task, action, bad, credentials, sandbox, project
    ):
        with pytest.raises(InputValidationError):
            task.fn(**bad, credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []


class TestGetInAppMessages:
    def test_app_specific_messages_need_their_platform_and_package(
        self, run_in_flow, credentials, client, sandbox, project
    ):
        everywhere = in_app_campaign(project)
        ios_only = in_app_campaign(project, platform="iOS", packageName="com.example.shop")
        for campaign_id in (everywhere, ios_only):
            client.call(
                "ITERABLE_SEND_IN_APP", campaign_id=campaign_id, recipient_email="a@example.com"
            )
        plain = run_in_flow(
            get_in_app_messages, count=10, email="a@example.com", credentials=credentials
        )
        in_app = run_in_flow(
            get_in_app_messages,
            count=10,
            email="a@example.com",
            platform="iOS",
            package_name="com.example.shop",
            credentials=credentials,
        )
        assert [m.campaign_id for m in plain.in_app_messages] == [everywhere]
        assert {m.campaign_id for m in in_app.in_app_messages} == {everywhere, ios_only}
        last = sandbox.state.requests("ITERABLE_GET_IN_APP_MESSAGES", project_id=project.id)[-1]
        assert last.query["platform"] == ["iOS"]
        assert last.query["packageName"] == ["com.example.shop"]

    def test_rejects_an_unknown_platform(self, credentials, sandbox, project):
        with pytest.raises(InputValidationError, match="platform"):
            get_in_app_messages.fn(
                count=5, email="a@example.com", platform="Windows", credentials=credentials
            )
        assert sandbox.state.requests(project_id=project.id) == []


class TestGetWebInAppMessages:
    def test_web_app_messages_need_their_package(self, run_in_flow, credentials, client, project):
        web_only = in_app_campaign(project, platform="Web", packageName="shop-web")
        app_only = in_app_campaign(project, platform="Android", packageName="shop-web")
        for campaign_id in (web_only, app_only):
            client.call(
                "ITERABLE_SEND_IN_APP", campaign_id=campaign_id, recipient_email="a@example.com"
            )
        result = run_in_flow(
            get_web_in_app_messages,
            count=10,
            email="a@example.com",
            package_name="shop-web",
            credentials=credentials,
        )
        assert [m.campaign_id for m in result.in_app_messages] == [web_only]
        assert result.in_app_messages[0].message_type == "Web"

    def test_an_unknown_user_has_no_messages(self, run_in_flow, credentials, project):
        result = run_in_flow(
            get_web_in_app_messages, count=10, email="nobody@example.com", credentials=credentials
        )
        assert result.in_app_messages == []
