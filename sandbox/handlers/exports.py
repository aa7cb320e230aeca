"""Exports: synchronous streamed exports, user event exports and asynchronous export jobs.

Records
    Export records are generated deterministically from (project id, dataTypeName, time): the
    window is cut into slots of ``3600 / rows_per_hour`` seconds on an absolute clock, and slot
    ``k`` always yields the same record, so overlapping windows agree and a re-run of an export
    gives the same bytes. Real state is added where it is cheap: user profiles (``user``) and
    the shared message log (``emailSend``, ``pushSend``, ``smsSend``, ``inAppSend``). Records
    are produced by generators and sent in ~64 KB chunks, never built whole, so raising
    ``rows_per_hour`` makes exports of any size (about 4 M rows of ~250 bytes make 1 GB).
    Nothing is generated in the future; ``All`` starts ``history_days`` ago.

Jobs
    ``start`` creates a job in ``project.area("exports", ExportArea)``. Its files (record
    ranges of at most ``file_size_bytes``, each CSV file with its own header) are planned at
    once; the job's progress is computed lazily from timestamps whenever a request of the
    organization looks at jobs: Enqueued until ``start_delay_seconds`` passed and one of the
    organization's ``max_running`` slots is free, then Running for as long as its bytes take
    at ``bytes_per_second``, then Completed. Files are listed as soon as the job has produced
    them. All durations pass through ``prefect_iterable.sandbox.scaled`` (faster with a larger ``time_scale``).
    Download URLs (``{base_url}/_files/<token>/<file>``, served without an API key, as S3
    pre-signed URLs are) expire ``url_ttl_seconds`` after they were listed; then they answer
    403 with a plain-text body.

Knobs: ``project.area("export_settings", ...)``, a dict read on every use (missing keys take
their default from ``DEFAULT_SETTINGS``):

    rows_per_hour        generated records per hour of window (60)
    history_days         where ``All``/``BeforeToday`` (and a job without a start) begin (14)
    user_events          generated events per user for ``export/userEvents`` (20)
    file_size_bytes      largest file of a job (10 MB)
    bytes_per_second     how fast a running job produces data, at time_scale 1 (8 MB/s)
    start_delay_seconds  a new job stays Enqueued at least this long (0.2)
    max_running          jobs Running at once per organization (4)
    files_per_page       files per ``GET /api/export/{jobId}/files`` answer (100)
    url_ttl_seconds      lifetime of a download URL (1800)
    max_export_bytes     size cap of a job; larger exports stop there, exportTruncated (100 GB)
    truncate_next        the next N started jobs stop at half their size, exportTruncated
    fail_next            the next N started jobs end Failed halfway through
    restart_next         the next N started jobs go back from Running to Enqueued halfway
                         through, once, keeping their progress and files
    restart_seconds      how long a restarted job waits before it may run again (0.5)

``truncate_next``/``fail_next``/``restart_next`` are consumed when a job starts (an int counts
down; ``True`` means one job).
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import json
import math
import re
import secrets
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from prefect_iterable.sandbox.handlers import _shared
from prefect_iterable.sandbox.handlers._base import (
    Call,
    Reply,
    Stream,
    bad_params,
    handles,
    not_found,
    success,
)
from prefect_iterable.sandbox.handlers._shared import check_identity, messages, require_user, users
from prefect_iterable.sandbox.state import Project

if TYPE_CHECKING:
    from prefect_iterable.sandbox.app import Sandbox

DEFAULT_SETTINGS: dict[str, Any] = {
    "rows_per_hour": 60,
    "history_days": 14,
    "user_events": 20,
    "file_size_bytes": 10 * 1024 * 1024,
    "bytes_per_second": 8 * 1024 * 1024,
    "start_delay_seconds": 0.2,
    "max_running": 4,
    "files_per_page": 100,
    "url_ttl_seconds": 1800.0,
    "max_export_bytes": 100 * 1024**3,
    "truncate_next": 0,
    "fail_next": 0,
    "restart_next": 0,
    "restart_seconds": 0.5,
}

DATA_TYPES: tuple[str, ...] = (
    "emailSend", "emailOpen", "emailClick", "hostedUnsubscribeClick", "emailComplaint",
    "emailBounce", "emailSendSkip", "pushSend", "pushOpen", "pushUninstall", "pushBounce",
    "pushSendSkip", "inAppSend", "inAppOpen", "inAppClick", "inAppClose", "inAppDelete",
    "inAppDelivery", "inAppSendSkip", "inAppRecall", "inboxSession", "inboxMessageImpression",
    "smsSend", "smsBounce", "smsClick", "smsReceived", "smsSendSkip", "webPushSend",
    "webPushClick", "webPushSendSkip", "rcsSend", "rcsSendSkip", "emailSubscribe",
    "emailUnSubscribe", "purchase", "customEvent", "user", "smsUsageInfo", "embeddedSend",
    "embeddedSendSkip", "embeddedClick", "embeddedReceived", "embeddedImpression",
    "embeddedSession", "unknownSession", "journeyExit", "whatsAppBounce", "whatsAppClick",
    "whatsAppReceived", "whatsAppSeen", "whatsAppSend", "whatsAppSendSkip", "whatsAppUsageInfo",
)  # fmt: skip
_TYPE_CODE = {name: code for code, name in enumerate(DATA_TYPES)}
FORMATS = {"text/csv": ".csv", "application/x-json-stream": ".json"}
RANGES = ("Today", "Yesterday", "BeforeToday", "All")
CHUNK_BYTES = 64 * 1024

# The message log's medium, for the send data types that real sends show up in.
_SEND_MEDIUM = {"emailSend": "Email", "pushSend": "Push", "smsSend": "SMS", "inAppSend": "InApp"}


def export_settings(project: Project) -> dict[str, Any]:
    """The project's export knobs (see the module docstring); edit the returned dict."""
    return project.area("export_settings", lambda: dict(DEFAULT_SETTINGS))


