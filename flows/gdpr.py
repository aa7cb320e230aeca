"""``gdpr_forget``: forget users under GDPR, within Iterable's limits, with an append-only audit log.

The flow is safe to run again with the same input: identifiers already forgotten (by the audit log)
are skipped, and a run stopped by Iterable's daily cap of 1000 forgets returns what it did not do.
The audit log never holds a raw identifier, only its SHA-256.

No identifier is left in Prefect. A request is submitted with ``submit_gdpr_request``: the
identifiers go to a request file in the request storage (outside Prefect), and the
``iterable.gdpr.request`` event, the triggered run's parameters, its logs, events, artifacts and
task run names carry only the ticket. The flow deletes the request file once every identifier is
audited (a run stopped by the daily cap leaves the remainder in it for the next run).

Two runs over the same identifiers (a retried automation, two direct calls) forget and audit each
once: each batch holds a Prefect concurrency lease named after the audit storage from re-reading
the audit log to recording its outcomes, and the audit log is the source of truth.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import io
import json
import re
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
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
from prefect_iterable.flows._audit import append_lines, audit_line, current_flow_run_id, read_lines
from prefect_iterable.flows._storage import Storage, dumps_compact

__all__ = [
    "DEFAULT_AUDIT_STORAGE",
    "DEFAULT_REQUEST_STORAGE",
    "GdprForgetResult",
    "Identifier",
    "gdpr_forget",
    "load_identifiers",
    "submit_gdpr_request",
]

#: Outside any checkout, so that audit logs and requests never land in a repository.
DEFAULT_AUDIT_STORAGE = "~/.prefect-iterable/gdpr-audit"
DEFAULT_REQUEST_STORAGE = "~/.prefect-iterable/gdpr-requests"

FORGET = "ITERABLE_FORGET_USER"
LIST_FORGOTTEN_USER_IDS = "ITERABLE_LIST_FORGOTTEN_USER_IDS"

Outcome = Literal["forgotten", "verified", "failed", "deferred", "skipped"]
OUTCOMES: tuple[Outcome, ...] = ("forgotten", "verified", "failed", "deferred", "skipped")

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_USER_ID = re.compile(r"^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$")
_CSV_COLUMNS = ("email", "userId", "user_id", "userid", "identifier", "id")
_TICKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


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
    requested: list[Any] | None = None,
) -> list[Identifier]:
    """Read, normalise, check and deduplicate identifiers (first occurrence kept, order kept).

    ``requested`` are the identifiers of a submitted request file. Raises ``ValueError`` naming
    the parameter, file line or list position of the first bad one.
    """
    if identifier_type not in ("auto", "email", "userId"):
        raise ValueError(f"identifier_type must be auto, email or userId, not {identifier_type!r}")
    pairs = _parse_parameter(identifiers)
    if identifiers_file:
        pairs += _read_file(identifiers_file, identifiers_column)
    if requested is not None:
        pairs += [(f"request[{i}]", raw) for i, raw in enumerate(requested)]
    if identifiers is None and not identifiers_file and requested is None:
        raise ValueError("give request, identifiers or identifiers_file")
    seen: set[str] = set()
    result: list[Identifier] = []
    for where, raw in pairs:
        item = _normalise(raw, where, identifier_type)
        if item.value not in seen:
            seen.add(item.value)
            result.append(item)
    return result


# ---- requests: identifiers that never pass through Prefect ---------------------------------


def _request_name(ticket: str) -> str:
    if not isinstance(ticket, str) or not _TICKET.match(ticket):
        raise ValueError(
            "request: a ticket id is 1-100 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit"
        )
    return f"request-{ticket}.json"


def submit_gdpr_request(
    identifiers: list[str],
    *,
    ticket: str,
    request_storage: str = DEFAULT_REQUEST_STORAGE,
    identifier_type: Literal["auto", "email", "userId"] = "auto",
) -> str:
    """Store a GDPR request's identifiers outside Prefect and emit ``iterable.gdpr.request``.

    The identifiers are checked first (a bad one raises ``ValueError`` naming it), then written to
    ``request-<ticket>.json`` in ``request_storage`` (a directory or a filesystem block, the same
    one the ``gdpr-forget`` deployment reads). The event names only the ticket: resource
    ``iterable.gdpr.<ticket>``, payload ``{"ticket": ticket}``. Returns the ticket.
    """
    name = _request_name(ticket)
    items = load_identifiers(identifiers, None, identifier_type)
    storage = Storage(request_storage)
    storage.delete(name)
    storage.append(name, dumps_compact({"identifiers": [i.value for i in items]}).encode())
    emit_event(
        event="iterable.gdpr.request",
        resource={"prefect.resource.id": f"iterable.gdpr.{ticket}"},
        payload={"ticket": ticket, "count": len(items)},
    )
    return ticket


def _read_request(storage: Storage, ticket: str) -> list[Any]:
    name = _request_name(ticket)
    try:
        document = json.loads(storage.read_bytes(name))
    except FileNotFoundError:
        raise ValueError(
            f"request {ticket!r}: no {name} in {storage.location} (already done, or submitted "
            "to another request_storage)"
        ) from None
    except ValueError:
        raise ValueError(f"request {ticket!r}: {name} is not valid JSON") from None
    requested = document.get("identifiers") if isinstance(document, dict) else None
    if not isinstance(requested, list):
        raise ValueError(f"request {ticket!r}: {name} has no 'identifiers' list")
    return requested


def _finish_request(storage: Storage, ticket: str, remainder: list[Identifier]) -> None:
    """Delete the request once all is audited; keep only what is still to do otherwise."""
    name = _request_name(ticket)
    storage.delete(name)
    if remainder:
        storage.append(name, dumps_compact({"identifiers": [i.value for i in remainder]}).encode())


_LEASE_SECONDS = 60  # the least Prefect accepts


@contextmanager
def _audit_lease(storage: Storage) -> Iterator[None]:
    """Hold the one slot of a Prefect concurrency limit named after the audit storage.

    Runs that share an audit log take turns from reading it to recording their outcomes, so an
    identifier another run is forgetting is seen as done, not forgotten twice.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.concurrency.sync import concurrency
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    digest = hashlib.sha256(storage.where("").encode()).hexdigest()[:16]
    if storage.is_local:
        # A local audit log: an OS file lock (beside, not in, the audit folder), which the kernel
        # releases when its holder dies, so a SIGKILLed run never blocks the next one.
        lock_path = Path(tempfile.gettempdir()) / f"prefect-iterable-gdpr-audit-{digest}.lock"
        with lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        return
    name = f"iterable-gdpr-audit-{digest}"
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            try:
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=1)
                )
            except ObjectAlreadyExists:
                pass  # another run created it first
    # A short lease, renewed while the run lives: a run killed while holding it frees the audit
    # log for the next run within a minute, not Prefect's default five.
    with concurrency(name, occupy=1, strict=True, lease_duration=_LEASE_SECONDS):
        yield


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
            for record in read_lines(self.storage, name):
                if "sha256" in record and "outcome" in record:
                    outcomes.setdefault(str(record["sha256"]), set()).add(str(record["outcome"]))
        return outcomes

    def record(self, items: list[Identifier], outcome: Outcome, code: str | None = None) -> None:
        """Append one line per identifier, durably, before returning."""
        if not items:
            return
        at = datetime.now(timezone.utc).isoformat()
        extra = {} if code is None else {"code": code}
        lines = [audit_line(i.sha256, outcome, self.flow_run_id, at=at, **extra) for i in items]
        with self._lock:
            append_lines(self.storage, self.name, lines)
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


