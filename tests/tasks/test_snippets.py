"""Snippet tasks, run in a real flow against the sandbox: names, content rules, id-or-name lookups."""

from __future__ import annotations

import pytest

from prefect_iterable.api.errors import BadParams, InputValidationError, NotFound
from prefect_iterable.api.models.snippets import (
    SnippetIdResponse,
    SnippetResponse,
    SnippetsResponse,
)
from prefect_iterable.sandbox.data import snippets
from prefect_iterable.tasks.snippets import (
    create_snippet,
    delete_snippet,
    get_snippet,
    list_snippets,
    update_snippet,
)

FOOTER = '<p>{{#if unsubscribeUrl}}<a href="{{unsubscribeUrl}}">Unsubscribe</a>{{/if}}</p>'


def seed(client, name: str = "Footer", content: str = FOOTER) -> int:
    return client.call("ITERABLE_CREATE_SNIPPET", name=name, content=content)["snippetId"]


def assert_nothing_sent(sandbox, project) -> None:
    assert sandbox.state.requests(project_id=project.id) == []


class TestCreateSnippet:
    def test_creates_a_snippet(self, run_in_flow, credentials, sandbox, project):
        result = run_in_flow(
            create_snippet,
            "Footer",
            FOOTER,
            variables=["unsubscribeUrl"],
            description="Legal footer",
            credentials=credentials,
        )
        assert isinstance(result, SnippetIdResponse)
        stored = snippets(project)[result.snippet_id]
        assert (stored["name"], stored["content"], stored["variables"]) == (
            "Footer",
            FOOTER,
            ["unsubscribeUrl"],
        )
        [entry] = sandbox.state.requests("ITERABLE_CREATE_SNIPPET", project_id=project.id)
        assert (entry.method, entry.path, entry.status) == ("POST", "/api/snippets", 201)
        assert entry.body == {
            "name": "Footer",
            "content": FOOTER,
            "variables": ["unsubscribeUrl"],
            "description": "Legal footer",
        }

    def test_a_taken_name_is_refused(self, client, run_in_flow, credentials, project):
        seed(client)
        with pytest.raises(BadParams, match="already exists"):
            run_in_flow(create_snippet, "Footer", "<p>other</p>", credentials=credentials)
        assert len(snippets(project)) == 1

    @pytest.mark.parametrize(
        "name", ["", "footer/legal", "x" * 101, "émoji"], ids=["empty", "slash", "long", "accent"]
    )
    def test_rejects_a_bad_name_before_sending(
        self, name, run_in_flow, credentials, sandbox, project
    ):
        with pytest.raises(InputValidationError, match="name"):
            create_snippet.fn(name, "<p>x</p>", credentials=credentials)
        assert_nothing_sent(sandbox, project)

    def test_rejects_a_bad_variable_name_before_sending(
        self, run_in_flow, credentials, sandbox, project
    ):
        with pytest.raises(InputValidationError, match="variables"):
            create_snippet.fn("Footer", FOOTER, variables=["first-name"], credentials=credentials)
        assert_nothing_sent(sandbox, project)

    @pytest.mark.parametrize(
        "content",
        [
            "<script>alert(1)</script>",
            '<script src="https://evil.example/x.js"></script>',
            '<img src="x.png" onerror="steal()">',
            '<a href="javascript:steal()">click</a>',
            "<p>{{#if vip}}VIP</p>",
            "<p>{{firstName</p>",
        ],
        ids=["script-code", "script-src", "event-handler", "js-url", "open-block", "open-tag"],
    )
    def test_refuses_scripts_and_broken_handlebars(
        self, content, run_in_flow, credentials, project
    ):
        with pytest.raises(BadParams):
            run_in_flow(create_snippet, "Risky", content, credentials=credentials)
        assert snippets(project) == {}

    def test_allows_a_json_script_block(self, run_in_flow, credentials, project):
        content = '<script type="application/ld+json">{"@type": "Offer"}</script>'
        result = run_in_flow(create_snippet, "Schema", content, credentials=credentials)
        assert snippets(project)[result.snippet_id]["content"] == content


class TestListSnippets:
    def test_lists_every_snippet(self, client, run_in_flow, credentials, sandbox, project):
        ids = [seed(client, "Header", "<h1>Hi</h1>"), seed(client)]
        result = run_in_flow(list_snippets, credentials=credentials)
        assert isinstance(result, SnippetsResponse)
        assert [(s.id, s.name) for s in result.snippets] == [(ids[0], "Header"), (ids[1], "Footer")]
        assert all(s.created_at.endswith("Z") for s in result.snippets)
        [entry] = sandbox.state.requests("ITERABLE_LIST_SNIPPETS", project_id=project.id)
        assert (entry.method, entry.path) == ("GET", "/api/snippets")

    def test_rejects_an_unknown_parameter(self, run_in_flow, credentials, sandbox, project):
        with pytest.raises(TypeError):
            run_in_flow(list_snippets, page=2, credentials=credentials)
        assert_nothing_sent(sandbox, project)


class TestGetSnippet:
    @pytest.mark.parametrize("by", ["id", "name"])
    def test_reads_by_id_or_name(self, by, client, run_in_flow, credentials, sandbox, project):
        snippet_id = seed(client, "Legal footer")
        identifier = snippet_id if by == "id" else "Legal footer"
        result = run_in_flow(get_snippet, identifier, credentials=credentials)
        assert isinstance(result, SnippetResponse)
        assert (result.snippet.id, result.snippet.name, result.snippet.content) == (
            snippet_id,
            "Legal footer",
            FOOTER,
        )
        [entry] = sandbox.state.requests("ITERABLE_GET_SNIPPET", project_id=project.id)
        expected = str(snippet_id) if by == "id" else "Legal footer"
        assert entry.path == f"/api/snippets/{expected}"

    def test_an_unknown_snippet_is_not_found(self, run_in_flow, credentials):
        with pytest.raises(NotFound):
            run_in_flow(get_snippet, "Nope", credentials=credentials)

    @pytest.mark.parametrize("identifier", [0, "a/b", ""])
    def test_rejects_a_bad_identifier(self, identifier, run_in_flow, credentials, sandbox, project):
        with pytest.raises(InputValidationError, match="identifier"):
            get_snippet.fn(identifier, credentials=credentials)
        assert_nothing_sent(sandbox, project)


class TestUpdateSnippet:
    def test_replaces_content_by_id_and_keeps_the_name(
        self, client, run_in_flow, credentials, sandbox, project
    ):
        snippet_id = seed(client)
        result = run_in_flow(
            update_snippet, snippet_id, "<p>New footer</p>", variables=[], credentials=credentials
        )
        assert result.snippet_id == snippet_id
        stored = snippets(project)[snippet_id]
        assert (stored["name"], stored["content"], stored["variables"]) == (
            "Footer",
            "<p>New footer</p>",
            [],
        )
        [entry] = sandbox.state.requests("ITERABLE_UPDATE_SNIPPET", project_id=project.id)
        assert (entry.method, entry.path, entry.status) == (
            "PUT",
            f"/api/snippets/{snippet_id}",
            200,
        )
        assert entry.body == {"content": "<p>New footer</p>", "variables": []}

    def test_a_new_name_creates_the_snippet(self, run_in_flow, credentials, sandbox, project):
        result = run_in_flow(update_snippet, "Promo banner", "<p>Sale</p>", credentials=credentials)
        assert snippets(project)[result.snippet_id]["name"] == "Promo banner"
        [entry] = sandbox.state.requests("ITERABLE_UPDATE_SNIPPET", project_id=project.id)
        assert entry.status == 201
        again = run_in_flow(update_snippet, "Promo banner", "<p>Sale!</p>", credentials=credentials)
        assert again.snippet_id == result.snippet_id and len(snippets(project)) == 1

    def test_an_unknown_id_is_not_found(self, run_in_flow, credentials, project):
        with pytest.raises(NotFound):
            run_in_flow(update_snippet, 987654, "<p>x</p>", credentials=credentials)
        assert snippets(project) == {}

    def test_refuses_script_content(self, client, run_in_flow, credentials, project):
        snippet_id = seed(client)
        with pytest.raises(BadParams):
            run_in_flow(update_snippet, snippet_id, "<script>x()</script>", credentials=credentials)
        assert snippets(project)[snippet_id]["content"] == FOOTER

    def test_rejects_empty_content_before_sending(self, run_in_flow, credentials, sandbox, project):
        with pytest.raises(InputValidationError, match="content"):
            update_snippet.fn("Footer", "", credentials=credentials)
        assert_nothing_sent(sandbox, project)


class TestDeleteSnippet:
    def test_deletes_by_name_then_is_not_found(
        self, client, run_in_flow, credentials, sandbox, project
    ):
        snippet_id = seed(client)
        result = run_in_flow(delete_snippet, "Footer", credentials=credentials)
        assert result.snippet_id == snippet_id
        assert snippets(project) == {}
        [entry] = sandbox.state.requests("ITERABLE_DELETE_SNIPPET", project_id=project.id)
        assert (entry.method, entry.path) == ("DELETE", "/api/snippets/Footer")
        with pytest.raises(NotFound):
            run_in_flow(delete_snippet, snippet_id, credentials=credentials)

    def test_rejects_a_bad_identifier(self, run_in_flow, credentials, sandbox, project):
        with pytest.raises(InputValidationError, match="identifier"):
            delete_snippet.fn(-3, credentials=credentials)
        assert_nothing_sent(sandbox, project)
