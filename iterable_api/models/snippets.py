"""Response schemas for Iterable's snippet actions: reusable content blocks for templates."""

from __future__ import annotations

from pydantic import Field

from prefect_iterable.api.models._base import IterableModel

__all__ = ["Snippet", "SnippetIdResponse", "SnippetResponse", "SnippetsResponse"]


class Snippet(IterableModel):
    """A snippet: named content (HTML and Handlebars) that templates include by name."""

    id: int = Field(description="The snippet's numeric id.")
    name: str | None = None
    content: str = ""
    description: str | None = None
    variables: list[str] = Field(default_factory=list)
    project_id: int | None = None
    created_at: str | None = Field(None, description="ISO-8601.")
    updated_at: str | None = Field(None, description="ISO-8601.")
    created_by: str | None = None
    updated_by: str | None = None


class SnippetResponse(IterableModel):
    """``GET /api/snippets/{identifier}``: the snippet, wrapped."""

    snippet: Snippet


class SnippetsResponse(IterableModel):
    snippets: list[Snippet] = Field(default_factory=list)


class SnippetIdResponse(IterableModel):
    """What create, update and delete answer: the id of the snippet written or removed."""

    snippet_id: int
