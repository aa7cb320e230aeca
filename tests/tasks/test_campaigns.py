"""Campaign tasks, run in a real flow against the sandbox: each state rule of a campaign's life."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from prefect_iterable.api.errors import BadParams, InputValidationError, NotFound, PermissionDenied
from prefect_iterable.api.models import ApiResponse
from prefect_iterable.sandbox.data import (
    campaigns,
    experiments,
    messages,
    record_message,
    templates,
)
from prefect_iterable.tasks.campaigns import (
    RecipientTimeZone,
    abort_campaign,
    activate_triggered_campaign,
    archive_campaigns,
    cancel_campaign,
    create_campaign,
    deactivate_triggered_campaign,
    get_campaign,
    get_campaign_metrics,
    get_experiment_metrics,
    iter_campaigns,
    iter_recurring_child_campaigns,
    list_campaigns,
    list_recurring_child_campaigns,
    schedule_campaign,
    send_campaign,
    trigger_campaign,
)
from tests._seeds import (
    AUDIENCE_ID,
    TEMPLATE_ID,
    blast,
    campaign_state,
    email_list,
    seeded_campaign,
    triggered,
)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _no_requests(sandbox, project) -> None:
    assert sandbox.state.requests(project_id=project.id) == []


@pytest.fixture
def featureless(make_project, credentials_for):
    """A project without Iterable's gated features, and credentials for it."""
    key, other = make_project(features=[])
    return other, credentials_for(key)


class TestListCampaigns:
    def test_pages_and_sorts(self, run_in_flow, credentials, sandbox, project):
        made = [seeded_campaign(project, name=n)["id"] for n in ("b", "c", "a")]
        page = run_in_flow(list_campaigns, page=1, page_size=2, sort="-id", credentials=credentials)
        assert [c.id for c in page.campaigns] == sorted(made, reverse=True)[:2]
        assert page.total_campaigns_count == 3
        assert "page=2" in page.next_page_url
        (request,) = sandbox.state.requests("ITERABLE_LIST_CAMPAIGNS", project_id=project.id)
        assert (request.method, request.path) == ("GET", "/api/campaigns")
        assert request.query == {"page": ["1"], "pageSize": ["2"], "sort": ["-id"]}

    def test_filters_by_state_and_hides_archived(self, run_in_flow, credentials, project):
        ready = seeded_campaign(project, "Ready")["id"]
        scheduled = seeded_campaign(project, "Scheduled", startAt=2_000_000_000_000)["id"]
        archived = seeded_campaign(project, "Archived")["id"]
        default = run_in_flow(list_campaigns, page=1, page_size=50, credentials=credentials)
        assert archived not in [c.id for c in default.campaigns]
        assert ready in [c.id for c in default.campaigns]
        only = run_in_flow(
            list_campaigns,
            page=1,
            page_size=50,
            campaign_state=["Archived"],
            credentials=credentials,
        )
        assert [c.id for c in only.campaigns] == [archived]
        both = run_in_flow(
            list_campaigns,
            page=1,
            page_size=50,
            campaign_state=["Ready", "Scheduled"],
            credentials=credentials,
        )
        assert [c.id for c in both.campaigns] == [ready, scheduled]

    def test_rejects_a_page_size_over_1000(self, run_in_flow, credentials, sandbox, project):
        with pytest.raises(InputValidationError, match="page_size"):
            list_campaigns.fn(page=1, page_size=1001, credentials=credentials)
        with pytest.raises(InputValidationError, match="sort"):
            list_campaigns.fn(sort="size", credentials=credentials)
        with pytest.raises(InputValidationError, match="campaign_state"):
            list_campaigns.fn(campaign_state=["Paused"], credentials=credentials)
        _no_requests(sandbox, project)

    def test_iter_campaigns_walks_every_page(self, credentials, sandbox, project):
        made = [seeded_campaign(project)["id"] for _ in range(5)]
        seen = [c.id for c in iter_campaigns(credentials, page_size=2)]
        assert seen == made
        requests = sandbox.state.requests("ITERABLE_LIST_CAMPAIGNS", project_id=project.id)
        assert [(r.query["page"], r.query["pageSize"]) for r in requests] == [
            (["1"], ["2"]),
            (["2"], ["2"]),
            (["3"], ["2"]),
        ]


