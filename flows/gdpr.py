"""``gdpr_forget``: forget users under GDPR, within Iterable's limits, with an append-only audit log.

The flow is safe to run again with the same input: identifiers already forgotten (by the audit log)
are skipped, and a run stopped by Iterable's daily cap of 1000 forgets returns what it did not do.
The audit log never holds a raw identifier, only its SHA-256.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import threading
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from pydantic import BaseModel, Field

from prefect_iterable.api.errors import (
    ApiError,
    AuthenticationError,
    BadRequest,
    ForgottenUserError,
    IterableError,
    PermissionDenied,
    RateLimited,
)
from prefect_iterable.blocks import IterableCredentials, MissingPermission
from prefect_iterable.flows._files import Storage, dumps_compact

__all__ = ["GdprForgetResult", "Identifier", "gdpr_forget", "load_identifiers"]

FORGET = "ITERABLE_FORGET_USER"
LIST_FORGOTTEN_USER_IDS = "ITERABLE_LIST_FORGOTTEN_USER_IDS"

Outcome = Literal["forgotten", "verified", "failed", "deferred", "skipped"]
OUTCOMES: tuple[Outcome, ...] = ("forgotten", "verified", "failed", "deferred", "skipped")

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_USER_ID = re.compile(r"^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$")
_CSV_COLUMNS = ("email", "userId", "user_id", "userid", "identifier", "id")


# ---- identifiers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Identifier:
    """One normalised identifier: its value, whether it is an email or a userId, its hashes.

    ``sha256`` is the audit log's key: SHA-256 of the normalised value (trimmed; emails
    lower-cased). ``iterable_hash`` is how Iterable lists forgotten userIds: SHA-256 of the trimmed,
    lower-cased value.
    """

    value: str
    kind: Literal["email", "userId"]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.value.encode()).hexdigest()

    @property
    def iterable_hash(self) -> str:
        return hashlib.sha256(self.value.strip().lower().encode()).hexdigest()

    @property
    def param(self) -> str:
        return "email" if self.kind == "email" else "user_id"


def _normalise(raw: Any, where: str, identifier_type: str) -> Identifier:
    if not isinstance(raw, str):
        raise ValueError(f"{where}: an identifier must be a string, not {type(raw).__name__}")
    value = raw.strip()
    if not value:
        raise ValueError(f"{where}: empty identifier")
    kind = identifier_type
    if kind == "auto":
        kind = "email" if "@" in value else "userId"
    if kind == "email":
        value = value.lower()
        if not _EMAIL.match(value) or len(value) > 254:
            raise ValueError(
                f"{where}: not an email address, and identifier_type is "
                f"{identifier_type!r} (which needs one here)"
                if identifier_type == "email"
                else f"{where}: looks like an email address (it has '@') but is not a valid one"
            )
        return Identifier(value, "email")
    if not _USER_ID.match(value) or len(value.encode()) > 512:
        raise ValueError(
            f"{where}: not a valid userId (printable ASCII without control characters, at most "
            "512 bytes)"
        )
    return Identifier(value, "userId")


def _parse_parameter(identifiers: list[str] | str | None) -> list[tuple[str, Any]]:
    """``(where, raw)`` pairs from the ``identifiers`` parameter (a list, or a JSON/CSV string)."""
    if identifiers is None:
        return []
    if isinstance(identifiers, str):
        text = identifiers.strip()
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except ValueError:
                raise ValueError(
                    "identifiers: a string starting with '[' must be a JSON list"
                ) from None
            if not isinstance(parsed, list):
                raise ValueError("identifiers: the JSON value must be a list")
            identifiers = parsed
        else:
            identifiers = re.split(r"[\n,;]", text) if text else []
    return [(f"identifiers[{i}]", raw) for i, raw in enumerate(identifiers)]


def _read_file(path: str, column: str | None) -> list[tuple[str, Any]]:
    """``(where, raw)`` pairs from a file: one identifier per line, or a column of a CSV file.

    A CSV file (``.csv``, or any file when ``column`` is given) has a header row; the column is
    ``column``, else the first of email, userId, user_id, identifier, id. In a plain file, blank
    lines are ignored.
    """
    file = Path(path).expanduser()
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise ValueError(f"identifiers_file: cannot read {file}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ValueError(f"identifiers_file: {file} line {line}: not valid UTF-8") from None
    name = file.name
    if column is None and file.suffix.lower() != ".csv":
        return [
            (f"{name} line {n}", line)
            for n, line in enumerate(text.splitlines(), start=1)
            if line.strip()
        ]
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return []
    except csv.Error as exc:
        raise ValueError(f"identifiers_file: {name} line 1: {exc}") from None
    wanted = [column] if column else list(_CSV_COLUMNS)
    stripped = [h.strip() for h in header]
    index = next((stripped.index(c) for c in wanted if c in stripped), None)
    if index is None:
        raise ValueError(
            f"identifiers_file: {name} has no column "
            + (repr(column) if column else "named " + ", ".join(_CSV_COLUMNS))
            + f" (columns: {', '.join(stripped)})"
        )
    pairs: list[tuple[str, Any]] = []
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return pairs
        except csv.Error as exc:
            raise ValueError(f"identifiers_file: {name} line {reader.line_num}: {exc}") from None
        if not any(cell.strip() for cell in row):
            continue
        where = f"{name} line {reader.line_num}"
        if index >= len(row):
            raise ValueError(f"{where}: no value in column {stripped[index]!r}")
        pairs.append((where, row[index]))


def load_identifiers(
    identifiers: list[str] | str | None,
    identifiers_file: str | None,
    identifier_type: Literal["auto", "email", "userId"] = "auto",
    identifiers_column: str | None = None,
) -> list[Identifier]:
    """Read, normalise, check and deduplicate identifiers (first occurrence kept, order kept).

    Raises ``ValueError`` naming the parameter, file line or list position of the first bad one.
    """
    if identifier_type not in ("auto", "email", "userId"):
        raise ValueError(f"identifier_type must be auto, email or userId, not {identifier_type!r}")
    pairs = _parse_parameter(identifiers)
    if identifiers_file:
        pairs += _read_file(identifiers_file, identifiers_column)
    if identifiers is None and not identifiers_file:
        raise ValueError("give identifiers, identifiers_file or both")
    seen: set[str] = set()
    result: list[Identifier] = []
    for where, raw in pairs:
        item = _normalise(raw, where, identifier_type)
        if item.value not in seen:
            seen.add(item.value)
            result.append(item)
    return result


# ---- the audit log -------------------------------------------------------------------------


class AuditLog:
    """This run's audit file (``audit-<date>-<flow_run_id>.jsonl``) and what earlier runs recorded.

    Lines carry ``sha256``, ``at``, ``outcome``, ``code`` (failures) and ``flow_run_id``; never a
    raw identifier. Earlier runs' files are only read.
    """

    def __init__(self, storage: Storage, flow_run_id: str) -> None:
        self.storage = storage
        self.flow_run_id = flow_run_id
        today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
        self.name = f"audit-{today}-{flow_run_id}.jsonl"
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def history(self) -> dict[str, set[str]]:
        """The outcomes recorded so far for each hash, across every earlier run's file."""
        outcomes: dict[str, set[str]] = {}
        for name in self.storage.list("audit-*.jsonl"):
            if name == self.name:
                continue
            for line in self.storage.read_bytes(name).decode("utf-8", "replace").splitlines():
                try:
                    record = json.loads(line)
                    outcomes.setdefault(str(record["sha256"]), set()).add(str(record["outcome"]))
                except (ValueError, KeyError, TypeError):
                    continue  # a torn last line of a crashed run: ignore it
        return outcomes

    def record(self, items: list[Identifier], outcome: Outcome, code: str | None = None) -> None:
        """Append one line per identifier, durably, before returning."""
        if not items:
            return
        at = datetime.now(timezone.utc).isoformat()
        lines = []
        for item in items:
            entry: dict[str, Any] = {"sha256": item.sha256, "at": at, "outcome": outcome}
            if code is not None:
                entry["code"] = code
            entry["flow_run_id"] = self.flow_run_id
            lines.append(dumps_compact(entry) + "\n")
        with self._lock:
            self.storage.append(self.name, "".join(lines).encode())
            self.counts[outcome] += len(items)


