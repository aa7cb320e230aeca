"""The annotated types task signatures use; they live with the client (``prefect_iterable.api.types``)."""

from prefect_iterable.api.types import *  # noqa: F403
from prefect_iterable.api.types import __all__  # noqa: F401