class TestGetCampaign:
    def test_returns_the_campaign(
        self, run_in_flow, credentials, client, sandbox, project, template, audience
    ):
        campaign_id = blast(client)
        campaign = run_in_flow(get_campaign, campaign_id, credentials=credentials)
        assert (campaign.id, campaign.type, campaign.campaign_state) == (
            campaign_id,
            "Blast",
            "Ready",
        )
        assert campaign.list_ids == [AUDIENCE_ID] and campaign.message_medium == "Email"
        (request,) = sandbox.state.requests("ITERABLE_GET_CAMPAIGN", project_id=project.id)
        assert request.path == f"/api/campaigns/{campaign_id}"

    def test_unknown_campaign_is_not_found(self, run_in_flow, credentials):
        with pytest.raises(NotFound):
            run_in_flow(get_campaign, 999_999, credentials=credentials)

    def test_rejects_a_non_positive_id(self, run_in_flow, credentials, sandbox, project):
        with pytest.raises(InputValidationError, match="campaign_id"):
            get_campaign.fn(0, credentials=credentials)
        _no_requests(sandbox, project)


class TestCreateCampaign:
    def test_schedules_a_blast_by_default(
        self, run_in_flow, credentials, sandbox, project, template, audience
    ):
        send_at = (_now() + timedelta(days=3)).replace(microsecond=0)
        created = run_in_flow(
            create_campaign,
            name="Spring",
            template_id=TEMPLATE_ID,
            list_ids=[AUDIENCE_ID],
            send_at=send_at,
            label_ids=[1, 2],
            credentials=credentials,
        )
        campaign = campaigns(project)[created.campaign_id]
        assert campaign["campaignState"] == "Scheduled"
        assert campaign["startAt"] == int(send_at.timestamp() * 1000)
        assert campaign["labels"] == ["Newsletter", "Promotion"]
        # The campaign sends its own copy of the template, as in Iterable.
        copy = templates(project)[campaign["templateId"]]
        assert campaign["templateId"] != TEMPLATE_ID
        assert (copy["messageMedium"], copy["templateType"], copy["campaignId"]) == (
            "Email",
            "Blast",
            created.campaign_id,
        )
        (request,) = sandbox.state.requests("ITERABLE_CREATE_CAMPAIGN", project_id=project.id)
        assert request.body["sendAt"] == send_at.strftime("%Y-%m-%d %H:%M:%S")
        assert request.body["listIds"] == [AUDIENCE_ID] and request.body["labelIds"] == [1, 2]

    def test_unscheduled_blast_is_ready_and_bakes_data_fields(
        self, run_in_flow, credentials, project, template, audience
    ):
        created = run_in_flow(
            create_campaign,
            name="Spring",
            template_id=TEMPLATE_ID,
            list_ids=[AUDIENCE_ID],
            schedule_send=False,
            data_fields={"city": "Lyon"},
            credentials=credentials,
        )
        campaign = campaigns(project)[created.campaign_id]
        assert campaign["campaignState"] == "Ready" and "startAt" not in campaign
        copy = templates(project)[campaign["templateId"]]
        assert copy["subject"] == "Hello from Lyon"
        assert copy["localeContent"]["fr"]["subject"] == "Bonjour de Lyon"
        assert template["subject"] == "Hello from [[city]]"

    def test_without_lists_creates_a_ready_triggered_campaign(
        self, run_in_flow, credentials, project, template
    ):
        created = run_in_flow(
            create_campaign, name="Welcome", template_id=TEMPLATE_ID, credentials=credentials
        )
        campaign = campaigns(project)[created.campaign_id]
        assert (campaign["type"], campaign["campaignState"], campaign["listIds"]) == (
            "Triggered",
            "Ready",
            [],
        )

    def test_rejects_bad_input_before_sending(self, run_in_flow, credentials, sandbox, project):
        with pytest.raises(InputValidationError, match="21 days"):
            create_campaign.fn(
                name="Late",
                template_id=TEMPLATE_ID,
                list_ids=[AUDIENCE_ID],
                send_at=_now() + timedelta(days=22),
                credentials=credentials,
            )
        with pytest.raises(InputValidationError, match="label_ids"):
            create_campaign.fn(
                name="Labels",
                template_id=TEMPLATE_ID,
                label_ids=list(range(1, 52)),
                credentials=credentials,
            )
        with pytest.raises(InputValidationError, match="start_time_zone"):
            create_campaign.fn(
                name="Zones",
                template_id=TEMPLATE_ID,
                start_time_zone="Mars/Olympus",
                credentials=credentials,
            )
        with pytest.raises(InputValidationError, match="send_mode"):
            create_campaign.fn(
                name="Mode", template_id=TEMPLATE_ID, send_mode="LocalTime", credentials=credentials
            )
        _no_requests(sandbox, project)


