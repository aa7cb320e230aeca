"""The API key never shows: not in logs, reprs, errors or run names."""

from __future__ import annotations

import logging

import pytest

from prefect_iterable.api import errors
from prefect_iterable.blocks import IterableCredentials


def test_the_key_is_absent_from_logs_reprs_and_errors(
    credentials, sandbox, project, api_key, caplog, capsys
):
    caplog.set_level(logging.DEBUG)  # httpx and httpcore log at DEBUG: include them
    seen: list[str] = []
    with credentials.get_client() as client:
        client.call("ITERABLE_LIST_CHANNELS")
        seen += [repr(client), str(client.__dict__.get("scope_keys"))]
        sandbox.inject("ITERABLE_LIST_CHANNELS", "error", status=400, code="BadParams", msg="nope")
        with pytest.raises(errors.BadParams) as caught:
            client.call("ITERABLE_LIST_CHANNELS")
        seen += [str(caught.value), repr(caught.value), repr(caught.value.__dict__)]
    seen += [repr(credentials), str(credentials), credentials.model_dump_json()]
    seen += [str(credentials.model_dump()), repr(credentials.api_key)]
    captured = capsys.readouterr()
    seen += [captured.out, captured.err, caplog.text]
    assert "ITERABLE_LIST_CHANNELS" in caplog.text  # the client did log each request
    for text in seen:
        assert api_key not in text


def test_a_bad_key_is_not_echoed_in_the_error(sandbox_server, sandbox):
    secret = "itbl-wrong-key-0123456789abcdef"
    creds = IterableCredentials(api_key=secret, base_url=sandbox_server.url)
    with creds.get_client() as client, pytest.raises(errors.BadApiKey) as caught:
        client.call("ITERABLE_LIST_CHANNELS")
    assert secret not in str(caught.value) and secret not in repr(caught.value.__dict__)


def test_task_run_names_and_logs_carry_no_key(run_in_flow, credentials, api_key, caplog):
    from prefect_iterable.tasks.channels import list_channels

    caplog.set_level(logging.DEBUG)
    run_in_flow(list_channels, credentials=credentials)
    assert "list-channels" in caplog.text and api_key not in caplog.text
