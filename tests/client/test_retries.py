"""Retries: wait what Iterable says, retry what is safe, never repeat a send whose fate is unknown."""

from __future__ import annotations

import pytest

from prefect_iterable.api import Client, errors
from prefect_iterable.api.retrying import RetryPolicy


def test_injected_429s_are_waited_out_by_the_time_the_server_gave(client, sandbox, project):
    sandbox.inject("ITERABLE_LIST_CHANNELS", "429", count=2, retry_after=0.8)
    assert client.call("ITERABLE_LIST_CHANNELS")["channels"]
    log = sandbox.state.requests("ITERABLE_LIST_CHANNELS", project_id=project.id)
    assert [e.status for e in log] == [429, 429, 200]
    gaps = [b.at - a.at for a, b in zip(log, log[1:], strict=False)]
    assert all(gap >= 0.8 for gap in gaps), gaps
    assert all(gap < 2.0 for gap in gaps), gaps  # waited what was asked, not an invented minute


def test_a_429_asking_for_too_long_a_wait_is_raised_not_slept(credentials, sandbox, project):
    sandbox.inject("ITERABLE_LIST_CHANNELS", "429", retry_after=3600)
    with credentials.get_client(retry=RetryPolicy(max_server_wait=60)) as client:
        with pytest.raises(errors.RateLimited) as caught:
            client.call("ITERABLE_LIST_CHANNELS")
    assert caught.value.retry_after == 3600
    assert len(sandbox.state.requests("ITERABLE_LIST_CHANNELS", project_id=project.id)) == 1


@pytest.mark.parametrize("kind", ["500", "503", "reset"])
def test_reads_are_retried_after_server_errors_and_resets(client, sandbox, project, kind):
    sandbox.inject("ITERABLE_LIST_CHANNELS", kind, count=2)
    assert client.call("ITERABLE_LIST_CHANNELS")["channels"]
    assert len(sandbox.state.requests("ITERABLE_LIST_CHANNELS", project_id=project.id)) == 3


def test_a_read_delayed_past_the_timeout_is_retried(credentials, sandbox, project):
    sandbox.inject("ITERABLE_LIST_CHANNELS", "delay", seconds=1.5)
    with credentials.get_client(timeout=0.5) as client:
        assert client.call("ITERABLE_LIST_CHANNELS")["channels"]
    assert len(sandbox.state.requests("ITERABLE_LIST_CHANNELS", project_id=project.id)) == 2


def test_a_send_delayed_past_the_timeout_is_sent_once_and_its_outcome_unknown(
    credentials, sandbox, project
):
    sandbox.inject("ITERABLE_CREATE_LIST", "delay", seconds=1.5)
    with credentials.get_client(timeout=0.5) as client:
        with pytest.raises(errors.OutcomeUnknown, match="outcome unknown") as caught:
            client.call("ITERABLE_CREATE_LIST", name="launch-audience")
    assert caught.value.action == "ITERABLE_CREATE_LIST"
    log = sandbox.state.requests("ITERABLE_CREATE_LIST", project_id=project.id)
    # Iterable did act: a retry would have made a second list.
    assert len(log) == 1 and log[0].processed


def test_a_send_after_a_500_is_not_retried(client, sandbox, project):
    sandbox.inject("ITERABLE_CREATE_LIST", "500")
    with pytest.raises(errors.OutcomeUnknown) as caught:
        client.call("ITERABLE_CREATE_LIST", name="launch-audience")
    assert isinstance(caught.value.__cause__, errors.GenericError)
    assert len(sandbox.state.requests("ITERABLE_CREATE_LIST", project_id=project.id)) == 1


def test_a_send_refused_with_429_did_not_happen_so_it_is_retried(client, sandbox, project):
    sandbox.inject("ITERABLE_CREATE_LIST", "429", retry_after=0.2)
    assert client.call("ITERABLE_CREATE_LIST", name="launch-audience")["listId"]
    assert [
        e.status for e in sandbox.state.requests("ITERABLE_CREATE_LIST", project_id=project.id)
    ] == [429, 200]


def test_an_event_with_its_own_id_is_retried_like_any_repeatable_write(client, sandbox, project):
    sandbox.inject("ITERABLE_TRACK_EVENT", "500")
    client.call(
        "ITERABLE_TRACK_EVENT", event_name="signup", email="a@example.com", event_id="evt-1"
    )
    assert len(sandbox.state.requests("ITERABLE_TRACK_EVENT", project_id=project.id)) == 2
    sandbox.inject("ITERABLE_TRACK_EVENT", "500")
    with pytest.raises(errors.OutcomeUnknown):
        client.call("ITERABLE_TRACK_EVENT", event_name="signup", email="a@example.com")


def test_4xx_validation_errors_are_never_retried(client, sandbox, project):
    sandbox.inject(
        "ITERABLE_LIST_CHANNELS", "error", status=400, code="BadParams", msg="no", count=3
    )
    with pytest.raises(errors.BadParams):
        client.call("ITERABLE_LIST_CHANNELS")
    assert len(sandbox.state.requests("ITERABLE_LIST_CHANNELS", project_id=project.id)) == 1


def test_attempts_are_configurable(credentials, sandbox, project):
    sandbox.inject("ITERABLE_LIST_CHANNELS", "500", count=5)
    with credentials.get_client(retry=RetryPolicy(attempts=2, backoff_base=0.01)) as client:
        with pytest.raises(errors.GenericError):
            client.call("ITERABLE_LIST_CHANNELS")
    assert len(sandbox.state.requests("ITERABLE_LIST_CHANNELS", project_id=project.id)) == 2


def test_a_connection_refused_is_retried_then_raised(sandbox):
    with Client(
        "k", base_url="http://127.0.0.1:9", retry=RetryPolicy(attempts=3, backoff_base=0.01)
    ) as c:
        with pytest.raises(errors.ConnectError):
            c.call("ITERABLE_CREATE_LIST", name="x")


class _Refused429:
    """An attempt that fails like a 429 asking for ``retry_after`` seconds, and counts itself."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1
        raise errors.RateLimited(
            429, "RateLimitExceeded", "slow down", retry_after=self.retry_after
        )


def test_max_elapsed_counts_from_the_first_attempt():
    # The first wait alone would end past max_elapsed: give up now, not after sleeping.
    refused = _Refused429(retry_after=5.0)
    with pytest.raises(errors.RateLimited):
        RetryPolicy(max_elapsed=1.0).run(refused)
    assert refused.calls == 1


async def test_max_elapsed_counts_from_the_first_attempt_async():
    refused = _Refused429(retry_after=5.0)

    async def attempt() -> None:
        refused()

    with pytest.raises(errors.RateLimited):
        await RetryPolicy(max_elapsed=1.0).arun(attempt)
    assert refused.calls == 1


def test_waits_that_fit_in_max_elapsed_are_taken():
    refused = _Refused429(retry_after=0.01)
    with pytest.raises(errors.RateLimited):
        RetryPolicy(attempts=4, max_elapsed=60).run(refused)
    assert refused.calls == 4


def test_a_daily_cap_is_never_retried():
    calls = []

    def capped() -> None:
        calls.append(1)
        raise errors.DailyCapReached(429, "RateLimitExceeded", "cap", retry_after=0.01)

    with pytest.raises(errors.DailyCapReached):
        RetryPolicy().run(capped)
    assert len(calls) == 1
