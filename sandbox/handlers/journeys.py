"""Journeys (workflows): listed and triggered through the API, built only in Iterable's UI.

No API creates a journey, so each project is seeded on first access with a handful, archived and
disabled ones among them. A trigger is recorded in ``journey_state(project).triggers``; a list
trigger runs asynchronously in Iterable, so the same list cannot enter the same journey again
until it has finished (here: one second, scaled by the sandbox's time scale).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from prefect_iterable.sandbox.handlers._base import Call, bad_params, handles, paginate, success
from prefect_iterable.sandbox.handlers._shared import (
    check_identity,
    get_or_create_user,
    now_ms,
    require_list,
)
from prefect_iterable.sandbox.state import Project

__all__ = ["JourneyState", "journey_state"]

SORT_FIELDS = ("id", "name", "createdAt", "updatedAt")
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 10, 50
LIST_TRIGGER_SECONDS = 1.0
_DAY_MS = 86_400_000

# name, description, enabled, archived, trigger events, has an unpublished draft
_SEED = [
    ("Welcome series", "Greets new sign-ups over their first week", True, False, ["signUp"], False),
    (
        "Abandoned cart",
        "Reminds shoppers of items left in the cart",
        True,
        False,
        ["cartUpdate"],
        True,
    ),
    ("Post-purchase", "Thanks buyers and asks for a review", True, False, ["purchase"], False),
    ("Win-back", "Re-engages users inactive for 60 days", True, False, [], False),
    ("Birthday offer", "Sends a coupon on the user's birthday", False, False, [], False),
    ("Onboarding tips", "Walks new users through key features", True, False, ["appOpen"], False),
    ("Spring sale 2023", "Seasonal promotion", False, True, [], False),
    ("Beta feedback", "Survey for beta testers", False, True, ["betaJoined"], False),
]


@dataclass
class JourneyState:
    journeys: dict[int, dict[str, Any]] = field(default_factory=dict)
    triggers: list[dict[str, Any]] = field(default_factory=list)
    # (journey id, list id) -> time.monotonic() when that list trigger finishes
    list_runs: dict[tuple[int, int], float] = field(default_factory=dict)


def _seed(project: Project) -> JourneyState:
    state = JourneyState()
    now = now_ms()
    for n, (name, description, enabled, archived, events, has_draft) in enumerate(_SEED):
        journey_id = project.next_id()
        created = now - (60 - 5 * n) * _DAY_MS
        journey: dict[str, Any] = {
            "id": journey_id,
            "name": name,
            "description": description,
            "enabled": enabled,
            "isArchived": archived,
            "journeyType": "Published",
            "createdAt": created,
            "updatedAt": created + 2 * _DAY_MS,
            "creatorUserId": "marketer@sandbox.iterable.local",
            "lifetimeLimit": 1 if "offer" in name.lower() else 3,
            "simultaneousLimit": 1,
            "startTileId": 1,
            "triggerEventNames": list(events),
        }
        if has_draft:
            journey["draft"] = {
                "id": project.next_id(),
                "name": f"{name} (draft)",
                "creatorUserId": "marketer@sandbox.iterable.local",
                "createdAt": created + 3 * _DAY_MS,
                "updatedAt": created + 4 * _DAY_MS,
            }
        state.journeys[journey_id] = journey
    return state


def journey_state(project: Project) -> JourneyState:
    return project.area("journeys", lambda: _seed(project))


@handles("ITERABLE_LIST_JOURNEYS")
def list_journeys(call: Call) -> dict[str, Any]:
    state = journey_state(call.project)
    wanted = call.args("state")
    unknown = [s for s in wanted if s != "Archived"]
    if unknown:
        raise bad_params(f"Unknown journey state {', '.join(unknown)}; the only filter is Archived")
    archived = bool(wanted)
    items = [j for j in state.journeys.values() if bool(j.get("isArchived")) == archived]
    sort = call.arg("sort") or "id"
    field_name = sort.lstrip("+-")
    if field_name not in SORT_FIELDS:
        raise bad_params(f"Cannot sort journeys by {sort!r}; use one of {', '.join(SORT_FIELDS)}")
    items.sort(
        key=lambda j: (
            str(j[field_name]).lower() if field_name == "name" else j[field_name],
            j["id"],
        ),
        reverse=sort.startswith("-"),
    )
    page = paginate(call, items, default_size=DEFAULT_PAGE_SIZE, max_size=MAX_PAGE_SIZE)
    return {
        "journeys": [dict(j) for j in page.items],
        "totalJourneysCount": page.total,
        **page.links(),
    }


@handles("ITERABLE_TRIGGER_JOURNEY")
def trigger_journey(call: Call) -> dict[str, Any]:
    project = call.project
    state = journey_state(project)
    call.require("workflowId")
    journey_id = call.int_arg("workflowId")
    journey = state.journeys.get(journey_id or 0)
    if journey is None:
        raise bad_params(f"Journey {journey_id} does not exist", workflowId=journey_id)
    if journey.get("isArchived"):
        raise bad_params(f"Journey {journey_id} is archived and cannot be triggered")
    if not journey.get("enabled"):
        raise bad_params(f"Journey {journey_id} is not enabled: it accepts no new entrances")
    email, user_id, list_id = call.arg("email"), call.arg("userId"), call.arg("listId")
    data_fields = call.arg("dataFields")
    if data_fields is not None and not isinstance(data_fields, dict):
        raise bad_params("dataFields must be a JSON object")
    entry: dict[str, Any] = {
        "workflowId": journey_id,
        "dataFields": dict(data_fields or {}),
        "createdAt": now_ms(),
    }
    if list_id not in (None, ""):
        if email not in (None, "") or user_id not in (None, ""):
            raise bad_params("Give either listId or a user (email or userId), not both")
        user_list = require_list(project, list_id)
        key = (journey["id"], user_list.id)
        now = time.monotonic()
        if state.list_runs.get(key, 0.0) > now:
            raise bad_params(
                f"A trigger of list {user_list.id} into journey {journey['id']} is still in "
                "progress; retry when it has finished",
                workflowId=journey["id"],
                listId=user_list.id,
            )
        state.list_runs[key] = now + call.sandbox.scaled(LIST_TRIGGER_SECONDS)
        entry["listId"] = user_list.id
        entry["entered"] = [
            {"email": u.email, "userId": u.user_id} for u in user_list.members.values()
        ]
    else:
        email, user_id = check_identity(project, email, user_id)
        user = get_or_create_user(project, email, user_id)
        entry["entered"] = [{"email": user.email, "userId": user.user_id}]
    state.triggers.append(entry)
    return success(f"Triggered journey {journey['id']} for {len(entry['entered'])} users")