def _knob(project: Project, name: str) -> Any:
    value = export_settings(project).get(name)
    return DEFAULT_SETTINGS[name] if value is None else value


def _take_knob(project: Project, name: str) -> bool:
    """Consume one use of a countdown knob (``fail_next`` …)."""
    settings = export_settings(project)
    value = settings.get(name)
    if not value:
        return False
    settings[name] = False if value is True else int(value) - 1
    return True


# ---- record generation ---------------------------------------------------------------------

_MASK = (1 << 64) - 1


def _mix(*parts: int) -> int:
    """A 64-bit hash of integers (splitmix64 steps): cheap, stable across runs."""
    h = 0x9E3779B97F4A7C15
    for part in parts:
        h = (h ^ (part & _MASK)) * 0xBF58476D1CE4E5B9 & _MASK
        h = (h ^ (h >> 31)) * 0x94D049BB133111EB & _MASK
        h ^= h >> 29
    return h


def _format_time(seconds: float) -> str:
    return _format_second(int(seconds // 1))


@functools.lru_cache(maxsize=8192)
def _format_second(second: int) -> str:
    # Cached: consecutive generated records mostly share their second.
    return datetime.fromtimestamp(second, timezone.utc).strftime("%Y-%m-%d %H:%M:%S +00:00")


def _family(data_type: str) -> str:
    if data_type == "user":
        return "user"
    if data_type == "purchase":
        return "purchase"
    if data_type == "customEvent":
        return "custom"
    if data_type in ("emailSubscribe", "emailUnSubscribe"):
        return "subscription"
    if data_type in ("unknownSession", "journeyExit", "inboxSession"):
        return "session"
    return "message"


_BASE = ["createdAt", "email", "userId"]
_MESSAGE = [*_BASE, "campaignId", "templateId", "messageId", "messageTypeId", "channelId"]


@functools.cache
def _extra_field(data_type: str) -> str | None:
    for suffix, name in (
        ("Click", "url"),
        ("SendSkip", "reason"),
        ("Bounce", "diagnosticCode"),
        ("Open", "userAgent"),
        ("Complaint", "feedbackType"),
        ("UsageInfo", "segments"),
    ):
        if data_type.endswith(suffix):
            return name
    return None


def columns(project: Project, data_type: str) -> list[str]:
    """A data type's fields, in export order (the CSV header before onlyFields/omitFields)."""
    family = _family(data_type)
    if family == "user":
        known = ["email", "userId", "signupDate", "profileUpdatedAt", "firstName", "city"]
        extra: dict[str, None] = {}
        for user in users(project).all():
            for name in user.data_fields:
                if name not in known:
                    extra.setdefault(name)
        return known + sorted(extra)
    if family == "purchase":
        return [*_BASE, "id", "campaignId", "templateId", "total", "currency", "itemCount"]
    if family == "custom":
        return [*_BASE, "eventName", "campaignId", "templateId", "dataFields"]
    if family == "subscription":
        return [*_BASE, "emailListIds", "channelId", "messageTypeId", "campaignId"]
    if family == "session":
        return [*_BASE, "sessionId", "journeyId", "campaignId"]
    extra_name = _extra_field(data_type)
    return _MESSAGE + ([extra_name] if extra_name else [])


_EVENT_NAMES = ("productView", "addToCart", "appLaunch", "search", "wishlist")
_USER_AGENTS = ("Mozilla/5.0 (iPhone)", "Mozilla/5.0 (Windows NT 10.0)", "Gmail Image Proxy")
_REASONS = ("FrequencyCapped", "Unsubscribed", "MissingFields", "QuietHours")
_CITIES = ("Berlin", "Lagos", "Lima", "Osaka", "Austin", "Pune")


def generated_record(project_id: int, data_type: str, slot: int, rows_per_hour: int) -> dict:
    """Slot ``slot`` (time ``slot * 3600 / rows_per_hour``) of a project's data type."""
    seconds = slot * 3600.0 / rows_per_hour
    h = _mix(project_id, _TYPE_CODE[data_type], slot)
    person = h % 5000
    email, user_id = f"user{person}@example.com", f"user-{person}"
    family = _family(data_type)
    campaign = 100 + (h >> 13) % 20
    if family == "user":
        return {
            "email": email,
            "userId": user_id,
            "signupDate": _format_time(seconds - (h >> 20) % (86400 * 365)),
            "profileUpdatedAt": _format_time(seconds),
            "firstName": f"Name{(h >> 7) % 997}",
            "city": _CITIES[(h >> 17) % len(_CITIES)],
        }
    record: dict[str, Any] = {"createdAt": _format_time(seconds), "email": email}
    record["userId"] = user_id
    if family == "purchase":
        cents = 500 + (h >> 11) % 50000
        record.update(
            id=f"p-{project_id}-{slot}",
            campaignId=campaign,
            templateId=campaign * 10,
            total=cents / 100,
            currency="USD",
            itemCount=1 + (h >> 23) % 5,
        )
    elif family == "custom":
        record.update(
            eventName=_EVENT_NAMES[(h >> 9) % len(_EVENT_NAMES)],
            campaignId=campaign,
            templateId=campaign * 10,
            dataFields={"sku": f"sku-{(h >> 27) % 800}", "quantity": 1 + (h >> 37) % 4},
        )
    elif family == "subscription":
        record.update(
            emailListIds=[1 + (h >> 5) % 8],
            channelId=1,
            messageTypeId=11,
            campaignId=campaign,
        )
    elif family == "session":
        record.update(
            sessionId=f"s-{h % 10**12:012d}", journeyId=1 + (h >> 19) % 40, campaignId=campaign
        )
    else:
        record.update(
            campaignId=campaign,
            templateId=campaign * 10,
            messageId=f"{h:016x}",
            messageTypeId=11 + (h >> 29) % 4,
            channelId=1 + (h >> 31) % 4,
        )
        extra = _extra_field(data_type)
        if extra == "url":
            record[extra] = f"https://example.com/p/{(h >> 41) % 1000}"
        elif extra == "reason":
            record[extra] = _REASONS[(h >> 43) % len(_REASONS)]
        elif extra == "diagnosticCode":
            record[extra] = f"5.{(h >> 45) % 8}.{(h >> 47) % 10}"
        elif extra == "userAgent":
            record[extra] = _USER_AGENTS[(h >> 49) % len(_USER_AGENTS)]
        elif extra == "feedbackType":
            record[extra] = "abuse"
        elif extra == "segments":
            record[extra] = 1 + (h >> 51) % 3
    return record


def _real_records(project: Project, data_type: str, start: float, end: float) -> list[dict]:
    """Records of the window that exist in the sandbox's state, oldest first."""
    lo, hi = start * 1000, end * 1000
    found: list[tuple[float, dict]] = []
    if data_type == "user":
        for user in users(project).all():
            if lo <= user.profile_updated_at < hi:
                record = {k: v for k, v in user.as_json()["dataFields"].items()}
                record["signupDate"] = _format_time(user.signup_date / 1000)
                record["profileUpdatedAt"] = _format_time(user.profile_updated_at / 1000)
                found.append((user.profile_updated_at, record))
    elif data_type in _SEND_MEDIUM:
        for entry in messages(project):
            created = entry.get("sendAt") or entry.get("createdAt") or 0
            if (
                entry.get("medium") == _SEND_MEDIUM[data_type]
                and entry.get("status") == "sent"
                and lo <= created < hi
            ):
                record = {
                    "createdAt": _format_time(created / 1000),
                    "email": entry.get("email"),
                    "userId": entry.get("userId"),
                    "campaignId": entry.get("campaignId"),
                    "templateId": entry.get("templateId"),
                    "messageId": entry.get("messageId"),
                }
                found.append((created, {k: v for k, v in record.items() if v is not None}))
    found.sort(key=lambda pair: pair[0])
    return [record for _, record in found]


@dataclass
class ExportSpec:
    """What one export holds: the data type, the window and the field and campaign filters."""

    project_id: int
    data_type: str
    output_format: str
    start: float  # epoch seconds, inclusive
    end: float  # exclusive
    rows_per_hour: int
    fields: list[str]
    campaign_id: int | None = None
    delimiter: str = ","

    @property
    def first_slot(self) -> int:
        return math.ceil(self.start * self.rows_per_hour / 3600)

    @property
    def end_slot(self) -> int:
        return max(self.first_slot, math.ceil(self.end * self.rows_per_hour / 3600))

    def generated(self, first: int, stop: int) -> Iterator[dict]:
        for slot in range(first, stop):
            yield generated_record(self.project_id, self.data_type, slot, self.rows_per_hour)

    def keep(self, record: dict) -> dict | None:
        if self.campaign_id is not None and record.get("campaignId") != self.campaign_id:
            return None
        return record

    def header(self) -> bytes:
        if self.output_format != "text/csv":
            return b""
        out = io.StringIO()
        csv.writer(out, delimiter=self.delimiter, lineterminator="\n").writerow(self.fields)
        return out.getvalue().encode()

    def encode(self, records: Iterable[dict], *, header: bool) -> Iterator[bytes]:
        """Records as CSV rows or JSON lines, in chunks of about 64 KB."""
        out = io.StringIO()
        writer = csv.writer(out, delimiter=self.delimiter, lineterminator="\n")
        if header:
            out.write(self.header().decode())
        for raw in records:
            record = self.keep(raw)
            if record is None:
                continue
            if self.output_format == "text/csv":
                row = [record.get(name) for name in self.fields]  # csv writes None as ""
                for i, value in enumerate(row):
                    if isinstance(value, (dict, list)):
                        row[i] = json.dumps(value, separators=(",", ":"))
                writer.writerow(row)
            else:
                picked = {name: record[name] for name in self.fields if name in record}
                out.write(json.dumps(picked, separators=(",", ":"), ensure_ascii=False))
                out.write("\n")
            if out.tell() >= CHUNK_BYTES:
                yield out.getvalue().encode()
                out.seek(0)
                out.truncate()
        if out.tell():
            yield out.getvalue().encode()


# ---- request parsing -----------------------------------------------------------------------

_EXPORT_TIME = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:\.\d+)?\s*(Z|[+-]\d{2}:?\d{2})?$"
)


