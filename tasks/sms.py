"""Tasks for Iterable's SMS verification: checking the code a user received by text."""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

from prefect_iterable.api.models.sms import SmsVerificationResult
from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.tasks._core import iterable_task
from prefect_iterable.tasks._types import PhoneNumber, PositiveId

__all__ = ["verify_sms_code"]

#: A verification code as the user typed it, spaces around it dropped. Its length depends on
#: the verification profile, which Iterable checks; no length is documented.
VerificationCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


@iterable_task("ITERABLE_VERIFY_SMS_CODE", run_name="verify-sms-code-{verification_profile_id}")
def verify_sms_code(
    code: VerificationCode,
    phone_number: PhoneNumber,
    verification_profile_id: PositiveId,
    *,
    credentials: IterableCredentials | None = None,
) -> SmsVerificationResult:
    """Check a verification code a user received by SMS.

    The code must match the latest code sent to the number that has not expired; checking a
    code that was already accepted again gives the same answer. A wrong code is not an error:
    Iterable answers 200 either way, so read ``verified`` (``params.status`` is ``verified`` or
    ``rejected``). Needs Iterable's SMS verification feature for the project.

    ITERABLE_VERIFY_SMS_CODE: POST /api/verify/sms/check (no documented rate limit).

    Args:
        code: the code the user entered, 4 to 10 letters or digits.
        phone_number: the number the code was sent to, in E.164 form (``+15551234567``).
        verification_profile_id: the verification profile the code was sent with.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        The outcome: ``verified`` is True when the code matched.
    """
