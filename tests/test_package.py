"""Package-level checks: exports, the generated reference page, the task registry."""

from __future__ import annotations

import inspect

import pytest

from prefect_iterable import api as iterable_api
from prefect_iterable import tasks
from prefect_iterable.api.catalog import ACTIONS
from prefect_iterable.tasks.reference import OUTPUT, render


def test_iterable_api_exports_exactly_its_public_names():
    public = {n for n in dir(iterable_api) if not n.startswith("_")}
    modules = {n for n in public if inspect.ismodule(getattr(iterable_api, n))}
    assert set(iterable_api.__all__) == public - modules | {"errors"}
    assert iterable_api.__all__ == sorted(iterable_api.__all__)


def test_every_action_has_its_task():
    assert set(tasks.ACTIONS) == {a.id for a in ACTIONS}
    for action in ACTIONS:
        task = tasks.ACTIONS[action.id]
        assert task.name == action.name.replace("_", "-")
        assert getattr(tasks, action.name) is task
        assert task.fn.__doc__ and action.id in task.fn.__doc__


def test_every_task_takes_credentials_last_and_keyword_only():
    for task in tasks.ACTIONS.values():
        params = list(inspect.signature(task.fn).parameters.values())
        assert (
            params[-1].name == "credentials" and params[-1].kind is inspect.Parameter.KEYWORD_ONLY
        )


def test_docstring_args_name_every_parameter():
    for task in tasks.ACTIONS.values():
        doc = task.fn.__doc__
        for name in inspect.signature(task.fn).parameters:
            assert f"    {name}:" in doc or f"    {name} (" in doc, (
                f"{task.name}: {name} undocumented"
            )


def test_docs_actions_md_is_generated_from_the_catalog():
    assert OUTPUT.read_text() == render(), "run: python -m prefect_iterable.tasks.reference"


def test_a_stub_with_a_body_is_refused_at_import():
    from prefect_iterable.tasks._core import iterable_task

    before = dict(tasks.ACTIONS)
    with pytest.raises(TypeError, match="list_channels: an iterable_task stub has no body"):

        @iterable_task("ITERABLE_LIST_CHANNELS")
        def list_channels(*, credentials: object = None) -> dict:
            """List the channels."""
            channels = {"channels": []}
            return channels

    assert tasks.ACTIONS == before


# Tests see the sandbox as users do: ``prefect_iterable.sandbox`` (the server),
# ``prefect_iterable.sandbox.data`` (seeding and inspecting a project) and the ``/_sandbox/...``
# control endpoints. The modules behind them (handlers, state, limits) stay free to change.
_SANDBOX_PUBLIC = {"prefect_iterable.sandbox", "prefect_iterable.sandbox.data"}


def _sandbox_internals(path) -> list[str]:
    import ast
    import re

    text = path.read_text()
    found = [
        f"{path.name}:{n}: {line.strip()}"
        for n, line in enumerate(text.splitlines(), 1)
        if re.search(r"sandbox\._|prefect_iterable\.sandbox\.(?!data\b)[a-z]", line)
        and "import" not in line  # imports are judged below, by name
    ]
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "prefect_iterable.sandbox"
        ):
            names = [a.name for a in node.names]
            if node.module not in _SANDBOX_PUBLIC or any(n.startswith("_") for n in names):
                found.append(f"{path.name}:{node.lineno}: from {node.module} import {names}")
            elif node.module == "prefect_iterable.sandbox" and not set(names) <= {
                "DEMO_API_KEY",
                "Sandbox",
                "SandboxServer",
                "data",
            }:
                found.append(f"{path.name}:{node.lineno}: a sandbox module: {names}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("prefect_iterable.sandbox.") and (
                    alias.name not in _SANDBOX_PUBLIC
                ):
                    found.append(f"{path.name}:{node.lineno}: import {alias.name}")
    return found


def test_tests_reach_the_sandbox_only_through_its_public_api():
    from pathlib import Path

    root = Path(__file__).parent
    offences = {}
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        if path.resolve() == Path(__file__).resolve():
            continue  # this check names the internals it looks for
        found = _sandbox_internals(path)
        if found:
            offences[relative] = found
    assert offences == {}, (
        "use prefect_iterable.sandbox.data or the /_sandbox/ control endpoints instead"
    )