def parse_export_time(value: Any, name: str) -> float:
    """``yyyy-MM-dd HH:mm:ss [ZZ]`` or ISO 8601 (no zone means UTC) as epoch seconds."""
    return _shared.parse_time(value, name).timestamp()


def _window(call: Call, *, allow_range: bool) -> tuple[float, float]:
    """The export window; nothing exists after now, and named ranges begin history_days ago."""
    now = time.time()
    oldest = now - float(_knob(call.project, "history_days")) * 86400
    today = math.floor(now / 86400) * 86400
    date_range = call.arg("range") if allow_range else None
    start_raw, end_raw = call.arg("startDateTime"), call.arg("endDateTime")
    if date_range is not None and (start_raw is not None or end_raw is not None):
        raise bad_params("Give either range or startDateTime/endDateTime, not both")
    if date_range is not None:
        if date_range not in RANGES:
            raise bad_params(f"range must be one of {', '.join(RANGES)}")
        start, end = {
            "Today": (today, today + 86400),
            "Yesterday": (today - 86400, today),
            "BeforeToday": (oldest, today),
            "All": (oldest, now),
        }[date_range]
    elif start_raw is not None or end_raw is not None:
        if allow_range and (start_raw is None or end_raw is None):
            raise bad_params("Give both startDateTime and endDateTime, or a range")
        start = parse_export_time(start_raw, "startDateTime") if start_raw else oldest
        end = parse_export_time(end_raw, "endDateTime") if end_raw else now
        if start >= end:
            raise bad_params("startDateTime must be before endDateTime")
    else:
        start, end = (today, today + 86400) if allow_range else (oldest, now)
    return start, max(min(end, now), start)


