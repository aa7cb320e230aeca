"""Hashed audit logs, shared by the flows that act on people (GDPR forget, suppression).

An audit line is one JSON object keyed by the SHA-256 of the normalised identifier, never the
identifier itself, and carries the flow run that wrote it. Lines are appended to a ``Storage``
durably before the caller goes on, and read back tolerantly: a crashed run may leave a torn last
line, which is skipped rather than failing the next run.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from typing import Any

from prefect_iterable.flows._storage import Storage, dumps_compact

__all__ = ["append_lines", "audit_line", "current_flow_run_id", "read_lines"]


def current_flow_run_id() -> str:
    """The running flow's id, or a fresh UUID outside a flow run (an audit line always has one)."""
    from prefect.runtime import flow_run

    return str(flow_run.id or uuid.uuid4())


def audit_line(
    sha256: str, outcome: str, flow_run_id: str, *, at: str | None = None, **fields: Any
) -> dict[str, Any]:
    """One audit record: hash, time, outcome, any extra fields, then the flow run id."""
    line: dict[str, Any] = {
        "sha256": sha256,
        "at": at or datetime.now(timezone.utc).isoformat(),
        "outcome": outcome,
    }
    line.update(fields)
    line["flow_run_id"] = flow_run_id
    return line


def append_lines(storage: Storage, name: str, lines: Iterable[dict[str, Any]]) -> None:
    """Append records to ``name`` in one write, so that a batch lands whole or not at all."""
    storage.append(name, "".join(dumps_compact(line) + "\n" for line in lines).encode())


def read_lines(storage: Storage, name: str) -> Iterator[dict[str, Any]]:
    """The records of ``name``, skipping lines that are not a JSON object (a torn last line)."""
    for raw in storage.read_bytes(name).decode("utf-8", "replace").splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if isinstance(line, dict):
            yield line
