"""Tasks for Iterable's campaigns: create, schedule, send, trigger, stop, archive and measure.

A campaign is either a *blast* (sent once to lists) or *triggered* (sent by an API call or an
event). Iterable moves a blast through Ready → Scheduled → Running → Finished; cancel, abort and
archive leave that path. Each task states which states it accepts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal

from pydantic import Field, PlainSerializer, StringConstraints

from prefect_iterable.api.models import ApiResponse
from prefect_iterable.api.models.campaigns import (
    ArchiveCampaignsResponse,
    Campaign,
    CampaignMetrics,
    CampaignsResponse,
    CampaignState,
    CreateCampaignResponse,
    ExperimentMetrics,
    RecipientTimeZone,
)
from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.tasks._core import iterable_task, resolve_credentials
from prefect_iterable.tasks._types import (
    IanaTimeZone,
    IsoDateTime,
    IterableDateTime,
    MetricsDate,
    PositiveId,
    within_days,
)

__all__ = [
    "RecipientTimeZone",
    "abort_campaign",
    "activate_triggered_campaign",
    "archive_campaigns",
    "cancel_campaign",
    "create_campaign",
    "deactivate_triggered_campaign",
    "get_campaign",
    "get_campaign_metrics",
    "get_experiment_metrics",
    "iter_campaigns",
    "iter_recurring_child_campaigns",
    "list_campaigns",
    "list_recurring_child_campaigns",
    "schedule_campaign",
    "send_campaign",
    "trigger_campaign",
]

#: ``id``, ``-createdAt``, ``+name``: a field Iterable sorts campaigns by, with a direction.
CampaignSort = Annotated[
    str, StringConstraints(pattern=r"^[+-]?(id|name|createdAt|updatedAt|startAt)$")
]
CampaignPageSize = Annotated[int, Field(ge=1, le=1000)]
PageNumber = Annotated[int, Field(ge=1)]
LabelIds = Annotated[list[PositiveId], Field(max_length=50)]
#: Experiment metrics take their ids as strings on the wire.
IdAsString = Annotated[PositiveId, PlainSerializer(str, return_type=str)]


@iterable_task("ITERABLE_LIST_CAMPAIGNS")
def list_campaigns(
    page: PageNumber | None = None,
    page_size: CampaignPageSize | None = None,
    sort: CampaignSort | None = None,
    campaign_state: list[CampaignState] | None = None,
    *,
    credentials: IterableCredentials | None = None,
) -> CampaignsResponse:
    """List the project's campaigns, one page at a time.

    Always pass ``page`` and ``page_size``: without them Iterable returns every campaign at once,
    a deprecated behaviour it may remove. Archived campaigns are only listed when
    ``campaign_state`` asks for ``Archived``. To walk every page use ``iter_campaigns``.

    ITERABLE_LIST_CAMPAIGNS: GET /api/campaigns (100 requests/s per project).

    Args:
        page: page number, starting at 1.
        page_size: campaigns per page, 1 to 1000 (Iterable's default is 20).
        sort: a field among id, name, createdAt, updatedAt and startAt, optionally prefixed with
            ``-`` (descending) or ``+`` (ascending), e.g. ``-createdAt``. Default ``id``.
        campaign_state: only campaigns in these states (Draft, Ready, Scheduled, Running,
            Finished, Starting, Aborted, Recurring, Archived).
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        The page's campaigns, the total count and the next and previous page URLs.
    """


@iterable_task("ITERABLE_GET_CAMPAIGN", run_name="get-campaign-{campaign_id}")
def get_campaign(
    campaign_id: PositiveId, *, credentials: IterableCredentials | None = None
) -> Campaign:
    """Fetch one campaign: its state, type, medium, template, lists and timing.

    Use it to check a campaign's ``campaign_state`` before a state change (schedule, send,
    cancel, abort). An unknown id fails with ``NotFound``.

    ITERABLE_GET_CAMPAIGN: GET /api/campaigns/{id} (100 requests/s per project).

    Args:
        campaign_id: the campaign's id.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        The campaign's details.
    """


@iterable_task("ITERABLE_CREATE_CAMPAIGN", run_name="create-campaign-template-{template_id}")
def create_campaign(
    name: Annotated[str, StringConstraints(min_length=1)],
    template_id: PositiveId,
    list_ids: Annotated[list[PositiveId], Field(min_length=1)] | None = None,
    send_at: Annotated[IterableDateTime, within_days(21)] | None = None,
    schedule_send: bool | None = None,
    send_mode: Literal["ProjectTimeZone", "RecipientTimeZone"] | None = None,
    start_time_zone: IanaTimeZone | None = None,
    default_time_zone: IanaTimeZone | None = None,
    suppression_list_ids: list[PositiveId] | None = None,
    label_ids: LabelIds | None = None,
    data_fields: dict[str, Any] | None = None,
    campaign_data_fields: dict[str, Any] | None = None,
    *,
    credentials: IterableCredentials | None = None,
) -> CreateCampaignResponse:
    """Create a blast or triggered campaign from a copy of an existing template.

    With ``list_ids`` the campaign is a blast: by default (``schedule_send`` true) it is
    scheduled at ``send_at``; with ``schedule_send=False`` it is created Ready, to be scheduled
    with ``schedule_campaign`` or sent with ``send_campaign``. Without ``list_ids`` it is a
    triggered campaign, sent by ``trigger_campaign``. Global suppression lists are not added
    for you: pass them in ``suppression_list_ids``. Not retried: a repeat creates a second
    campaign.

    ITERABLE_CREATE_CAMPAIGN: POST /api/campaigns/create (no documented rate limit).

    Args:
        name: the new campaign's name.
        template_id: the template to copy; the campaign gets its own copy.
        list_ids: the lists a blast campaign sends to (non-empty); omit for a triggered one.
        send_at: when a scheduled blast sends, at most 21 days ahead; naive times are UTC
            (sent as ``YYYY-MM-DD HH:MM:SS``).
        schedule_send: schedule the blast at creation (Iterable's default, true) or leave it
            unscheduled (false). Blasts only.
        send_mode: ``ProjectTimeZone`` (default: everyone at ``send_at``) or
            ``RecipientTimeZone`` (each recipient at that local time in their own zone).
        start_time_zone: with ``RecipientTimeZone``, the IANA zone whose local time ``send_at``
            is; zones to its east send with it, zones to its west at their own local time.
        default_time_zone: with ``RecipientTimeZone``, the IANA zone for recipients without one.
        suppression_list_ids: lists whose members must not receive the campaign.
        label_ids: labels (existing in the project) to attach, at most 50.
        data_fields: values rendered once into the template copy's ``[[field]]`` placeholders
            (email campaigns only).
        campaign_data_fields: campaign-level ``{{field}}`` merge values, overridden by user and
            event fields of the same name.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        The new campaign's id.
    """


@iterable_task("ITERABLE_SCHEDULE_CAMPAIGN", run_name="schedule-campaign-{campaign_id}")
def schedule_campaign(
    campaign_id: PositiveId,
    send_at: Annotated[IsoDateTime, within_days(7)],
    recipient_time_zone: RecipientTimeZone | None = None,
    *,
    credentials: IterableCredentials | None = None,
) -> ApiResponse:
    """Schedule an unscheduled (Ready) blast campaign to send at a given time.

    Only a blast that is not already scheduled or sending can be scheduled; to move a scheduled
    campaign, cancel it first. Iterable answers 403 (``PermissionDenied``) when API scheduling
    is not enabled for the project.

    ITERABLE_SCHEDULE_CAMPAIGN: POST /api/campaigns/{campaignId}/schedule (no documented rate limit).

    Args:
        campaign_id: the blast campaign to schedule.
        send_at: when to send, at most 7 days ahead; naive times are UTC (sent as ISO-8601).
        recipient_time_zone: send at ``send_at``'s local time in each recipient's zone, starting
            with ``start_time_zone`` and using ``default_time_zone`` for recipients without
            one; omit to send to everyone at ``send_at``.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope.
    """


@iterable_task("ITERABLE_SEND_CAMPAIGN", run_name="send-campaign-{campaign_id}")
def send_campaign(
    campaign_id: PositiveId, *, credentials: IterableCredentials | None = None
) -> ApiResponse:
    """Send a Ready or Scheduled blast campaign now, to every member of its lists.

    Members of the campaign's suppression lists are skipped. Once sending starts it cannot be
    undone (only aborted while running). Not retried: a repeat could send twice.

    ITERABLE_SEND_CAMPAIGN: POST /api/campaigns/{campaignId}/send (no documented rate limit).

    Args:
        campaign_id: the blast campaign to send.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope.
    """


@iterable_task("ITERABLE_TRIGGER_CAMPAIGN", run_name="trigger-campaign-{campaign_id}")
def trigger_campaign(
    campaign_id: PositiveId,
    list_ids: Annotated[list[PositiveId], Field(min_length=1)],
    suppression_list_ids: list[PositiveId] | None = None,
    data_fields: dict[str, Any] | None = None,
    allow_repeat_marketing_sends: bool | None = None,
    *,
    credentials: IterableCredentials | None = None,
) -> ApiResponse:
    """Send a triggered campaign to the members of one or more lists.

    Only triggered campaigns (created without lists) can be triggered, and not once archived,
    aborted or finished. Not retried: a repeat could send twice.

    ITERABLE_TRIGGER_CAMPAIGN: POST /api/campaigns/trigger (no documented rate limit).

    Args:
        campaign_id: the triggered campaign to send.
        list_ids: the lists to send to; at least one, each existing in the project.
        suppression_list_ids: lists whose members are skipped.
        data_fields: values merged into the template's ``{{field}}`` context for every
            recipient.
        allow_repeat_marketing_sends: send to users who already received this campaign
            (Iterable's default, true).
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope.
    """


@iterable_task("ITERABLE_CANCEL_CAMPAIGN", run_name="cancel-campaign-{campaign_id}")
def cancel_campaign(
    campaign_id: PositiveId, *, credentials: IterableCredentials | None = None
) -> ApiResponse:
    """Cancel a Scheduled or Recurring campaign before it sends again.

    Any other state fails with ``BadParams``; to stop a campaign that is already sending, use
    ``abort_campaign``.

    ITERABLE_CANCEL_CAMPAIGN: POST /api/campaigns/cancel (no documented rate limit).

    Args:
        campaign_id: the scheduled or recurring campaign.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope.
    """


@iterable_task("ITERABLE_ABORT_CAMPAIGN", run_name="abort-campaign-{campaign_id}")
def abort_campaign(
    campaign_id: PositiveId, *, credentials: IterableCredentials | None = None
) -> ApiResponse:
    """Abort a Running campaign, stopping the deliveries still in progress.

    Only a running campaign (a blast being sent, or an active triggered campaign) can be
    aborted; finished or unsent ones fail with ``BadParams``.

    ITERABLE_ABORT_CAMPAIGN: POST /api/campaigns/abort (no documented rate limit).

    Args:
        campaign_id: the running campaign.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope.
    """


@iterable_task("ITERABLE_ACTIVATE_TRIGGERED_CAMPAIGN", run_name="activate-campaign-{campaign_id}")
def activate_triggered_campaign(
    campaign_id: PositiveId, *, credentials: IterableCredentials | None = None
) -> ApiResponse:
    """Activate a triggered campaign so that it sends when triggered.

    Only triggered campaigns can be activated; activating an active one changes nothing.
    Iterable answers 403 (``PermissionDenied``) when API activation is not enabled for the
    project.

    ITERABLE_ACTIVATE_TRIGGERED_CAMPAIGN: POST /api/campaigns/activateTriggered (no documented rate limit).

    Args:
        campaign_id: the triggered campaign.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope.
    """


@iterable_task(
    "ITERABLE_DEACTIVATE_TRIGGERED_CAMPAIGN", run_name="deactivate-campaign-{campaign_id}"
)
def deactivate_triggered_campaign(
    campaign_id: PositiveId, *, credentials: IterableCredentials | None = None
) -> ApiResponse:
    """Deactivate a triggered campaign so that it stops sending.

    Only triggered campaigns can be deactivated; deactivating an inactive one changes nothing.
    Iterable answers 403 (``PermissionDenied``) when API deactivation is not enabled for the
    project.

    ITERABLE_DEACTIVATE_TRIGGERED_CAMPAIGN: POST /api/campaigns/deactivateTriggered (no documented rate limit).

    Args:
        campaign_id: the triggered campaign.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope.
    """


@iterable_task("ITERABLE_ARCHIVE_CAMPAIGNS")
def archive_campaigns(
    campaign_ids: Annotated[list[PositiveId], Field(min_length=1)],
    *,
    credentials: IterableCredentials | None = None,
) -> ArchiveCampaignsResponse:
    """Archive campaigns, as the archive button in Iterable's UI does.

    Scheduled and recurring campaigns are cancelled and running ones aborted first. Archived
    campaigns are hidden from the campaign list unless asked for by state. The API cannot
    unarchive: that takes the UI. Ids that could not be archived come back in ``failed``.

    ITERABLE_ARCHIVE_CAMPAIGNS: POST /api/campaigns/archive (5 requests/s per API key).

    Args:
        campaign_ids: the campaigns to archive, at least one.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        The ids archived (``success``) and those that were not (``failed``).
    """


@iterable_task(
    "ITERABLE_LIST_RECURRING_CHILD_CAMPAIGNS", run_name="list-child-campaigns-{campaign_id}"
)
def list_recurring_child_campaigns(
    campaign_id: PositiveId,
    page: PageNumber | None = None,
    page_size: CampaignPageSize | None = None,
    sort: CampaignSort | None = None,
    campaign_state: list[CampaignState] | None = None,
    *,
    credentials: IterableCredentials | None = None,
) -> CampaignsResponse:
    """List the campaigns a recurring campaign has generated, one page at a time.

    Paged and filtered like ``list_campaigns``; ``iter_recurring_child_campaigns`` walks every
    page.

    ITERABLE_LIST_RECURRING_CHILD_CAMPAIGNS: GET /api/campaigns/recurring/{id}/childCampaigns (100 requests/s per project).

    Args:
        campaign_id: the recurring (parent) campaign.
        page: page number, starting at 1.
        page_size: campaigns per page, 1 to 1000 (Iterable's default is 20).
        sort: id, name, createdAt, updatedAt or startAt, optionally prefixed with ``-`` or
            ``+``.
        campaign_state: only child campaigns in these states.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        The page's child campaigns, the total count and the next and previous page URLs.
    """


@iterable_task("ITERABLE_GET_CAMPAIGN_METRICS")
def get_campaign_metrics(
    campaign_id: Annotated[list[PositiveId], Field(min_length=1)],
    start_date_time: MetricsDate | None = None,
    end_date_time: MetricsDate | None = None,
    *,
    credentials: IterableCredentials | None = None,
) -> list[CampaignMetrics]:
    """Get delivery and engagement counters for one or more campaigns.

    Iterable answers a CSV with a row per campaign; each row becomes a ``CampaignMetrics``
    whose ``metrics`` maps a column name ("Total Email Sends", "Unique Email Opens", …) to its
    number. The limit is tight (10 a minute): ask for many campaigns in one call.

    ITERABLE_GET_CAMPAIGN_METRICS: GET /api/campaigns/metrics (10 requests/min per project).

    Args:
        campaign_id: the campaigns to report on (sent as a repeated ``campaignId``).
        start_date_time: count activity from this day on (inclusive), as ``YYYY-MM-DD`` UTC.
        end_date_time: count activity before this day (exclusive), as ``YYYY-MM-DD`` UTC.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        One ``CampaignMetrics`` per campaign.
    """


@iterable_task("ITERABLE_GET_EXPERIMENT_METRICS")
def get_experiment_metrics(
    experiment_id: list[IdAsString] | None = None,
    campaign_id: list[IdAsString] | None = None,
    start_date_time: MetricsDate | None = None,
    end_date_time: MetricsDate | None = None,
    *,
    credentials: IterableCredentials | None = None,
) -> list[ExperimentMetrics]:
    """Get per-variant counters of email A/B experiments.

    Select experiments by id, or all experiments of some campaigns. Iterable only reports email
    experiments; with none matching, the answer is empty.

    ITERABLE_GET_EXPERIMENT_METRICS: GET /api/experiments/metrics (no documented rate limit).

    Args:
        experiment_id: experiments to report on (a repeated ``experimentId``).
        campaign_id: campaigns whose experiments to report on (a repeated ``campaignId``).
        start_date_time: count activity from this day on (inclusive), as ``YYYY-MM-DD`` UTC.
        end_date_time: count activity up to this day (inclusive), as ``YYYY-MM-DD`` UTC.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        One ``ExperimentMetrics`` per experiment variant.
    """


def _walk(
    action: str,
    credentials: IterableCredentials | None,
    page_size: int,
    limit: int,
    **params: Any,
) -> Iterator[Campaign]:
    if not 1 <= page_size <= limit:
        raise ValueError(f"page_size must be between 1 and {limit}, got {page_size}")
    client = resolve_credentials(credentials).get_client()
    page = 1
    while True:
        answer = CampaignsResponse.model_validate(
            client.call(action, page=page, page_size=page_size, **params)
        )
        yield from answer.campaigns
        if len(answer.campaigns) < page_size or not answer.next_page_url:
            return
        page += 1


def iter_campaigns(
    credentials: IterableCredentials | None = None,
    page_size: int = 100,
    *,
    sort: str | None = None,
    campaign_state: list[str] | None = None,
) -> Iterator[Campaign]:
    """Every campaign (filtered by ``campaign_state``), walking the pages of ``list_campaigns``.

    Pages are fetched as the iterator is consumed; ``page_size`` is 1 to 1000.
    """
    yield from _walk(
        "ITERABLE_LIST_CAMPAIGNS",
        credentials,
        page_size,
        1000,
        sort=sort,
        campaign_state=campaign_state,
    )


def iter_recurring_child_campaigns(
    campaign_id: int,
    credentials: IterableCredentials | None = None,
    page_size: int = 100,
    *,
    sort: str | None = None,
    campaign_state: list[str] | None = None,
) -> Iterator[Campaign]:
    """Every child campaign of a recurring campaign, walking the pages."""
    yield from _walk(
        "ITERABLE_LIST_RECURRING_CHILD_CAMPAIGNS",
        credentials,
        page_size,
        1000,
        campaign_id=campaign_id,
        sort=sort,
        campaign_state=campaign_state,
    )