def _field_names(call: Call, wire: str) -> list[str]:
    names: list[str] = []
    values = call.args(wire) or ([call.arg(wire)] if call.arg(wire) is not None else [])
    for value in values:
        items = value if isinstance(value, list) else str(value).split(",")
        names.extend(str(item).strip() for item in items if str(item).strip())
    return names


def _spec(call: Call, *, output_format: str, allow_range: bool) -> ExportSpec:
    data_type = call.arg("dataTypeName")
    if data_type not in DATA_TYPES:
        raise bad_params(f"Invalid dataTypeName {data_type!r}")
    start, end = _window(call, allow_range=allow_range)
    fields = columns(call.project, data_type)
    only = _field_names(call, "onlyFields")
    omit = set(_field_names(call, "omitFields"))
    if only:
        fields = [name for name in fields if name in only]
    fields = [name for name in fields if name not in omit]
    delimiter = call.arg("delimiter")
    if delimiter is not None and (len(str(delimiter)) != 1 or str(delimiter) in '\r\n"'):
        raise bad_params("delimiter must be a single character")
    return ExportSpec(
        project_id=call.project.id,
        data_type=data_type,
        output_format=output_format,
        start=start,
        end=end,
        rows_per_hour=max(1, int(_knob(call.project, "rows_per_hour"))),
        fields=fields,
        campaign_id=call.int_arg("campaignId"),
        delimiter=str(delimiter) if delimiter is not None else ",",
    )


