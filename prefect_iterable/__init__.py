"""prefect-iterable: every Iterable action as a typed, retryable Prefect task.

Installed, the repository's top-level folders live under this one namespace, so that a user's own
``flows/`` and ``tasks/`` never collide with ours:

* ``prefect_iterable.api``: the HTTP client (``iterable_api/`` in the repository); no Prefect.
* ``prefect_iterable.blocks``: the ``IterableCredentials`` block.
* ``prefect_iterable.tasks``: one Prefect task per Iterable action.
* ``prefect_iterable.flows``: the jobs composed from the tasks.
* ``prefect_iterable.sandbox``: a local Iterable for demos and tests.
"""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("prefect-iterable")
except _metadata.PackageNotFoundError:  # a checkout that was never installed
    __version__ = "0.0.0"
