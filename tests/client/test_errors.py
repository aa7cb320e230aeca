"""Every error class, raised from real sandbox responses over HTTP."""

from __future__ import annotations

import pytest

from prefect_iterable.api import Client, errors
from prefect_iterable.api.retrying import RetryPolicy

# The status Iterable answers each code with (iterable-api-notes.md §2).
CODE_STATUS = {
    "BadApiKey": 401,
    "BadAuthorizationHeader": 401,
    "Unauthorized": 401,
    "Forbidden": 403,
    "ForbiddenParamsError": 403,
    "NotFound": 404,
    "ExternalKeyConflict": 409,
    "ForgottenUserError": 409,
    "RateLimitExceeded": 429,
    "DatabaseError": 500,
    "GenericError": 500,
    "QueueEmailError": 500,
}


def _status(code: str) -> int:
    return CODE_STATUS.get(code, 400)


@pytest.fixture
def once(credentials):
    """A client that tries each request once, so an error surfaces as it arrived."""
    with credentials.get_client(retry=RetryPolicy(attempts=1)) as client:
        yield client


@pytest.mark.parametrize("code", sorted(errors.CODE_CLASSES))
def test_every_swagger_code_raises_its_class(once, sandbox, project, code):
    params = (
        {"validationErrors": {"age": {"expected": "long"}}}
        if code.startswith("Request")
        else {"k": 1}
    )
    sandbox.inject(
        "ITERABLE_LIST_CHANNELS",
        "error",
        status=_status(code),
        code=code,
        msg=f"{code} says no",
        params=params,
    )
    with pytest.raises(errors.CODE_CLASSES[code]) as caught:
        once.call("ITERABLE_LIST_CHANNELS")
    error = caught.value
    assert (error.status, error.code, error.msg, error.params) == (
        _status(code),
        code,
        f"{code} says no",
        params,
    )
    assert error.action == "ITERABLE_LIST_CHANNELS"
    assert isinstance(error, errors.ApiError) and isinstance(error, errors.IterableError)


def test_the_status_decides_even_when_iterable_says_success(once, sandbox, project):
    sandbox.inject("ITERABLE_LIST_CHANNELS", "error", status=400, code="Success", msg="bad sort")
    with pytest.raises(errors.BadRequest) as caught:
        once.call("ITERABLE_LIST_CHANNELS")
    assert caught.value.code is None and caught.value.msg == "bad sort"


def test_field_type_mismatch_carries_the_validation_errors(once, sandbox, project):
    details = {"age": {"expected": "long", "got": "string"}}
    sandbox.inject(
        "ITERABLE_LIST_CHANNELS",
        "error",
        status=400,
        code="RequestFieldsTypesMismatched",
        msg="types",
        params={"validationErrors": details},
    )
    with pytest.raises(errors.RequestFieldsTypesMismatched) as caught:
        once.call("ITERABLE_LIST_CHANNELS")
    assert caught.value.validation_errors == details


def test_a_wrong_key_is_bad_api_key(sandbox_server, sandbox):
    with Client("not-a-key", base_url=sandbox_server.url) as client:
        with pytest.raises(errors.BadApiKey) as caught:
            client.call("ITERABLE_LIST_CHANNELS")
    assert caught.value.status == 401


def test_a_plain_text_body_keeps_its_text(once, sandbox, project):
    sandbox.inject("ITERABLE_LIST_CHANNELS", "503")
    with pytest.raises(errors.ServiceUnavailable) as caught:
        once.call("ITERABLE_LIST_CHANNELS")
    assert caught.value.status == 503 and caught.value.code is None
    assert "Try again later" in caught.value.msg and "Try again later" in caught.value.text


def test_an_html_page_becomes_the_same_tree_with_its_title(once, sandbox, project):
    sandbox.inject("ITERABLE_LIST_CHANNELS", "html", status=502, msg="Bad Gateway")
    with pytest.raises(errors.ServerError) as caught:
        once.call("ITERABLE_LIST_CHANNELS")
    assert caught.value.msg == "502 Bad Gateway" and "<html>" in caught.value.text
    sandbox.inject("ITERABLE_LIST_CHANNELS", "html", status=404, msg="Not Found")
    with pytest.raises(errors.NotFound):
        once.call("ITERABLE_LIST_CHANNELS")


def test_no_server_is_a_connect_error(credentials):
    with Client(
        "k", base_url="http://127.0.0.1:9", retry=RetryPolicy(attempts=2, backoff_base=0.01)
    ) as client:
        with pytest.raises(errors.ConnectError):
            client.call("ITERABLE_LIST_CHANNELS")


def test_bad_input_raises_before_any_request(client, sandbox, project):
    with pytest.raises(errors.InputValidationError, match="campaign_id") as caught:
        client.call("ITERABLE_ABORT_CAMPAIGN", campaign_id="twelve")
    assert caught.value.errors[0][0] == "campaign_id"
    with pytest.raises(errors.InputValidationError, match="Field required"):
        client.call("ITERABLE_ABORT_CAMPAIGN")
    with pytest.raises(errors.InputValidationError, match="campaignid"):
        client.call("ITERABLE_ABORT_CAMPAIGN", campaignid=1)
    assert sandbox.state.requests(project_id=project.id) == []
