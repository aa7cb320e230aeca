"""Catalog tasks, run in a real flow against the sandbox."""

from __future__ import annotations

import json

import pytest

from prefect_iterable.api.errors import BadParams, InputValidationError, NotFound
from prefect_iterable.api.models.catalogs import CatalogFieldDefinition
from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.blocks.credentials import MissingPermission
from prefect_iterable.sandbox.data import catalogs
from prefect_iterable.tasks.catalogs import (
    create_catalog,
    create_catalog_items,
    delete_catalog,
    delete_catalog_item,
    delete_catalog_items,
    get_catalog_field_mappings,
    get_catalog_item,
    iter_catalog_items,
    iter_catalogs,
    list_catalog_items,
    list_catalogs,
    replace_catalog_item,
    update_catalog_field_mappings,
    update_catalog_item,
)


def _requests(sandbox, project, action):
    return sandbox.state.requests(action, project_id=project.id)


@pytest.fixture
def shop(client):
    """A catalog ``Shop`` with three items, written through the client."""
    client.call("ITERABLE_CREATE_CATALOG", catalog_name="Shop")
    client.call(
        "ITERABLE_CREATE_CATALOG_ITEMS",
        catalog_name="Shop",
        documents={
            "sku-1": {"name": "Mug", "price": 8.5, "stock": {"warehouse": 3}},
            "sku-2": {"name": "Tee", "price": 19.0},
            "sku-3": {"name": "Cap", "price": 12.0},
        },
    )
    return "Shop"


