"""Typed request and response schemas, named after Iterable's Swagger definitions."""

from prefect_iterable.api.models import (
    campaigns,
    catalogs,
    channels,
    commerce,
    embedded,
    events,
    exports,
    journeys,
    lists,
    messaging,
    metadata,
    sms,
    snippets,
    subscriptions,
    templates,
    users,
    webhooks,
)
from prefect_iterable.api.models._base import (
    ApiResponse,
    IterableModel,
    RequestModel,
    read_result,
    response_twin,
)
from prefect_iterable.api.models._bulk import (
    BulkResult,
    FailedUpdates,
    IdentifiedRecord,
    Rejection,
)
from prefect_iterable.api.models.campaigns import *  # noqa: F403
from prefect_iterable.api.models.catalogs import *  # noqa: F403
from prefect_iterable.api.models.channels import *  # noqa: F403
from prefect_iterable.api.models.commerce import *  # noqa: F403
from prefect_iterable.api.models.embedded import *  # noqa: F403
from prefect_iterable.api.models.events import *  # noqa: F403
from prefect_iterable.api.models.exports import *  # noqa: F403
from prefect_iterable.api.models.journeys import *  # noqa: F403
from prefect_iterable.api.models.lists import *  # noqa: F403
from prefect_iterable.api.models.messaging import *  # noqa: F403
from prefect_iterable.api.models.metadata import *  # noqa: F403
from prefect_iterable.api.models.sms import *  # noqa: F403
from prefect_iterable.api.models.snippets import *  # noqa: F403
from prefect_iterable.api.models.subscriptions import *  # noqa: F403
from prefect_iterable.api.models.templates import *  # noqa: F403
from prefect_iterable.api.models.users import *  # noqa: F403
from prefect_iterable.api.models.webhooks import *  # noqa: F403

__all__ = [
    "ApiResponse",
    "BulkResult",
    "FailedUpdates",
    "IdentifiedRecord",
    "IterableModel",
    "Rejection",
    "RequestModel",
    "read_result",
    "response_twin",
]
__all__ += campaigns.__all__
__all__ += journeys.__all__
__all__ += channels.__all__
__all__ += templates.__all__
__all__ += snippets.__all__
__all__ += messaging.__all__
__all__ += embedded.__all__
__all__ += users.__all__
__all__ += subscriptions.__all__
__all__ += sms.__all__
__all__ += lists.__all__
__all__ += events.__all__
__all__ += commerce.__all__
__all__ += metadata.__all__
__all__ += webhooks.__all__
__all__ += catalogs.__all__
__all__ += exports.__all__
