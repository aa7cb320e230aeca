"""Request and response schemas for Iterable's campaign and experiment actions."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from prefect_iterable.api.models._base import IterableModel, RequestModel
from prefect_iterable.api.types import IanaTimeZone

__all__ = [
    "CAMPAIGN_STATES",
    "ArchiveCampaignsResponse",
    "Campaign",
    "CampaignMetrics",
    "CampaignState",
    "CampaignsResponse",
    "CreateCampaignResponse",
    "ExperimentMetrics",
    "RecipientTimeZone",
]

CampaignState = Literal[
    "Draft",
    "Ready",
    "Scheduled",
    "Running",
    "Finished",
    "Starting",
    "Aborted",
    "Recurring",
    "Archived",
]
CAMPAIGN_STATES: tuple[str, ...] = CampaignState.__args__  # type: ignore[attr-defined]


class RecipientTimeZone(RequestModel):
    """Send a scheduled campaign at the same local time in each recipient's time zone."""

    start_time_zone: IanaTimeZone = Field(
        description="IANA zone whose local send time starts the send (America/New_York)."
    )
    default_time_zone: IanaTimeZone = Field(
        description="IANA zone used for recipients without a known time zone."
    )


class Campaign(IterableModel):
    """A campaign (``CampaignDetails``): a blast sent to lists, or a triggered campaign.

    Timestamps are epoch milliseconds.
    """

    id: int
    name: str | None = None
    campaign_state: CampaignState | str | None = Field(
        None, description="Draft, Ready, Scheduled, Running, …"
    )
    type: Literal["Blast", "Triggered"] | str | None = None
    message_medium: str | None = Field(None, description="Email, Push, SMS, InApp, …")
    template_id: int | None = None
    created_at: int | None = None
    updated_at: int | None = None
    created_by_user_id: str | None = None
    updated_by_user_id: str | None = None
    start_at: int | None = None
    ended_at: int | None = None
    send_size: int | None = None
    list_ids: list[int] = Field(default_factory=list)
    suppression_list_ids: list[int] = Field(default_factory=list)
    labels: list[str] = Field(default_factory=list)
    recurring_campaign_id: int | None = None
    workflow_id: int | None = None


class CampaignsResponse(IterableModel):
    """One page of campaigns; ``next_page_url`` is absent on the last page."""

    campaigns: list[Campaign] = Field(default_factory=list)
    next_page_url: str | None = None
    previous_page_url: str | None = None
    total_campaigns_count: int | None = Field(
        None, description="Campaigns across all pages; only present when paging."
    )


class CreateCampaignResponse(IterableModel):
    campaign_id: int


class ArchiveCampaignsResponse(IterableModel):
    """Which of the given campaigns were archived, and which were not (unknown ids)."""

    success: list[int] = Field(default_factory=list)
    failed: list[int] = Field(default_factory=list)


#: A CSV cell: a number when it reads as one, else the text as received (a new column may hold
#: text), ``None`` when empty.
Cell = int | float | str | None


def _number(value: Any) -> Cell:
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value if isinstance(value, str) else None
    return int(number) if number.is_integer() else number


def _split_row(row: Any, keys: dict[str, str]) -> Any:
    """A CSV row (all strings) as named fields plus every other column, kept, in ``metrics``."""
    if not isinstance(row, dict) or "metrics" in row:
        return row
    fields: dict[str, Any] = {}
    metrics: dict[str, Cell] = {}
    for column, value in row.items():
        if column in keys:
            fields[keys[column]] = value if value != "" else None
        else:
            metrics[column] = _number(value)
    fields["metrics"] = metrics
    return fields


def _counter(value: Cell, default: float) -> float:
    return value if isinstance(value, (int, float)) else default


class CampaignMetrics(IterableModel):
    """One campaign's row of the metrics CSV: its id and every counter column by name.

    Iterable's column set depends on the campaign's medium and grows over time, so the
    counters are kept as a mapping (``"Total Email Sends"``, ``"Unique Email Opens"``, …)
    with empty cells as ``None``.
    """

    campaign_id: int
    metrics: dict[str, Cell] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_csv_row(cls, row: Any) -> Any:
        return _split_row(row, {"id": "campaign_id", "campaignId": "campaign_id"})

    def get(self, column: str, default: float = 0) -> float:
        """A counter by its CSV column name; ``default`` when absent, empty or not a number."""
        return _counter(self.metrics.get(column), default)


class ExperimentMetrics(IterableModel):
    """One variant's row of the experiment metrics CSV (email experiments only).

    The named columns become fields; every other column, whatever its name, is kept in
    ``metrics`` (numbers as numbers, other text as received).
    """

    experiment_id: int
    campaign_id: int
    template_id: int | None = None
    variant_name: str | None = None
    is_control: bool | None = None
    metrics: dict[str, Cell] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_csv_row(cls, row: Any) -> Any:
        fields = _split_row(
            row,
            {
                "experimentId": "experiment_id",
                "campaignId": "campaign_id",
                "templateId": "template_id",
                "variantName": "variant_name",
                "isControl": "is_control",
            },
        )
        return fields

    def get(self, column: str, default: float = 0) -> float:
        """A counter by its CSV column name; ``default`` when absent, empty or not a number."""
        return _counter(self.metrics.get(column), default)
