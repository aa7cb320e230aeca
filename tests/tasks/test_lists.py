"""List tasks, run in a real flow against the sandbox.

getUsers, previewUsers and size allow 5 calls a minute: each test calls them at most twice.
"""

from __future__ import annotations

import pytest

from prefect_iterable.api.errors import BadParams, Conflict, InputValidationError, OutcomeUnknown
from prefect_iterable.api.models.lists import ListSize, ListUsers
from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.blocks.credentials import MissingPermission
from prefect_iterable.sandbox.data import User, UserList, identifier_hash, lists, users
from prefect_iterable.tasks.lists import (
    create_list,
    delete_list,
    get_list_size,
    list_list_users,
    list_lists,
    preview_list_users,
    subscribe_to_list,
    unsubscribe_from_list,
)


def _list_with(client, project, *emails: str, name: str = "Members") -> int:
    list_id = client.call("ITERABLE_CREATE_LIST", name=name)["listId"]
    if emails:
        client.call(
            "ITERABLE_SUBSCRIBE_TO_LIST",
            list_id=list_id,
            subscribers=[{"email": e} for e in emails],
        )
    return list_id


class TestCreateList:
    def test_creates_an_empty_list(self, run_in_flow, credentials, sandbox, project):
        result = run_in_flow(
            create_list,
            "Weekly digest",
            description="Opted in at checkout",
            credentials=credentials,
        )
        created = lists(project)[result.list_id]
        assert (created.name, created.description, created.members) == (
            "Weekly digest",
            "Opted in at checkout",
            {},
        )
        [request] = sandbox.state.requests("ITERABLE_CREATE_LIST", project_id=project.id)
        assert (request.method, request.path, request.body) == (
            "POST",
            "/api/lists",
            {"name": "Weekly digest", "description": "Opted in at checkout"},
        )

    def test_rejects_a_blank_name_before_sending(self, run_in_flow, credentials, sandbox, project):
        with pytest.raises(InputValidationError, match="name"):
            create_list.fn("   ", credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []

    def test_a_duplicate_name_is_refused(self, run_in_flow, credentials, client, project):
        client.call("ITERABLE_CREATE_LIST", name="VIP")
        with pytest.raises(BadParams, match="already exists"):
            run_in_flow(create_list, "VIP", credentials=credentials)
        assert [found.name for found in lists(project).values()] == ["VIP"]

    def test_is_never_sent_twice(self, run_in_flow, credentials, sandbox, project):
        # The list was created before the server failed: a retry would create a second one.
        sandbox.inject("ITERABLE_CREATE_LIST", "500", after_processing=True)
        with pytest.raises(OutcomeUnknown):
            run_in_flow(create_list, "Once", credentials=credentials)
        assert len(sandbox.state.requests("ITERABLE_CREATE_LIST", project_id=project.id)) == 1
        assert [found.name for found in lists(project).values()] == ["Once"]


class TestListLists:
    def test_lists_every_list_with_its_type(
        self, run_in_flow, credentials, client, sandbox, project
    ):
        first = _list_with(client, project, name="A")
        second = _list_with(client, project, name="B")
        result = run_in_flow(list_lists, credentials=credentials)
        assert [(found.id, found.name, found.list_type) for found in result.lists] == [
            (first, "A", "Standard"),
            (second, "B", "Standard"),
        ]
        assert all(found.created_at > 1_600_000_000_000 for found in result.lists)  # epoch ms
        [request] = sandbox.state.requests("ITERABLE_LIST_LISTS", project_id=project.id)
        assert (request.method, request.path) == ("GET", "/api/lists")

    def test_rejects_an_unknown_parameter_before_sending(
        self, run_in_flow, credentials, sandbox, project
    ):
        with pytest.raises(TypeError):
            run_in_flow(list_lists, page=1, credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []


class TestListListUsers:
    def test_reads_the_text_answer_into_identifiers(
        self, run_in_flow, credentials, client, sandbox, project
    ):
        list_id = _list_with(client, project, "ann@example.com", "bob@example.com")
        result = run_in_flow(list_list_users, list_id, credentials=credentials)
        assert result.identifiers == ["ann@example.com", "bob@example.com"]
        [request] = sandbox.state.requests("ITERABLE_LIST_LIST_USERS", project_id=project.id)
        assert (request.method, request.path, request.query) == (
            "GET",
            "/api/lists/getUsers",
            {"listId": [str(list_id)]},
        )

    def test_prefers_user_ids_in_a_hybrid_project(
        self, run_in_flow, sandbox, sandbox_server, make_project
    ):
        key, hybrid = make_project(identity="hybrid")
        store = users(hybrid)
        both = store.add(User(email="cy@example.com", user_id="u-cy"))
        only_email = store.add(User(email="di@example.com", user_id=None))
        list_id = hybrid.next_id()
        lists(hybrid)[list_id] = UserList(
            id=list_id,
            name="Hybrid",
            members={"cy@example.com": both, "di@example.com": only_email},
        )
        credentials = IterableCredentials(api_key=key, base_url=sandbox_server.url)
        result = run_in_flow(list_list_users, list_id, prefer_user_id=True, credentials=credentials)
        assert result.identifiers == ["u-cy", "di@example.com"]
        [request] = sandbox.state.requests("ITERABLE_LIST_LIST_USERS", project_id=hybrid.id)
        assert request.query["preferUserId"] == ["true"]

    def test_rejects_a_list_id_below_one_before_sending(
        self, run_in_flow, credentials, sandbox, project
    ):
        with pytest.raises(InputValidationError, match="list_id"):
            list_list_users.fn(0, credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []

    def test_text_parsing_ignores_blank_lines_and_carriage_returns(self):
        assert ListUsers.model_validate("a@x.io\r\n\r\nu-2\n").identifiers == ["a@x.io", "u-2"]
        assert ListUsers.model_validate("").identifiers == []


class TestPreviewListUsers:
    def test_returns_a_sample_of_the_requested_size(
        self, run_in_flow, credentials, client, sandbox, project
    ):
        emails = ["a@example.com", "b@example.com", "c@example.com"]
        list_id = _list_with(client, project, *emails)
        result = run_in_flow(preview_list_users, list_id, size=2, credentials=credentials)
        assert len(result.identifiers) == 2
        assert set(result.identifiers) < set(emails)
        [request] = sandbox.state.requests("ITERABLE_PREVIEW_LIST_USERS", project_id=project.id)
        assert request.query == {"listId": [str(list_id)], "size": ["2"]}

    @pytest.mark.parametrize("size", [0, 5001])
    def test_rejects_a_size_outside_1_to_5000_before_sending(
        self, run_in_flow, credentials, sandbox, project, size
    ):
        with pytest.raises(InputValidationError, match="size"):
            preview_list_users.fn(5, size=size, credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []


class TestSubscribeToList:
    def test_adds_users_creating_them_with_their_fields(
        self, run_in_flow, credentials, client, sandbox, project
    ):
        list_id = _list_with(client, project)
        users(project).add(User(email="old@example.com", user_id=None))
        result = run_in_flow(
            subscribe_to_list,
            list_id,
            [
                {"email": "new@example.com", "data_fields": {"plan": "gold"}},
                {"email": "old@example.com"},
            ],
            credentials=credentials,
        )
        assert (result.success_count, result.fail_count, result.ok) == (2, 0, True)
        assert set(lists(project)[list_id].members) == {"new@example.com", "old@example.com"}
        assert users(project).find(email="new@example.com").data_fields == {"plan": "gold"}
        [request] = sandbox.state.requests("ITERABLE_SUBSCRIBE_TO_LIST", project_id=project.id)
        assert request.body == {
            "listId": list_id,
            "subscribers": [
                {"email": "new@example.com", "dataFields": {"plan": "gold"}},
                {"email": "old@example.com"},
            ],
        }

    def test_reports_a_forgotten_user_and_adds_the_others(
        self, run_in_flow, credentials, client, project
    ):
        list_id = _list_with(client, project)
        users(project).forgotten_emails.add(identifier_hash("gone@example.com"))
        result = run_in_flow(
            subscribe_to_list,
            list_id,
            [{"email": "gone@example.com"}, {"email": "here@example.com"}],
            credentials=credentials,
        )
        assert (result.success_count, result.fail_count) == (1, 1)
        assert [(r.identifier, r.kind, r.reason) for r in result.rejected] == [
            ("gone@example.com", "email", "forgottenEmails")
        ]
        assert set(lists(project)[list_id].members) == {"here@example.com"}
        assert users(project).find(email="gone@example.com") is None

    def test_existing_users_only_skips_unknown_user_ids(
        self, run_in_flow, sandbox_server, make_project
    ):
        key, by_user_id = make_project(identity="userId")
        users(by_user_id).add(User(email=None, user_id="known"))
        list_id = by_user_id.next_id()
        lists(by_user_id)[list_id] = UserList(id=list_id, name="Known only")
        credentials = IterableCredentials(api_key=key, base_url=sandbox_server.url)
        result = run_in_flow(
            subscribe_to_list,
            list_id,
            [{"user_id": "known"}, {"user_id": "stranger"}],
            update_existing_users_only=True,
            credentials=credentials,
        )
        assert [(r.identifier, r.reason) for r in result.rejected] == [
            ("stranger", "notFoundUserIds")
        ]
        assert list(lists(by_user_id)[list_id].members) == ["known"]
        assert users(by_user_id).find(user_id="stranger") is None

    @pytest.mark.parametrize(
        "subscribers",
        # Nothing sendable: an empty list, no one named, an unknown key. (A malformed address
        # is sent: Iterable reports it, see test_bulk_partial.py.)
        [[], [{"data_fields": {"a": 1}}], [{"emial": "a@b.co"}]],
    )
    def test_rejects_bad_subscribers_before_sending(
        self, run_in_flow, credentials, sandbox, project, subscribers
    ):
        with pytest.raises(InputValidationError, match="subscribers"):
            subscribe_to_list.fn(7, subscribers, credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []


class TestUnsubscribeFromList:
    def test_removes_members_and_reports_unknown_users(
        self, run_in_flow, credentials, client, sandbox, project
    ):
        list_id = _list_with(client, project, "stay@example.com", "leave@example.com")
        result = run_in_flow(
            unsubscribe_from_list,
            list_id,
            [{"email": "leave@example.com"}, {"email": "nobody@example.com"}],
            campaign_id=42,
            credentials=credentials,
        )
        assert (result.success_count, result.fail_count) == (1, 1)
        assert [(r.identifier, r.reason) for r in result.rejected] == [
            ("nobody@example.com", "notFoundEmails")
        ]
        assert list(lists(project)[list_id].members) == ["stay@example.com"]
        assert users(project).find(email="leave@example.com") is not None  # only left the list
        [request] = sandbox.state.requests("ITERABLE_UNSUBSCRIBE_FROM_LIST", project_id=project.id)
        assert request.body == {
            "listId": list_id,
            "campaignId": 42,
            "subscribers": [{"email": "leave@example.com"}, {"email": "nobody@example.com"}],
        }

    def test_rejects_a_negative_list_id_before_sending(
        self, run_in_flow, credentials, sandbox, project
    ):
        with pytest.raises(InputValidationError, match="list_id"):
            unsubscribe_from_list.fn(-1, [{"email": "a@example.com"}], credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []


class TestDeleteList:
    def test_deletes_the_list_but_not_its_users(
        self, run_in_flow, credentials, client, sandbox, project
    ):
        list_id = _list_with(client, project, "kept@example.com")
        result = run_in_flow(delete_list, list_id, credentials=credentials)
        assert result.code == "Success"
        assert list_id not in lists(project)
        assert users(project).find(email="kept@example.com") is not None
        [request] = sandbox.state.requests("ITERABLE_DELETE_LIST", project_id=project.id)
        assert (request.method, request.path) == ("DELETE", f"/api/lists/{list_id}")

    def test_a_list_a_campaign_uses_is_refused(self, run_in_flow, credentials, client, project):
        list_id = _list_with(client, project)
        project.areas["campaigns"] = {77: {"id": 77, "listIds": [list_id]}}
        with pytest.raises(Conflict, match="in use"):
            run_in_flow(delete_list, list_id, credentials=credentials)
        assert list_id in lists(project)

    def test_an_unknown_list_is_bad_params(self, run_in_flow, credentials, project):
        with pytest.raises(BadParams, match="does not exist"):
            run_in_flow(delete_list, 999_999, credentials=credentials)

    def test_needs_the_delete_permission(
        self, run_in_flow, sandbox_server, api_key, sandbox, project
    ):
        read_write = IterableCredentials(api_key=api_key, base_url=sandbox_server.url)
        with pytest.raises(MissingPermission):
            run_in_flow(delete_list, 3, credentials=read_write)
        assert sandbox.state.requests(project_id=project.id) == []

    def test_rejects_a_list_id_below_one_before_sending(
        self, run_in_flow, credentials, sandbox, project
    ):
        with pytest.raises(InputValidationError, match="list_id"):
            delete_list.fn(0, credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []


class TestGetListSize:
    def test_reads_the_bare_number(self, run_in_flow, credentials, client, sandbox, project):
        list_id = _list_with(client, project, "a@example.com", "b@example.com", "c@example.com")
        result = run_in_flow(get_list_size, list_id, credentials=credentials)
        assert (result.size, int(result)) == (3, 3)
        [request] = sandbox.state.requests("ITERABLE_GET_LIST_SIZE", project_id=project.id)
        assert (request.method, request.path) == ("GET", f"/api/lists/{list_id}/size")

    def test_an_unknown_list_is_bad_params(self, run_in_flow, credentials, project):
        with pytest.raises(BadParams):
            run_in_flow(get_list_size, 424_242, credentials=credentials)

    def test_rejects_a_non_numeric_list_id_before_sending(
        self, run_in_flow, credentials, sandbox, project
    ):
        with pytest.raises(InputValidationError, match="list_id"):
            get_list_size.fn("ten", credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []

    def test_text_parsing(self):
        assert ListSize.model_validate("12\n").size == 12
        with pytest.raises(ValueError):
            ListSize.model_validate("<html>oops</html>")
