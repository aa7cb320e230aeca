"""One retry policy, the client's: a task run adds no attempts of its own.

Each test counts the requests that reached the sandbox through one task run: the client's attempts
and nothing more (a task-level retry on top used to make a persistent 500 cost 18 requests, and
re-sent a request Iterable had told to wait an hour or a day).
"""

from __future__ import annotations

import dataclasses

import pytest

import prefect_iterable.api.client as client_module
from prefect_iterable.api import RetryPolicy
from prefect_iterable.api.errors import GenericError, RateLimited
from prefect_iterable.tasks.channels import list_channels
from prefect_iterable.tasks.users import forget_user


@dataclasses.dataclass(frozen=True)
class _QuickBackoff(RetryPolicy):
    """The default attempts and decisions, with millisecond backoffs."""

    backoff_base: float = 0.01
    backoff_cap: float = 0.02


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch):
    monkeypatch.setattr(client_module, "RetryPolicy", _QuickBackoff)


def _count(sandbox, project, action):
    return len(sandbox.state.requests(action, project_id=project.id))


def test_a_persistent_500_costs_the_clients_attempts_only(
    run_in_flow, credentials, sandbox, project
):
    sandbox.inject("ITERABLE_LIST_CHANNELS", "500", count=100)
    with pytest.raises(GenericError):
        run_in_flow(list_channels, credentials=credentials)
    assert _count(sandbox, project, "ITERABLE_LIST_CHANNELS") == RetryPolicy().attempts == 6


def test_a_429_asking_to_wait_an_hour_is_sent_once(run_in_flow, credentials, sandbox, project):
    sandbox.inject("ITERABLE_LIST_CHANNELS", "429", count=100, retry_after=3600)
    with pytest.raises(RateLimited) as caught:
        run_in_flow(list_channels, credentials=credentials)
    assert caught.value.retry_after == 3600
    assert _count(sandbox, project, "ITERABLE_LIST_CHANNELS") == 1


def test_a_daily_cap_is_not_retried(run_in_flow, credentials, sandbox, project):
    project.forget_daily_cap = 1
    run_in_flow(forget_user, "first@example.com", credentials=credentials)
    with pytest.raises(RateLimited, match="Daily cap") as caught:
        run_in_flow(forget_user, "second@example.com", credentials=credentials)
    assert caught.value.retry_after > 3600
    assert _count(sandbox, project, "ITERABLE_FORGET_USER") == 2