@flow(name="gdpr-forget", log_prints=False, persist_result=False)
def gdpr_forget(
    request: Annotated[
        str | None,
        Field(
            description="The ticket id of a request submitted with submit_gdpr_request: its "
            "identifiers are read from request_storage, never from Prefect."
        ),
    ] = None,
    identifiers: Annotated[
        list[str] | str | None,
        Field(
            description="Emails or userIds to forget (a list, or a JSON list or comma/newline-"
            "separated string). Prefect stores parameters: prefer request, which keeps them out."
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
    ] = DEFAULT_AUDIT_STORAGE,
    request_storage: Annotated[
        str,
        Field(
            description="Where submitted requests wait: a directory or a saved filesystem block "
            "(as audit_storage). The request file is deleted once audited."
        ),
    ] = DEFAULT_REQUEST_STORAGE,
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
        int,
        Field(
            ge=1,
            le=1000,
            description="Identifiers per task run (progress granularity). Each task run's start "
            "and end pause the 3 requests/s pacing (a second or two on a busy Prefect server), "
            "so small batches lower the rate.",
        ),
    ] = 250,
) -> GdprForgetResult:
    """Forget users in Iterable under GDPR, skip those already done, and audit every outcome.

    Steps:
        1. Read the identifiers (the request file, parameter and/or file), trim them, lower-case
           emails, drop duplicates, and check each one; a bad one raises, naming it, before any
           request.
        2. Check that the credentials grant 'delete'; open the audit storage and read earlier
           runs' audit files.
        3. Skip identifiers whose hash an earlier run recorded as forgotten or verified.
        4. Forget the rest in batches (one task run each) at Iterable's 3 requests/s, recording
           each outcome in this run's audit file and emitting ``iterable.gdpr.forgotten`` with the
           batch's counts. Each batch holds the audit storage's concurrency lease and re-reads the
           audit log first, so a concurrent run never forgets the same identifier again.
        5. If Iterable's daily cap (1000 per 24 h) is reached, stop cleanly: the identifiers not
           yet attempted are written to the audit log as deferred and returned as ``remainder``.
        6. With ``verify``, compare the forgotten userIds with Iterable's list of forgotten userId
           hashes (userID-based and hybrid projects), recording "verified" for each one found.
        7. Publish a table artifact of counts per outcome (no identifiers), then delete the request
           file (or leave in it only the deferred remainder).

    The audit log is append-only: each run writes its own ``audit-<date>-<flow_run_id>.jsonl``
    holding SHA-256 hashes of the normalised identifiers, never the identifiers themselves.

    The ``gdpr-forget`` deployment runs on each ``iterable.gdpr.request`` event that
    ``submit_gdpr_request`` emits, with ``request: "{{ event.payload.ticket }}"``.

    Args:
        request: the ticket id of a submitted request (identifiers read from request_storage).
        identifiers: emails or userIds (a list, or a JSON-list / comma-separated string).
        identifiers_file: a text file with one identifier per line, or a CSV file.
        identifier_type: ``email`` or ``userId`` to match the project's identity, or ``auto``.
        identifiers_column: the CSV column to read from ``identifiers_file``.
        audit_storage: a directory, or ``local-file-system/NAME`` / ``remote-file-system/NAME``.
        request_storage: where submitted requests are stored (same forms as audit_storage).
        credentials_block: the saved ``IterableCredentials`` block's name; None reads the
            environment.
        verify: check userIds against Iterable's list of forgotten hashes afterwards.
        batch_size: identifiers per task run; at 3 requests/s the default is ~85 s of sending
            per run, so that the pause between task runs costs ~1 % of the rate, not ~5 %.

    Returns:
        The counts per outcome, the identifiers left for a later run, and the audit file's path.
    """
    logger = get_run_logger()
    requests = Storage(request_storage) if request is not None else None
    requested = _read_request(requests, request) if requests is not None and request else None
    items = load_identifiers(
        identifiers, identifiers_file, identifier_type, identifiers_column, requested
    )
    credentials = IterableCredentials.load_or_env(credentials_block)
    storage = Storage(audit_storage)
    run_id = current_flow_run_id()
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
        with _audit_lease(storage):
            latest = audit.history()
            taken = [i for i in batch if latest.get(i.sha256, set()) & done]
            if taken:
                # Forgotten by a concurrent run since this one started.
                audit.record(taken, "skipped")
                skipped += taken
                batch = [i for i in batch if not latest.get(i.sha256, set()) & done]
            outcome = (
                forget_batch(batch, batch_number=number, credentials=credentials, audit=audit)
                if batch
                else BatchOutcome()
            )
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
    if requests is not None and request:
        _finish_request(requests, request, remainder)
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
