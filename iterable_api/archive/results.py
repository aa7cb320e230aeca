"""What an archive run left, per data type, as results and as a table for people."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from prefect_iterable.api.archive.archiver import WindowOutcome

__all__ = ["DataTypeArchive", "manifest_table"]


class DataTypeArchive(BaseModel):
    """What one data type's export left in the archive."""

    data_type: str
    files: int = Field(description="Files of the window in the archive (downloaded + skipped).")
    bytes: int
    rows: int
    downloaded: int = Field(description="Files downloaded by this run.")
    skipped: int = Field(description="Files already archived with a matching checksum.")
    jobs_started: int = 0
    windows: int = Field(1, description="Windows exported (more than 1 after a split).")

    @classmethod
    def of(cls, data_type: str, outcomes: list[WindowOutcome]) -> DataTypeArchive:
        """The sum of a data type's windows (a split window counts through its halves)."""
        whole = [o for o in outcomes if not o.split]
        files = [f for o in whole for f in o.files]
        return cls(
            data_type=data_type,
            files=len(files),
            bytes=sum(f["bytes"] for f in files),
            rows=sum(f["rows"] for f in files),
            downloaded=sum(o.downloaded for o in whole),
            skipped=sum(o.skipped for o in whole),
            jobs_started=sum(o.jobs_started for o in outcomes),
            windows=len(whole),
        )


def manifest_table(files: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per archived file: what a person checks in a report (hashes cut short)."""
    return [
        {
            "data type": f["data_type"],
            "file": f["file"],
            "bytes": f["bytes"],
            "rows": f["rows"],
            "sha256": f["sha256"][:16],
            "job": f["job_id"] or "sync",
            "window": f"{f['window_start']} .. {f['window_end']}",
        }
        for f in files
    ]
