"""Emergency stop: abort running and cancel scheduled campaigns, chosen by id, label or name.

Run it from the Prefect UI when a send must not go out (or must stop going out)::

    emergency_stop(label="black-friday")                 # everything with that label
    emergency_stop(name_pattern="2026-11-* promo*")      # a glob over campaign names
    emergency_stop(campaign_ids=[1234, 1235], dry_run=True)

It walks every page of the project's campaigns, picks those that match, and stops each one the
way Iterable allows: running or starting campaigns are aborted, scheduled and recurring ones are
cancelled; anything else (draft, ready, finished, aborted, archived) is reported as skipped with
its state. Running it again is safe: campaigns it already stopped are skipped the second time.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from typing import Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.events import emit_event
from pydantic import BaseModel, Field, PositiveInt

from prefect_iterable.api.catalog import get_action
from prefect_iterable.api.errors import IterableError
from prefect_iterable.api.models.campaigns import Campaign
from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.tasks.campaigns import abort_campaign, cancel_campaign, list_campaigns

__all__ = ["StopReport", "StopRow", "emergency_stop", "walk_campaigns"]

#: Campaigns per ``ITERABLE_LIST_CAMPAIGNS`` page (Iterable's maximum is 1000).
PAGE_SIZE = 1000
#: States stopped by ``ITERABLE_ABORT_CAMPAIGN``.
ABORTABLE = frozenset({"Running", "Starting"})
#: States stopped by ``ITERABLE_CANCEL_CAMPAIGN``.
CANCELLABLE = frozenset({"Scheduled", "Recurring"})

Action = Literal["abort", "cancel", "skip"]


class StopRow(BaseModel):
    """What happened to one matching campaign (or requested id)."""

    campaign_id: int
    name: str = ""
    state_before: str = Field(description="The campaign's state when listed; 'NotFound' if absent.")
    action: Action
    outcome: str = Field(
        description="aborted, cancelled, would abort, would cancel, skipped (<state>), "
        "not found, or failed: <error>."
    )


class StopReport(BaseModel):
    """The result of an emergency stop."""

    dry_run: bool
    matched: int = Field(description="Campaigns that matched the selectors.")
    aborted: list[int] = Field(default_factory=list)
    cancelled: list[int] = Field(default_factory=list)
    skipped: list[int] = Field(default_factory=list)
    not_found: list[int] = Field(default_factory=list, description="Requested ids not listed.")
    failed: list[int] = Field(default_factory=list)
    rows: list[StopRow] = Field(default_factory=list)


def walk_campaigns(
    credentials: IterableCredentials, *, page_size: int = PAGE_SIZE, max_pages: int = 10_000
) -> Iterator[Campaign]:
    """Every campaign of the project, page by page (``ITERABLE_LIST_CAMPAIGNS``), oldest first.

    Stops at the first page that is short or has no ``nextPageUrl``.
    """
    for page in range(1, max_pages + 1):
        answer = list_campaigns(page=page, page_size=page_size, sort="id", credentials=credentials)
        yield from answer.campaigns
        if len(answer.campaigns) < page_size or not answer.next_page_url:
            return


def _matches(
    campaign: Campaign,
    ids: set[int],
    label: str | None,
    pattern: str | None,
    match: Literal["any", "all"],
) -> bool:
    tests: list[bool] = []
    if ids:
        tests.append(campaign.id in ids)
    if label is not None:
        wanted = label.strip().casefold()
        tests.append(any(str(x).strip().casefold() == wanted for x in campaign.labels or []))
    if pattern is not None:
        tests.append(fnmatch.fnmatchcase((campaign.name or "").casefold(), pattern.casefold()))
    return any(tests) if match == "any" else all(tests)


def _markdown_table(rows: list[StopRow]) -> list[dict[str, object]]:
    return [
        {
            "id": r.campaign_id,
            "name": r.name,
            "state before": r.state_before,
            "action": r.action,
            "outcome": r.outcome,
        }
        for r in rows
    ]


@flow(name="emergency-stop", log_prints=False)
def emergency_stop(
    campaign_ids: list[PositiveInt] | None = None,
    label: str | None = None,
    name_pattern: str | None = None,
    match: Literal["any", "all"] = "any",
    dry_run: bool = False,
    credentials_block: str | None = None,
) -> StopReport:
    """Abort running and cancel scheduled or recurring campaigns that match the selectors.

    Steps:
        1. Check the selectors (at least one) and the credentials' permissions, before any request.
        2. Walk every page of the project's campaigns (``ITERABLE_LIST_CAMPAIGNS``).
        3. For each matching campaign: Running or Starting → ``ITERABLE_ABORT_CAMPAIGN``;
           Scheduled or Recurring → ``ITERABLE_CANCEL_CAMPAIGN``; any other state is skipped and
           reported with its state (so a second run skips what the first stopped).
        4. Publish a table artifact ``emergency-stop-report`` (id, name, state before, action,
           outcome) and emit ``iterable.campaign.aborted`` / ``iterable.campaign.cancelled``.

    With ``dry_run`` it lists what it would stop and stops nothing. If stopping any campaign
    failed, the flow fails after the report is published, naming those campaigns.

    Args:
        campaign_ids: Campaign ids to stop.
        label: A campaign label to stop (exact name, case-insensitive).
        name_pattern: A shell-style glob over campaign names, case-insensitive: `*` any text,
            `?` one character, `[abc]` one of; e.g. `Black Friday*`. Not a regular expression.
        match: With several selectors: `any` stops campaigns matching any of them, `all` only
            those matching every one.
        dry_run: Only list what would be stopped; stop nothing.
        credentials_block: Name of a saved IterableCredentials block; empty uses the
            `ITERABLE_*` environment variables.

    Returns:
        A StopReport: the ids aborted, cancelled, skipped, not found and failed, with one row per
        matching campaign.
    """
    logger = get_run_logger()
    ids = set(campaign_ids or [])
    label = label.strip() if label and label.strip() else None
    name_pattern = name_pattern if name_pattern and name_pattern.strip() else None
    if not ids and label is None and name_pattern is None:
        raise ValueError(
            "emergency_stop needs at least one selector: campaign_ids, label or name_pattern"
        )
    credentials = IterableCredentials.load_or_env(credentials_block)
    if not dry_run:
        for action_id in ("ITERABLE_ABORT_CAMPAIGN", "ITERABLE_CANCEL_CAMPAIGN"):
            credentials.check_permission(get_action(action_id))
    credentials.check_permission(get_action("ITERABLE_LIST_CAMPAIGNS"))

    campaigns = list(walk_campaigns(credentials))
    selected = [c for c in campaigns if _matches(c, ids, label, name_pattern, match)]
    logger.info(
        "%d campaign(s) match the selectors%s", len(selected), " (dry run)" if dry_run else ""
    )

    report = StopReport(dry_run=dry_run, matched=len(selected))
    for campaign in selected:
        state = str(campaign.campaign_state)
        row = StopRow(
            campaign_id=campaign.id,
            name=campaign.name,
            state_before=state,
            action="skip",
            outcome="",
        )
        if state in ABORTABLE:
            row.action, stop, done = "abort", abort_campaign, "aborted"
        elif state in CANCELLABLE:
            row.action, stop, done = "cancel", cancel_campaign, "cancelled"
        else:
            row.outcome = f"skipped ({state})"
            report.skipped.append(campaign.id)
            report.rows.append(row)
            continue
        if dry_run:
            row.outcome = f"would {row.action}"
            report.rows.append(row)
            continue
        try:
            stop(campaign_id=campaign.id, credentials=credentials)
        except IterableError as exc:
            row.outcome = f"failed: {type(exc).__name__}: {exc}"
            report.failed.append(campaign.id)
            logger.error("campaign %s: %s failed: %s", campaign.id, row.action, exc)
        else:
            row.outcome = done
            (report.aborted if done == "aborted" else report.cancelled).append(campaign.id)
            logger.warning("campaign %s (%s) %s", campaign.id, state, done)
            emit_event(
                event=f"iterable.campaign.{done}",
                resource={
                    "prefect.resource.id": f"iterable.campaign.{campaign.id}",
                    "prefect.resource.name": campaign.name or "",
                },
                payload={"state_before": state, "reason": "emergency_stop"},
            )
        report.rows.append(row)

    listed = {c.id for c in campaigns}
    for missing in sorted(ids - listed):
        report.not_found.append(missing)
        report.rows.append(
            StopRow(
                campaign_id=missing, state_before="NotFound", action="skip", outcome="not found"
            )
        )
    if report.not_found:
        logger.warning("campaign id(s) not found: %s", ", ".join(map(str, report.not_found)))

    create_table_artifact(
        table=_markdown_table(report.rows),
        key="emergency-stop-report",
        description=(
            f"Emergency stop{' (dry run)' if dry_run else ''}: {report.matched} matched, "
            f"{len(report.aborted)} aborted, {len(report.cancelled)} cancelled, "
            f"{len(report.skipped)} skipped, {len(report.failed)} failed"
        ),
    )
    logger.info(
        "emergency stop%s: %d aborted, %d cancelled, %d skipped, %d not found, %d failed",
        " (dry run)" if dry_run else "",
        len(report.aborted),
        len(report.cancelled),
        len(report.skipped),
        len(report.not_found),
        len(report.failed),
    )
    if report.failed:
        raise RuntimeError(
            "could not stop campaign(s) "
            + ", ".join(map(str, report.failed))
            + "; see the emergency-stop-report artifact"
        )
    return report
