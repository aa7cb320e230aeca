"""The sandbox's campaign state rules, called with the client: what Iterable refuses, and the
side effects of sends, triggers and schedules that the campaign tasks' tests rely on."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from prefect_iterable.api.errors import BadParams, NotFound, PermissionDenied
from prefect_iterable.sandbox.data import campaigns, messages
from tests._seeds import (
    AUDIENCE_ID,
    blast,
    campaign_state,
    email_list,
    seeded_campaign,
    triggered,
)


class TestCreateCampaign:
    def test_unknown_template_and_list_fail(self, client, project, template, audience):
        with pytest.raises(NotFound):
            client.call("ITERABLE_CREATE_CAMPAIGN", name="x", template_id=404)
        with pytest.raises(BadParams, match="List 9 does not exist"):
            blast(client, list_ids=[9])
        with pytest.raises(BadParams, match="sendAt is required"):
            blast(client, schedule_send=True)
        assert campaigns(project) == {}


class TestScheduleCampaign:
    def test_a_due_scheduled_blast_is_sent(self, client, project, template, audience):
        campaign_id = blast(client)
        client.call(
            "ITERABLE_SCHEDULE_CAMPAIGN",
            campaign_id=campaign_id,
            send_at=(datetime.now(timezone.utc) - timedelta(minutes=1)).strftime(
                "%Y-%m-%dT%H:%M:%S.000Z"
            ),
        )
        assert client.call("ITERABLE_GET_CAMPAIGN", campaign_id=campaign_id)["sendSize"] == 3
        assert campaign_state(project, campaign_id) == "Finished"


class TestSendCampaign:
    def test_a_finished_or_triggered_campaign_cannot_be_sent(
        self, client, project, template, audience
    ):
        finished = seeded_campaign(project, "Finished")["id"]
        with pytest.raises(BadParams, match="Finished"):
            client.call("ITERABLE_SEND_CAMPAIGN", campaign_id=finished)
        with pytest.raises(BadParams, match="triggered"):
            client.call("ITERABLE_SEND_CAMPAIGN", campaign_id=triggered(client))
        assert messages(project) == []


class TestTriggerCampaign:
    def test_no_repeat_sends_skip_earlier_recipients(self, client, project, template, audience):
        campaign_id = triggered(client)
        client.call("ITERABLE_TRIGGER_CAMPAIGN", campaign_id=campaign_id, list_ids=[AUDIENCE_ID])
        email_list(project, 72, "ana@example.com", "new@example.com")
        client.call(
            "ITERABLE_TRIGGER_CAMPAIGN",
            campaign_id=campaign_id,
            list_ids=[72],
            allow_repeat_marketing_sends=False,
        )
        assert len(messages(project)) == 4
        assert campaigns(project)[campaign_id]["sendSize"] == 4

    def test_a_blast_cannot_be_triggered(self, client, project, template, audience):
        with pytest.raises(BadParams, match="blast"):
            client.call(
                "ITERABLE_TRIGGER_CAMPAIGN", campaign_id=blast(client), list_ids=[AUDIENCE_ID]
            )


class TestAbortCampaign:
    def test_only_running_campaigns_abort(self, client, project):
        finished = seeded_campaign(project, "Finished")["id"]
        with pytest.raises(BadParams, match="only a Running campaign"):
            client.call("ITERABLE_ABORT_CAMPAIGN", campaign_id=finished)
        with pytest.raises(BadParams, match="does not exist"):
            client.call("ITERABLE_ABORT_CAMPAIGN", campaign_id=123_456)


class TestActivateTriggeredCampaign:
    def test_a_blast_cannot_be_activated(self, client, project, template, audience):
        with pytest.raises(BadParams, match="not a triggered campaign"):
            client.call("ITERABLE_ACTIVATE_TRIGGERED_CAMPAIGN", campaign_id=blast(client))


class TestDeactivateTriggeredCampaign:
    def test_an_aborted_campaign_cannot_be_deactivated(self, client, project):
        aborted = seeded_campaign(project, "Aborted", kind="Triggered")["id"]
        with pytest.raises(BadParams, match="Aborted"):
            client.call("ITERABLE_DEACTIVATE_TRIGGERED_CAMPAIGN", campaign_id=aborted)

    def test_forbidden_without_the_feature(self, make_project, credentials_for):
        key, other = make_project(features=[])
        other_credentials = credentials_for(key)
        campaign_id = seeded_campaign(other, "Running", kind="Triggered")["id"]
        with other_credentials.get_client() as other_client:
            with pytest.raises(PermissionDenied):
                other_client.call("ITERABLE_DEACTIVATE_TRIGGERED_CAMPAIGN", campaign_id=campaign_id)
        assert campaign_state(other, campaign_id) == "Running"


class TestListRecurringChildCampaigns:
    def test_unknown_parent_fails(self, client):
        with pytest.raises(BadParams, match="does not exist"):
            client.call("ITERABLE_LIST_RECURRING_CHILD_CAMPAIGNS", campaign_id=424_242)


class TestGetCampaignMetrics:
    def test_a_window_before_the_send_counts_nothing(self, client, project, template, audience):
        campaign_id = blast(client)
        client.call("ITERABLE_SEND_CAMPAIGN", campaign_id=campaign_id)
        (row,) = client.call(
            "ITERABLE_GET_CAMPAIGN_METRICS",
            campaign_id=[campaign_id],
            start_date_time="2020-01-01",
            end_date_time="2020-02-01",
        )
        assert row["Total Email Sends"] == "0"
