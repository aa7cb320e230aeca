"""Results of bulk endpoints, which answer 200 even when some records were refused.

Iterable reports each refused record by its identifier, in lists named by the reason
(``failedUpdates.invalidEmails``, ``notFoundUserIds``, … and, for subscription updates,
``validEmailFailures``). ``BulkResult`` keeps those lists as Iterable sent them
(``failed_updates``) and flattens them into one ``rejected`` list of (identifier, reason). Records
a task refused before sending, because Iterable could not have read them, are merged into the
same fields, so that every record given is either counted in ``success_count`` or named once.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from prefect_iterable.api.models._base import RequestModel
from prefect_iterable.api.types import need_identifier

__all__ = ["BulkResult", "FailedUpdates", "IdentifiedRecord", "Rejection"]

logger = logging.getLogger(__name__)

IdentifierKind = Literal["email", "userId"]

# failedUpdates keys (and the subscription endpoint's top-level lists), by identifier kind.
_REASON_KEYS: dict[str, IdentifierKind] = {
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


class IdentifiedRecord(RequestModel):
    """A record of a bulk request, naming its user by email, userId or both.

    One rule for every bulk request, Iterable's: both identifiers may be given (hybrid and
    userID-based projects send both), and they go as given. Iterable judges each record's
    identifiers and reports a malformed or unknown one for that record alone
    (``invalidEmails``, ``notFoundUserIds``…), so they are not checked here beyond being text;
    only a record that names no one is refused, as Iterable could not apply it to anyone.
    """

    email: str | None = Field(None, description="The user's email address.")
    user_id: str | None = Field(None, description="The user's userId.")

    @model_validator(mode="after")
    def _names_a_user(self) -> IdentifiedRecord:
        need_identifier(self.email, self.user_id, "an email or a user_id")
        return self


class Rejection(BaseModel):
    """One record that was not applied, and why.

    ``reason`` is the name of the list Iterable reported it in (``invalidEmails``,
    ``forgottenUserIds``, ``disallowedEventNames``…). A record the task refused before sending
    carries the same kind of reason, plus ``index`` (its position in the records given) and
    ``detail`` (what was wrong with it); its ``identifier`` is empty when it had none.
    """

    identifier: str
    kind: Literal["email", "userId", "eventName"]
    reason: str
    detail: str | None = None
    index: int | None = None

    @property
    def sent(self) -> bool:
        """Whether Iterable saw the record (and refused it), rather than the task."""
        return self.index is None


class FailedUpdates(BaseModel):
    """Iterable's per-reason lists of refused identifiers; keys Iterable adds are kept."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    invalid_emails: list[str] = Field(default_factory=list)
    invalid_user_ids: list[str] = Field(default_factory=list)
    not_found_emails: list[str] = Field(default_factory=list)
    not_found_user_ids: list[str] = Field(default_factory=list)
    forgotten_emails: list[str] = Field(default_factory=list)
    forgotten_user_ids: list[str] = Field(default_factory=list)
    conflict_emails: list[str] = Field(default_factory=list)
    conflict_user_ids: list[str] = Field(default_factory=list)
    invalid_data_emails: list[str] = Field(default_factory=list)
    invalid_data_user_ids: list[str] = Field(default_factory=list)
    valid_email_failures: list[str] = Field(default_factory=list)
    valid_user_id_failures: list[str] = Field(default_factory=list)


def _strings(value: Any, where: str) -> list[str]:
    """A list of identifiers as Iterable sent it; anything else is logged and read as none."""
    if value is None:
        return []
    if isinstance(value, list):
        return [str(item) for item in value if item is not None]
    logger.warning("bulk answer: %s is a %s, not a list; ignored", where, type(value).__name__)
    return []


def _count(value: Any, where: str) -> int:
    if value is None:
        return 0
    try:
        return int(value)
    except (TypeError, ValueError):
        logger.warning("bulk answer: %s is %r, not a number; read as 0", where, value)
        return 0


class BulkResult(BaseModel):
    """The outcome of a bulk request: how many records were applied, and each one that was not.

    ``rejected`` merges ``failedUpdates.*``, the deprecated top-level ``invalidEmails`` and
    ``invalidUserIds``, ``disallowedEventNames`` and the records refused before sending, so no
    failure is dropped; ``failed_updates`` holds the same identifiers by reason, as Iterable
    lays them out. ``fail_count`` is Iterable's count plus the records refused before sending.
    """

    success_count: int = 0
    fail_count: int = 0
    rejected: list[Rejection] = Field(default_factory=list)
    failed_updates: FailedUpdates = Field(default_factory=FailedUpdates)
    disallowed_event_names: list[str] = Field(default_factory=list)
    created_fields: list[str] = Field(default_factory=list)
    filtered_out_fields: list[str] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.fail_count == 0 and not self.rejected

    @property
    def refused_before_sending(self) -> list[Rejection]:
        return [r for r in self.rejected if not r.sent]

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> BulkResult:
        """Read a bulk answer of any shape Iterable gives; an odd field is logged, never raised."""
        seen: set[tuple[str, str]] = set()
        rejected: list[Rejection] = []
        by_reason: dict[str, list[str]] = {}

        def add(identifier: str, kind: Any, reason: str) -> None:
            if (identifier, kind) not in seen:
                seen.add((identifier, kind))
                rejected.append(Rejection(identifier=identifier, kind=kind, reason=reason))
                if reason in _REASON_KEYS:
                    by_reason.setdefault(reason, []).append(identifier)

        failed = body.get("failedUpdates")
        if not isinstance(failed, dict):
            if failed is not None:
                logger.warning("bulk answer: failedUpdates is not an object; ignored")
            failed = {}
        for key, kind in _REASON_KEYS.items():
            for identifier in _strings(failed.get(key), f"failedUpdates.{key}"):
                add(identifier, kind, key)
        # The deprecated top-level lists, and the subscription endpoint's, after the precise ones.
        for key, kind in _REASON_KEYS.items():
            for identifier in _strings(body.get(key), key):
                add(identifier, kind, key)
        disallowed = _strings(body.get("disallowedEventNames"), "disallowedEventNames")
        for name in disallowed:
            add(name, "eventName", "disallowedEventNames")
        # Keys Iterable may add to failedUpdates are kept as they came.
        unknown = {k: v for k, v in failed.items() if k not in _REASON_KEYS}
        return cls(
            success_count=_count(body.get("successCount"), "successCount"),
            fail_count=_count(body.get("failCount"), "failCount"),
            rejected=rejected,
            failed_updates=FailedUpdates.model_validate({**unknown, **by_reason}),
            disallowed_event_names=disallowed,
            created_fields=_strings(body.get("createdFields"), "createdFields"),
            filtered_out_fields=_strings(body.get("filteredOutFields"), "filteredOutFields"),
        )

    def with_refused(self, refused: list[Rejection]) -> BulkResult:
        """This result with records refused before sending merged in (counted and listed)."""
        if not refused:
            return self
        lists = self.failed_updates.model_dump(by_alias=True)
        for rejection in refused:
            if rejection.identifier and rejection.reason in _REASON_KEYS:
                lists.setdefault(rejection.reason, []).append(rejection.identifier)
        return self.model_copy(
            update={
                "fail_count": self.fail_count + len(refused),
                "rejected": [*self.rejected, *refused],
                "failed_updates": FailedUpdates.model_validate(lists),
            }
        )
