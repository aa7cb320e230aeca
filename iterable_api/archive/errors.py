"""Why an archive could not be completed."""

from __future__ import annotations

__all__ = ["ExportArchiveError", "ExportJobFailed", "ExportTruncated", "Stopped"]


class ExportArchiveError(RuntimeError):
    """The archive could not be completed; the message says what and what to do."""


class ExportJobFailed(ExportArchiveError):
    """An export job kept failing (or was cancelled outside the archive)."""


class ExportTruncated(ExportArchiveError):
    """Iterable truncated an export and the window may not (or can no longer) be split."""


class Stopped(Exception):
    """The archive is stopping (another window failed, or the run was cancelled)."""
