"""Response schemas for Iterable's export actions (the asynchronous job API)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from prefect_iterable.api.models._base import IterableModel

__all__ = [
    "ExportFile",
    "ExportJob",
    "ExportJobFiles",
    "ExportJobStarted",
    "ExportJobs",
    "FINAL_JOB_STATES",
]

#: Job states after which nothing changes any more.
FINAL_JOB_STATES = frozenset({"Completed", "Failed", "Cancelled"})


class ExportJobStarted(IterableModel):
    """The answer to ``start_export`` (``StartExportResponse``)."""

    job_id: int


class ExportFile(IterableModel):
    """One file of an export job and a download URL that expires after 30 minutes."""

    file: str = Field(description="The file's name; pass the last one as startAfter to page.")
    url: str


class ExportJobFiles(IterableModel):
    """A job's state and a page of its files (``ExportJobStatusAndFiles``)."""

    job_id: int
    job_state: Literal["Enqueued", "Running", "Completed", "Failed", "Cancelled"] | str | None = (
        None
    )
    export_truncated: bool = Field(
        False, description="The export hit Iterable's size cap and is incomplete."
    )
    files: list[ExportFile] = Field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.job_state in FINAL_JOB_STATES


class ExportJob(IterableModel):
    """One export job of the project (``JobModel``)."""

    id: int
    data_type_name: str | None = None
    job_state: str | None = None
    bytes_exported: int | None = None
    scheduled_start_time: datetime | None = Field(
        None, description="The earliest time the job can start."
    )
    end_time: datetime | None = Field(None, description="When the job completed or failed.")


class ExportJobs(IterableModel):
    """The project's recent export jobs (``JobsResponse``)."""

    jobs: list[ExportJob] = Field(default_factory=list)
