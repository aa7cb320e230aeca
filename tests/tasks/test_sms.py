"""SMS verification task against the sandbox, which issues codes with ``issue_code``."""

from __future__ import annotations

import pytest

from prefect_iterable.api.errors import BadParams, Forbidden, InputValidationError
from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.sandbox.data import issue_code
from prefect_iterable.tasks.sms import verify_sms_code

PHONE = "+15551234567"


class TestVerifySmsCode:
    def test_the_latest_code_verifies(self, run_in_flow, credentials, sandbox, project):
        issue_code(project, 7, PHONE, "123456")
        result = run_in_flow(verify_sms_code, " 123456 ", PHONE, 7, credentials=credentials)
        assert (result.code, result.status, result.verified) == ("Success", "verified", True)
        [request] = sandbox.state.requests("ITERABLE_VERIFY_SMS_CODE", project_id=project.id)
        assert (request.method, request.path, request.body) == (
            "POST",
            "/api/verify/sms/check",
            {"code": "123456", "phoneNumber": PHONE, "verificationProfileId": 7},
        )
        # Checking the accepted code again gives the same answer.
        assert run_in_flow(verify_sms_code, "123456", PHONE, 7, credentials=credentials).verified

    def test_an_expired_code_is_rejected(self, run_in_flow, credentials, project):
        issue_code(project, 7, PHONE, "333333", ttl_seconds=-1)
        result = run_in_flow(verify_sms_code, "333333", PHONE, 7, credentials=credentials)
        assert (result.status, result.verified) == ("rejected", False)

    def test_an_unknown_profile_is_refused(self, run_in_flow, credentials, sandbox, project):
        with pytest.raises(BadParams, match="profile 9"):
            run_in_flow(verify_sms_code, "123456", PHONE, 9, credentials=credentials)
        # A refusal is final: neither the client nor the task sends it again.
        assert len(sandbox.state.requests(project_id=project.id)) == 1

    def test_projects_without_the_feature_get_403(self, run_in_flow, make_project, sandbox_server):
        key, basic = make_project(features=[])
        issue_code(basic, 7, PHONE, "123456")
        creds = IterableCredentials(api_key=key, base_url=sandbox_server.url, timeout=5.0)
        with pytest.raises(Forbidden) as caught:
            run_in_flow(verify_sms_code, "123456", PHONE, 7, credentials=creds)
        assert caught.value.status == 403

    @pytest.mark.parametrize(
        ("code", "phone"),
        # No code length is documented (the verification profile decides): only an empty code.
        [("123456", "5551234567"), ("123456", "+1 555 123 4567"), ("", PHONE), ("  ", PHONE)],
    )
    def test_refuses_malformed_input_before_sending(
        self, code, phone, run_in_flow, credentials, sandbox, project
    ):
        with pytest.raises(InputValidationError):
            verify_sms_code.fn(code, phone, 7, credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []
