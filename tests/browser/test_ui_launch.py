"""The UI path in a real browser: custom run of campaign-launch, then Approve or reject on Resume.

Chromium comes from Debian (``apt-get install chromium``; ``.ci/run`` installs it when missing)
and Playwright from PyPI, launched on that binary: no browser download. A real ``prefect server
start`` (with its UI) and a process worker run the deployment against the sandbox
(``tests/_prefect_server.py``). A failing test leaves a screenshot in ``tests-output/browser/``.

Every step waits for the state it needs (a field's description, the switch's ``aria-checked``),
never for a time: what the browser sent is then checked where it lands, in Prefect (the run's
parameters and its input) and in the sandbox (the campaign's state).
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from prefect_iterable.sandbox.data import User, UserList, campaigns, lists, templates
from tests._prefect_server import LocalPrefect, deployed_prefect  # noqa: F401 - a fixture

ROOT = Path(__file__).parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = ROOT / "tests-output" / "browser"
#: Playwright's wait for one element or state; the machine may be loaded, nothing here is slow.
STEP_MS = 60_000

pytestmark = [
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)"
    ),
    # A hang guard, not a speed check: the first test also starts the server and deploys.
    pytest.mark.timeout(900),
]


@pytest.fixture
def audience(
    deployed_prefect: LocalPrefect,  # noqa: F811
    sandbox,
    sandbox_server,
) -> tuple[object, int, int]:
    """A sandbox project with a template and a list, and the block "iterable" pointing at it."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from prefect_iterable.blocks import IterableCredentials

    key = "itbl-test-" + uuid.uuid4().hex
    project = sandbox.add_project(key)
    templates(project)[801] = {
        "templateId": 801,
        "name": "UI",
        "messageMedium": "Email",
        "templateType": "Base",
        "subject": "Hello",
    }
    members = UserList(id=802, name="UI audience")
    members.members["reader@example.com"] = User(email="reader@example.com", user_id=None)
    lists(project)[802] = members
    with temporary_settings(updates={PREFECT_API_URL: deployed_prefect.api}):
        IterableCredentials(
            api_key=key, base_url=sandbox_server.url, permissions=["read", "write", "send"]
        ).save("iterable", overwrite=True)
    return project, 801, 802


@pytest.fixture
def page(request) -> Iterator[object]:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=STEP_MS)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        tab = browser.new_page(viewport={"width": 1400, "height": 1800})
        tab.set_default_timeout(STEP_MS)
        failed_before = request.session.testsfailed
        try:
            yield tab
        finally:
            # The test's report is counted before its fixtures are torn down.
            if request.session.testsfailed > failed_before:
                SHOTS.mkdir(parents=True, exist_ok=True)
                tab.screenshot(path=str(SHOTS / f"{request.node.name}.png"), full_page=True)
            browser.close()


def _fill_custom_run(page, local: LocalPrefect, name: str, ids: tuple[int, int], send_at) -> None:
    """The deployment's custom-run form: each input found under its field's description."""
    from playwright.sync_api import expect

    list_id, template_id = ids
    deployment = local.deployment("campaign-launch")
    page.goto(f"{local.ui}/deployments/deployment/{deployment['id']}/run")
    # The form is built from the deployment's schema: each field shows its description.
    expect(
        page.get_by_text("The campaign's name; a re-run finds the campaign by it.")
    ).to_be_visible()
    page.locator("textarea").first.fill(name)
    page.get_by_role("button", name="Add item").click()
    # The item's input is drawn a moment after the click. Only a number input between the lists'
    # description and the next field's will do: the first one below the description was once
    # approval_timeout_seconds, filled before the item existed.
    template_text = "An existing email template to create the campaign from."
    list_input = page.get_by_text("The lists to send to.").locator(
        "xpath=following::input[@type='number']"
        f"[following::*[contains(text(), '{template_text}')]][1]"
    )
    list_input.fill(str(list_id))
    template_field = page.get_by_text(template_text)
    template_field.locator("xpath=following::button[normalize-space()='int'][1]").click()
    template_field.locator("xpath=following::input[1]").fill(str(template_id))
    # send_at: switch the field from None to date-time, then the picker's date and time (UTC).
    send_field = page.get_by_text("When to send (at most 7 days ahead")
    send_field.locator("xpath=following::button[normalize-space()='date-time'][1]").click()
    page.get_by_text("Select date and time").click()
    picker = page.locator(".p-date-picker")
    picker.locator("input[type=date]").fill(send_at.strftime("%Y-%m-%d"))
    picker.locator("input[type=time]").fill(send_at.strftime("%H:%M"))
    picker.get_by_role("button", name="Apply").click()
    expect(page.get_by_text(send_at.strftime("%Y-%m-%dT%H:%M:00Z"))).to_be_visible()
    expect(list_input).to_have_value(str(list_id))
    page.get_by_role("button", name="Submit").click()


def _answer_in_resume_dialog(page, local: LocalPrefect, run_id: str, approve: bool) -> None:
    from playwright.sync_api import expect

    page.goto(f"{local.ui}/runs/flow-run/{run_id}")
    page.get_by_role("button", name="Resume").click()
    dialog = page.get_by_role("dialog")
    # The dialog's form comes from the run's input schema: wait for both fields to be drawn.
    expect(dialog.get_by_text("Tick to schedule or send the campaign.")).to_be_visible()
    expect(dialog.get_by_text("Why; recorded in the run's result and events.")).to_be_visible()
    # The toggle is a label with role "switch" over a hidden checkbox; its aria-checked is the
    # form's value. Click until it says what we want: a click before the form has settled can be
    # lost to a re-render, which is what left it off before.
    switch = dialog.get_by_role("switch")
    expect(switch).to_have_count(1)
    wanted = "true" if approve else "false"
    for _ in range(3):
        if switch.get_attribute("aria-checked") == wanted:
            break
        switch.click()
        try:
            expect(switch).to_have_attribute("aria-checked", wanted, timeout=5_000)
        except AssertionError:
            continue
    expect(switch).to_have_attribute("aria-checked", wanted)
    dialog.locator("textarea").fill("from the browser test")
    expect(switch).to_have_attribute("aria-checked", wanted)
    refused: list[str] = []
    page.on(
        "response",
        lambda r: (
            refused.append(f"{r.request.method} {r.url} -> {r.status}")
            if "/resume" in r.url and r.status >= 300
            else None
        ),
    )
    for _ in range(3):
        dialog.get_by_role("button", name="Submit").click()
        try:
            expect(dialog).to_be_hidden(timeout=30_000)
            return
        except AssertionError:
            # The server refused the resume (the UI shows "Something went wrong" and keeps the
            # dialog): a person submits again. The answer that counts is checked in Prefect.
            if _answer_of(local, run_id) is not None:
                return
            expect(switch).to_have_attribute("aria-checked", wanted)
    raise AssertionError(f"the Resume dialog stayed open after 3 submits: {refused}")


def _answer_of(local: LocalPrefect, run_id: str) -> dict | None:
    """The run input the Resume form sent, as Prefect stored it."""
    inputs = httpx.post(
        f"{local.api}/flow_runs/{run_id}/input/filter",
        json={"prefix": "paused-approve-campaign-", "limit": 10},
        timeout=30,
    ).json()
    answers = [json.loads(i["value"]) for i in inputs if i["key"].endswith("-response")]
    return answers[0] if answers else None


def _launch_and_answer(page, local: LocalPrefect, ids: tuple[int, int], approve: bool) -> dict:
    name = f"UI launch {uuid.uuid4().hex[:8]}"
    send_at = (datetime.now(timezone.utc) + timedelta(days=2)).replace(second=0, microsecond=0)
    _fill_custom_run(page, local, name, ids, send_at)

    deployment_id = local.deployment("campaign-launch")["id"]

    def of_this(run: dict) -> bool:
        return run["parameters"].get("campaign_name") == name

    run = local.wait_for_run(deployment_id, of_this, {"Paused"})
    # The form's values reached Prefect as typed parameters.
    assert run["parameters"]["list_ids"] == [ids[0]]
    assert run["parameters"]["template_id"] == ids[1]
    assert datetime.fromisoformat(run["parameters"]["send_at"].replace("Z", "+00:00")) == send_at

    _answer_in_resume_dialog(page, local, run["id"], approve)
    assert _answer_of(local, run["id"]) == {"approve": approve, "comment": "from the browser test"}

    run = local.wait_for_run(deployment_id, of_this, {"Completed"})
    return run


def test_approving_in_the_resume_dialog_schedules_the_campaign(
    deployed_prefect: LocalPrefect,  # noqa: F811
    audience,
    page,
):
    project, template_id, list_id = audience
    run = _launch_and_answer(page, deployed_prefect, (list_id, template_id), approve=True)
    [campaign] = [
        c for c in campaigns(project).values() if c["name"] == run["parameters"]["campaign_name"]
    ]
    # Approved with a send_at: scheduled for then, not sent.
    assert campaign["campaignState"] == "Scheduled"
    send_at = datetime.fromisoformat(run["parameters"]["send_at"].replace("Z", "+00:00"))
    assert abs(campaign["startAt"] - send_at.timestamp() * 1000) < 1000


def test_rejecting_in_the_resume_dialog_leaves_the_campaign_unscheduled(
    deployed_prefect: LocalPrefect,  # noqa: F811
    audience,
    page,
):
    project, template_id, list_id = audience
    run = _launch_and_answer(page, deployed_prefect, (list_id, template_id), approve=False)
    [campaign] = [
        c for c in campaigns(project).values() if c["name"] == run["parameters"]["campaign_name"]
    ]
    assert campaign["campaignState"] == "Ready"
    assert not campaign.get("startAt")
