"""The sandbox's journey triggers: one list run at a time, archived or disabled journeys refuse."""

from __future__ import annotations

import pytest

from prefect_iterable.api.errors import BadParams
from prefect_iterable.sandbox.data import User, UserList, journey_state, lists


def _journey(project, *, archived: bool = False, enabled: bool = True) -> dict:
    return next(
        j
        for j in journey_state(project).journeys.values()
        if bool(j["isArchived"]) == archived and bool(j["enabled"]) == enabled
    )


@pytest.fixture
def audience(project) -> UserList:
    user_list = UserList(id=81, name="VIPs")
    for email in ("ana@example.com", "bo@example.com"):
        user_list.members[email] = User(email=email, user_id=None)
    lists(project)[81] = user_list
    return user_list


class TestTriggers:
    def test_a_list_trigger_must_finish_before_the_next(self, client, project, audience):
        journey = _journey(project)
        client.call("ITERABLE_TRIGGER_JOURNEY", workflow_id=journey["id"], list_id=81)
        assert len(journey_state(project).triggers[0]["entered"]) == 2
        with pytest.raises(BadParams, match="still in progress"):
            client.call("ITERABLE_TRIGGER_JOURNEY", workflow_id=journey["id"], list_id=81)
        # Another journey may take the same list meanwhile.
        other = [j for j in journey_state(project).journeys.values() if j["enabled"]][1]
        client.call("ITERABLE_TRIGGER_JOURNEY", workflow_id=other["id"], list_id=81)
        # Once the first run has finished, the list can enter the journey again.
        journey_state(project).list_runs[(journey["id"], 81)] = 0.0
        client.call("ITERABLE_TRIGGER_JOURNEY", workflow_id=journey["id"], list_id=81)
        assert len(journey_state(project).triggers) == 3

    def test_archived_or_disabled_journeys_refuse(self, client, project):
        for journey in (
            _journey(project, archived=True, enabled=False),
            _journey(project, enabled=False),
        ):
            with pytest.raises(BadParams, match="archived|not enabled"):
                client.call(
                    "ITERABLE_TRIGGER_JOURNEY", workflow_id=journey["id"], email="bo@example.com"
                )
        assert journey_state(project).triggers == []