class TestListCatalogs:
    def test_lists_names_unwrapped_from_params(
        self, run_in_flow, credentials, client, sandbox, project
    ):
        for name in ("Products", "Stores"):
            client.call("ITERABLE_CREATE_CATALOG", catalog_name=name)
        result = run_in_flow(list_catalogs, credentials=credentials)
        assert result.names == ["Products", "Stores"]
        assert result.total_catalogs_count == 2
        [entry] = _requests(sandbox, project, "ITERABLE_LIST_CATALOGS")
        assert (entry.method, entry.path) == ("GET", "/api/catalogs")

    def test_pages_through_every_catalog(self, run_in_flow, credentials, client, sandbox, project):
        names = [f"Catalog-{n:02d}" for n in range(7)]
        for name in names:
            client.call("ITERABLE_CREATE_CATALOG", catalog_name=name)
        second = run_in_flow(list_catalogs, page=2, page_size=3, credentials=credentials)
        assert second.names == names[3:6] and second.next_page_url
        assert list(iter_catalogs(credentials, page_size=3)) == names
        pages = [e.query for e in _requests(sandbox, project, "ITERABLE_LIST_CATALOGS")]
        assert pages[1:] == [{"page": [str(n)], "pageSize": ["3"]} for n in (1, 2, 3)]

    def test_refuses_a_page_size_over_1000_before_sending(
        self, run_in_flow, credentials, sandbox, project
    ):
        with pytest.raises(InputValidationError, match="page_size"):
            list_catalogs.fn(page_size=1001, credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []


class TestCreateCatalog:
    def test_creates_a_catalog(self, run_in_flow, credentials, sandbox, project):
        result = run_in_flow(create_catalog, "Winter-2026", credentials=credentials)
        assert result.code == "Success" and result.params["name"] == "Winter-2026"
        assert catalogs(project)["winter-2026"].name == "Winter-2026"
        [entry] = _requests(sandbox, project, "ITERABLE_CREATE_CATALOG")
        assert (entry.method, entry.path, entry.status) == (
            "POST",
            "/api/catalogs/Winter-2026",
            201,
        )

    def test_names_are_case_insensitive(self, run_in_flow, credentials, client):
        client.call("ITERABLE_CREATE_CATALOG", catalog_name="products")
        with pytest.raises(BadParams, match="already exists"):
            run_in_flow(create_catalog, "PRODUCTS", credentials=credentials)

    @pytest.mark.parametrize("name", ["has space", "dots.not.ok", "x" * 256, ""])
    def test_rejects_a_bad_name_before_sending(
        self, run_in_flow, credentials, sandbox, project, name
    ):
        with pytest.raises(InputValidationError):
            create_catalog.fn(name, credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []


class TestDeleteCatalog:
    def test_deletes_a_catalog_and_its_items(
        self, run_in_flow, credentials, sandbox, project, shop
    ):
        result = run_in_flow(delete_catalog, "shop", credentials=credentials)
        assert result.code == "Success"
        assert catalogs(project) == {}
        [entry] = _requests(sandbox, project, "ITERABLE_DELETE_CATALOG")
        assert (entry.method, entry.path) == ("DELETE", "/api/catalogs/shop")

    def test_a_missing_catalog_is_not_found(self, run_in_flow, credentials):
        with pytest.raises(NotFound):
            run_in_flow(delete_catalog, "ghost", credentials=credentials)

    def test_needs_the_delete_permission(
        self, run_in_flow, sandbox_server, api_key, sandbox, project
    ):
        read_write = IterableCredentials(api_key=api_key, base_url=sandbox_server.url)
        with pytest.raises(MissingPermission):
            run_in_flow(delete_catalog, "shop", credentials=read_write)
        assert sandbox.state.requests(project_id=project.id) == []


class TestGetCatalogFieldMappings:
    def test_reports_defined_and_undefined_fields(
        self, run_in_flow, credentials, client, sandbox, project, shop
    ):
        client.call(
            "ITERABLE_UPDATE_CATALOG_FIELD_MAPPINGS",
            catalog_name=shop,
            mappings_updates=[{"fieldName": "price", "fieldType": "double"}],
        )
        result = run_in_flow(get_catalog_field_mappings, shop, credentials=credentials)
        assert result.defined_mappings == {"price": "double"}
        assert set(result.undefined_fields) == {"name", "stock", "stock.warehouse"}
        [entry] = _requests(sandbox, project, "ITERABLE_GET_CATALOG_FIELD_MAPPINGS")
        assert entry.path == "/api/catalogs/Shop/fieldMappings"

    def test_rejects_a_bad_name_before_sending(self, run_in_flow, credentials, sandbox, project):
        with pytest.raises(InputValidationError):
            get_catalog_field_mappings.fn("no/slash", credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []


class TestUpdateCatalogFieldMappings:
    def test_sets_types_including_nested_children(
        self, run_in_flow, credentials, sandbox, project, shop
    ):
        updates = [
            CatalogFieldDefinition(field_name="price", field_type="double"),
            CatalogFieldDefinition(
                field_name="stock",
                field_type="object",
                children=[CatalogFieldDefinition(field_name="warehouse", field_type="long")],
            ),
        ]
        result = run_in_flow(update_catalog_field_mappings, shop, updates, credentials=credentials)
        assert result.code == "Success"
        assert catalogs(project)["shop"].mappings == {
            "price": "double",
            "stock": "object",
            "stock.warehouse": "long",
        }
        [entry] = _requests(sandbox, project, "ITERABLE_UPDATE_CATALOG_FIELD_MAPPINGS")
        assert entry.method == "PUT"
        assert entry.body["mappingsUpdates"][1] == {
            "fieldName": "stock",
            "fieldType": "object",
            "children": [{"fieldName": "warehouse", "fieldType": "long"}],
        }

    def test_a_type_cannot_change(self, run_in_flow, credentials, client, shop):
        client.call(
            "ITERABLE_UPDATE_CATALOG_FIELD_MAPPINGS",
            catalog_name=shop,
            mappings_updates=[{"fieldName": "price", "fieldType": "double"}],
        )
        with pytest.raises(BadParams, match="cannot change"):
            run_in_flow(
                update_catalog_field_mappings,
                shop,
                [{"field_name": "price", "field_type": "string"}],
                credentials=credentials,
            )

    @pytest.mark.parametrize(
        "mapping",
        [
            {"field_name": "price", "field_type": "decimal"},
            {"field_name": "a.b", "field_type": "string"},
            {
                "field_name": "price",
                "field_type": "long",
                "children": [{"field_name": "x", "field_type": "string"}],
            },
        ],
    )
    def test_rejects_bad_mappings_before_sending(
        self, run_in_flow, credentials, sandbox, project, mapping
    ):
        with pytest.raises(InputValidationError):
            update_catalog_field_mappings.fn("Shop", [mapping], credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []

    def test_children_only_on_objects(self):
        with pytest.raises(ValueError, match="only an object field"):
            CatalogFieldDefinition(
                field_name="price",
                field_type="long",
                children=[CatalogFieldDefinition(field_name="x", field_type="string")],
            )


class TestCreateCatalogItems:
    def test_bulk_creates_items_accepted_with_202(
        self, run_in_flow, credentials, client, sandbox, project
    ):
        client.call("ITERABLE_CREATE_CATALOG", catalog_name="Shop")
        documents = {f"sku-{n}": {"name": f"item {n}", "price": n} for n in range(1, 6)}
        result = run_in_flow(create_catalog_items, "shop", documents, credentials=credentials)
        assert result.code == "Success"
        [entry] = _requests(sandbox, project, "ITERABLE_CREATE_CATALOG_ITEMS")
        assert (entry.method, entry.status) == ("POST", 202)
        assert entry.body == {"documents": documents}
        assert catalogs(project)["shop"].items["sku-3"].value == {"name": "item 3", "price": 3}

    def test_replace_uploaded_fields_only_merges(
        self, run_in_flow, credentials, sandbox, project, shop
    ):
        run_in_flow(
            create_catalog_items,
            shop,
            {"sku-1": {"price": 9.0}},
            replace_uploaded_fields_only=True,
            credentials=credentials,
        )
        assert catalogs(project)["shop"].items["sku-1"].value == {
            "name": "Mug",
            "price": 9.0,
            "stock": {"warehouse": 3},
        }
        [*_, entry] = _requests(sandbox, project, "ITERABLE_CREATE_CATALOG_ITEMS")
        assert entry.body["replaceUploadedFieldsOnly"] is True

    def test_more_than_1000_items_are_refused_before_sending(
        self, run_in_flow, credentials, sandbox, project
    ):
        documents = {f"sku-{n}": {"n": n} for n in range(1001)}
        with pytest.raises(InputValidationError, match="1000"):
            create_catalog_items.fn("Shop", documents, credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []

    @pytest.mark.parametrize(
        "documents",
        [
            {"bad id": {"a": 1}},
            {"sku-1": {"with.period": 1}},
            {"sku-1": {"outer": {"in.ner": 1}}},
            {"sku-1": {"blob": "x" * (30 * 1024)}},
            {},
        ],
    )
    def test_rejects_bad_documents_before_sending(
        self, run_in_flow, credentials, sandbox, project, documents
    ):
        with pytest.raises(InputValidationError):
            create_catalog_items.fn("Shop", documents, credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []

    def test_a_missing_catalog_is_not_found(self, run_in_flow, credentials):
        with pytest.raises(NotFound):
            run_in_flow(create_catalog_items, "ghost", {"a": {"b": 1}}, credentials=credentials)


class TestDeleteCatalogItems:
    def test_deletes_with_a_json_body(self, run_in_flow, credentials, sandbox, project, shop):
        result = run_in_flow(
            delete_catalog_items, shop, ["sku-1", "sku-3", "sku-9"], credentials=credentials
        )
        assert result.code == "Success"
        assert list(catalogs(project)["shop"].items) == ["sku-2"]
        [entry] = _requests(sandbox, project, "ITERABLE_DELETE_CATALOG_ITEMS")
        assert (entry.method, entry.status) == ("DELETE", 202)
        assert entry.body == {"itemIds": ["sku-1", "sku-3", "sku-9"]}

    def test_rejects_an_empty_list_before_sending(self, run_in_flow, credentials, sandbox, project):
        with pytest.raises(InputValidationError):
            delete_catalog_items.fn("Shop", [], credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []


class TestListCatalogItems:
    def test_pages_and_sorts_by_a_typed_field(
        self, run_in_flow, credentials, client, sandbox, project, shop
    ):
        client.call(
            "ITERABLE_UPDATE_CATALOG_FIELD_MAPPINGS",
            catalog_name=shop,
            mappings_updates=[{"fieldName": "price", "fieldType": "double"}],
        )
        result = run_in_flow(
            list_catalog_items,
            shop,
            page=1,
            page_size=2,
            order_by="price",
            sort_ascending=True,
            credentials=credentials,
        )
        assert [i.item_id for i in result.catalog_items_with_properties] == ["sku-1", "sku-3"]
        assert result.total_items_count == 3
        assert "page=2" in result.next_page_url
        first = result.catalog_items_with_properties[0]
        assert (first.catalog_name, first.value["name"]) == ("Shop", "Mug")
        assert first.size == len(json.dumps(first.value, separators=(",", ":")))
        [entry] = _requests(sandbox, project, "ITERABLE_LIST_CATALOG_ITEMS")
        assert entry.query == {
            "page": ["1"],
            "pageSize": ["2"],
            "orderBy": ["price"],
            "sortAscending": ["true"],
        }

    def test_sorting_needs_a_typed_field(self, run_in_flow, credentials, shop):
        with pytest.raises(BadParams, match="defined type"):
            run_in_flow(
                list_catalog_items,
                shop,
                order_by="name",
                sort_ascending=True,
                credentials=credentials,
            )

    @pytest.mark.parametrize("bad", [{"page": 0}, {"page_size": 0}, {"page_size": 1001}])
    def test_rejects_bad_paging_before_sending(
        self, run_in_flow, credentials, sandbox, project, bad
    ):
        with pytest.raises(InputValidationError):
            list_catalog_items.fn("Shop", **bad, credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []

    def test_iter_catalog_items_walks_every_page(self, credentials, client, sandbox, project):
        client.call("ITERABLE_CREATE_CATALOG", catalog_name="Big")
        client.call(
            "ITERABLE_CREATE_CATALOG_ITEMS",
            catalog_name="Big",
            documents={f"item-{n:02d}": {"n": n} for n in range(25)},
        )
        items = list(iter_catalog_items("Big", credentials, page_size=10))
        assert sorted(i.value["n"] for i in items) == list(range(25))
        pages = _requests(sandbox, project, "ITERABLE_LIST_CATALOG_ITEMS")
        assert [(e.query["page"], e.query["pageSize"]) for e in pages] == [
            (["1"], ["10"]),
            (["2"], ["10"]),
            (["3"], ["10"]),
        ]


class TestDeleteCatalogItem:
    def test_deletes_one_item(self, run_in_flow, credentials, sandbox, project, shop):
        result = run_in_flow(delete_catalog_item, shop, "sku-2", credentials=credentials)
        assert result.code == "Success"
        assert "sku-2" not in catalogs(project)["shop"].items
        [entry] = _requests(sandbox, project, "ITERABLE_DELETE_CATALOG_ITEM")
        assert (entry.method, entry.path, entry.status) == (
            "DELETE",
            "/api/catalogs/Shop/items/sku-2",
            202,
        )

    def test_rejects_a_bad_item_id_before_sending(self, run_in_flow, credentials, sandbox, project):
        with pytest.raises(InputValidationError):
            delete_catalog_item.fn("Shop", "sku_2", credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []


class TestGetCatalogItem:
    def test_reads_an_item_unwrapped_from_params(
        self, run_in_flow, credentials, sandbox, project, shop
    ):
        item = run_in_flow(get_catalog_item, "SHOP", "sku-1", credentials=credentials)
        assert (item.catalog_name, item.item_id) == ("Shop", "sku-1")
        assert item.value == {"name": "Mug", "price": 8.5, "stock": {"warehouse": 3}}
        [entry] = _requests(sandbox, project, "ITERABLE_GET_CATALOG_ITEM")
        assert entry.path == "/api/catalogs/SHOP/items/sku-1"

    def test_item_ids_are_case_sensitive(self, run_in_flow, credentials, shop):
        with pytest.raises(NotFound):
            run_in_flow(get_catalog_item, shop, "SKU-1", credentials=credentials)

    def test_rejects_a_long_item_id_before_sending(
        self, run_in_flow, credentials, sandbox, project
    ):
        with pytest.raises(InputValidationError):
            get_catalog_item.fn("Shop", "a" * 256, credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []


class TestReplaceCatalogItem:
    def test_put_replaces_the_whole_value(self, run_in_flow, credentials, sandbox, project, shop):
        result = run_in_flow(
            replace_catalog_item, shop, "sku-1", {"name": "Big mug"}, credentials=credentials
        )
        assert result.code == "Success"
        assert catalogs(project)["shop"].items["sku-1"].value == {"name": "Big mug"}
        [entry] = _requests(sandbox, project, "ITERABLE_REPLACE_CATALOG_ITEM")
        assert (entry.method, entry.body, entry.status) == (
            "PUT",
            {"value": {"name": "Big mug"}},
            202,
        )

    def test_rejects_an_oversized_value_before_sending(
        self, run_in_flow, credentials, sandbox, project
    ):
        with pytest.raises(InputValidationError, match="30720"):
            replace_catalog_item.fn("Shop", "sku-1", {"blob": "é" * 16000}, credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []


class TestUpdateCatalogItem:
    def test_patch_keeps_other_fields(self, run_in_flow, credentials, sandbox, project, shop):
        result = run_in_flow(
            update_catalog_item, shop, "sku-2", {"price": 21.0}, credentials=credentials
        )
        assert result.code == "Success"
        assert catalogs(project)["shop"].items["sku-2"].value == {"name": "Tee", "price": 21.0}
        [entry] = _requests(sandbox, project, "ITERABLE_UPDATE_CATALOG_ITEM")
        assert (entry.method, entry.body) == ("PATCH", {"update": {"price": 21.0}})

    def test_creates_a_missing_item(self, run_in_flow, credentials, project, shop):
        run_in_flow(update_catalog_item, shop, "sku-new", {"name": "Hat"}, credentials=credentials)
        assert catalogs(project)["shop"].items["sku-new"].value == {"name": "Hat"}

    def test_rejects_periods_in_field_names_before_sending(
        self, run_in_flow, credentials, sandbox, project
    ):
        with pytest.raises(InputValidationError, match="periods"):
            update_catalog_item.fn("Shop", "sku-1", {"a.b": 1}, credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []
