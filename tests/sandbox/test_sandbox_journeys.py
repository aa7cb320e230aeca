"""The sandbox's journey triggers: one list run at a time, archived or disabled journeys refuse."""

from __future__ import annotations

import pytest

from prefect_iterable.api.errors import BadParams
from prefect_iterable.sandbox.data import journey_state
from tests._seeds import AUDIENCE, AUDIENCE_ID, seeded_journey


class TestTriggers:
    def test_a_list_trigger_must_finish_before_the_next(self, client, project, audience):
        journey = seeded_journey(project)
        client.call("ITERABLE_TRIGGER_JOURNEY", workflow_id=journey["id"], list_id=AUDIENCE_ID)
        assert len(journey_state(project).triggers[0]["entered"]) == len(AUDIENCE)
        with pytest.raises(BadParams, match="still in progress"):
            client.call("ITERABLE_TRIGGER_JOURNEY", workflow_id=journey["id"], list_id=AUDIENCE_ID)
        # Another journey may take the same list meanwhile.
        other = [j for j in journey_state(project).journeys.values() if j["enabled"]][1]
        client.call("ITERABLE_TRIGGER_JOURNEY", workflow_id=other["id"], list_id=AUDIENCE_ID)
        # Once the first run has finished, the list can enter the journey again.
        journey_state(project).list_runs[(journey["id"], AUDIENCE_ID)] = 0.0
        client.call("ITERABLE_TRIGGER_JOURNEY", workflow_id=journey["id"], list_id=AUDIENCE_ID)
        assert len(journey_state(project).triggers) == 3

    def test_archived_or_disabled_journeys_refuse(self, client, project):
        for journey in (
            seeded_journey(project, archived=True, enabled=False),
            seeded_journey(project, enabled=False),
        ):
            with pytest.raises(BadParams, match="archived|not enabled"):
                client.call(
                    "ITERABLE_TRIGGER_JOURNEY", workflow_id=journey["id"], email="bo@example.com"
                )
        assert journey_state(project).triggers == []
