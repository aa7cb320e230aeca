"""Scenario 1's peer: the PyPI package ``iterable-api`` 0.3.0, run in bench/.peer-venv.

Used as its documentation shows: ``Iterable(api_key, base_uri=...)`` (its own constructor takes
the base URL, so nothing is monkeypatched) and ``iterable.helpers.bulk_update(client, users)``,
which sends users in chunks of 50 to ``/api/users/bulkUpdate``. It neither throttles nor retries:
a 429 comes back as a ``Response`` with ``status_code`` 429, and its 50 users are not imported.
Users are streamed from the NDJSON file (a generator), so memory stays bounded.

``bench/.peer-venv/bin/python bench/peer_bulk.py URL API_KEY FILE``; prints one JSON line.
Only the standard library and the package are imported: this runs outside our venv.
"""

import json
import resource
import sys
import time
from collections import Counter
from itertools import islice
from urllib.parse import urlparse

from iterable import Iterable
from iterable.helpers import bulk_update


def _peak_rss_mb() -> float:
    """Own peak RSS: VmHWM (ru_maxrss keeps the parent's RSS across execve on Linux)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    url, key, path = sys.argv[1:4]
    if urlparse(url).hostname not in ("127.0.0.1", "localhost"):
        raise SystemExit("refusing a non-loopback base URL")
    api = Iterable(key, base_uri=url)
    api._session.trust_env = False  # never through a proxy

    def users():
        with open(path, "rb") as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)

    started = time.perf_counter()
    statuses, failed, records, requests = Counter(), 0, 0, 0
    # bulk_update keeps every Response; walk it in slices of the file so the list stays small.
    source = users()
    while True:
        chunk = list(islice(source, 5000))
        if not chunk:
            break
        for res in bulk_update(api, chunk):
            requests += 1
            statuses[res.status_code] += 1
            size = 50
            if res.status_code == 200 and isinstance(res.data, dict):
                failed += int(res.data.get("failCount", 0))
            else:
                failed += size
        records += len(chunk)
    wall = time.perf_counter() - started
    # the last request of a chunk may hold fewer than 50 users: correct the failed count
    print(
        json.dumps(
            {
                "records": records,
                "requests": requests,
                "statuses": {str(k): v for k, v in statuses.items()},
                "failed_records_approx": min(failed, records),
                "wall_s": wall,
                "peak_rss_mb": _peak_rss_mb(),
            }
        )
    )


if __name__ == "__main__":
    main()
