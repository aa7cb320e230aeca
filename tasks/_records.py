"""The record lists of bulk tasks: each record is checked on its own, so that one bad record
never costs the batch.

Iterable answers a bulk request 200 and reports each record it refused (``BulkResult``). A task
therefore sends every record Iterable can read, malformed identifiers included, and keeps back
only what Iterable could not read at all: a record of the wrong shape or types, naming no user,
or holding a value JSON cannot carry. Such a record stays in the validated list as a
``RefusedRecord``, is left out of the request body, and is reported in the task's result next to
Iterable's own refusals (``refused_records``). A list with nothing left to send is refused whole,
naming each record's problem, and so is an empty list, as Iterable refuses both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapSerializer,
    WrapValidator,
)
from pydantic_core import PydanticSerializationError

from prefect_iterable.api._requests import json_problem
from prefect_iterable.api.models import Rejection

__all__ = ["Records", "RefusedRecord", "refused_records", "sendable"]

# Where a problem lies, by the record field it is in: that decides Iterable's reason key.
_IDENTIFIER_FIELDS = {"email": "email", "user_id": "userId", "userId": "userId"}


@dataclass(frozen=True)
class RefusedRecord:
    """A record kept out of the request: what was given, and why Iterable could not read it."""

    given: Any
    problem: str
    field: str | None = None  # the record field at fault, when one is

    def rejection(self, index: int) -> Rejection:
        """The record as a ``Rejection``, with the reason key Iterable uses for such a record."""
        email, user_id = _identifiers(self.given)
        kind = "email" if email or not user_id else "userId"
        identifier = (email if kind == "email" else user_id) or ""
        blamed = _IDENTIFIER_FIELDS.get(self.field or "")
        if blamed is not None:
            kind, identifier = blamed, (email if blamed == "email" else user_id) or ""
            reason = "invalidEmails" if blamed == "email" else "invalidUserIds"
        elif identifier:
            reason = "invalidDataEmails" if kind == "email" else "invalidDataUserIds"
        else:
            reason = "invalidEmails" if kind == "email" else "invalidUserIds"
        return Rejection(
            identifier=identifier, kind=kind, reason=reason, detail=self.problem, index=index
        )


def _identifiers(given: Any) -> tuple[str | None, str | None]:
    """The email and userId a record names, if they are text (it may be of any shape)."""
    if isinstance(given, dict):
        email, user_id = given.get("email"), given.get("userId", given.get("user_id"))
    else:
        email, user_id = getattr(given, "email", None), getattr(given, "user_id", None)
    return (
        email if isinstance(email, str) else None,
        user_id if isinstance(user_id, str) else None,
    )


def _check_record(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    try:
        record = handler(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else None
        problem = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {e['msg']}" for e in exc.errors()
        )
        return RefusedRecord(value, problem, field)
    try:
        wire = record.model_dump(mode="json", by_alias=True, exclude_none=True)
    except (PydanticSerializationError, UnicodeError, ValueError, TypeError) as exc:
        return RefusedRecord(value, f"not a JSON value: {str(exc).splitlines()[0]}")
    found = json_problem(wire, "record")
    if found is not None:
        where, why = found
        parts = where.split(".")
        return RefusedRecord(value, f"{why} (at {where})", parts[1] if len(parts) > 1 else None)
    return record


def sendable(records: list[Any]) -> list[Any]:
    """The records that go in the request."""
    return [r for r in records if not isinstance(r, RefusedRecord)]


def _something_to_send(records: list[Any]) -> list[Any]:
    if records and not sendable(records):
        problems = "; ".join(f"[{i}] {r.problem}" for i, r in enumerate(records[:5]))
        more = f" (and {len(records) - 5} more)" if len(records) > 5 else ""
        raise ValueError(f"no record can be sent: {problems}{more}")
    return records


def _sendable_only(records: list[Any], handler: Any) -> Any:
    return handler(sendable(records))


R = TypeVar("R", bound=BaseModel)

#: ``list[R]`` for a bulk parameter: at least one record, each refused on its own; further list
#: validators (``Annotated[Records[X], AfterValidator(f)]``) see refused records too (use
#: ``sendable``).
if TYPE_CHECKING:
    # Records arrive as models or as plain dicts (validated into the model at run time).
    Records = list[R | Mapping[str, Any]]
else:
    Records = Annotated[
        list[Annotated[R, WrapValidator(_check_record)]],
        Field(min_length=1),
        AfterValidator(_something_to_send),
        WrapSerializer(_sendable_only),
    ]


def refused_records(checked: BaseModel) -> list[Rejection]:
    """Every record a validated task input keeps out of its request, as a ``Rejection``."""
    found: list[Rejection] = []
    for name in type(checked).model_fields:
        value = getattr(checked, name)
        if isinstance(value, list):
            found += [r.rejection(i) for i, r in enumerate(value) if isinstance(r, RefusedRecord)]
    return found
