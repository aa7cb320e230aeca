"""Journey tasks, run in a real flow against the sandbox's seeded journeys."""

from __future__ import annotations

import pytest

from prefect_iterable.api.errors import InputValidationError
from prefect_iterable.sandbox.data import journey_state, users
from prefect_iterable.tasks.journeys import iter_journeys, list_journeys, trigger_journey
from tests._seeds import seeded_journey


def _no_requests(sandbox, project) -> None:
    assert sandbox.state.requests(project_id=project.id) == []


class TestListJourneys:
    def test_lists_live_journeys_page_by_page(self, run_in_flow, credentials, sandbox, project):
        live = sorted(
            (j for j in journey_state(project).journeys.values() if not j["isArchived"]),
            key=lambda j: j["name"].lower(),
            reverse=True,
        )
        page = run_in_flow(
            list_journeys, page=1, page_size=4, sort="-name", credentials=credentials
        )
        assert [j.id for j in page.journeys] == [j["id"] for j in live[:4]]
        assert page.total_journeys_count == len(live)
        assert not any(j.is_archived for j in page.journeys)
        assert "page=2" in page.next_page_url
        (request,) = sandbox.state.requests("ITERABLE_LIST_JOURNEYS", project_id=project.id)
        assert (request.method, request.path) == ("GET", "/api/journeys")
        assert request.query == {"page": ["1"], "pageSize": ["4"], "sort": ["-name"]}

    def test_archived_state_lists_only_archived(self, run_in_flow, credentials, project):
        page = run_in_flow(
            list_journeys, page=1, page_size=50, state=["Archived"], credentials=credentials
        )
        archived = [j["id"] for j in journey_state(project).journeys.values() if j["isArchived"]]
        assert archived and [j.id for j in page.journeys] == sorted(archived)
        assert all(j.is_archived for j in page.journeys)

    def test_iter_journeys_walks_every_page(self, credentials, sandbox, project):
        live = sorted(
            j["id"] for j in journey_state(project).journeys.values() if not j["isArchived"]
        )
        assert [j.id for j in iter_journeys(credentials, page_size=4)] == live
        requests = sandbox.state.requests("ITERABLE_LIST_JOURNEYS", project_id=project.id)
        assert [r.query["page"] for r in requests] == [["1"], ["2"]]
        assert all(r.query["pageSize"] == ["4"] for r in requests)

    def test_rejects_a_page_size_over_50(self, run_in_flow, credentials, sandbox, project):
        with pytest.raises(InputValidationError, match="page_size"):
            list_journeys.fn(page_size=51, credentials=credentials)
        with pytest.raises(InputValidationError, match="state"):
            list_journeys.fn(state=["Active"], credentials=credentials)
        with pytest.raises(ValueError):
            next(iter_journeys(credentials, page_size=100))
        _no_requests(sandbox, project)


class TestTriggerJourney:
    def test_enters_one_user_by_email(self, run_in_flow, credentials, sandbox, project):
        journey = seeded_journey(project)
        result = run_in_flow(
            trigger_journey,
            journey["id"],
            email="ana@example.com",
            data_fields={"plan": "pro"},
            credentials=credentials,
        )
        assert result.code == "Success"
        (trigger,) = journey_state(project).triggers
        assert trigger["workflowId"] == journey["id"]
        assert trigger["entered"] == [{"email": "ana@example.com", "userId": None}]
        assert trigger["dataFields"] == {"plan": "pro"}
        assert users(project).find(email="ana@example.com") is not None
        (request,) = sandbox.state.requests("ITERABLE_TRIGGER_JOURNEY", project_id=project.id)
        assert (request.path, request.body) == (
            "/api/workflows/triggerWorkflow",
            {
                "workflowId": journey["id"],
                "email": "ana@example.com",
                "dataFields": {"plan": "pro"},
            },
        )

    def test_needs_exactly_one_target(self, run_in_flow, credentials, sandbox, project):
        with pytest.raises(InputValidationError, match="one of"):
            trigger_journey.fn(5, credentials=credentials)
        with pytest.raises(InputValidationError, match="only one"):
            trigger_journey.fn(5, email="a@example.com", list_id=3, credentials=credentials)
        with pytest.raises(InputValidationError, match="email"):
            trigger_journey.fn(5, email="not-an-email", credentials=credentials)
        _no_requests(sandbox, project)
