"""The annotated types task signatures use; they live with the client (``iterable_api.types``)."""

from iterable_api.types import *  # noqa: F403
from iterable_api.types import __all__  # noqa: F401