class TestScheduleCampaign:
    def test_schedules_a_ready_blast_in_recipient_time(
        self, run_in_flow, credentials, client, sandbox, project, template, audience
    ):
        campaign_id = blast(client)
        send_at = (_now() + timedelta(days=2)).replace(microsecond=0)
        result = run_in_flow(
            schedule_campaign,
            campaign_id,
            send_at,
            recipient_time_zone=RecipientTimeZone(
                start_time_zone="America/New_York", default_time_zone="Europe/Paris"
            ),
            credentials=credentials,
        )
        assert isinstance(result, ApiResponse) and result.code == "Success"
        assert campaign_state(project, campaign_id) == "Scheduled"
        assert campaigns(project)[campaign_id]["startAt"] == int(send_at.timestamp() * 1000)
        (request,) = sandbox.state.requests("ITERABLE_SCHEDULE_CAMPAIGN", project_id=project.id)
        assert request.path == f"/api/campaigns/{campaign_id}/schedule"
        assert request.body == {
            "sendAt": send_at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "recipientTimeZone": {
                "startTimeZone": "America/New_York",
                "defaultTimeZone": "Europe/Paris",
            },
        }

    def test_an_already_scheduled_campaign_cannot_be_scheduled_again(
        self, run_in_flow, credentials, client, project, template, audience
    ):
        campaign_id = blast(client)
        run_in_flow(
            schedule_campaign, campaign_id, _now() + timedelta(days=1), credentials=credentials
        )
        with pytest.raises(BadParams, match="Scheduled"):
            run_in_flow(
                schedule_campaign, campaign_id, _now() + timedelta(days=2), credentials=credentials
            )

    def test_rejects_more_than_7_days_ahead_and_bad_zones(
        self, run_in_flow, credentials, sandbox, project
    ):
        with pytest.raises(InputValidationError, match="7 days"):
            schedule_campaign.fn(5, _now() + timedelta(days=8), credentials=credentials)
        with pytest.raises(InputValidationError, match="time zone"):
            schedule_campaign.fn(
                5,
                _now() + timedelta(days=1),
                recipient_time_zone={"start_time_zone": "Nowhere", "default_time_zone": "UTC"},
                credentials=credentials,
            )
        _no_requests(sandbox, project)

    def test_forbidden_without_api_scheduling(self, run_in_flow, featureless, template):
        other, other_credentials = featureless
        campaign_id = seeded_campaign(other)["id"]
        with pytest.raises(PermissionDenied):
            run_in_flow(
                schedule_campaign,
                campaign_id,
                _now() + timedelta(days=1),
                credentials=other_credentials,
            )
        assert campaign_state(other, campaign_id) == "Ready"


class TestSendCampaign:
    def test_sends_one_message_per_list_member_minus_suppressed(
        self, run_in_flow, credentials, client, sandbox, project, template, audience
    ):
        email_list(project, 72, "bo@example.com", "dee@example.com")  # bo is in both lists
        email_list(project, 73, "cy@example.com")  # suppression
        campaign_id = blast(client, list_ids=[AUDIENCE_ID, 72], suppression_list_ids=[73])
        result = run_in_flow(send_campaign, campaign_id, credentials=credentials)
        assert result.code == "Success"
        sent = [m for m in messages(project) if m.get("campaignId") == campaign_id]
        assert sorted(m["email"] for m in sent) == [
            "ana@example.com",
            "bo@example.com",
            "dee@example.com",
        ]
        campaign = campaigns(project)[campaign_id]
        assert {m["kind"] for m in sent} == {"campaign"}
        assert {m["templateId"] for m in sent} == {campaign["templateId"]}
        assert (campaign["campaignState"], campaign["sendSize"]) == ("Finished", 3)
        (request,) = sandbox.state.requests("ITERABLE_SEND_CAMPAIGN", project_id=project.id)
        assert (request.method, request.path) == ("POST", f"/api/campaigns/{campaign_id}/send")

    def test_rejects_a_non_positive_id(self, run_in_flow, credentials, sandbox, project):
        with pytest.raises(InputValidationError, match="campaign_id"):
            send_campaign.fn(-3, credentials=credentials)
        _no_requests(sandbox, project)


