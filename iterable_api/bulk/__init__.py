"""Bulk import as a library: stream a CSV or NDJSON file into users/bulkUpdate or events/trackBulk.

No Prefect here: the ``bulk-import`` flow (``prefect_iterable.flows.bulk_import``) is an
orchestration of these parts, and users' own jobs can put them together differently::

    from prefect_iterable.api import Client
    from prefect_iterable.api.bulk import ImportState, Reader, Sender, prefix_hash, send_all
    from prefect_iterable.api.storage import Store, open_file

    handle, size, where = open_file("users.ndjson")
    reader = Reader(handle, "users", "ndjson", max_record_bytes=1_000_000)
    state = ImportState.open(
        Store.local_folder("~/.prefect-iterable/bulk-import-state"), where=where, kind="users",
        fmt="ndjson", prefix=prefix_hash(handle), size=size, start=(0, 0), resume=True,
    )
    with Client("API_KEY") as client:
        outcome = send_all(reader, Sender(client, "users"), state, batch_bytes=3_500_000)

* ``records``: reading records, field rules, encoding once (``Reader``, ``event_id``);
* ``batches``: packing records into bodies by bytes (``Batch``, ``batches``);
* ``sending``: one batch to Iterable, split on a 400, refusals matched (``Sender``);
* ``state``: the checkpoint and the dead-letter file in a ``Store`` (``ImportState``);
* ``pipeline``: the loop, a few batches in flight, committed in file order (``send_all``).
"""

from prefect_iterable.api.bulk.batches import BODY_OVERHEAD, MAX_BODY_BYTES, Batch, batches
from prefect_iterable.api.bulk.pipeline import ImportOutcome, count_records, send_all
from prefect_iterable.api.bulk.records import Kind, Reader, Record, detect_format, event_id
from prefect_iterable.api.bulk.sending import ACTIONS, Sender, Sent, match_refusals
from prefect_iterable.api.bulk.state import (
    CHECKPOINT_VERSION,
    Checkpoint,
    ImportState,
    prefix_hash,
    state_names,
)

__all__ = [
    "ACTIONS",
    "BODY_OVERHEAD",
    "CHECKPOINT_VERSION",
    "MAX_BODY_BYTES",
    "Batch",
    "Checkpoint",
    "ImportOutcome",
    "ImportState",
    "Kind",
    "Reader",
    "Record",
    "Sender",
    "Sent",
    "batches",
    "count_records",
    "detect_format",
    "event_id",
    "match_refusals",
    "prefix_hash",
    "send_all",
    "state_names",
]
