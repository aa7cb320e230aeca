"""``suppress_user``: a hard bounce or a complaint puts the user on a suppression list, with an audit.

Run by the ``suppress-user`` deployment on each ``iterable.email.bounce`` or
``iterable.email.complaint`` event from the webhook receiver. The event names the user only by
hash; the receiver seals the identifiers with a Fernet key held in a Prefect Secret block
(``--seal-key-block``), and this flow opens them with the same key, so Prefect's database only ever
holds the ciphertext. The suppression list (a list campaigns pass as ``suppressionListIds``) is
found by name and created once. The audit log, like the GDPR one, holds hashes only.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from pydantic import BaseModel, Field

from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.flows._audit import append_lines, audit_line, current_flow_run_id, read_lines
from prefect_iterable.flows._storage import Storage
from prefect_iterable.flows.gdpr import Identifier
from prefect_iterable.tasks.lists import create_list, list_lists, subscribe_to_list
from prefect_iterable.webhooks.events import open_identity

__all__ = ["DEFAULT_SUPPRESSION_LIST", "SuppressResult", "suppress_user"]

DEFAULT_SUPPRESSION_LIST = "Suppressed: hard bounces and complaints"
AUDIT_FILE = "suppressions.jsonl"

Outcome = Literal["suppressed", "already suppressed", "skipped (soft bounce)"]


class SuppressResult(BaseModel):
    """What one suppression run did (no identifier: the user's hash only)."""

    user_sha256: str
    outcome: Outcome
    list_id: int | None = None
    reason: str
    audit_file: str


@flow(name="suppress-user", log_prints=False, persist_result=False)
def suppress_user(
    sealed_identity: Annotated[
        str,
        Field(description="The event's sealed_identity: the user's identifiers, encrypted."),
    ],
    user_sha256: Annotated[str, Field(description="The event's user_sha256 (audit key).")],
    reason: Annotated[
        str, Field(description="Why: the event name, e.g. iterable.email.bounce.")
    ] = "iterable.email.bounce",
    recipient_state: Annotated[
        str | None,
        Field(description="The bounce's recipientState; soft bounces are not suppressed."),
    ] = None,
    suppression_list: Annotated[
        str, Field(description="The name of the suppression list (created if missing).")
    ] = DEFAULT_SUPPRESSION_LIST,
    seal_key_block: Annotated[
        str, Field(description="The Prefect Secret block holding the receiver's Fernet key.")
    ] = "iterable-webhook-seal-key",
    audit_storage: Annotated[
        str,
        Field(description="Where the suppression audit log lives: a directory or a block."),
    ] = "~/.prefect-iterable/suppression-audit",
    credentials_block: Annotated[
        str | None,
        Field(description="Name of a saved IterableCredentials block (read and write)."),
    ] = None,
) -> SuppressResult:
    """Put a hard-bounced or complaining user on the project's suppression list, once, audited.

    Steps:
        1. Open the sealed identity with the key in ``seal_key_block``; it must hash to
           ``user_sha256`` (else the event was tampered with, and the run fails).
        2. A soft bounce (``recipient_state`` other than HardBounce) is only audited.
        3. A user the audit log already records as suppressed is skipped.
        4. Find the suppression list by name (``ITERABLE_LIST_LISTS``), creating it once, and
           subscribe the user to it (``ITERABLE_SUBSCRIBE_TO_LIST``; a repeat is harmless).
        5. Append a line (hash, reason, list id, flow run id) to the audit log and publish a
           table artifact ``suppress-user``.

    Args:
        sealed_identity: the ``sealed_identity`` of the webhook event's payload.
        user_sha256: the ``user_sha256`` of the payload.
        reason: the event name.
        recipient_state: a bounce's ``recipientState`` (HardBounce, SoftBounce…).
        suppression_list: the list's name.
        seal_key_block: the Secret block with the receiver's Fernet key.
        audit_storage: a directory or ``local-file-system/NAME`` / ``remote-file-system/NAME``.
        credentials_block: the saved ``IterableCredentials`` block's name.

    Returns:
        A SuppressResult: the outcome and the list's id.
    """
    from prefect.blocks.system import Secret

    logger = get_run_logger()
    seal_key: Any = Secret.load(seal_key_block)  # sync context: a block, not a coroutine
    identity = open_identity(sealed_identity, str(seal_key.get()))
    email, user_id = identity.get("email"), identity.get("userId")
    who = (
        Identifier(str(email).strip().lower(), "email")
        if email
        else Identifier(str(user_id).strip(), "userId")
    )
    if who.sha256 != user_sha256:
        raise ValueError("the sealed identity does not match user_sha256")
    storage = Storage(audit_storage)
    audit = storage.where(AUDIT_FILE)

    def record(outcome: Outcome, list_id: int | None) -> SuppressResult:
        line = audit_line(
            who.sha256, outcome, current_flow_run_id(), reason=reason, list_id=list_id
        )
        append_lines(storage, AUDIT_FILE, [line])
        create_table_artifact(
            table=[{k: v for k, v in line.items() if k != "at"}],
            key="suppress-user",
            description=f"Suppression: {outcome} ({reason})",
        )
        logger.info("user %s…: %s (%s)", who.sha256[:12], outcome, reason)
        return SuppressResult(
            user_sha256=who.sha256,
            outcome=outcome,
            list_id=list_id,
            reason=reason,
            audit_file=audit,
        )

    if reason.endswith(".bounce") and recipient_state and recipient_state != "HardBounce":
        return record("skipped (soft bounce)", None)
    if AUDIT_FILE in storage.list(AUDIT_FILE):
        for line in read_lines(storage, AUDIT_FILE):
            if line.get("sha256") == who.sha256 and line.get("outcome") == "suppressed":
                return record("already suppressed", line.get("list_id"))

    credentials = IterableCredentials.load_or_env(credentials_block)
    found = [x for x in list_lists(credentials=credentials).lists if x.name == suppression_list]
    list_id = (
        found[0].id
        if found
        else create_list(name=suppression_list, credentials=credentials).list_id
    )
    subscriber = {"email": who.value} if who.kind == "email" else {"userId": who.value}
    subscribe_to_list(list_id=list_id, subscribers=[subscriber], credentials=credentials)
    return record("suppressed", list_id)
