"""Base classes for Iterable's request and response schemas."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

__all__ = ["ApiResponse", "IterableModel", "RequestModel"]


class IterableModel(BaseModel):
    """A response schema: snake_case in Python, camelCase on the wire, unknown fields kept.

    Iterable adds fields without notice, so responses allow extras rather than fail on them.
    """

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="allow", frozen=False
    )


class RequestModel(BaseModel):
    """A nested request object: strict about unknown fields, so a typo fails before sending."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        ser_json_inf_nan="constants",  # NaN reaches the client's check instead of becoming null
    )


class ApiResponse(IterableModel):
    """Iterable's standard envelope: ``{msg, code, params}``."""

    msg: str = ""
    code: str = "Success"
    params: dict[str, Any] | None = None
