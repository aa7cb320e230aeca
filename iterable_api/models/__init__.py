"""Typed request and response schemas, named after Iterable's Swagger definitions."""

from iterable_api.models import (
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
from iterable_api.models._base import ApiResponse, IterableModel, RequestModel
from iterable_api.models._bulk import BulkResult, Rejection
from iterable_api.models.campaigns import *  # noqa: F403
from iterable_api.models.catalogs import *  # noqa: F403
from iterable_api.models.channels import *  # noqa: F403
from iterable_api.models.commerce import *  # noqa: F403
from iterable_api.models.embedded import *  # noqa: F403
from iterable_api.models.events import *  # noqa: F403
from iterable_api.models.exports import *  # noqa: F403
from iterable_api.models.journeys import *  # noqa: F403
from iterable_api.models.lists import *  # noqa: F403
from iterable_api.models.messaging import *  # noqa: F403
from iterable_api.models.metadata import *  # noqa: F403
from iterable_api.models.sms import *  # noqa: F403
from iterable_api.models.snippets import *  # noqa: F403
from iterable_api.models.subscriptions import *  # noqa: F403
from iterable_api.models.templates import *  # noqa: F403
from iterable_api.models.users import *  # noqa: F403
from iterable_api.models.webhooks import *  # noqa: F403

__all__ = ["ApiResponse", "BulkResult", "IterableModel", "Rejection", "RequestModel"]
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
