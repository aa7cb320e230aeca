"""The archive's manifest: which windows of which data types are complete, split or pending, and
every file with its size, SHA-256 and record count, so that a re-run skips what is archived."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from typing import Any

from prefect_iterable.api.archive.errors import ExportArchiveError
from prefect_iterable.api.archive.store import ArchiveTarget
from prefect_iterable.api.archive.windows import Window

__all__ = ["MANIFEST_VERSION", "Manifest", "unit_key"]

MANIFEST_VERSION = 1


def unit_key(data_type: str, output_format: str, window: Window) -> str:
    """The manifest's key of one data type's window in one format."""
    return f"{data_type}|{output_format}|{window.start.isoformat()}|{window.end.isoformat()}"


class Manifest:
    """``manifest.json`` of one run folder: units (windows per data type) and files.

    Safe to share between threads: every change is made under ``lock``. While files arrive the
    document is written at most every ``write_every`` seconds (a crash loses at most that much,
    and the files it lost are downloaded again); a unit's change is always written at once.
    """

    def __init__(
        self,
        store: ArchiveTarget,
        name: str,
        root: Window,
        output_format: str,
        *,
        write_every: float = 2.0,
    ) -> None:
        self.store = store
        self.name = name
        self.lock = threading.RLock()
        previous = store.read_json(name) or {}
        if previous and previous.get("version") != MANIFEST_VERSION:
            raise ExportArchiveError(
                f"{store.path(name)} has manifest version {previous.get('version')!r}, this "
                f"library writes version {MANIFEST_VERSION}: move it away or use another prefix"
            )
        self.units: dict[str, dict[str, Any]] = dict(previous.get("units") or {})
        self.files: dict[str, dict[str, Any]] = {f["file"]: f for f in previous.get("files") or []}
        self.orphans: list[dict[str, Any]] = list(previous.get("orphan_jobs") or [])
        self.verified: bool | None = None
        self.window = {"start": root.start.isoformat(), "end": root.end.isoformat()}
        self.output_format = output_format
        self.write_every = write_every
        self._written = 0.0

    def unit(self, key: str) -> dict[str, Any] | None:
        with self.lock:
            unit = self.units.get(key)
            return dict(unit) if unit else None

    def file(self, name: str) -> dict[str, Any] | None:
        with self.lock:
            entry = self.files.get(name)
            return dict(entry) if entry else None

    def add_file(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.files[entry["file"]] = entry
            if time.monotonic() - self._written >= self.write_every:
                self.write()

    def mark_file(self, name: str, **values: Any) -> None:
        """Set fields of a file's entry (if the manifest still holds it); written later."""
        with self.lock:
            if name in self.files:
                self.files[name].update(values)

    def drop_files(self, names: list[str]) -> None:
        with self.lock:
            for name in names:
                self.files.pop(name, None)
            self.write()

    def add_orphan(self, orphan: dict[str, Any]) -> None:
        """An export job that may be ours but is not used: its window could not be proven."""
        with self.lock:
            self.orphans.append(orphan)
            self.write()

    def set_complete(self, data_type: str, window: Window, files: list[dict[str, Any]]) -> None:
        """Record a window as archived whole, with its files."""
        self._set_unit(
            data_type,
            window,
            status="complete",
            files=[f["file"] for f in files],
            job_ids=sorted({f["job_id"] for f in files if f["job_id"]}),
        )

    def set_split(self, data_type: str, window: Window, halves: tuple[Window, Window]) -> None:
        """Record a window as exported in two halves (its own export was truncated)."""
        self._set_unit(
            data_type,
            window,
            status="split",
            halves=[[h.start.isoformat(), h.end.isoformat()] for h in halves],
        )

    def _set_unit(self, data_type: str, window: Window, **values: Any) -> None:
        unit = {
            "data_type": data_type,
            "start": window.start.isoformat(),
            "end": window.end.isoformat(),
            **values,
        }
        with self.lock:
            self.units[unit_key(data_type, self.output_format, window)] = unit
            self.write()

    def write(self) -> None:
        with self.lock:
            document = {
                "version": MANIFEST_VERSION,
                "window": self.window,
                "output_format": self.output_format,
                "updated_at": datetime.now(timezone.utc).isoformat(),
                "units": self.units,
                "files": sorted(self.files.values(), key=lambda f: f["file"]),
                "orphan_jobs": self.orphans,
                # True only once every file was read back and its records lie in its window.
                "verified": self.verified,
            }
            self.store.write_json(self.name, document)
            self._written = time.monotonic()