class TestTriggerCampaign:
    def test_sends_to_each_member_of_the_lists(
        self, run_in_flow, credentials, client, sandbox, project, template, audience
    ):
        campaign_id = triggered(client)
        result = run_in_flow(
            trigger_campaign,
            campaign_id,
            [AUDIENCE_ID],
            data_fields={"coupon": "SPRING"},
            credentials=credentials,
        )
        assert result.code == "Success"
        sent = [m for m in messages(project) if m.get("campaignId") == campaign_id]
        assert len(sent) == 3 and all(m["dataFields"] == {"coupon": "SPRING"} for m in sent)
        (request,) = sandbox.state.requests("ITERABLE_TRIGGER_CAMPAIGN", project_id=project.id)
        assert request.body == {
            "campaignId": campaign_id,
            "listIds": [AUDIENCE_ID],
            "dataFields": {"coupon": "SPRING"},
        }

    def test_needs_a_non_empty_list_ids(self, run_in_flow, credentials, sandbox, project):
        with pytest.raises(InputValidationError, match="list_ids"):
            trigger_campaign.fn(5, [], credentials=credentials)
        _no_requests(sandbox, project)


class TestCancelCampaign:
    def test_cancels_a_scheduled_campaign(
        self, run_in_flow, credentials, client, sandbox, project, template, audience
    ):
        send_at = (_now() + timedelta(days=5)).strftime("%Y-%m-%d %H:%M:%S")
        campaign_id = blast(client, schedule_send=True, send_at=send_at)
        assert campaign_state(project, campaign_id) == "Scheduled"
        result = run_in_flow(cancel_campaign, campaign_id, credentials=credentials)
        assert result.code == "Success"
        assert campaign_state(project, campaign_id) == "Ready"
        (request,) = sandbox.state.requests("ITERABLE_CANCEL_CAMPAIGN", project_id=project.id)
        assert request.body == {"campaignId": campaign_id}

    def test_a_ready_campaign_cannot_be_cancelled(
        self, run_in_flow, credentials, client, project, template, audience
    ):
        campaign_id = blast(client)
        with pytest.raises(BadParams, match="Ready"):
            run_in_flow(cancel_campaign, campaign_id, credentials=credentials)
        assert campaign_state(project, campaign_id) == "Ready"

    def test_rejects_a_missing_id(self, run_in_flow, credentials, sandbox, project):
        with pytest.raises(TypeError):
            run_in_flow(cancel_campaign, credentials=credentials)
        _no_requests(sandbox, project)


class TestAbortCampaign:
    def test_aborts_a_running_campaign(
        self, run_in_flow, credentials, client, sandbox, project, template
    ):
        campaign_id = triggered(client)
        client.call("ITERABLE_ACTIVATE_TRIGGERED_CAMPAIGN", campaign_id=campaign_id)
        assert campaign_state(project, campaign_id) == "Running"
        run_in_flow(abort_campaign, campaign_id, credentials=credentials)
        campaign = campaigns(project)[campaign_id]
        assert campaign["campaignState"] == "Aborted" and campaign["endedAt"] > 0
        (request,) = sandbox.state.requests("ITERABLE_ABORT_CAMPAIGN", project_id=project.id)
        assert (request.path, request.body) == ("/api/campaigns/abort", {"campaignId": campaign_id})

    def test_rejects_a_string_id(self, run_in_flow, credentials, sandbox, project):
        with pytest.raises(InputValidationError, match="campaign_id"):
            abort_campaign.fn("latest", credentials=credentials)
        _no_requests(sandbox, project)


