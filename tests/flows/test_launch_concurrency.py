"""Two launches of the same campaign at once (a double click, a retried automation): one
campaign, one proof per reviewer, one blast (issue #14 item 1).

Both are real flow runs on the Prefect test server, started together from two threads; the
sandbox answers their campaign lookups late (after processing them), which is when both used
to find no campaign and both create, proof and send one.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any

from prefect_iterable.flows.campaign_launch import campaign_launch
from tests.flows._matrix import processed
from tests.flows.test_fault_matrix import (  # noqa: F401 - fixtures
    CREATE,
    PROOF,
    REVIEWERS,
    SEND,
    Cell,
    _audience,
    _launch_checks,
    _template,
    cell,
    fast_client_retries,
)

LOOKUP = "ITERABLE_LIST_CAMPAIGNS"


def test_two_concurrent_launches_make_one_campaign_one_proof_each_one_blast(
    cell: Cell,  # noqa: F811
) -> None:
    name = "Launch double click"
    params: dict[str, Any] = dict(
        campaign_name=name,
        list_ids=[_audience(cell.project)],
        template=_template("double-click"),
        proof_recipients=REVIEWERS,
        preview_data={"firstName": "Ada"},
        auto_approve=True,
        credentials_block=cell.block,
    )
    # Widen the race: every lookup is processed at once and answered a second later.
    cell.sandbox.inject(LOOKUP, "delay", count=20, seconds=1.0)

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = [f.result() for f in [pool.submit(campaign_launch, **params) for _ in "ab"]]

    _launch_checks(cell, name, sent_now=True)  # one create, one proof per reviewer, one send
    assert sorted(r.created for r in results) == [False, True]
    (campaign_id,) = {r.campaign_id for r in results}
    adopter = next(r for r in results if not r.created)
    # The second run adopted the first run's campaign and did not proof or send it again: either
    # while it was still a draft (its proofs seen as already sent) or, when the first run had
    # already sent it by then, as a campaign past Draft that it leaves alone.
    assert adopter.proofs_sent == 0 and adopter.proofs_unknown == 0
    if adopter.proofs_skipped != len(REVIEWERS):
        assert adopter.proofs_skipped == 0, adopter
        assert f"campaign {campaign_id} is already " in adopter.message, adopter.message
        assert "nothing was changed, proofed, scheduled or sent" in adopter.message
    assert adopter.state in ("Running", "Finished")
    assert [len(processed(cell.sandbox, cell.project, a)) for a in (CREATE, PROOF, SEND)] == [
        1,
        len(REVIEWERS),
        1,
    ]
    assert campaign_id is not None
