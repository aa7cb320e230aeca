"""Every Iterable action as a Prefect task, one module per API area.

``ACTIONS`` maps each ``ITERABLE_…`` id to its task.
"""

from tasks import (
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
from tasks._core import ACTIONS, StreamSummary
from tasks.campaigns import *
from tasks.catalogs import *
from tasks.channels import *
from tasks.commerce import *
from tasks.embedded import *
from tasks.events import *
from tasks.exports import *
from tasks.journeys import *
from tasks.lists import *
from tasks.messaging import *
from tasks.metadata import *
from tasks.sms import *
from tasks.snippets import *
from tasks.subscriptions import *
from tasks.templates import *
from tasks.users import *
from tasks.webhooks import *

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
__all__ += commerce.__all__
__all__ += metadata.__all__
__all__ += webhooks.__all__
__all__ += catalogs.__all__
__all__ += exports.__all__