class TestActivateTriggeredCampaign:
    def test_activates_a_triggered_campaign(
        self, run_in_flow, credentials, client, sandbox, project, template
    ):
        campaign_id = triggered(client)
        result = run_in_flow(activate_triggered_campaign, campaign_id, credentials=credentials)
        assert result.code == "Success" and campaign_state(project, campaign_id) == "Running"
        # Activating again changes nothing, so a retried request is harmless.
        client.call("ITERABLE_ACTIVATE_TRIGGERED_CAMPAIGN", campaign_id=campaign_id)
        assert campaign_state(project, campaign_id) == "Running"
        requests = sandbox.state.requests(
            "ITERABLE_ACTIVATE_TRIGGERED_CAMPAIGN", project_id=project.id
        )
        assert [r.body for r in requests] == [{"campaignId": campaign_id}] * 2

    def test_forbidden_without_the_feature(self, run_in_flow, featureless):
        other, other_credentials = featureless
        campaign_id = seeded_campaign(other, kind="Triggered")["id"]
        with pytest.raises(PermissionDenied):
            run_in_flow(activate_triggered_campaign, campaign_id, credentials=other_credentials)
        assert campaign_state(other, campaign_id) == "Ready"

    def test_rejects_a_non_positive_id(self, run_in_flow, credentials, sandbox, project):
        with pytest.raises(InputValidationError):
            activate_triggered_campaign.fn(0, credentials=credentials)
        _no_requests(sandbox, project)


class TestDeactivateTriggeredCampaign:
    def test_deactivates_an_active_campaign(
        self, run_in_flow, credentials, client, sandbox, project, template
    ):
        campaign_id = triggered(client)
        client.call("ITERABLE_ACTIVATE_TRIGGERED_CAMPAIGN", campaign_id=campaign_id)
        result = run_in_flow(deactivate_triggered_campaign, campaign_id, credentials=credentials)
        assert result.code == "Success" and campaign_state(project, campaign_id) == "Ready"
        (request,) = sandbox.state.requests(
            "ITERABLE_DEACTIVATE_TRIGGERED_CAMPAIGN", project_id=project.id
        )
        assert request.path == "/api/campaigns/deactivateTriggered"

    def test_rejects_a_missing_id(self, run_in_flow, credentials, sandbox, project):
        with pytest.raises(InputValidationError):
            deactivate_triggered_campaign.fn(None, credentials=credentials)
        _no_requests(sandbox, project)


class TestArchiveCampaigns:
    def test_cancels_aborts_and_archives(
        self, run_in_flow, credentials, sandbox, project, template
    ):
        scheduled = seeded_campaign(project, "Scheduled", startAt=2_000_000_000_000)["id"]
        running = seeded_campaign(project, "Running", kind="Triggered")["id"]
        finished = seeded_campaign(project, "Finished")["id"]
        result = run_in_flow(
            archive_campaigns, [scheduled, running, finished, 987_654], credentials=credentials
        )
        assert result.success == [scheduled, running, finished]
        assert result.failed == [987_654]
        assert {campaign_state(project, i) for i in (scheduled, running, finished)} == {"Archived"}
        assert campaigns(project)[running]["endedAt"] > 0
        listed = run_in_flow(list_campaigns, page=1, page_size=10, credentials=credentials)
        assert listed.campaigns == []
        (request,) = sandbox.state.requests("ITERABLE_ARCHIVE_CAMPAIGNS", project_id=project.id)
        assert request.body == {"campaignIds": [scheduled, running, finished, 987_654]}

    def test_needs_at_least_one_id(self, run_in_flow, credentials, sandbox, project):
        with pytest.raises(InputValidationError, match="campaign_ids"):
            archive_campaigns.fn([], credentials=credentials)
        _no_requests(sandbox, project)


