"""What tests put in a sandbox project before they call it, in one place for both kinds of test.

Tests of tasks (``tests/tasks``) and tests of the sandbox itself (``tests/sandbox``) seed the same
things: an email template, a list of three members, campaigns in states no single call reaches,
export jobs with explicit clocks. The fixtures built on these live in ``tests/conftest.py``. All of
it goes through the sandbox's public ``prefect_iterable.sandbox.data``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from prefect_iterable.sandbox.data import (
    ExportSpec,
    Project,
    User,
    UserList,
    campaigns,
    columns,
    journey_state,
    lists,
    templates,
)

TEMPLATE_ID = 501
AUDIENCE_ID = 71
AUDIENCE = ("ana@example.com", "bo@example.com", "cy@example.com")
#: The window export tests ask for: two hours.
EXPORT_START = datetime(2026, 1, 5, 0, 0, tzinfo=timezone.utc)
EXPORT_END = datetime(2026, 1, 5, 2, 0, tzinfo=timezone.utc)


def email_template(project: Project) -> dict[str, Any]:
    """The email template ``TEMPLATE_ID``, with a French locale."""
    body = {
        "templateId": TEMPLATE_ID,
        "name": "Spring newsletter",
        "messageMedium": "Email",
        "templateType": "Base",
        "clientTemplateId": "spring-2024",
        "subject": "Hello from [[city]]",
        "localeContent": {"fr": {"subject": "Bonjour de [[city]]"}},
    }
    templates(project)[TEMPLATE_ID] = body
    return body


def email_list(project: Project, list_id: int, *emails: str) -> UserList:
    """A static list ``list_id`` of users known by email."""
    user_list = UserList(id=list_id, name=f"list-{list_id}")
    for email in emails:
        user_list.members[email] = User(email=email, user_id=None)
    lists(project)[list_id] = user_list
    return user_list


def seeded_campaign(
    project: Project, state: str = "Ready", kind: str = "Blast", **fields: Any
) -> dict[str, Any]:
    """A campaign put straight into sandbox state (for states no single call reaches)."""
    campaign_id = project.next_id()
    body = {
        "id": campaign_id,
        "name": fields.pop("name", f"campaign-{campaign_id}"),
        "templateId": TEMPLATE_ID,
        "messageMedium": "Email",
        "type": kind,
        "campaignState": state,
        "listIds": [AUDIENCE_ID] if kind == "Blast" else [],
        "suppressionListIds": [],
        "labels": [],
        "createdAt": 1_700_000_000_000 + campaign_id,
        "updatedAt": 1_700_000_000_000 + campaign_id,
        "createdByUserId": "tester@example.com",
        **fields,
    }
    campaigns(project)[campaign_id] = body
    return body


def campaign_state(project: Project, campaign_id: int) -> str:
    return str(campaigns(project)[campaign_id]["campaignState"])


def blast(client: Any, **overrides: Any) -> int:
    """A blast campaign to the audience, created through the API (unscheduled by default)."""
    values = {"name": "Spring", "template_id": TEMPLATE_ID, "list_ids": [AUDIENCE_ID]}
    values |= {"schedule_send": False} | overrides
    return int(client.call("ITERABLE_CREATE_CAMPAIGN", **values)["campaignId"])


def triggered(client: Any) -> int:
    """A triggered campaign, created through the API."""
    answer = client.call("ITERABLE_CREATE_CAMPAIGN", name="Welcome", template_id=TEMPLATE_ID)
    return int(answer["campaignId"])


def seeded_journey(
    project: Project, *, archived: bool = False, enabled: bool = True
) -> dict[str, Any]:
    """One of the project's seeded journeys in the state asked for."""
    return next(
        j
        for j in journey_state(project).journeys.values()
        if bool(j["isArchived"]) == archived and bool(j["enabled"]) == enabled
    )


def export_spec(
    project: Project, data_type: str, fmt: str, rows_per_hour: int = 60, **fields: Any
) -> ExportSpec:
    """An export job over the test window, of every column of ``data_type``."""
    return ExportSpec(
        project_id=project.id,
        data_type=data_type,
        output_format=fmt,
        start=EXPORT_START.timestamp(),
        end=EXPORT_END.timestamp(),
        rows_per_hour=rows_per_hour,
        fields=columns(project, data_type),
        **fields,
    )
