"""Webhook tasks, run in a real flow against the sandbox (each project starts with two)."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter

from prefect_iterable.api.errors import InputValidationError, NotFound
from prefect_iterable.sandbox.data import webhooks
from prefect_iterable.tasks.webhooks import _AuthToken, list_webhooks, update_webhook


class TestListWebhooks:
    def test_lists_the_seeded_webhooks_without_secrets(
        self, run_in_flow, credentials, sandbox, project
    ):
        result = run_in_flow(list_webhooks, credentials=credentials)
        assert [(w.id, w.auth_type, w.enabled) for w in result.webhooks] == [
            (w["id"], w["authType"], w["enabled"]) for w in webhooks(project).values()
        ]
        assert len(result.webhooks) == 2
        assert all(w.endpoint.startswith("https://") for w in result.webhooks)
        assert not any("authToken" in w.model_dump(by_alias=True) for w in result.webhooks)
        [request] = sandbox.state.requests("ITERABLE_LIST_WEBHOOKS", project_id=project.id)
        assert (request.method, request.path) == ("GET", "/api/webhooks")

    def test_rejects_an_unknown_parameter_before_sending(
        self, run_in_flow, credentials, sandbox, project
    ):
        with pytest.raises(TypeError):
            run_in_flow(list_webhooks, webhook_id=1, credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []


class TestUpdateWebhook:
    def test_changes_only_the_fields_sent(self, run_in_flow, credentials, sandbox, project):
        webhook_id, before = next(iter(webhooks(project).items()))
        before = dict(before)
        result = run_in_flow(
            update_webhook,
            webhook_id,
            endpoint="https://new.example.com/hook",
            auth_type="OAuth2",
            auth_token="tok-123",
            headers=[{"key": "X-Env", "value": "prod"}],
            credentials=credentials,
        )
        assert (result.id, result.endpoint, result.auth_type) == (
            webhook_id,
            "https://new.example.com/hook",
            "OAuth2",
        )
        assert (result.enabled, result.blast_send_enabled, result.triggered_send_enabled) == (
            before["enabled"],
            before["blastSendEnabled"],
            before["triggeredSendEnabled"],
        )
        stored = webhooks(project)[webhook_id]
        assert (stored["authToken"], stored["headers"]) == (
            "tok-123",
            [{"key": "X-Env", "value": "prod"}],
        )
        [request] = sandbox.state.requests("ITERABLE_UPDATE_WEBHOOK", project_id=project.id)
        assert (request.method, request.path, request.body) == (
            "POST",
            "/api/webhooks",
            {
                "id": webhook_id,
                "headers": [{"key": "X-Env", "value": "prod"}],
                "authType": "OAuth2",
                "endpoint": "https://new.example.com/hook",
                "authToken": "tok-123",
            },
        )

    def test_can_switch_a_webhook_off(self, run_in_flow, credentials, project):
        webhook_id = next(iter(webhooks(project)))
        result = run_in_flow(update_webhook, webhook_id, enabled=False, credentials=credentials)
        assert result.enabled is False
        assert webhooks(project)[webhook_id]["enabled"] is False

    def test_an_unknown_webhook_is_not_found(self, run_in_flow, credentials, project):
        with pytest.raises(NotFound):
            run_in_flow(update_webhook, 987_654, enabled=True, credentials=credentials)

    @pytest.mark.parametrize(
        "changes",
        [
            {"endpoint": "http://plain.example.com/hook"},
            {"endpoint": "not a url"},
            {"auth_type": "Bearer"},
            {"headers": [{"key": "X-Env"}]},
            {"headers": [{"key": "", "value": "v"}]},
        ],
    )
    def test_rejects_bad_settings_before_sending(
        self, run_in_flow, credentials, sandbox, project, changes
    ):
        with pytest.raises(InputValidationError):
            update_webhook.fn(1, **changes, credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []

    def test_the_auth_token_is_masked_in_reprs_but_sent_as_itself(self):
        adapter = TypeAdapter(_AuthToken)
        token = adapter.validate_python("tok-secret")
        assert "tok-secret" not in repr(token)
        assert adapter.dump_python(token, mode="json") == "tok-secret"
