"""Export files from their pre-signed URLs into the archive, hashed and counted on the way.

A pre-signed URL carries its own authorization: no API key is sent, and the client's rate limiter
does not apply (the files are not API calls). Retrying is the client's ``RetryPolicy``, with one
difference: the URL expires (30 minutes; 403), and a retried download may have outlived it, so
every attempt after the first asks for a fresh URL (``fresh_url``) before it downloads again.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from prefect_iterable.api.archive.errors import ExportArchiveError
from prefect_iterable.api.archive.store import ArchiveTarget, RecordKind
from prefect_iterable.api.errors import ApiError, TransportError, error_from_response
from prefect_iterable.api.files import FileSummary, copy_records
from prefect_iterable.api.retrying import RetryPolicy

__all__ = ["CHUNK_BYTES", "UrlExpired", "download", "download_with_retries", "presigned_client"]

#: Bytes read per chunk: large enough that per-chunk Python work is negligible, small enough to
#: keep a download's memory flat.
CHUNK_BYTES = 256 * 1024


class UrlExpired(TransportError):
    """A pre-signed URL answered 403: list the job's files again for a fresh one."""


def presigned_client(timeout: float = 120.0) -> httpx.Client:
    """An HTTP client for pre-signed URLs: no API key, no base URL, redirects followed."""
    return httpx.Client(timeout=httpx.Timeout(timeout, connect=15.0), follow_redirects=True)


def download(
    http: httpx.Client,
    url: str,
    store: ArchiveTarget,
    name: str,
    kind: RecordKind,
    *,
    check: Callable[[], None] | None = None,
) -> FileSummary:
    """Stream one pre-signed URL into ``name`` of ``store``: once, no retry.

    The file appears only whole (``store.writer``). Raises ``UrlExpired`` on a 403, the API error
    of any other failure status, and ``TransportError`` when the connection fails or is cut.
    """
    try:
        with http.stream("GET", url) as response:
            if response.status_code == 403:
                response.read()
                raise UrlExpired(f"the download URL of {name} has expired")
            if not response.is_success:
                text = response.read().decode(errors="replace")
                headers = {k.lower(): v for k, v in response.headers.items()}
                raise error_from_response(response.status_code, headers, text)
            with store.writer(name) as out:
                return copy_records(response.iter_bytes(CHUNK_BYTES), out, kind, check=check)
    except httpx.HTTPError as exc:
        raise TransportError(f"download of {name} failed: {type(exc).__name__}") from None


def download_with_retries(
    http: httpx.Client,
    url: str,
    fresh_url: Callable[[], str],
    store: ArchiveTarget,
    name: str,
    kind: RecordKind,
    *,
    policy: RetryPolicy,
    check: Callable[[], None] | None = None,
) -> FileSummary:
    """``download``, retried by ``policy``; each retry downloads from ``fresh_url()``.

    Downloading again is always safe: a file is only read, and written whole or not at all. When
    the policy gives up, raises ``ExportArchiveError`` naming the file and the attempts.
    """
    attempts = 0

    def attempt() -> FileSummary:
        nonlocal attempts
        attempts += 1
        source = url if attempts == 1 else fresh_url()
        return download(http, source, store, name, kind, check=check)

    try:
        return policy.run(attempt)
    except (TransportError, ApiError) as exc:
        raise ExportArchiveError(
            f"could not download {name} after {attempts} attempts: {exc}"
        ) from exc
