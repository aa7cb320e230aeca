"""Tasks for Iterable's snippets: named, reusable content blocks that templates include.

A snippet's name is unique in the project and can never change; get, update and delete take
either its numeric id or its name. Content must be valid Handlebars and free of scripts
(``<script>`` with code or a ``src``, inline ``on…=`` handlers, ``javascript:`` links).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, PlainSerializer, StringConstraints

from prefect_iterable.api.models.snippets import (
    SnippetIdResponse,
    SnippetResponse,
    SnippetsResponse,
)
from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.tasks._core import iterable_task
from prefect_iterable.tasks._types import Email, PositiveId, SnippetName

__all__ = [
    "create_snippet",
    "delete_snippet",
    "get_snippet",
    "list_snippets",
    "update_snippet",
]

#: A snippet's numeric id or its name; sent as a path segment, where digits mean an id.
SnippetIdentifier = Annotated[PositiveId | SnippetName, PlainSerializer(str, return_type=str)]
#: Variable names a snippet's Handlebars uses: simple identifiers, case-sensitive.
SnippetVariables = list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_]+$")]]
SnippetContent = Annotated[str, StringConstraints(min_length=1)]
SnippetDescription = Annotated[str, Field(max_length=1000)]


@iterable_task("ITERABLE_CREATE_SNIPPET")
def create_snippet(
    name: SnippetName,
    content: SnippetContent,
    *,
    variables: SnippetVariables | None = None,
    description: SnippetDescription | None = None,
    created_by_user_id: Email | None = None,
    credentials: IterableCredentials | None = None,
) -> SnippetIdResponse:
    """Create a snippet that templates can include by name.

    The name must be new in the project (a taken name is refused with ``BadParams``) and cannot
    be changed later. To create-or-update by name, use ``update_snippet`` with the name.

    ITERABLE_CREATE_SNIPPET: POST /api/snippets (no documented rate limit).

    Args:
        name: unique name: up to 100 letters, digits, spaces, ``_`` and ``-``.
        content: the HTML/Handlebars body; must be valid Handlebars without scripts, inline
            event handlers or ``javascript:`` links.
        variables: the variable names the content uses (``{{myField}}``): letters, digits and
            underscores, case-sensitive.
        description: what the snippet is for.
        created_by_user_id: email of the project member recorded as creator (default: the
            project's creator).
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        The new snippet's id.
    """


@iterable_task("ITERABLE_LIST_SNIPPETS")
def list_snippets(*, credentials: IterableCredentials | None = None) -> SnippetsResponse:
    """List every snippet in the project, with its content and variables.

    Iterable does not page this list.

    ITERABLE_LIST_SNIPPETS: GET /api/snippets (no documented rate limit).

    Args:
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        The snippets: id, name, content, description, variables and ISO-8601 timestamps.
    """


@iterable_task("ITERABLE_GET_SNIPPET", run_name="get-snippet-{identifier}")
def get_snippet(
    identifier: SnippetIdentifier, *, credentials: IterableCredentials | None = None
) -> SnippetResponse:
    """Read one snippet by its id or its name.

    An all-digit identifier is read as an id, anything else as a name; an unknown snippet
    fails with ``NotFound``.

    ITERABLE_GET_SNIPPET: GET /api/snippets/{identifier} (no documented rate limit).

    Args:
        identifier: the snippet's numeric id, or its name.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        The snippet, under ``snippet``.
    """


@iterable_task("ITERABLE_UPDATE_SNIPPET", run_name="update-snippet-{identifier}")
def update_snippet(
    identifier: SnippetIdentifier,
    content: SnippetContent,
    *,
    variables: SnippetVariables | None = None,
    description: SnippetDescription | None = None,
    created_by_user_id: Email | None = None,
    credentials: IterableCredentials | None = None,
) -> SnippetIdResponse:
    """Replace a snippet's content, or create the snippet when addressed by a new name.

    By id, the snippet must exist (``NotFound`` otherwise). By name, a missing snippet is
    created with that name, so the call is a safe, repeatable upsert. The name never changes.

    ITERABLE_UPDATE_SNIPPET: PUT /api/snippets/{identifier} (no documented rate limit).

    Args:
        identifier: the snippet's numeric id, or its name.
        content: the new HTML/Handlebars body; same rules as at creation.
        variables: the variable names the content uses: letters, digits and underscores.
        description: what the snippet is for.
        created_by_user_id: email of the project member recorded as the updater.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        The id of the snippet written.
    """


@iterable_task("ITERABLE_DELETE_SNIPPET", run_name="delete-snippet-{identifier}")
def delete_snippet(
    identifier: SnippetIdentifier, *, credentials: IterableCredentials | None = None
) -> SnippetIdResponse:
    """Delete a snippet by its id or its name; this cannot be undone.

    Templates that include the snippet will no longer render it. An unknown snippet fails with
    ``NotFound``.

    ITERABLE_DELETE_SNIPPET: DELETE /api/snippets/{identifier} (no documented rate limit).

    Args:
        identifier: the snippet's numeric id, or its name.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        The id of the deleted snippet.
    """
