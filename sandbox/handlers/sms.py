"""SMS verification: checking a code against the latest one sent to a number.

Iterable sends the codes itself (from a verification profile); no API action sends one, so the
sandbox issues them with ``issue_code`` (tests, demos) and checks them like Iterable: the latest
unexpired code for the (profile, number) pair, a few attempts, the same answer when a code that
was already accepted is checked again.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from prefect_iterable.sandbox.handlers._base import Call, bad_params, forbidden, handles, success
from prefect_iterable.sandbox.handlers._shared import now_ms
from prefect_iterable.sandbox.state import Project

FEATURE = "sms_verification"
CODE_TTL_SECONDS = 600
MAX_ATTEMPTS = 5

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


@dataclass
class IssuedCode:
    code: str
    expires_at: int  # epoch ms
    attempts: int = 0
    verified: bool = False


@dataclass
class SmsVerification:
    """A project's verification profiles and the latest code sent per (profile, number)."""

    profiles: set[int] = field(default_factory=set)
    codes: dict[tuple[int, str], IssuedCode] = field(default_factory=dict)


def sms_verification(project: Project) -> SmsVerification:
    return project.area("sms_verification", SmsVerification)


def issue_code(
    project: Project,
    verification_profile_id: int,
    phone_number: str,
    code: str | None = None,
    *,
    ttl_seconds: float = CODE_TTL_SECONDS,
) -> str:
    """Send (record) a code to ``phone_number``; it replaces any earlier code for the number."""
    state = sms_verification(project)
    state.profiles.add(verification_profile_id)
    code = code if code is not None else f"{secrets.randbelow(10**6):06d}"
    state.codes[(verification_profile_id, phone_number)] = IssuedCode(
        code=code, expires_at=now_ms() + int(ttl_seconds * 1000)
    )
    return code


def _matches(issued: IssuedCode, code: str) -> bool:
    return secrets.compare_digest(issued.code.encode(), code.encode())


def _outcome(issued: IssuedCode | None, code: str) -> str:
    if issued is None:
        return "rejected"
    if issued.verified:
        return "verified" if _matches(issued, code) else "rejected"
    if now_ms() > issued.expires_at or issued.attempts >= MAX_ATTEMPTS:
        return "rejected"
    if _matches(issued, code):
        issued.verified = True
        return "verified"
    issued.attempts += 1
    return "rejected"


@handles("ITERABLE_VERIFY_SMS_CODE")
def verify_sms_code(call: Call) -> dict[str, Any]:
    if FEATURE not in call.project.features:
        raise forbidden("SMS verification is not enabled for this project")
    call.require("code", "phoneNumber", "verificationProfileId")
    code, phone = call.arg("code"), call.arg("phoneNumber")
    profile_id = call.int_arg("verificationProfileId")
    if not isinstance(code, str) or not isinstance(phone, str) or not _E164.match(phone):
        raise bad_params("phoneNumber must be an E.164 number and code a string")
    state = sms_verification(call.project)
    if profile_id not in state.profiles:
        raise bad_params(f"Verification profile {profile_id} does not exist")
    status = _outcome(state.codes.get((profile_id, phone)), code)
    return success("", status=status)