class TestListRecurringChildCampaigns:
    def test_lists_children_page_by_page(self, run_in_flow, credentials, sandbox, project):
        parent = seeded_campaign(project, "Recurring")["id"]
        children = [
            seeded_campaign(project, "Finished", recurringCampaignId=parent)["id"] for _ in range(3)
        ]
        seeded_campaign(project, "Finished")  # not a child
        page = run_in_flow(
            list_recurring_child_campaigns,
            parent,
            page=2,
            page_size=2,
            credentials=credentials,
        )
        assert [c.id for c in page.campaigns] == children[2:]
        assert page.campaigns[0].recurring_campaign_id == parent
        assert page.total_campaigns_count == 3
        assert page.next_page_url is None and "page=1" in page.previous_page_url
        (request,) = sandbox.state.requests(
            "ITERABLE_LIST_RECURRING_CHILD_CAMPAIGNS", project_id=project.id
        )
        assert request.path == f"/api/campaigns/recurring/{parent}/childCampaigns"
        assert [c.id for c in iter_recurring_child_campaigns(parent, credentials, 2)] == children

    def test_rejects_a_zero_page_size(self, run_in_flow, credentials, sandbox, project):
        with pytest.raises(InputValidationError, match="page_size"):
            list_recurring_child_campaigns.fn(5, page_size=0, credentials=credentials)
        _no_requests(sandbox, project)


class TestGetCampaignMetrics:
    def test_counts_sends_per_campaign(
        self, run_in_flow, credentials, client, sandbox, project, template, audience
    ):
        sent = blast(client)
        client.call("ITERABLE_SEND_CAMPAIGN", campaign_id=sent)
        quiet = blast(client, name="Quiet")
        today = _now()
        rows = run_in_flow(
            get_campaign_metrics,
            [sent, quiet],
            start_date_time=today - timedelta(days=1),
            end_date_time=today + timedelta(days=1),
            credentials=credentials,
        )
        by_id = {row.campaign_id: row for row in rows}
        assert by_id[sent].get("Total Email Sends") == 3
        assert by_id[sent].get("Unique Email Sends") == 3
        assert by_id[quiet].get("Total Email Sends") == 0
        assert "Unique Email Opens" in by_id[sent].metrics
        (request,) = sandbox.state.requests("ITERABLE_GET_CAMPAIGN_METRICS", project_id=project.id)
        assert request.query == {
            "campaignId": [str(sent), str(quiet)],
            # A time of day is kept (ISO 8601), not cut to the date.
            "startDateTime": [(today - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")],
            "endDateTime": [(today + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")],
        }

    def test_needs_a_campaign_id(self, run_in_flow, credentials, sandbox, project):
        with pytest.raises(InputValidationError, match="campaign_id"):
            get_campaign_metrics.fn([], credentials=credentials)
        _no_requests(sandbox, project)


class TestGetExperimentMetrics:
    def test_reports_each_variant_of_an_email_experiment(
        self, run_in_flow, credentials, sandbox, project
    ):
        campaign_id = seeded_campaign(project, "Finished")["id"]
        experiments(project)[77] = {
            "id": 77,
            "campaignId": campaign_id,
            "name": "Subject line",
            "variants": [
                {"templateId": TEMPLATE_ID, "name": "Control", "isControl": True},
                {"templateId": 502, "name": "Emoji subject", "isControl": False},
            ],
        }
        for n, template_id in enumerate([TEMPLATE_ID, 502, 502]):
            record_message(
                project,
                kind="campaign",
                medium="Email",
                campaignId=campaign_id,
                templateId=template_id,
                email=f"u{n}@example.com",
                userId=None,
            )
        rows = run_in_flow(get_experiment_metrics, experiment_id=[77], credentials=credentials)
        assert [(r.experiment_id, r.template_id, r.is_control) for r in rows] == [
            (77, TEMPLATE_ID, True),
            (77, 502, False),
        ]
        assert [r.get("Total Email Sends") for r in rows] == [1, 2]
        (request,) = sandbox.state.requests(
            "ITERABLE_GET_EXPERIMENT_METRICS", project_id=project.id
        )
        assert request.query == {"experimentId": ["77"]}

    def test_no_experiment_answers_only_a_header(self, run_in_flow, credentials, project):
        campaign_id = seeded_campaign(project, "Finished")["id"]
        assert (
            run_in_flow(get_experiment_metrics, campaign_id=[campaign_id], credentials=credentials)
            == []
        )

    def test_rejects_a_non_positive_id(self, run_in_flow, credentials, sandbox, project):
        with pytest.raises(InputValidationError, match="experiment_id"):
            get_experiment_metrics.fn(experiment_id=[0], credentials=credentials)
        _no_requests(sandbox, project)