# ---- tasks ---------------------------------------------------------------------------------


class BatchOutcome(BaseModel):
    """What one batch did: counts by outcome, and where it stopped if Iterable's cap was reached."""

    forgotten: list[int] = Field(default_factory=list)  # indices in the batch
    failed: int = 0
    failure_codes: dict[str, int] = Field(default_factory=dict)
    stopped_at: int | None = None  # index in the batch of the first identifier not attempted
    stop_reason: str | None = None


@task(
    name="gdpr-forget-batch",
    task_run_name="gdpr-forget-batch-{batch_number}",
    cache_policy=NO_CACHE,
    retries=0,
    tags=["iterable", "iterable-delete"],
)
def forget_batch(
    items: list[Identifier],
    *,
    batch_number: int,
    credentials: IterableCredentials,
    audit: AuditLog,
) -> BatchOutcome:
    """Forget each identifier in turn (the client paces them at Iterable's 3 requests/s).

    Each outcome is written to the audit log as soon as Iterable answers. A 429 the client will not
    wait for (the daily cap) stops the batch cleanly: nothing after it is attempted.
    """
    logger = get_run_logger()
    client = credentials.get_client()
    outcome = BatchOutcome()
    for index, item in enumerate(items):
        try:
            client.call(FORGET, **{item.param: item.value})
        except RateLimited as exc:
            outcome.stopped_at = index
            outcome.stop_reason = (
                f"{exc.code or 'RateLimited'}: Iterable's limit for users/forget is spent"
                + (f" (next slot in {exc.retry_after:.0f} s)" if exc.retry_after else "")
            )
            logger.warning("batch %s stopped by Iterable's limit: %s", batch_number, exc.code)
            return outcome
        except (AuthenticationError, PermissionDenied, MissingPermission):
            raise  # every further request would fail the same way
        except ForgottenUserError:
            audit.record([item], "forgotten")  # already forgotten: the goal is met
            outcome.forgotten.append(index)
        except ApiError as exc:
            code = exc.code or f"HTTP {exc.status}"
            audit.record([item], "failed", code)
            outcome.failed += 1
            outcome.failure_codes[code] = outcome.failure_codes.get(code, 0) + 1
        except IterableError as exc:
            code = type(exc).__name__
            audit.record([item], "failed", code)
            outcome.failed += 1
            outcome.failure_codes[code] = outcome.failure_codes.get(code, 0) + 1
        else:
            audit.record([item], "forgotten")
            outcome.forgotten.append(index)
    logger.info(
        "batch %s: %s forgotten, %s failed", batch_number, len(outcome.forgotten), outcome.failed
    )
    return outcome