# ---- synchronous exports -------------------------------------------------------------------


def _sync_export(call: Call, output_format: str) -> Stream:
    spec = _spec(call, output_format=output_format, allow_range=True)
    real = _real_records(call.project, spec.data_type, spec.start, spec.end)
    records = itertools.chain(real, spec.generated(spec.first_slot, spec.end_slot))
    return Stream(spec.encode(records, header=True), output_format)


@handles("ITERABLE_EXPORT_DATA_CSV")
def export_data_csv(call: Call) -> Stream:
    return _sync_export(call, "text/csv")


@handles("ITERABLE_EXPORT_DATA_JSON")
def export_data_json(call: Call) -> Stream:
    return _sync_export(call, "application/x-json-stream")


_USER_EVENT_TYPES = ("emailSend", "emailOpen", "emailClick", "pushSend", "pushOpen", "smsSend")


def _user_events(project: Project, user: Any, include_custom: bool) -> Iterator[dict]:
    identity = user.email or user.user_id or ""
    seed = _mix(project.id, *identity.encode())
    count = int(_knob(project, "user_events"))
    now = time.time()
    since = max(user.signup_date / 1000, now - float(_knob(project, "history_days")) * 86400)
    span = max(1.0, now - since)
    real = [
        m
        for m in messages(project)
        if m.get("status") == "sent"
        and ((user.email and m.get("email") == user.email) or m.get("userId") == user.user_id)
    ]
    for entry in real:
        medium = str(entry.get("medium") or "Email")
        yield {
            "createdAt": _format_time((entry.get("sendAt") or entry["createdAt"]) / 1000),
            "eventType": f"{medium[0].lower()}{medium[1:]}Send",
            "email": user.email,
            "userId": user.user_id,
            "campaignId": entry.get("campaignId"),
            "templateId": entry.get("templateId"),
            "messageId": entry.get("messageId"),
        }
    for n in range(count):
        h = _mix(seed, n)
        custom = include_custom and n % 4 == 3
        event: dict[str, Any] = {
            "createdAt": _format_time(since + span * (n + 0.5) / count),
            "eventType": "customEvent" if custom else _USER_EVENT_TYPES[h % len(_USER_EVENT_TYPES)],
            "email": user.email,
            "userId": user.user_id,
        }
        if custom:
            event["eventName"] = _EVENT_NAMES[(h >> 7) % len(_EVENT_NAMES)]
        else:
            event["campaignId"] = 100 + (h >> 13) % 20
            event["messageId"] = f"{h:016x}"
        yield {k: v for k, v in event.items() if v is not None}


@handles("ITERABLE_EXPORT_USER_EVENTS")
def export_user_events(call: Call) -> Stream:
    email, user_id = check_identity(call.project, call.arg("email"), call.arg("userId"))
    user = require_user(call.project, email, user_id)
    events = _user_events(call.project, user, call.bool_arg("includeCustomEvents"))

    def chunks() -> Iterator[bytes]:
        buffer: list[str] = []
        size = 0
        for event in events:
            line = json.dumps(event, separators=(",", ":"), ensure_ascii=False) + "\n"
            buffer.append(line)
            size += len(line)
            if size >= CHUNK_BYTES:
                yield "".join(buffer).encode()
                buffer, size = [], 0
        if buffer:
            yield "".join(buffer).encode()

    return Stream(chunks(), "application/x-json-stream")


# ---- export jobs ---------------------------------------------------------------------------


