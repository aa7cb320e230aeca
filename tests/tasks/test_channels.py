"""Channel and message-type tasks, run in a real flow against the sandbox."""

from __future__ import annotations

import pytest

from prefect_iterable.api.errors import InputValidationError
from prefect_iterable.tasks.channels import list_channels, list_message_types


class TestListChannels:
    def test_lists_the_projects_channels(self, run_in_flow, credentials, sandbox, project):
        result = run_in_flow(list_channels, credentials=credentials)
        assert {c.message_medium for c in result.channels} == {"Email", "Push", "SMS"}
        assert [
            e.method
            for e in sandbox.state.requests("ITERABLE_LIST_CHANNELS", project_id=project.id)
        ] == ["GET"]

    def test_rejects_an_unknown_parameter_before_sending(
        self, run_in_flow, credentials, sandbox, project
    ):
        with pytest.raises(TypeError):
            run_in_flow(list_channels, page=2, credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []


class TestListMessageTypes:
    def test_lists_message_types_with_their_policy(
        self, run_in_flow, credentials, sandbox, project
    ):
        result = run_in_flow(list_message_types, credentials=credentials)
        sms = next(t for t in result.message_types if t.name == "SMS offers")
        assert (sms.channel_id, sms.subscription_policy, sms.frequency_cap.messages) == (
            4,
            "OptIn",
            2,
        )
        assert (
            len(sandbox.state.requests("ITERABLE_LIST_MESSAGE_TYPES", project_id=project.id)) == 1
        )


def test_input_errors_are_value_errors():
    assert issubclass(InputValidationError, ValueError)
