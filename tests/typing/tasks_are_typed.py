"""Type-checked by mypy in .ci/typecheck, never run: tasks carry their stubs' signatures.

With ``warn_unused_ignores``, each ``type: ignore`` below must silence a real error: were tasks
``Task[..., Any]`` again, the misspelt keyword and the wrong type would pass and mypy would fail.
"""

from __future__ import annotations

from typing_extensions import assert_type

from prefect_iterable.api.models.campaigns import Campaign
from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.tasks import get_campaign


def a_flow_body(credentials: IterableCredentials) -> None:
    campaign = get_campaign(campaign_id=1, credentials=credentials)
    assert_type(campaign, Campaign)
    get_campaign(campaing_id=1, credentials=credentials)  # type: ignore[call-overload]
    get_campaign(campaign_id=1, credentials="my-block")  # type: ignore[call-overload]
    future = get_campaign.submit(campaign_id=1, credentials=credentials)
    assert_type(future.result(), Campaign)