@dataclass
class ExportFile:
    name: str
    real: tuple[int, int]  # a range of the job's real records
    slots: tuple[int, int]  # a range of generated slots
    size: int  # estimated bytes (exact for real records)
    work_end: float  # seconds of running after which the file exists


@dataclass
class ExportJob:
    id: int
    project_id: int
    organization_id: int
    spec: ExportSpec
    real: list[dict]
    files: list[ExportFile]
    truncated: bool
    created: float
    eligible_at: float
    queued_seq: int
    max_running: int
    restart_delay: float
    state: str = "Enqueued"
    clock: float = 0.0  # the time up to which the state is computed
    running_since: float | None = None
    progress: float = 0.0  # seconds of running done before the current stint
    fail_at: float | None = None
    restart_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None

    @property
    def work(self) -> float:
        return self.files[-1].work_end if self.files else 0.0

    def progress_at(self, now: float) -> float:
        if self.state == "Running" and self.running_since is not None:
            return min(self.work, self.progress + (now - self.running_since))
        return self.progress

    def ready_files(self, now: float) -> list[ExportFile]:
        if self.state == "Completed":
            return list(self.files)
        done = self.progress_at(now)
        return [f for f in self.files if f.work_end <= done]

    def next_stop(self) -> float:
        """Seconds of progress at which the running job next changes state."""
        stops = [self.work]
        if self.fail_at is not None:
            stops.append(self.fail_at)
        if self.restart_at is not None:
            stops.append(self.restart_at)
        return min(stops)


@dataclass
class ExportArea:
    """A project's export jobs and the download tokens handed out for their files."""

    jobs: dict[int, ExportJob] = field(default_factory=dict)
    tokens: dict[str, tuple[int, int, float]] = field(default_factory=dict)  # job, file, expiry


def exports(project: Project) -> ExportArea:
    return project.area("exports", ExportArea)


_queue_seq = itertools.count(1)
_job_ids = itertools.count(int(time.time()) % 100_000 * 10 + 1)


