"""Metadata tasks and the key-paging helper, run against the sandbox."""

from __future__ import annotations

import pytest

from prefect_iterable.api.errors import InputValidationError, NotFound
from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.blocks.credentials import MissingPermission
from prefect_iterable.sandbox.data import put_item, tables
from prefect_iterable.tasks.metadata import (
    delete_metadata_table,
    iter_metadata_keys,
    list_metadata_keys,
    list_metadata_tables,
    replace_metadata_item,
)


class TestListMetadataTables:
    def test_lists_the_tables(self, run_in_flow, credentials, sandbox, project):
        put_item(project, "Stores", "nyc", {"open": "9:00"})
        put_item(project, "flags", "beta", {"on": True})
        result = run_in_flow(list_metadata_tables, credentials=credentials)
        assert [table.name for table in result.results] == ["flags", "Stores"]
        [request] = sandbox.state.requests("ITERABLE_LIST_METADATA_TABLES", project_id=project.id)
        assert (request.method, request.path) == ("GET", "/api/metadata")

    def test_rejects_an_unknown_parameter_before_sending(
        self, run_in_flow, credentials, sandbox, project
    ):
        with pytest.raises(TypeError):
            run_in_flow(list_metadata_tables, table="x", credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []


class TestReplaceMetadataItem:
    def test_creates_the_table_and_replaces_the_value(
        self, run_in_flow, credentials, sandbox, project
    ):
        run_in_flow(
            replace_metadata_item, "stores", "nyc", {"open": "9:00"}, credentials=credentials
        )
        result = run_in_flow(
            replace_metadata_item, "Stores", "nyc", {"open": "10:00"}, credentials=credentials
        )
        assert result.code == "Success"
        # Table names are case-insensitive: one table, one key, the second value.
        assert list(tables(project)) == ["stores"]
        assert tables(project)["stores"].items["nyc"].value == {"open": "10:00"}
        requests = sandbox.state.requests("ITERABLE_REPLACE_METADATA_ITEM", project_id=project.id)
        assert [(r.method, r.path, r.body) for r in requests][-1] == (
            "PUT",
            "/api/metadata/Stores/nyc",
            {"value": {"open": "10:00"}},
        )

    @pytest.mark.parametrize(
        ("table", "key", "value"),
        [
            ("stores", "big", {"blob": "x" * (30 * 1024)}),  # over 30 KB as JSON
            ("", "k", {"a": 1}),
            ("stores", "", {"a": 1}),
            ("stores", "k", ["not", "an", "object"]),
        ],
    )
    def test_rejects_bad_input_before_sending(
        self, run_in_flow, credentials, sandbox, project, table, key, value
    ):
        with pytest.raises(InputValidationError):
            replace_metadata_item.fn(table, key, value, credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []


class TestListMetadataKeys:
    def test_lists_a_page_of_keys_with_sizes(self, run_in_flow, credentials, sandbox, project):
        put_item(project, "stores", "nyc", {"open": "9:00"})
        put_item(project, "stores", "la", {"open": "8:00", "close": "20:00"})
        result = run_in_flow(list_metadata_keys, "stores", credentials=credentials)
        assert [(k.key, k.table, k.size) for k in result.results] == [
            ("la", "stores", len('{"open":"8:00","close":"20:00"}')),
            ("nyc", "stores", len('{"open":"9:00"}')),
        ]
        assert result.next_marker is None
        [request] = sandbox.state.requests("ITERABLE_LIST_METADATA_KEYS", project_id=project.id)
        assert (request.path, request.query) == ("/api/metadata/stores", {})

    def test_an_unknown_table_is_not_found(self, run_in_flow, credentials, project):
        with pytest.raises(NotFound):
            run_in_flow(list_metadata_keys, "missing", credentials=credentials)

    def test_rejects_an_empty_table_name_before_sending(
        self, run_in_flow, credentials, sandbox, project
    ):
        with pytest.raises(InputValidationError, match="table"):
            list_metadata_keys.fn("", credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []


class TestIterMetadataKeys:
    def test_walks_every_page(self, credentials, sandbox, project):
        names = [f"key-{n:03d}" for n in range(230)]  # three pages of up to 100
        for name in names:
            put_item(project, "catalog", name, {"n": name})
        keys = list(iter_metadata_keys("catalog", credentials=credentials))
        assert [k.key for k in keys] == names
        requests = sandbox.state.requests("ITERABLE_LIST_METADATA_KEYS", project_id=project.id)
        assert len(requests) == 3
        assert "nextMarker" not in requests[0].query
        assert all(r.query.get("nextMarker") for r in requests[1:])

    def test_rejects_an_empty_table_name_before_sending(self, credentials, sandbox, project):
        with pytest.raises(InputValidationError):
            list(iter_metadata_keys("", credentials=credentials))
        assert sandbox.state.requests(project_id=project.id) == []


class TestDeleteMetadataTable:
    def test_deletes_the_table_and_its_keys(self, run_in_flow, credentials, sandbox, project):
        put_item(project, "Stores", "nyc", {"open": "9:00"})
        result = run_in_flow(delete_metadata_table, "stores", credentials=credentials)
        assert result.code == "Success"
        assert tables(project) == {}
        [request] = sandbox.state.requests("ITERABLE_DELETE_METADATA_TABLE", project_id=project.id)
        assert (request.method, request.path) == ("DELETE", "/api/metadata/stores")

    def test_an_unknown_table_is_not_found(self, run_in_flow, credentials, project):
        with pytest.raises(NotFound):
            run_in_flow(delete_metadata_table, "missing", credentials=credentials)

    def test_needs_the_delete_permission(
        self, run_in_flow, sandbox_server, api_key, sandbox, project
    ):
        read_write = IterableCredentials(api_key=api_key, base_url=sandbox_server.url)
        with pytest.raises(MissingPermission):
            run_in_flow(delete_metadata_table, "stores", credentials=read_write)
        assert sandbox.state.requests(project_id=project.id) == []

    def test_rejects_an_empty_table_name_before_sending(
        self, run_in_flow, credentials, sandbox, project
    ):
        with pytest.raises(InputValidationError, match="table"):
            delete_metadata_table.fn(" ", credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []
