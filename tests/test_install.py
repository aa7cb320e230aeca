"""The project installed as a user installs it, next to a Prefect project of their own.

A wheel is built from this checkout and installed (``--no-deps``: the dependencies are this
environment's) into a directory of its own; a user's project with its own ``flows/`` and
``tasks/`` packages then imports both its modules and ours, neither shadowing the other.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_NOT_SHIPPED = (".git", ".venv", "build", "*.egg-info", "__pycache__", "tests", "bench", ".ci")

USER_CHECK = """
import flows.nightly, tasks.cleanup
import prefect_iterable.flows.bulk_import, prefect_iterable.tasks
from prefect_iterable.blocks import IterableCredentials

assert flows.nightly.MINE and tasks.cleanup.MINE
assert prefect_iterable.tasks.get_campaign.name == "get-campaign"
assert "{site}" in prefect_iterable.__file__, prefect_iterable.__file__
assert "{site}" in prefect_iterable.tasks.__file__, prefect_iterable.tasks.__file__
print("ok", IterableCredentials.get_block_type_slug())
"""


def test_installs_beside_a_project_with_its_own_flows_and_tasks(tmp_path: Path) -> None:
    # A copy, so the build leaves nothing behind in the checkout (setuptools builds in place).
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*_NOT_SHIPPED))
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
        + ["--no-index", "--target", str(site), str(source)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    installed = {p.name for p in site.iterdir()}
    assert "prefect_iterable" in installed
    # Nothing of ours lands at the top level under a generic name.
    assert not installed & {"flows", "tasks", "blocks", "sandbox", "iterable_api"}, installed

    user = tmp_path / "my_prefect_project"
    for package, module in (("flows", "nightly"), ("tasks", "cleanup")):
        (user / package).mkdir(parents=True)
        (user / package / "__init__.py").write_text("")
        (user / package / f"{module}.py").write_text("MINE = True\n")
    (user / "check.py").write_text(textwrap.dedent(USER_CHECK.format(site=site)))

    # The user's project first on the path, as when they run their own code from its folder;
    # the checkout is not on the path (no editable finder: the site directory comes first).
    result = subprocess.run(
        [sys.executable, "-S", "check.py"],
        capture_output=True,
        text=True,
        cwd=user,
        env={"PYTHONPATH": f"{user}:{site}:{_site_packages()}", "DO_NOT_TRACK": "1"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["ok", "iterable-credentials"]


def _site_packages() -> str:
    """This environment's installed dependencies, without the editable install's path hook."""
    import sysconfig

    return sysconfig.get_paths()["purelib"]
