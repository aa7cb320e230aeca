"""One task for many single-record calls of one action (``users/update``, ``events/track``, …)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import (
    aupdate_progress_artifact,
    create_progress_artifact,
    create_table_artifact,
)
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ValidationError

from prefect_iterable.api.catalog import get_action
from prefect_iterable.api.errors import InputValidationError
from prefect_iterable.api.fanout import FanOutResult, Progress, run_blocking, send_many
from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.tasks._core import ACTIONS, _dump, resolve_credentials

__all__ = ["SendManySummary", "send_many_records"]


class SendManySummary(BaseModel):
    """Every record's outcome by its position in the input (never its content).

    ``failed`` pairs positions with Iterable's error code; ``unknown`` lists sends that may have
    taken effect and were not repeated; ``deferred`` lists what a rerun will send.
    """

    action: str
    done: int
    failed: list[tuple[int, str]]
    unknown: list[int]
    deferred: list[int]
    sent: int
    skipped: int

    @classmethod
    def of(cls, result: FanOutResult) -> SendManySummary:
        return cls(**vars(result))


def _validator(action_id: str) -> Any:
    """The single-record task's own checks, so that a record passes here iff it passes there."""
    single = ACTIONS[action_id]
    model, action = single.input_model, single.action  # type: ignore[attr-defined]

    def prepare(record: Mapping[str, Any]) -> dict[str, Any]:
        try:
            checked = model.model_validate(record)
        except ValidationError as exc:
            errors = [(".".join(map(str, e["loc"])) or "input", e["msg"]) for e in exc.errors()]
            raise InputValidationError(action.id, errors) from None
        return _dump(checked, action)

    return prepare


@task(name="send-many-records", task_run_name="send-many-{action}", cache_policy=NO_CACHE)
def send_many_records(
    action: str,
    records: Iterable[Mapping[str, Any]],
    *,
    checkpoint: str | None = None,
    concurrency: int = 4,
    total: int | None = None,
    credentials: IterableCredentials | None = None,
) -> SendManySummary:
    """Send one single-record action for each of many records, concurrently, at Iterable's rate.

    Use it where Iterable has no bulk endpoint for the job, or where each record needs its own
    answer: hundreds of ``users/update`` or ``events/track`` calls a second from one task, where a
    task run per record would cost a Prefect run (~10 ms and a server row) each. Every request
    goes through the shared client limiter and retry policy; a send Iterable cannot deduplicate
    (an event without an ``event_id``) is never repeated after an unclear answer but reported
    ``unknown``. Progress is reported as a progress artifact (when the total is known) and the
    outcome counts as a table artifact. The task itself is not retried: rerun it with the same
    ``checkpoint`` and the same records in the same order, and it sends only what is still to do.

    Args:
        action: the catalog id of a single-record action, such as ``ITERABLE_UPDATE_USER``.
        records: each record as the single-record task's keyword arguments (``email``,
            ``data_fields``, …), validated as that task validates them; a generator keeps memory
            flat.
        checkpoint: a local file recording each record's outcome, for reruns.
        concurrency: requests in flight at most; a few are enough on loopback and more slow
            httpx down.
        total: how many records there are, when ``records`` has no length (for progress).
        credentials: the Iterable credentials block; default: ``ITERABLE_*`` environment variables.

    Returns:
        A ``SendManySummary``: counts and positions by outcome.

    Examples:
        >>> rows = ({"email": e, "data_fields": {"plan": "pro"}} for e in emails)  # doctest: +SKIP
        >>> send_many_records("ITERABLE_UPDATE_USER", rows, checkpoint="update.ckpt")  # doctest: +SKIP
    """
    act = get_action(action)
    creds = resolve_credentials(credentials)
    creds.check_permission(act)
    logger = get_run_logger()
    if total is None and hasattr(records, "__len__"):
        total = len(records)  # type: ignore[arg-type]
    artifact = (
        create_progress_artifact(0.0, description=f"{act.id}: records settled") if total else None
    )

    def progress(now: Progress) -> Any:
        logger.info(
            "%s: %s done, %s failed, %s unknown, %s deferred",
            act.id,
            now.done,
            now.failed,
            now.unknown,
            now.deferred,
        )
        if artifact is None or now.fraction is None:
            return None
        return aupdate_progress_artifact(artifact, now.fraction * 100)  # type: ignore[arg-type]

    async def run() -> FanOutResult:
        async with creds.get_async_client() as client:
            return await send_many(
                client,
                act,
                records,
                concurrency=concurrency,
                checkpoint=checkpoint,
                prepare=_validator(act.id),
                on_progress=progress,
                total=total,
            )

    result = run_blocking(run)
    summary = SendManySummary.of(result)
    create_table_artifact(
        [
            {"outcome": name, "records": count}
            for name, count in (
                ("done", summary.done),
                ("failed", len(summary.failed)),
                ("unknown", len(summary.unknown)),
                ("deferred", len(summary.deferred)),
                ("skipped (settled earlier)", summary.skipped),
            )
        ],
        description=f"{act.id}: outcomes of {summary.sent} requests",
    )
    return summary
