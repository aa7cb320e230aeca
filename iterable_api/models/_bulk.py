"""Results of bulk endpoints, which answer 200 even when some records were refused."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = ["BulkResult", "Rejection"]

# failedUpdates keys (and the subscription endpoint's top-level lists), by identifier kind.
_REASON_KEYS: dict[str, Literal["email", "userId"]] = {
    "invalidEmails": "email",
    "notFoundEmails": "email",
    "forgottenEmails": "email",
    "conflictEmails": "email",
    "invalidDataEmails": "email",
    "validEmailFailures": "email",
    "invalidUserIds": "userId",
    "notFoundUserIds": "userId",
    "forgottenUserIds": "userId",
    "conflictUserIds": "userId",
    "invalidDataUserIds": "userId",
    "validUserIdFailures": "userId",
}


class Rejection(BaseModel):
    """One record Iterable refused, and why (the name of the list it was reported in)."""

    identifier: str
    kind: Literal["email", "userId", "eventName"]
    reason: str


class BulkResult(BaseModel):
    """The outcome of a bulk request: how many records were accepted, and each one refused.

    ``rejected`` merges ``failedUpdates.*``, the deprecated top-level ``invalidEmails`` and
    ``invalidUserIds``, and ``disallowedEventNames``, so no reported failure is dropped.
    """

    success_count: int = 0
    fail_count: int = 0
    rejected: list[Rejection] = Field(default_factory=list)
    created_fields: list[str] = Field(default_factory=list)
    filtered_out_fields: list[str] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.fail_count == 0 and not self.rejected

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> BulkResult:
        seen: set[tuple[str, str]] = set()
        rejected: list[Rejection] = []

        def add(identifier: Any, kind: str, reason: str) -> None:
            if (str(identifier), kind) not in seen:
                seen.add((str(identifier), kind))
                rejected.append(Rejection(identifier=str(identifier), kind=kind, reason=reason))

        failed = body.get("failedUpdates") or {}
        for key, kind in _REASON_KEYS.items():
            for identifier in failed.get(key) or []:
                add(identifier, kind, key)
        for (
            key,
            kind,
        ) in _REASON_KEYS.items():  # deprecated or top-level forms, after the precise ones
            for identifier in body.get(key) or []:
                add(identifier, kind, key)
        for name in body.get("disallowedEventNames") or []:
            add(name, "eventName", "disallowedEventNames")
        return cls(
            success_count=int(body.get("successCount") or 0),
            fail_count=int(body.get("failCount") or 0),
            rejected=rejected,
            created_fields=list(body.get("createdFields") or []),
            filtered_out_fields=list(body.get("filteredOutFields") or []),
        )
