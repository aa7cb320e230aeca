"""Every Iterable action as a Prefect task, one module per API area.

``ACTIONS`` maps each ``ITERABLE_…`` id to its task.
"""

from prefect_iterable.tasks import (
    campaigns,
    catalogs,
    channels,
    commerce,
    embedded,
    events,
    exports,
    journeys,
    lists,
    many,
    messaging,
    metadata,
    sms,
    snippets,
    subscriptions,
    templates,
    users,
    webhooks,
)
from prefect_iterable.tasks._core import ACTIONS, StreamSummary
from prefect_iterable.tasks.campaigns import *
from prefect_iterable.tasks.catalogs import *
from prefect_iterable.tasks.channels import *
from prefect_iterable.tasks.commerce import *
from prefect_iterable.tasks.embedded import *
from prefect_iterable.tasks.events import *
from prefect_iterable.tasks.exports import *
from prefect_iterable.tasks.journeys import *
from prefect_iterable.tasks.lists import *
from prefect_iterable.tasks.many import *
from prefect_iterable.tasks.messaging import *
from prefect_iterable.tasks.metadata import *
from prefect_iterable.tasks.sms import *
from prefect_iterable.tasks.snippets import *
from prefect_iterable.tasks.subscriptions import *
from prefect_iterable.tasks.templates import *
from prefect_iterable.tasks.users import *
from prefect_iterable.tasks.webhooks import *

__all__ = ["ACTIONS", "StreamSummary"]
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
__all__ += many.__all__
__all__ += commerce.__all__
__all__ += metadata.__all__
__all__ += webhooks.__all__
__all__ += catalogs.__all__
__all__ += exports.__all__
