"""The catalog against Iterable's Swagger document and the action list, for all 116 actions."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from prefect_iterable.api.catalog import ACTIONS, Effect, Location, Period, Scope, Tier, get_action

REFERENCE = Path(__file__).parents[1] / "reference"
ACTION_LIST = {
    a["action"]: a for a in json.loads((REFERENCE / "iterable-actions.json").read_text())
}
SWAGGER = json.loads((REFERENCE / "iterable-openapi.json").read_text())

_IN = {"path": Location.PATH, "query": Location.QUERY, "body": Location.BODY}

# Where the Swagger document contradicts itself, the catalog takes the type its sibling schemas use
# (the push templates type cacheDataFeed as boolean, templates report campaignId as an integer).
TYPE_CORRECTIONS = {
    ("ITERABLE_UPDATE_EMAIL_TEMPLATE", "cacheDataFeed"): "boolean",
    ("ITERABLE_UPDATE_EMAIL_TEMPLATE", "mergeDataFeedContext"): "boolean",
    ("ITERABLE_UPSERT_EMAIL_TEMPLATE", "cacheDataFeed"): "boolean",
    ("ITERABLE_UPDATE_EMBEDDED_TEMPLATE", "placementId"): "integer",
    ("ITERABLE_UPSERT_EMBEDDED_TEMPLATE", "placementId"): "integer",
    ("ITERABLE_UPDATE_SMS_TEMPLATE", "campaignId"): "integer",
}


def _swagger_params(method: str, path: str) -> dict[str, Location]:
    """Wire name -> location of every parameter Swagger declares for the operation."""
    operation = SWAGGER["paths"][path][method.lower()]
    found: dict[str, Location] = {}
    for param in operation.get("parameters", []):
        if param["in"] in ("path", "query"):
            found[param["name"]] = _IN[param["in"]]
        elif param["in"] == "body":
            schema = param.get("schema", {})
            if "$ref" in schema:
                schema = SWAGGER["definitions"][schema["$ref"].rsplit("/", 1)[1]]
            for name in schema.get("properties", {}):
                found[name] = Location.BODY
    return found


def test_the_catalog_has_the_116_actions_once_each():
    assert len(ACTIONS) == 116
    assert {a.id for a in ACTIONS} == set(ACTION_LIST)
    assert len({a.name for a in ACTIONS}) == 116


@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: a.id)
def test_method_path_and_parameters_match_the_references(action):
    reference = ACTION_LIST[action.id]
    assert (action.method, action.path) == (reference["method"], reference["path"])
    assert (
        action.path in SWAGGER["paths"] and action.method.lower() in SWAGGER["paths"][action.path]
    )

    wire_names = reference.get("wire_names", {})
    expected = {
        wire_names.get(name, name): _IN[loc]
        for loc in ("path", "query", "body")
        for name in reference[f"{loc}_params"]
    }
    # Paging parameters the action list left out but Swagger declares are taken from Swagger.
    swagger_only = set(reference.get("spec_params_not_in_action_list", [])) & {"page", "pageSize"}
    expected |= {name: Location.QUERY for name in swagger_only}
    assert {p.wire: p.location for p in action.params} == expected

    # Every parameter exists in Swagger at the same place (a few body schemas there are open objects).
    swagger = _swagger_params(action.method, action.path)
    for param in action.params:
        if param.wire in swagger:
            assert swagger[param.wire] is param.location, param.wire
        else:
            assert param.location is Location.BODY, f"{param.wire} missing from Swagger"

    required = {wire_names.get(n, n) for n in reference["required"]}
    assert {p.wire for p in action.params if p.required} == required
    assert {p.wire: p.type for p in action.params} == {
        wire_names.get(n, n): TYPE_CORRECTIONS.get((action.id, n), t)
        for n, t in reference["param_types"].items()
    } | {name: "integer" for name in swagger_only}


@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: a.id)
def test_rate_limits_and_side_effects_match_the_action_list(action):
    reference = ACTION_LIST[action.id]
    text = reference["rate_limit"] or ""
    match = re.search(r"(\d+) requests?/(second|minute), per (project|API key|organization)", text)
    if match is None:
        assert action.limit is None
    else:
        scope = {
            "project": Scope.PROJECT,
            "API key": Scope.API_KEY,
            "organization": Scope.ORGANIZATION,
        }
        assert action.limit is not None
        assert (action.limit.requests, action.limit.period, action.limit.scope) == (
            int(match[1]),
            {"second": Period.SECOND, "minute": Period.MINUTE}[match[2]],
            scope[match[3]],
        )
    cap = re.search(r"Daily Cap: (\d+)", text)
    assert (action.daily_cap.requests if action.daily_cap else None) == (
        int(cap[1]) if cap else None
    )
    if reference["idempotent"]:
        assert action.effect is not Effect.SEND
    else:
        assert action.effect is Effect.SEND


def test_python_names_are_snake_case_and_unique_per_action():
    for action in ACTIONS:
        assert action.name == action.id.removeprefix("ITERABLE_").lower()
        names = [p.name for p in action.params]
        assert len(names) == len(set(names))
        assert all(re.fullmatch(r"[a-z][a-z0-9_]*", n) for n in names)


def test_events_with_their_own_id_become_repeatable():
    track = get_action("ITERABLE_TRACK_EVENT")
    assert track.effect_for({"event_name": "x"}) is Effect.SEND
    assert track.effect_for({"event_name": "x", "event_id": "e-1"}) is Effect.WRITE
    bulk = get_action("ITERABLE_TRACK_EVENTS_BULK")
    assert bulk.effect_for({"events": [{"id": "a"}, {"eventName": "b"}]}) is Effect.SEND
    assert bulk.effect_for({"events": [{"id": "a"}, {"id": "b"}]}) is Effect.WRITE


def test_sends_and_deletes_need_their_own_permission_tier():
    assert get_action("send_campaign").tier is Tier.SEND
    assert get_action("send_email_proof").tier is Tier.SEND
    assert get_action("forget_user").tier is Tier.DELETE
    assert get_action("delete_list").tier is Tier.DELETE
    assert get_action("list_campaigns").tier is Tier.READ
    assert get_action("create_campaign").tier is Tier.WRITE


def test_unknown_actions_are_refused():
    with pytest.raises(KeyError, match="unknown Iterable action"):
        get_action("ITERABLE_DOES_NOT_EXIST")