@task(
    name="gdpr-list-forgotten-user-ids",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=[2, 10],
    tags=["iterable", "iterable-read"],
)
def forgotten_user_id_hashes(credentials: IterableCredentials) -> set[str] | None:
    """The hashes of every userId the project has forgotten, or ``None`` if it cannot list them.

    Only userID-based and hybrid projects can list them; an email-based project answers 400.
    """
    try:
        answer = credentials.get_client().call(LIST_FORGOTTEN_USER_IDS)
    except BadRequest as exc:
        get_run_logger().warning(
            "cannot verify: this project does not list forgotten userIds (%s)", exc.code
        )
        return None
    hashes = answer.get("hashedUserIds") if isinstance(answer, dict) else None
    if not isinstance(hashes, list):
        get_run_logger().warning(
            "cannot verify: unexpected answer from %s", LIST_FORGOTTEN_USER_IDS
        )
        return None
    return {str(h).lower() for h in hashes}


# ---- the flow ------------------------------------------------------------------------------


class GdprForgetResult(BaseModel):
    """What a GDPR forget run did. Counts are of unique, normalised identifiers."""

    requested: int = Field(description="Unique identifiers after normalisation.")
    forgotten: int = Field(description="Forgotten by this run.")
    verified: int = Field(description="Found in Iterable's list of forgotten userIds.")
    unverified: int = Field(
        description="userIds forgotten but not (yet) in Iterable's list; it can take 10 minutes."
    )
    failed: int = Field(description="Refused by Iterable; see failure_codes and the audit log.")
    failure_codes: dict[str, int] = Field(default_factory=dict)
    skipped: int = Field(description="Already forgotten by an earlier run (per the audit log).")
    deferred: int = Field(description="Not attempted: Iterable's daily cap was reached.")
    remainder: list[str] = Field(
        default_factory=list,
        description="The identifiers still to do (deferred); run again with them after the cap "
        "resets.",
    )
    stop_reason: str | None = None
    audit_file: str = Field(description="Where this run's audit lines were written.")
    flow_run_id: str


