"""The sandbox's SMS verification codes: a replaced code is refused, wrong guesses burn a code."""

from __future__ import annotations

from prefect_iterable.sandbox.data import MAX_ATTEMPTS, issue_code

PHONE = "+15551234567"


class TestSmsCodes:
    def test_a_wrong_or_replaced_code_is_rejected_with_200(self, client, project):
        issue_code(project, 7, PHONE, "111111")
        issue_code(project, 7, PHONE, "222222")
        old = client.call(
            "ITERABLE_VERIFY_SMS_CODE", code="111111", phone_number=PHONE, verification_profile_id=7
        )
        assert old["params"] == {"status": "rejected"}
        new = client.call(
            "ITERABLE_VERIFY_SMS_CODE", code="222222", phone_number=PHONE, verification_profile_id=7
        )
        assert new["params"] == {"status": "verified"}

    def test_too_many_wrong_attempts_burn_the_code(self, client, project):
        issue_code(project, 7, PHONE, "444444")
        for _ in range(MAX_ATTEMPTS):
            client.call(
                "ITERABLE_VERIFY_SMS_CODE",
                code="000000",
                phone_number=PHONE,
                verification_profile_id=7,
            )
        right = client.call(
            "ITERABLE_VERIFY_SMS_CODE", code="444444", phone_number=PHONE, verification_profile_id=7
        )
        assert right["params"]["status"] == "rejected"