def _sample_lines(spec: ExportSpec, count: int = 48) -> list[int]:
    """Encoded sizes of generated records spread over the window (their fields are bounded)."""
    first, stop = spec.first_slot, spec.end_slot
    if stop <= first:
        return []
    step = max(1, (stop - first) // count)
    slots = range(first, stop, step)
    records = (
        generated_record(spec.project_id, spec.data_type, k, spec.rows_per_hour) for k in slots
    )
    return [sum(len(c) for c in spec.encode([r], header=False)) for r in records]


def _plan_files(spec: ExportSpec, real: list[dict], settings: dict[str, Any]) -> tuple:
    """Cut the job's records into files of at most ``file_size_bytes``; apply the size cap."""
    file_size = int(settings["file_size_bytes"])
    cap = int(settings["max_export_bytes"])
    header = len(spec.header())
    per_second = max(1.0, float(settings["bytes_per_second"]))
    extension = FORMATS[spec.output_format]
    files: list[ExportFile] = []
    total = 0
    truncated = False

    def add(real_range: tuple[int, int], slots: tuple[int, int], size: int) -> None:
        nonlocal total
        total += size
        work = (files[-1].work_end if files else 0.0) + size / per_second
        name = f"{spec.data_type}-{len(files) + 1:05d}{extension}"
        files.append(ExportFile(name, real_range, slots, size, work))

    # Real records: exact sizes, packed greedily.
    begin, size = 0, header
    for index, record in enumerate(real):
        line = sum(len(c) for c in spec.encode([record], header=False))
        if size + line > file_size and index > begin:
            add((begin, index), (0, 0), size)
            begin, size = index, header
        size += line
    if begin < len(real):
        add((begin, len(real)), (0, 0), size)
    # Generated records: a fixed count per file, from a bound on their size.
    sizes = _sample_lines(spec) or [64]
    bound = int(max(sizes) * 1.25) + 32  # an upper bound: files never exceed file_size
    average = sum(sizes) / len(sizes)
    per_file = max(1, (file_size - header) // bound)
    slot = spec.first_slot
    while slot < spec.end_slot:
        stop = min(spec.end_slot, slot + per_file)
        estimate = header + int((stop - slot) * average)
        if total + estimate > cap:
            truncated = True
            break
        add((0, 0), (slot, stop), estimate)
        slot = stop
    return files, truncated


def _organization_jobs(sandbox: Sandbox, organization_id: int) -> list[ExportJob]:
    found: list[ExportJob] = []
    for project in sandbox.state.projects.values():
        if project.organization_id == organization_id and "exports" in project.areas:
            found.extend(project.areas["exports"].jobs.values())
    return found


def advance(sandbox: Sandbox, organization_id: int, now: float | None = None) -> None:
    """Bring every job of the organization up to ``now``, event by event.

    Requests that change jobs (start, cancel) advance first, so the events replayed here all
    happened after the last change: starting queued jobs in a free slot, finishing, failing or
    restarting running ones.
    """
    now = time.time() if now is None else now
    active = [
        j
        for j in _organization_jobs(sandbox, organization_id)
        if j.state in ("Enqueued", "Running")
    ]
    if not active:
        return
    t = max(j.clock for j in active)
    while True:
        running = [j for j in active if j.state == "Running"]
        waiting = sorted(
            (j for j in active if j.state == "Enqueued" and j.eligible_at <= t),
            key=lambda j: j.queued_seq,
        )
        for job in waiting:
            if len(running) >= job.max_running:
                break
            job.state, job.running_since = "Running", t
            job.started_at = job.started_at or t
            running.append(job)
        events = [j.running_since + (j.next_stop() - j.progress) for j in running]  # type: ignore[operator]
        events += [j.eligible_at for j in active if j.state == "Enqueued" and j.eligible_at > t]
        upcoming = min(events, default=math.inf)
        if upcoming > now:
            break
        t = upcoming
        for job in running:
            stop = job.running_since + (job.next_stop() - job.progress)  # type: ignore[operator]
            if stop > t:
                continue
            job.progress, job.running_since = job.next_stop(), None
            if job.fail_at is not None and job.progress >= job.fail_at:
                job.state, job.ended_at = "Failed", t
            elif job.restart_at is not None and job.progress >= job.restart_at:
                job.state, job.restart_at = "Enqueued", None
                job.eligible_at, job.queued_seq = t + job.restart_delay, next(_queue_seq)
            else:
                job.state, job.ended_at = "Completed", t
        active = [j for j in active if j.state in ("Enqueued", "Running")]
    for job in active:
        job.clock = now


def start_job(sandbox: Sandbox, project: Project, spec: ExportSpec) -> ExportJob:
    """Create and queue an export job (the handler's work; tests may call it directly)."""
    now = time.time()
    advance(sandbox, project.organization_id, now)
    settings = {name: _knob(project, name) for name in DEFAULT_SETTINGS}
    real = _real_records(project, spec.data_type, spec.start, spec.end)
    scaled = {
        **settings,
        "bytes_per_second": float(settings["bytes_per_second"]) * sandbox.time_scale,
    }
    files, truncated = _plan_files(spec, real, scaled)
    if _take_knob(project, "truncate_next") and files:
        files, truncated = files[: max(1, len(files) // 2)], True
    job = ExportJob(
        id=next(_job_ids),
        project_id=project.id,
        organization_id=project.organization_id,
        spec=spec,
        real=real,
        files=files,
        truncated=truncated,
        created=now,
        eligible_at=now + sandbox.scaled(float(settings["start_delay_seconds"])),
        queued_seq=next(_queue_seq),
        max_running=int(settings["max_running"]),
        restart_delay=sandbox.scaled(float(settings["restart_seconds"])),
        clock=now,
    )
    if _take_knob(project, "fail_next"):
        job.fail_at = job.work / 2
    if _take_knob(project, "restart_next"):
        job.restart_at = job.work / 2
    exports(project).jobs[job.id] = job
    return job


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    moment = datetime.fromtimestamp(seconds, timezone.utc)
    return moment.isoformat(timespec="milliseconds")


def _require_job(call: Call) -> ExportJob:
    job_id = call.int_arg("jobId")
    job = exports(call.project).jobs.get(job_id or 0)
    if job is None:
        raise not_found(f"Export job {job_id} not found")
    return job


@handles("ITERABLE_START_EXPORT")
def start_export(call: Call) -> dict[str, Any]:
    output_format = call.arg("outputFormat")
    if output_format not in FORMATS:
        raise bad_params(f"outputFormat must be one of {', '.join(FORMATS)}")
    if call.arg("delimiter") is not None and output_format != "text/csv":
        raise bad_params("delimiter applies only to text/csv exports")
    spec = _spec(call, output_format=output_format, allow_range=False)
    job = start_job(call.sandbox, call.project, spec)
    return {"jobId": job.id}


_STATE_FILTER = {
    "enqueued": "Enqueued",
    "queued": "Enqueued",
    "running": "Running",
    "completed": "Completed",
    "failed": "Failed",
    "cancelled": "Cancelled",
    "cancelling": "Cancelling",  # cancellation is immediate here, so this matches nothing
}


@handles("ITERABLE_LIST_EXPORT_JOBS")
def list_export_jobs(call: Call) -> dict[str, Any]:
    wanted = call.arg("jobState")
    if wanted is not None and str(wanted).lower() not in _STATE_FILTER:
        raise bad_params(f"Invalid jobState {wanted!r}")
    now = time.time()
    advance(call.sandbox, call.project.organization_id, now)
    jobs = sorted(exports(call.project).jobs.values(), key=lambda j: j.id, reverse=True)
    listed = []
    for job in jobs:
        if wanted is not None and job.state != _STATE_FILTER[str(wanted).lower()]:
            continue
        entry = {
            "id": job.id,
            "dataTypeName": job.spec.data_type,
            "jobState": job.state,
            "bytesExported": sum(f.size for f in job.ready_files(now)),
            "scheduledStartTime": _iso(
                job.eligible_at if job.started_at is None else job.started_at
            ),
            "endTime": _iso(job.ended_at),
        }
        listed.append({k: v for k, v in entry.items() if v is not None})
    return {"jobs": listed}


@handles("ITERABLE_LIST_EXPORT_FILES")
def list_export_files(call: Call) -> dict[str, Any]:
    job = _require_job(call)
    now = time.time()
    advance(call.sandbox, call.project.organization_id, now)
    start_after = call.arg("startAfter")
    ready = job.ready_files(now)
    if start_after:
        ready = [f for f in ready if f.name > str(start_after)]
    page = ready[: max(1, int(_knob(call.project, "files_per_page")))]
    area = exports(call.project)
    expires = now + call.sandbox.scaled(float(_knob(call.project, "url_ttl_seconds")))
    area.tokens = {k: v for k, v in area.tokens.items() if v[2] > now}
    files = []
    for f in page:
        token = f"{call.project.id}-{secrets.token_urlsafe(18)}"
        area.tokens[token] = (job.id, job.files.index(f), expires)
        files.append({"file": f.name, "url": f"{call.sandbox.base_url}/_files/{token}/{f.name}"})
    return {
        "jobId": job.id,
        "jobState": job.state,
        "exportTruncated": job.truncated and job.state == "Completed",
        "files": files,
    }


@handles("ITERABLE_CANCEL_EXPORT")
def cancel_export(call: Call) -> dict[str, Any]:
    job = _require_job(call)
    now = time.time()
    advance(call.sandbox, call.project.organization_id, now)
    if job.state not in ("Enqueued", "Running"):
        raise bad_params(f"Export job {job.id} is {job.state} and cannot be cancelled")
    job.progress = job.progress_at(now)
    job.state, job.running_since, job.ended_at = "Cancelled", None, now
    # A freed slot lets a queued job of the organization start now.
    advance(call.sandbox, call.project.organization_id, now)
    return success(f"Export job {job.id} cancelled")


# ---- file downloads (no API key: the token in the URL is the authorization) ---------------


def _denied(message: str) -> Reply:
    return Reply(message, 403, "text/plain")


def file_chunks(job: ExportJob, export_file: ExportFile) -> Iterator[bytes]:
    """One file's bytes: its records, each CSV file with its own header."""
    spec = job.spec
    real = job.real[export_file.real[0] : export_file.real[1]]
    records = itertools.chain(real, spec.generated(*export_file.slots))
    yield from spec.encode(records, header=True)


def download(sandbox: Sandbox, token_path: str) -> Reply | Stream:
    """Answer ``GET /_files/<token>/<file>``: the file, or 403 like an expired S3 URL."""
    token = token_path.split("/", 1)[0]
    project_id, _, _ = token.partition("-")
    project = sandbox.state.projects.get(int(project_id)) if project_id.isdigit() else None
    entry = exports(project).tokens.get(token) if project is not None else None
    entry_log = sandbox.state.record(
        action="EXPORT_FILE_DOWNLOAD",
        method="GET",
        path="/_files/" + token_path,
        query={},
        body=None,
        project_id=project.id if project else None,
    )
    job = exports(project).jobs.get(entry[0]) if entry is not None else None  # type: ignore[arg-type]
    reply: Reply | Stream
    if entry is None or job is None:
        reply = _denied("AccessDenied: the URL is not valid")
    elif time.time() >= entry[2]:
        reply = _denied("AccessDenied: Request has expired")
    else:
        reply = Stream(file_chunks(job, job.files[entry[1]]), job.spec.output_format)
    entry_log.status = reply.status
    return reply


__all__ = [
    "DEFAULT_SETTINGS",
    "ExportArea",
    "ExportSpec",
    "advance",
    "download",
    "export_settings",
    "exports",
    "generated_record",
    "start_job",
]