def _flow_run_id() -> str:
    from prefect.runtime import flow_run

    return str(flow_run.id or uuid.uuid4())


@flow(name="gdpr-forget", log_prints=False)
def gdpr_forget(
    identifiers: Annotated[
        list[str] | str | None,
        Field(
            description="Emails or userIds to forget. A list, or a string holding a JSON list or "
            "comma/newline-separated values (for event-triggered runs)."
        ),
    ] = None,
    identifiers_file: Annotated[
        str | None,
        Field(
            description="A file of identifiers: one per line, or a CSV file with a header (see "
            "identifiers_column)."
        ),
    ] = None,
    identifier_type: Annotated[
        Literal["auto", "email", "userId"],
        Field(
            description="How the project identifies users. auto: values with '@' are emails, "
            "others userIds. email or userId: every value must be one."
        ),
    ] = "auto",
    identifiers_column: Annotated[
        str | None,
        Field(description="The CSV column holding identifiers (default: email, userId, …)."),
    ] = None,
    audit_storage: Annotated[
        str,
        Field(
            description="Where the audit log lives: a directory, or a saved filesystem block as "
            "'local-file-system/NAME' or 'remote-file-system/NAME'."
        ),
    ] = "./gdpr-audit",
    credentials_block: Annotated[
        str | None,
        Field(
            description="Name of a saved IterableCredentials block with the 'delete' permission; "
            "empty: ITERABLE_* environment variables."
        ),
    ] = None,
    verify: Annotated[
        bool,
        Field(description="Check forgotten userIds against Iterable's list of forgotten hashes."),
    ] = True,
    batch_size: Annotated[
        int, Field(ge=1, le=1000, description="Identifiers per task run (progress granularity).")
    ] = 50,
) -> GdprForgetResult:
    """Forget users in Iterable under GDPR, skip those already done, and audit every outcome.

    Steps:
        1. Read the identifiers (parameter and/or file), trim them, lower-case emails, drop
           duplicates, and check each one; a bad one raises, naming it, before any request.
        2. Check that the credentials grant 'delete'; open the audit storage and read earlier
           runs' audit files.
        3. Skip identifiers whose hash an earlier run recorded as forgotten or verified.
        4. Forget the rest in batches (one task run each) at Iterable's 3 requests/s, recording
           each outcome in this run's audit file and emitting ``iterable.gdpr.forgotten`` with the
           batch's counts.
        5. If Iterable's daily cap (1000 per 24 h) is reached, stop cleanly: the identifiers not
           yet attempted are written to the audit log as deferred and returned as ``remainder``.
        6. With ``verify``, compare the forgotten userIds with Iterable's list of forgotten userId
           hashes (userID-based and hybrid projects), recording "verified" for each one found.
        7. Publish a table artifact of counts per outcome (no identifiers).

    The audit log is append-only: each run writes its own ``audit-<date>-<flow_run_id>.jsonl``
    holding SHA-256 hashes of the normalised identifiers, never the identifiers themselves.

    To run it from an event ``iterable.gdpr.request`` whose payload has ``identifiers``, give the
    deployment trigger ``parameters: {"identifiers": "{{ event.payload.identifiers | tojson }}"}``.

    Args:
        identifiers: emails or userIds (a list, or a JSON-list / comma-separated string).
        identifiers_file: a text file with one identifier per line, or a CSV file.
        identifier_type: ``email`` or ``userId`` to match the project's identity, or ``auto``.
        identifiers_column: the CSV column to read from ``identifiers_file``.
        audit_storage: a directory, or ``local-file-system/NAME`` / ``remote-file-system/NAME``.
        credentials_block: the saved ``IterableCredentials`` block's name; None reads the
            environment.
        verify: check userIds against Iterable's list of forgotten hashes afterwards.
        batch_size: identifiers per task run.

    Returns:
        The counts per outcome, the identifiers left for a later run, and the audit file's path.
    """
    logger = get_run_logger()
    items = load_identifiers(identifiers, identifiers_file, identifier_type, identifiers_column)
    credentials = IterableCredentials.load_or_env(credentials_block)
    storage = Storage(audit_storage)
    run_id = _flow_run_id()
    audit = AuditLog(storage, run_id)
    history = audit.history()

    done = {"forgotten", "verified"}
    skipped = [i for i in items if history.get(i.sha256, set()) & done]
    todo = [i for i in items if not history.get(i.sha256, set()) & done]
    audit.record(skipped, "skipped")
    logger.info(
        "%s identifiers: %s to forget, %s already forgotten by earlier runs",
        len(items),
        len(todo),
        len(skipped),
    )

    forgotten: list[Identifier] = []
    failed = 0
    failure_codes: Counter[str] = Counter()
    remainder: list[Identifier] = []
    stop_reason: str | None = None
    for number, start in enumerate(range(0, len(todo), batch_size), start=1):
        batch = todo[start : start + batch_size]
        outcome = forget_batch(batch, batch_number=number, credentials=credentials, audit=audit)
        forgotten += [batch[index] for index in outcome.forgotten]
        failed += outcome.failed
        failure_codes.update(outcome.failure_codes)
        emit_event(
            event="iterable.gdpr.forgotten",
            resource={"prefect.resource.id": f"iterable.gdpr-run.{run_id}"},
            payload={
                "batch": number,
                "forgotten": len(outcome.forgotten),
                "failed": outcome.failed,
                "stopped": outcome.stopped_at is not None,
            },
        )
        if outcome.stopped_at is not None:
            stop_reason = outcome.stop_reason
            remainder = batch[outcome.stopped_at :] + todo[start + batch_size :]
            break
    audit.record(remainder, "deferred")
    if remainder:
        logger.warning("%s identifiers deferred: %s", len(remainder), stop_reason)

    verified = unverified = 0
    if verify:
        candidates = [i for i in forgotten if i.kind == "userId"] + [
            i
            for i in skipped
            if i.kind == "userId" and "verified" not in history.get(i.sha256, set())
        ]
        if candidates:
            hashes = forgotten_user_id_hashes(credentials)
            if hashes is not None:
                found = [i for i in candidates if i.iterable_hash in hashes]
                audit.record(found, "verified")
                verified = len(found)
                unverified = len(candidates) - verified

    result = GdprForgetResult(
        requested=len(items),
        forgotten=len(forgotten),
        verified=verified,
        unverified=unverified,
        failed=failed,
        failure_codes=dict(failure_codes),
        skipped=len(skipped),
        deferred=len(remainder),
        remainder=[i.value for i in remainder],
        stop_reason=stop_reason,
        audit_file=storage.where(audit.name),
        flow_run_id=run_id,
    )
    rows = [
        {"outcome": name, "count": getattr(result, name)}
        for name in ("forgotten", "verified", "unverified", "failed", "skipped", "deferred")
    ]
    rows.append({"outcome": "remainder (still to do)", "count": len(remainder)})
    create_table_artifact(
        table=rows,
        key="gdpr-forget-summary",
        description=f"GDPR forget: {len(items)} identifiers; audit file {audit.name}"
        + (f"; stopped: {stop_reason}" if stop_reason else ""),
    )
    logger.info(
        "forgotten %s, verified %s, failed %s, skipped %s, deferred %s",
        result.forgotten,
        result.verified,
        result.failed,
        result.skipped,
        result.deferred,
    )
    return result
