"""Response schemas for Iterable's SMS verification actions."""

from __future__ import annotations

from typing import Literal

from prefect_iterable.api.models._base import ApiResponse

__all__ = ["SmsVerificationResult"]


class SmsVerificationResult(ApiResponse):
    """The outcome of a code check.

    Iterable answers 200 whether or not the code matched; the outcome is ``params.status``.
    """

    @property
    def status(self) -> Literal["verified", "rejected"] | str | None:
        return (self.params or {}).get("status")

    @property
    def verified(self) -> bool:
        return self.status == "verified"
