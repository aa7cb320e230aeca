"""Template tasks of all five kinds, run in a real flow against the sandbox.

The kinds share their rules (upsert by clientTemplateId, update by templateId, 404 per locale),
so those tests run once per kind from the ``KINDS`` table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from prefect_iterable.api.errors import BadParams, InputValidationError, NotFound, UnknownEmailError
from prefect_iterable.api.models import ApiResponse
from prefect_iterable.api.models.templates import (
    BulkDeleteTemplatesResult,
    ClientTemplatesResponse,
    EmailTemplate,
    EmbeddedTemplate,
    InAppTemplate,
    PushButton,
    PushTemplate,
    SmsTemplate,
    TemplatesPage,
    UpsertTemplateResponse,
)
from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.blocks.credentials import MissingPermission
from prefect_iterable.sandbox.data import User, messages, templates, users
from prefect_iterable.tasks import templates as t


@dataclass(frozen=True)
class Kind:
    """One template kind: its tasks, action-id infix, medium and a piece of its content."""

    key: str
    action: str
    medium: str
    model: type
    content: dict[str, Any] = field(default_factory=dict)

    @property
    def main(self) -> str:
        """The content field the tests check."""
        return next(iter(self.content))

    def task(self, verb: str) -> Any:
        return getattr(t, f"{verb}_{self.key}_template")


KINDS = [
    Kind("email", "EMAIL", "Email", EmailTemplate, {"html": "<p>Hi {{firstName}}</p>"}),
    Kind("push", "PUSH", "Push", PushTemplate, {"message": "Hi {{firstName}}"}),
    Kind("sms", "SMS", "SMS", SmsTemplate, {"message": "Hi {{firstName}}"}),
    Kind("in_app", "IN_APP", "InApp", InAppTemplate, {"html": "<div>Hi {{firstName}}</div>"}),
    Kind("embedded", "EMBEDDED", "Embedded", EmbeddedTemplate, {"body": "Hi {{firstName}}"}),
]
BY_KEY = {k.key: k for k in KINDS}
kinds = pytest.mark.parametrize("kind", KINDS, ids=[k.key for k in KINDS])


def seed(client, kind: Kind, client_template_id: str = "welcome", **fields: Any) -> int:
    """Create a template through the API (not a task) and return its id."""
    body = kind.content | fields
    answer = client.call(
        f"ITERABLE_UPSERT_{kind.action}_TEMPLATE", client_template_id=client_template_id, **body
    )
    return answer["params"]["templateIds"][0]


def sent(sandbox, project, action: str) -> list[Any]:
    return sandbox.state.requests(action, project_id=project.id)


def assert_nothing_sent(sandbox, project) -> None:
    assert sandbox.state.requests(project_id=project.id) == []


# ---- upsert -------------------------------------------------------------------------------------


class TestUpsertTemplates:
    @kinds
    def test_creates_then_updates_the_same_template(
        self, kind, run_in_flow, credentials, sandbox, project
    ):
        first = run_in_flow(
            kind.task("upsert"), "welcome", name="Welcome", credentials=credentials, **kind.content
        )
        assert isinstance(first, UpsertTemplateResponse)
        [template_id] = first.template_ids
        second = run_in_flow(
            kind.task("upsert"), "welcome", name="Welcome v2", credentials=credentials
        )
        assert second.template_ids == [template_id]

        stored = templates(project)
        assert list(stored) == [template_id]  # updated, not duplicated
        template = stored[template_id]
        assert template["messageMedium"] == kind.medium
        assert template["templateType"] == "Base"
        assert template["name"] == "Welcome v2"
        assert template[kind.main] == kind.content[kind.main]  # untouched by the 2nd upsert
        bodies = [e.body for e in sent(sandbox, project, f"ITERABLE_UPSERT_{kind.action}_TEMPLATE")]
        assert bodies == [
            {"clientTemplateId": "welcome", "name": "Welcome", **kind.content},
            {"clientTemplateId": "welcome", "name": "Welcome v2"},
        ]

    @kinds
    def test_rejects_a_blank_client_template_id(
        self, kind, run_in_flow, credentials, sandbox, project
    ):
        with pytest.raises(InputValidationError, match="client_template_id"):
            kind.task("upsert").fn(" ", credentials=credentials)
        assert_nothing_sent(sandbox, project)

    def test_updates_every_template_sharing_the_client_id(
        self, client, run_in_flow, credentials, project
    ):
        email = BY_KEY["email"]
        first = seed(client, email, "shared")
        second = seed(client, email, "other")
        client.call(
            "ITERABLE_UPDATE_EMAIL_TEMPLATE", template_id=second, client_template_id="shared"
        )
        seed(client, BY_KEY["sms"], "shared")  # another medium: not touched by an email upsert

        result = run_in_flow(
            t.upsert_email_template, "shared", subject="Same subject", credentials=credentials
        )
        assert sorted(result.template_ids) == [first, second]
        assert [x.get("subject") for x in templates(project).values()] == [
            "Same subject",
            "Same subject",
            None,
        ]

    def test_push_refuses_a_fourth_button_and_a_bad_interruption_level(
        self, run_in_flow, credentials, sandbox, project
    ):
        button = {"identifier": "b", "title": "Open", "open_app": True}
        with pytest.raises(InputValidationError, match="buttons"):
            t.upsert_push_template.fn("p", buttons=[button] * 4, credentials=credentials)
        with pytest.raises(InputValidationError, match="interruption_level"):
            t.upsert_push_template.fn("p", interruption_level="loud", credentials=credentials)
        assert_nothing_sent(sandbox, project)

    def test_push_sends_nested_buttons_by_their_wire_names(
        self, run_in_flow, credentials, sandbox, project
    ):
        button = PushButton(identifier="open", title="Open", open_app=True, button_type="default")
        run_in_flow(
            t.upsert_push_template,
            "p",
            buttons=[button],
            deeplink={"ios": "app://x"},
            interruption_level="time-sensitive",
            credentials=credentials,
        )
        [entry] = sent(sandbox, project, "ITERABLE_UPSERT_PUSH_TEMPLATE")
        assert entry.body["buttons"] == [
            {"identifier": "open", "title": "Open", "openApp": True, "buttonType": "default"}
        ]
        assert entry.body["deeplink"] == {"ios": "app://x"}
        assert entry.body["interruptionLevel"] == "time-sensitive"

    def test_embedded_refuses_a_third_button(self, run_in_flow, credentials, sandbox, project):
        buttons = [{"id": str(i), "title": "Go"} for i in range(3)]
        with pytest.raises(InputValidationError, match="buttons"):
            t.upsert_embedded_template.fn(
                "e", elements={"buttons": buttons}, credentials=credentials
            )
        assert_nothing_sent(sandbox, project)

    def test_in_app_expiry_is_sent_as_utc_and_both_forms_are_sent(
        self, run_in_flow, credentials, sandbox, project
    ):
        # Iterable documents no rule against giving both; both are sent as given.
        run_in_flow(
            t.upsert_in_app_template,
            "j",
            expiration_date_time="2030-01-02 00:00:00 +0000",
            expiration_duration="now+30d",
            credentials=credentials,
        )
        [entry] = sent(sandbox, project, "ITERABLE_UPSERT_IN_APP_TEMPLATE")
        assert (entry.body["expirationDateTime"], entry.body["expirationDuration"]) == (
            "2030-01-02 00:00:00",
            "now+30d",
        )
        assert entry.status == 200
        cest = timezone(timedelta(hours=2))
        run_in_flow(
            t.upsert_in_app_template,
            "i",
            expiration_date_time=datetime(2030, 1, 2, 3, 4, 5, tzinfo=cest),
            credentials=credentials,
        )
        entry = sent(sandbox, project, "ITERABLE_UPSERT_IN_APP_TEMPLATE")[-1]
        assert entry.body["expirationDateTime"] == "2030-01-02 01:04:05"

    def test_email_refuses_a_bad_sender_address(self, run_in_flow, credentials, sandbox, project):
        with pytest.raises(InputValidationError, match="from_email"):
            t.upsert_email_template.fn("w", from_email="nobody", credentials=credentials)
        assert_nothing_sent(sandbox, project)


# ---- get ----------------------------------------------------------------------------------------


class TestGetTemplates:
    @kinds
    def test_reads_the_template_in_its_default_locale(
        self, kind, client, run_in_flow, credentials, sandbox, project
    ):
        template_id = seed(client, kind, name="Welcome")
        result = run_in_flow(kind.task("get"), template_id, credentials=credentials)
        assert isinstance(result, kind.model)
        assert (result.template_id, result.name, result.client_template_id) == (
            template_id,
            "Welcome",
            "welcome",
        )
        assert getattr(result, kind.main) == kind.content[kind.main]
        assert result.metadata.message_medium == kind.medium
        [entry] = sent(sandbox, project, f"ITERABLE_GET_{kind.action}_TEMPLATE")
        assert (entry.method, entry.query) == ("GET", {"templateId": [str(template_id)]})

    @kinds
    def test_a_locale_without_content_is_not_found(
        self, kind, client, run_in_flow, credentials, project
    ):
        template_id = seed(client, kind)
        seed(client, kind, locale="fr", **{kind.main: "Bonjour"})
        french = run_in_flow(kind.task("get"), template_id, locale="fr", credentials=credentials)
        assert (french.locale, getattr(french, kind.main)) == ("fr", "Bonjour")
        with pytest.raises(NotFound):
            run_in_flow(kind.task("get"), template_id, locale="de", credentials=credentials)

    @kinds
    def test_rejects_a_non_positive_id(self, kind, run_in_flow, credentials, sandbox, project):
        with pytest.raises(InputValidationError, match="template_id"):
            kind.task("get").fn(0, credentials=credentials)
        assert_nothing_sent(sandbox, project)

    def test_a_template_of_another_kind_is_not_found(self, client, run_in_flow, credentials):
        push_id = seed(client, BY_KEY["push"])
        with pytest.raises(NotFound):
            run_in_flow(t.get_email_template, push_id, credentials=credentials)


# ---- update -------------------------------------------------------------------------------------


class TestUpdateTemplates:
    @kinds
    def test_changes_only_the_fields_sent(
        self, kind, client, run_in_flow, credentials, sandbox, project
    ):
        template_id = seed(client, kind, name="Before")
        result = run_in_flow(
            kind.task("update"), template_id, name="After", credentials=credentials
        )
        assert isinstance(result, ApiResponse) and result.code == "Success"
        template = templates(project)[template_id]
        assert template["name"] == "After"
        assert template[kind.main] == kind.content[kind.main]
        [entry] = sent(sandbox, project, f"ITERABLE_UPDATE_{kind.action}_TEMPLATE")
        assert entry.body == {"templateId": template_id, "name": "After"}

    @kinds
    def test_a_missing_template_is_not_found(self, kind, run_in_flow, credentials, project):
        with pytest.raises(NotFound):
            run_in_flow(kind.task("update"), 424242, name="x", credentials=credentials)
        assert templates(project) == {}

    @kinds
    def test_rejects_a_malformed_locale(self, kind, run_in_flow, credentials, sandbox, project):
        with pytest.raises(InputValidationError, match="locale"):
            kind.task("update").fn(1, locale="English!", credentials=credentials)
        assert_nothing_sent(sandbox, project)

    def test_content_for_a_new_locale_keeps_the_default(
        self, client, run_in_flow, credentials, project
    ):
        template_id = seed(client, BY_KEY["sms"])
        run_in_flow(
            t.update_sms_template, template_id, locale="es", message="Hola", credentials=credentials
        )
        assert templates(project)[template_id]["message"] == "Hi {{firstName}}"
        spanish = run_in_flow(t.get_sms_template, template_id, locale="es", credentials=credentials)
        assert spanish.message == "Hola"


# ---- list, look up, bulk delete -----------------------------------------------------------------


class TestListTemplates:
    def test_pages_and_filters_by_medium(self, client, run_in_flow, credentials, sandbox, project):
        emails = [seed(client, BY_KEY["email"], f"e{i}") for i in range(3)]
        seed(client, BY_KEY["push"], "p")
        page = run_in_flow(
            t.list_templates,
            page=1,
            page_size=2,
            message_medium="Email",
            sort="-id",
            credentials=credentials,
        )
        assert isinstance(page, TemplatesPage)
        assert [x.template_id for x in page.templates] == [emails[2], emails[1]]
        assert page.total_templates_count == 3
        assert "page=2" in page.next_page_url and "messageMedium=Email" in page.next_page_url
        [entry] = sent(sandbox, project, "ITERABLE_LIST_TEMPLATES")
        assert entry.query == {
            "page": ["1"],
            "pageSize": ["2"],
            "sort": ["-id"],
            "messageMedium": ["Email"],
        }

    def test_date_window_is_sent_in_iterables_format(
        self, client, run_in_flow, credentials, sandbox, project
    ):
        seed(client, BY_KEY["email"])
        future = datetime.now(timezone.utc) + timedelta(days=1)
        page = run_in_flow(
            t.list_templates, page=1, page_size=10, start_date_time=future, credentials=credentials
        )
        assert page.templates == []
        [entry] = sent(sandbox, project, "ITERABLE_LIST_TEMPLATES")
        assert entry.query["startDateTime"] == [future.strftime("%Y-%m-%d %H:%M:%S +00:00")]

    @pytest.mark.parametrize(
        "bad",
        [{"page_size": 0}, {"page_size": 1001}, {"template_type": "Draft"}, {"sort": "size"}],
    )
    def test_rejects_bad_paging_and_filters(self, bad, run_in_flow, credentials, sandbox, project):
        with pytest.raises(InputValidationError):
            t.list_templates.fn(credentials=credentials, **bad)
        assert_nothing_sent(sandbox, project)

    def test_iter_templates_walks_every_page(self, client, credentials, sandbox, project):
        ids = [seed(client, BY_KEY["sms"], f"s{i}") for i in range(5)]
        found = list(t.iter_templates(credentials, page_size=2, message_medium="SMS"))
        assert [x.template_id for x in found] == ids
        pages = [e.query["page"] for e in sent(sandbox, project, "ITERABLE_LIST_TEMPLATES")]
        assert pages == [["1"], ["2"], ["3"]]

    @pytest.mark.parametrize("bad", [{"message_medium": "Fax"}, {"page_size": 0}])
    def test_iter_templates_checks_its_arguments(self, bad, credentials, sandbox, project):
        with pytest.raises(InputValidationError):
            list(t.iter_templates(credentials, **bad))
        assert_nothing_sent(sandbox, project)


class TestGetTemplateByClientId:
    def test_lists_templates_with_campaign_and_locales(
        self, client, run_in_flow, credentials, sandbox, project
    ):
        template_id = seed(client, BY_KEY["email"], "promo")
        seed(client, BY_KEY["email"], "promo", locale="fr", html="<p>Salut</p>")
        project.area("campaigns", dict)[77] = {"id": 77, "templateId": template_id}
        result = run_in_flow(t.get_template_by_client_id, "promo", credentials=credentials)
        assert isinstance(result, ClientTemplatesResponse)
        [entry] = result.templates
        assert (entry.template_id, entry.campaign_id, entry.locales) == (
            template_id,
            77,
            ["en", "fr"],
        )
        [request] = sent(sandbox, project, "ITERABLE_GET_TEMPLATE_BY_CLIENT_ID")
        assert request.query == {"clientTemplateId": ["promo"]}

    def test_rejects_an_empty_client_id(self, run_in_flow, credentials, sandbox, project):
        with pytest.raises(InputValidationError):
            t.get_template_by_client_id.fn("", credentials=credentials)
        assert_nothing_sent(sandbox, project)


class TestDeleteBulkTemplates:
    def test_skips_templates_used_by_a_campaign(
        self, client, run_in_flow, credentials, sandbox, project
    ):
        free = seed(client, BY_KEY["email"], "free")
        used = seed(client, BY_KEY["push"], "used")
        project.area("campaigns", dict)[900] = {"id": 900, "templateId": used}
        result = run_in_flow(t.delete_bulk_templates, [free, used], credentials=credentials)
        assert isinstance(result, BulkDeleteTemplatesResult)
        assert (result.success, result.failed) == ([free], [used])
        assert "campaign" in result.failure_reason
        assert list(templates(project)) == [used]
        [entry] = sent(sandbox, project, "ITERABLE_DELETE_BULK_TEMPLATES")
        assert (entry.method, entry.body) == ("POST", {"ids": [free, used]})

    def test_rejects_an_empty_list(self, run_in_flow, credentials, sandbox, project):
        with pytest.raises(InputValidationError, match="ids"):
            t.delete_bulk_templates.fn([], credentials=credentials)
        assert_nothing_sent(sandbox, project)

    def test_needs_the_delete_permission(
        self, run_in_flow, sandbox_server, api_key, sandbox, project
    ):
        default = IterableCredentials(api_key=api_key, base_url=sandbox_server.url)
        with pytest.raises(MissingPermission):
            run_in_flow(t.delete_bulk_templates, [1], credentials=default)
        assert_nothing_sent(sandbox, project)


# ---- preview and proofs -------------------------------------------------------------------------


class TestPreviewTemplates:
    @pytest.mark.parametrize("key", ["email", "in_app"])
    def test_renders_merge_fields_from_the_data_given(
        self, key, client, run_in_flow, credentials, sandbox, project
    ):
        kind = BY_KEY[key]
        template_id = seed(client, kind, html="<p>Hi {{firstName}}, {{city}}. [[deal]]</p>")
        html = run_in_flow(
            kind.task("preview"),
            template_id,
            data_fields={"firstName": "Ana & Bo"},
            data_feed={"deal": "2 for 1"},
            credentials=credentials,
        )
        # Missing fields render empty; {{…}} is HTML-escaped; [[…]] reads the data feed.
        assert html == "<p>Hi Ana &amp; Bo, . 2 for 1</p>"
        [entry] = sent(sandbox, project, f"ITERABLE_PREVIEW_{kind.action}_TEMPLATE")
        assert entry.query == {"templateId": [str(template_id)]}
        assert entry.body == {
            "dataFields": {"firstName": "Ana & Bo"},
            "dataFeed": {"deal": "2 for 1"},
        }

    @pytest.mark.parametrize("key", ["email", "in_app"])
    def test_rejects_a_non_object_data_fields(
        self, key, run_in_flow, credentials, sandbox, project
    ):
        with pytest.raises(InputValidationError, match="data_fields"):
            BY_KEY[key].task("preview").fn(1, data_fields=["x"], credentials=credentials)
        assert_nothing_sent(sandbox, project)

    def test_a_missing_template_is_not_found(self, run_in_flow, credentials):
        with pytest.raises(NotFound):
            run_in_flow(t.preview_email_template, 31337, credentials=credentials)


PROOF_KINDS = [BY_KEY[k] for k in ("email", "push", "sms", "in_app")]
proof_kinds = pytest.mark.parametrize("kind", PROOF_KINDS, ids=[k.key for k in PROOF_KINDS])


def proof_task(kind: Kind) -> Any:
    return getattr(t, f"send_{kind.key}_proof")


class TestSendProofs:
    @proof_kinds
    def test_records_one_proof_for_the_recipient(
        self, kind, client, run_in_flow, credentials, sandbox, project
    ):
        users(project).add(
            User(email="ana@example.com", user_id=None, data_fields={"city": "Oslo"})
        )
        template_id = seed(client, kind)
        result = run_in_flow(
            proof_task(kind),
            template_id,
            recipient_email="ana@example.com",
            data_fields={"firstName": "Ana"},
            credentials=credentials,
        )
        assert isinstance(result, ApiResponse) and result.code == "Success"
        [proof] = messages(project)
        assert (proof["kind"], proof["medium"], proof["templateId"], proof["email"]) == (
            "proof",
            kind.medium,
            template_id,
            "ana@example.com",
        )
        assert proof["dataFields"] == {"firstName": "Ana"}
        assert proof["content"][kind.main] == kind.content[kind.main].replace(
            "{{firstName}}", "Ana"
        )
        [entry] = sent(sandbox, project, f"ITERABLE_SEND_{kind.action}_PROOF")
        assert entry.body == {
            "templateId": template_id,
            "recipientEmail": "ana@example.com",
            "dataFields": {"firstName": "Ana"},
        }

    @proof_kinds
    @pytest.mark.parametrize(
        "recipient",
        [{}],
        ids=["neither"],
    )
    def test_needs_a_recipient(self, kind, recipient, run_in_flow, credentials, sandbox, project):
        with pytest.raises(InputValidationError, match="recipient"):
            proof_task(kind).fn(1, credentials=credentials, **recipient)
        assert_nothing_sent(sandbox, project)

    @proof_kinds
    def test_sends_both_recipient_identifiers(
        self, kind, client, run_in_flow, credentials, sandbox, project
    ):
        users(project).add(User(email="ana@example.com", user_id="u1"))
        template_id = seed(client, kind)
        run_in_flow(
            proof_task(kind),
            template_id,
            recipient_email="ana@example.com",
            recipient_user_id="u1",
            credentials=credentials,
        )
        [entry] = sent(sandbox, project, f"ITERABLE_SEND_{kind.action}_PROOF")
        assert (entry.body["recipientEmail"], entry.body["recipientUserId"]) == (
            "ana@example.com",
            "u1",
        )
        assert entry.status == 200

    @proof_kinds
    def test_needs_the_send_permission(
        self, kind, run_in_flow, sandbox_server, api_key, sandbox, project
    ):
        default = IterableCredentials(api_key=api_key, base_url=sandbox_server.url)
        with pytest.raises(MissingPermission):
            run_in_flow(proof_task(kind), 1, recipient_email="ana@example.com", credentials=default)
        assert_nothing_sent(sandbox, project)

    def test_an_unknown_recipient_is_refused_and_nothing_is_sent(
        self, client, run_in_flow, credentials, project
    ):
        template_id = seed(client, BY_KEY["email"])
        with pytest.raises(UnknownEmailError):
            run_in_flow(
                t.send_email_proof,
                template_id,
                recipient_email="ghost@example.com",
                credentials=credentials,
            )
        assert messages(project) == []

    def test_a_template_of_another_kind_is_refused(self, client, run_in_flow, credentials, project):
        users(project).add(User(email="ana@example.com", user_id=None))
        sms_id = seed(client, BY_KEY["sms"])
        with pytest.raises(BadParams):
            run_in_flow(
                t.send_push_proof,
                sms_id,
                recipient_email="ana@example.com",
                credentials=credentials,
            )
        assert messages(project) == []
