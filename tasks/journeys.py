"""Tasks for Iterable's journeys (called workflows in the API): list them and trigger them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StringConstraints, ValidationInfo

from prefect_iterable.api.models import ApiResponse
from prefect_iterable.api.models.journeys import Journey, JourneysResponse
from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.tasks._core import iterable_task, resolve_credentials
from prefect_iterable.tasks._types import Email, PositiveId, UserId

__all__ = ["iter_journeys", "list_journeys", "trigger_journey"]

JourneySort = Annotated[str, StringConstraints(pattern=r"^[+-]?(id|name|createdAt|updatedAt)$")]
JourneyPageSize = Annotated[int, Field(ge=1, le=50)]


@iterable_task("ITERABLE_LIST_JOURNEYS")
def list_journeys(
    page: Annotated[int, Field(ge=1)] | None = None,
    page_size: JourneyPageSize | None = None,
    sort: JourneySort | None = None,
    state: list[Literal["Archived"]] | None = None,
    *,
    credentials: IterableCredentials | None = None,
) -> JourneysResponse:
    """List the project's journeys, one page at a time.

    Without ``state`` Iterable lists the journeys that are not archived; with
    ``state=["Archived"]`` only the archived ones. Use it to find the journey id that
    ``trigger_journey`` takes; ``iter_journeys`` walks every page.

    ITERABLE_LIST_JOURNEYS: GET /api/journeys (no documented rate limit).

    Args:
        page: page number, starting at 1.
        page_size: journeys per page, 1 to 50 (Iterable's default is 10).
        sort: id, name, createdAt or updatedAt, optionally prefixed with ``-`` (descending)
            or ``+`` (ascending), e.g. ``-createdAt``. Default ``id``.
        state: ``["Archived"]`` to list only archived journeys.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        The page's journeys, the total count and the next and previous page URLs.
    """


def _user_or_list(value: int | None, info: ValidationInfo) -> int | None:
    if value is not None and (info.data.get("email") or info.data.get("user_id")):
        raise ValueError("give only one target: list_id or a user (email, user_id)")
    return value


@iterable_task(
    "ITERABLE_TRIGGER_JOURNEY",
    run_name="trigger-journey-{workflow_id}",
    one_of=("email", "user_id", "list_id"),
    need_one=True,
)
def trigger_journey(
    workflow_id: PositiveId,
    email: Email | None = None,
    user_id: UserId | None = None,
    list_id: Annotated[PositiveId | None, AfterValidator(_user_or_list)] = None,
    data_fields: dict[str, Any] | None = None,
    *,
    credentials: IterableCredentials | None = None,
) -> ApiResponse:
    """Start a journey for one user (email or userId) or for every member of a list.

    Give the user (``email``, ``user_id`` or both, as the project identifies users) or
    ``list_id``, not a user and a list (which would be two different calls). A list trigger runs
    asynchronously: until it has finished, triggering the same list into the same journey
    again fails with ``BadParams``. Members of the journey's start-tile suppression list are
    left out. Not retried: a repeat could enter users twice.

    ITERABLE_TRIGGER_JOURNEY: POST /api/workflows/triggerWorkflow (no documented rate limit).

    Args:
        workflow_id: the journey's id (see ``list_journeys``).
        email: the user to enter, in an email-based or hybrid project.
        user_id: the user to enter, in a userId-based or hybrid project.
        list_id: a standard or dynamic list whose members all enter the journey.
        data_fields: data of the triggering event, available to the journey's messages.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope.
    """


def iter_journeys(
    credentials: IterableCredentials | None = None,
    page_size: int = 50,
    *,
    sort: str | None = None,
    state: list[str] | None = None,
) -> Iterator[Journey]:
    """Every journey (archived ones with ``state=["Archived"]``), walking the pages.

    Pages are fetched as the iterator is consumed; ``page_size`` is 1 to 50.
    """
    if not 1 <= page_size <= 50:
        raise ValueError(f"page_size must be between 1 and 50, got {page_size}")
    client = resolve_credentials(credentials).get_client()
    page = 1
    while True:
        answer = JourneysResponse.model_validate(
            client.call(
                "ITERABLE_LIST_JOURNEYS", page=page, page_size=page_size, sort=sort, state=state
            )
        )
        yield from answer.journeys
        if len(answer.journeys) < page_size or not answer.next_page_url:
            return
        page += 1
