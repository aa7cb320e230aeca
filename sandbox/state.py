"""What the sandbox remembers: organizations, projects (each with its API keys and data), faults
and the request log."""

from __future__ import annotations

import itertools
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, TypeVar

T = TypeVar("T")

IdentityMode = Literal["email", "userId", "hybrid"]


@dataclass
class Project:
    """One Iterable project: its identity mode, the features Iterable gates, and its data.

    Each area of the API keeps its own state under ``areas`` (see ``area``), so that the areas
    stay independent modules.
    """

    id: int
    name: str
    organization_id: int
    identity: IdentityMode = "email"
    features: set[str] = field(
        default_factory=lambda: {
            "api_scheduling",
            "triggered_activation",
            "subscription_groups",
            "sms_verification",
        }
    )
    forget_daily_cap: int = 1000
    areas: dict[str, Any] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1000))

    def area(self, name: str, factory: Callable[[], T]) -> T:
        """This project's state for one API area, created on first use."""
        if name not in self.areas:
            self.areas[name] = factory()
        return self.areas[name]

    def next_id(self) -> int:
        """A fresh numeric id (campaigns, templates, lists, …), unique within the project."""
        return next(self._ids)


@dataclass
class Fault:
    """An injected failure for the next ``count`` requests of one action.

    kind: ``429``, ``500`` (GenericError), ``503`` (plain text), ``reset`` (drop the connection
    before answering), ``delay`` (process, then answer after ``seconds``), ``cut`` (stream part of
    the body, then drop the connection), ``error`` (answer ``status`` with Iterable's envelope of
    ``code``, ``msg`` and ``params``), ``html`` (answer ``status`` with an HTML error page),
    ``echo`` (answer ``status`` with a plain-text page, as a misconfigured gateway would, that
    echoes the request's API key in the ``encodings`` named, all by default: raw, url, base64,
    base64url, hex, HEX, basic, header, json).
    """

    action: str
    kind: str
    count: int = 1
    seconds: float = 0.0
    retry_after: float | None = None
    after_processing: bool = False  # 500/503/reset after the handler ran (state changed)
    status: int = 500
    code: str = "GenericError"
    msg: str = "Injected error"
    params: dict[str, Any] | None = None
    encodings: list[str] | None = None


@dataclass
class LogEntry:
    """One request as the sandbox received it."""

    seq: int
    at: float  # time.monotonic() on arrival
    wall: float  # time.time() on arrival
    action: str | None
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    project_id: int | None
    status: int = 0
    fault: str | None = None
    processed: bool = False  # the handler ran (state may have changed)
    raw_path: str = ""  # the path as it came on the wire, still percent-encoded

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class SandboxState:
    """Everything the sandbox holds; ``reset`` empties data, faults and the log."""

    projects: dict[int, Project] = field(default_factory=dict)
    keys: dict[str, int] = field(default_factory=dict)  # API key -> project id
    faults: list[Fault] = field(default_factory=list)
    log: deque[LogEntry] = field(default_factory=lambda: deque(maxlen=200_000))
    _seq: itertools.count = field(default_factory=itertools.count)

    def add_project(self, key: str, project: Project) -> Project:
        self.projects[project.id] = project
        self.keys[key] = project.id
        return project

    def project_for_key(self, key: str | None) -> Project | None:
        project_id = self.keys.get(key or "")
        return self.projects.get(project_id) if project_id is not None else None

    def record(self, **fields: Any) -> LogEntry:
        entry = LogEntry(seq=next(self._seq), at=time.monotonic(), wall=time.time(), **fields)
        self.log.append(entry)
        return entry

    def take_fault(self, action: str, *, after_processing: bool | None = None) -> Fault | None:
        for fault in self.faults:
            if fault.action not in (action, "*") or fault.count <= 0:
                continue
            if after_processing is not None and fault.after_processing != after_processing:
                continue
            fault.count -= 1
            if fault.count == 0:
                self.faults.remove(fault)
            return fault
        return None

    def requests(
        self, action: str | None = None, *, project_id: int | None = None
    ) -> list[LogEntry]:
        """Logged requests, optionally of one action and one project, oldest first."""
        return [
            e
            for e in self.log
            if (action is None or e.action == action)
            and (project_id is None or e.project_id == project_id)
        ]
