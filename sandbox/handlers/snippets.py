"""Snippets: named content blocks, addressed by numeric id or by name.

State: ``project.area("snippets", dict)`` = {snippetId: snippet wire JSON}. Names are unique and
immutable; content must be valid Handlebars and free of the script forms Iterable refuses.
Timestamps are ISO-8601, as Iterable's snippet API gives them.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any

from prefect_iterable.sandbox.handlers._base import Call, Reply, bad_params, handles, not_found
from prefect_iterable.sandbox.state import Project

PROJECT_CREATOR = "owner@sandbox.example"

_NAME = re.compile(r"^[A-Za-z0-9 _-]{1,100}$")
_VARIABLE = re.compile(r"^[A-Za-z0-9_]+$")
_SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.IGNORECASE | re.DOTALL)
_SCRIPT_OPEN = re.compile(r"<script\b", re.IGNORECASE)
_EVENT_HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE)
_JS_URL = re.compile(r"""\b(?:href|src)\s*=\s*["']?\s*javascript:""", re.IGNORECASE)
_MUSTACHE = re.compile(r"\{\{\{?~?\s*([#/^]?)\s*([^\s}~]*)[^{}]*?~?\}?\}\}")


def snippets(project: Project) -> dict[int, dict[str, Any]]:
    return project.area("snippets", dict)


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _check_handlebars(content: str) -> None:
    """Every ``{{`` closed, every ``{{#block}}`` closed by its ``{{/block}}``, in order."""
    blocks: list[str] = []
    for match in _MUSTACHE.finditer(content):
        kind, name = match.groups()
        if kind in ("#", "^") and name:  # a bare {{^}} is an else, not a block
            blocks.append(name)
        elif kind == "/":
            if not blocks or blocks[-1] != name:
                raise bad_params(f"Invalid Handlebars: unexpected {{{{/{name}}}}}")
            blocks.pop()
    if "{{" in _MUSTACHE.sub("", content):
        raise bad_params("Invalid Handlebars: an expression is not closed with }}")
    if blocks:
        raise bad_params(f"Invalid Handlebars: {{{{#{blocks[-1]}}}}} is not closed")


def _check_content(content: Any) -> str:
    if not isinstance(content, str) or not content.strip():
        raise bad_params("content is required")
    scripts = list(_SCRIPT.finditer(content))
    if len(scripts) != len(_SCRIPT_OPEN.findall(content)):
        raise bad_params("Disallowed content: unclosed <script> tag")
    for script in scripts:
        attributes, body = script.groups()
        if re.search(r"\bsrc\s*=", attributes, re.IGNORECASE):
            raise bad_params("Disallowed content: <script> tags may not load a src")
        if body.strip():
            try:
                json.loads(body)
            except ValueError:
                raise bad_params("Disallowed content: <script> tags may only hold JSON") from None
    if _EVENT_HANDLER.search(content):
        raise bad_params("Disallowed content: inline JavaScript event handlers")
    if _JS_URL.search(content):
        raise bad_params("Disallowed content: javascript: URLs in href or src")
    _check_handlebars(content)
    return content


def _check_variables(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(
        isinstance(v, str) and _VARIABLE.match(v) for v in value
    ):
        raise bad_params("variables must be names of letters, digits and underscores")
    return list(value)


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise bad_params("Snippet names are 1-100 characters: letters, digits, spaces, '-' and '_'")
    return name


def _by_name(project: Project, name: str) -> dict[str, Any] | None:
    return next((s for s in snippets(project).values() if s["name"] == name), None)


def _resolve(call: Call) -> dict[str, Any] | None:
    """The snippet ``{identifier}`` names: digits are an id, anything else a name."""
    identifier = call.path_params["identifier"]
    if identifier.isdigit():
        return snippets(call.project).get(int(identifier))
    return _by_name(call.project, _check_name(identifier))


def _body(call: Call) -> dict[str, Any]:
    if not isinstance(call.body, dict):
        raise bad_params("The request body must be a JSON object")
    return call.body


def _create(project: Project, name: str, body: dict[str, Any]) -> dict[str, Any]:
    if _by_name(project, name) is not None:
        raise bad_params(f"A snippet named {name!r} already exists")
    now = _now_iso()
    author = body.get("createdByUserId") or PROJECT_CREATOR
    snippet: dict[str, Any] = {
        "id": project.next_id(),
        "projectId": project.id,
        "name": name,
        "content": _check_content(body.get("content")),
        "variables": _check_variables(body.get("variables")),
        "createdAt": now,
        "updatedAt": now,
        "createdBy": author,
        "updatedBy": author,
    }
    if body.get("description") is not None:
        snippet["description"] = body["description"]
    snippets(project)[snippet["id"]] = snippet
    return snippet


@handles("ITERABLE_CREATE_SNIPPET")
def create_snippet(call: Call) -> Reply:
    body = _body(call)
    snippet = _create(call.project, _check_name(body.get("name")), body)
    return Reply({"snippetId": snippet["id"]}, status=201)


@handles("ITERABLE_LIST_SNIPPETS")
def list_snippets(call: Call) -> dict[str, Any]:
    return {"snippets": [dict(s) for _, s in sorted(snippets(call.project).items())]}


@handles("ITERABLE_GET_SNIPPET")
def get_snippet(call: Call) -> dict[str, Any]:
    snippet = _resolve(call)
    if snippet is None:
        raise not_found(f"Snippet {call.path_params['identifier']} not found")
    return {"snippet": dict(snippet)}


@handles("ITERABLE_UPDATE_SNIPPET")
def update_snippet(call: Call) -> Reply:
    body = _body(call)
    identifier = call.path_params["identifier"]
    snippet = _resolve(call)
    if snippet is None:
        if identifier.isdigit():
            raise not_found(f"Snippet {identifier} not found")
        created = _create(call.project, identifier, body)
        return Reply({"snippetId": created["id"]}, status=201)
    if "name" in body and body["name"] != snippet["name"]:
        raise bad_params("A snippet's name cannot be changed")
    content = _check_content(body.get("content"))
    variables = _check_variables(body.get("variables")) if "variables" in body else None
    snippet["content"] = content
    if variables is not None:
        snippet["variables"] = variables
    if "description" in body:
        snippet["description"] = body["description"]
    snippet["updatedAt"] = _now_iso()
    snippet["updatedBy"] = body.get("createdByUserId") or PROJECT_CREATOR
    return Reply({"snippetId": snippet["id"]}, status=200)


@handles("ITERABLE_DELETE_SNIPPET")
def delete_snippet(call: Call) -> dict[str, Any]:
    snippet = _resolve(call)
    if snippet is None:
        raise not_found(f"Snippet {call.path_params['identifier']} not found")
    del snippets(call.project)[snippet["id"]]
    return {"snippetId": snippet["id"]}
