"""prefect_iterable.api.launch: the Prefect-free parts of a campaign launch."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from prefect_iterable.api.launch import (
    check_send_at,
    mask_email,
    missing_recipients,
    preview_markdown,
    render_locally,
)
from prefect_iterable.sandbox.data import User, users


@pytest.mark.parametrize(
    ("email", "masked"),
    [
        ("jane.doe@example.com", "j***@example.com"),
        ("j@example.com", "j***@example.com"),
        ("not-an-address", "n***"),
    ],
)
def test_a_masked_address_keeps_the_first_letter_and_the_domain(email: str, masked: str) -> None:
    assert mask_email(email) == masked


def test_send_at_is_utc_in_the_future_and_at_most_7_days_ahead() -> None:
    soon = datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(days=1)
    assert check_send_at(soon) == soon.replace(tzinfo=timezone.utc)  # no zone means UTC
    assert check_send_at(None) is None
    with pytest.raises(ValueError, match="in the past"):
        check_send_at(datetime.now(timezone.utc) - timedelta(minutes=1))
    with pytest.raises(ValueError, match="more than 7 days ahead"):
        check_send_at(datetime.now(timezone.utc) + timedelta(days=8))


def test_merge_tags_are_filled_and_escaped_unknown_ones_kept() -> None:
    text = "Hi {{ firstName }}, {{ shop.name }} {{missing}}"
    assert render_locally(text, {"firstName": "<Ada>", "shop": {"name": "Acme"}}) == (
        "Hi &lt;Ada&gt;, Acme {{missing}}"
    )


def test_the_preview_escapes_table_cells_and_cuts_long_html() -> None:
    markdown = preview_markdown([("Subject", "a|b")], "<p>x</p>" * 5000, "by test", dry_run=True)
    assert "| Subject | a\\|b |" in markdown and "<!-- … cut -->" in markdown
    assert markdown.startswith("# Dry run: campaign preview")


def test_missing_recipients_are_the_ones_iterable_does_not_know(client, project) -> None:
    users(project).add(User(email="known@example.com", user_id=None))
    asked = ["known@example.com", "stranger@example.com"]
    assert missing_recipients(client, asked) == ["stranger@example.com"]
