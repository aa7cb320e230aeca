"""Templates of the five kinds (email, push, SMS, in-app, embedded): get, update, upsert, list,
look up by client id, bulk delete, preview and proof.

Each template is stored in ``_shared.templates(project)`` as its wire JSON: template-level fields
(name, clientTemplateId, messageTypeId, …), ``messageMedium``, ``templateType`` (``Base`` for
API-made templates), ``createdAt``/``updatedAt`` in ms, and the default locale's content mirrored
at the top level so other areas can read ``html`` or ``message`` directly. Content per locale
lives under ``localeContent`` ({locale: {field: value}}), the default locale's name under
``defaultLocale``.
"""

from __future__ import annotations

import copy
import html as html_lib
import json
import re
from typing import Any

from prefect_iterable.sandbox.handlers import _shared
from prefect_iterable.sandbox.handlers._base import (
    ApiFailure,
    Call,
    Reply,
    bad_params,
    handles,
    not_found,
    paginate,
    success,
)
from prefect_iterable.sandbox.handlers._shared import (
    check_identity,
    now_ms,
    record_message,
    require_user,
    templates,
)
from prefect_iterable.sandbox.handlers.channels import CHANNELS, MESSAGE_TYPES
from prefect_iterable.sandbox.state import Project

# Action-id infix -> Iterable's messageMedium.
KINDS = {"EMAIL": "Email", "PUSH": "Push", "SMS": "SMS", "IN_APP": "InApp", "EMBEDDED": "Embedded"}

DEFAULT_LOCALE = "en"
ORGANIZATION_CREATOR = "owner@sandbox.example"

# Fields that may differ per locale; the rest of a template is shared by all its locales.
LOCALIZED: dict[str, frozenset[str]] = {
    "Email": frozenset({"subject", "html", "plainText", "preheaderText"}),
    "Push": frozenset({"title", "message", "buttons", "deeplink", "richMedia"}),
    "SMS": frozenset({"message", "imageUrl"}),
    "InApp": frozenset({"html", "inboxMetadata"}),
    "Embedded": frozenset({"title", "body", "elements"}),
}

_COMMON = frozenset({"name", "clientTemplateId", "messageTypeId", "creatorUserId"})
SHARED: dict[str, frozenset[str]] = {
    "Email": _COMMON
    | {
        "fromName",
        "fromEmail",
        "replyToEmail",
        "ccEmails",
        "bccEmails",
        "linkParams",
        "dataFeedId",
        "dataFeedIds",
        "cacheDataFeed",
        "mergeDataFeedContext",
        "googleAnalyticsCampaignName",
        "campaignDataFields",
    },
    "Push": _COMMON
    | {
        "badge",
        "sound",
        "wake",
        "isSilentPush",
        "interruptionLevel",
        "relevanceScore",
        "payload",
        "dataFeedIds",
        "cacheDataFeed",
        "mergeDataFeedContext",
        "campaignDataFields",
    },
    "SMS": _COMMON
    | {"linkParams", "trackingDomain", "googleAnalyticsCampaignName", "campaignDataFields"},
    "InApp": _COMMON
    | {
        "payload",
        "expirationDateTime",
        "expirationDuration",
        "inAppDisplaySettings",
        "webInAppDisplaySettings",
        "campaignDataFields",
    },
    "Embedded": _COMMON | {"payload", "placementId", "campaignDataFields"},
}

# Stored alongside the wire fields, never sent back as template content.
_INTERNAL = {"localeContent", "defaultLocale"}
# Stored by the sandbox; a request cannot set them. ``campaignId`` and ``metadata`` in an update
# body echo what a get returned and are ignored, as they describe the template, not change it.
_READ_ONLY = {"templateId", "messageMedium", "templateType", "createdAt", "updatedAt", "campaignId"}

_INTERRUPTION_LEVELS = {"passive", "active", "time-sensitive", "critical"}
_SORT = re.compile(r"^([+-]?)(id|name|createdAt|updatedAt)$")
_LIST_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})(?:\s*(Z|[+-]\d{2}:?\d{2}))?$")


def _medium(call: Call) -> str:
    for kind, medium in KINDS.items():
        if f"_{kind}_" in call.action + "_":
            return medium
    raise AssertionError(f"no template kind in {call.action}")


# ---- campaigns that use templates ----------------------------------------------------------


def _campaign_template_ids(project: Project) -> dict[int, int]:
    """templateId -> campaignId for every campaign the campaigns area holds."""
    used: dict[int, int] = {}
    for key, campaign in project.areas.get("campaigns", {}).items():
        if isinstance(campaign, dict):
            template_id = campaign.get("templateId")
            campaign_id = campaign.get("id", campaign.get("campaignId", key))
        else:
            template_id = getattr(campaign, "template_id", None)
            campaign_id = getattr(campaign, "id", key)
        if template_id is not None:
            used.setdefault(int(template_id), int(campaign_id))
    return used


def _campaign_of(project: Project, template: dict[str, Any]) -> int | None:
    if template.get("campaignId") is not None:
        return int(template["campaignId"])
    return _campaign_template_ids(project).get(template["templateId"])


# ---- reading and writing templates ---------------------------------------------------------


def _summary(project: Project, template: dict[str, Any]) -> dict[str, Any]:
    """The template as lists and ``metadata`` show it (Swagger ``ApiTemplateResponse``)."""
    body = {
        key: template.get(key)
        for key in (
            "templateId",
            "name",
            "createdAt",
            "updatedAt",
            "creatorUserId",
            "messageTypeId",
            "clientTemplateId",
            "messageMedium",
            "templateType",
        )
        if template.get(key) is not None
    }
    campaign_id = _campaign_of(project, template)
    if campaign_id is not None:
        body["campaignId"] = campaign_id
    return body


def _content_for(template: dict[str, Any], locale: str | None) -> tuple[str, dict[str, Any]]:
    chosen = locale or template["defaultLocale"]
    content = template["localeContent"].get(chosen)
    if content is None:
        raise not_found(f"Content does not exist for locale {chosen!r}")
    return chosen, content


def _as_wire(project: Project, template: dict[str, Any], locale: str | None) -> dict[str, Any]:
    chosen, content = _content_for(template, locale)
    medium = template["messageMedium"]
    body = {
        key: copy.deepcopy(value)
        for key, value in template.items()
        if key not in _INTERNAL and key not in LOCALIZED[medium]
    }
    body.update(copy.deepcopy(content))
    body["locale"] = chosen
    body["isDefaultLocale"] = chosen == template["defaultLocale"]
    body["metadata"] = _summary(project, template)
    campaign_id = _campaign_of(project, template)
    if campaign_id is not None:
        body["campaignId"] = campaign_id
    return body


def _default_message_type(medium: str) -> int | None:
    # In-app and embedded messages go out on the mobile (push) channel's message types.
    channel_medium = medium if medium in ("Email", "SMS") else "Push"
    channel_ids = {c["id"] for c in CHANNELS if c["messageMedium"] == channel_medium}
    for message_type in MESSAGE_TYPES:
        if message_type["channelId"] in channel_ids:
            return int(message_type["id"])
    return None


def _is_email(value: Any) -> bool:
    return isinstance(value, str) and re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", value) is not None


def _check_fields(medium: str, body: dict[str, Any]) -> None:
    """Refuse what Iterable refuses with a 400, before anything is written."""
    if "name" in body and (not isinstance(body["name"], str) or not body["name"].strip()):
        raise bad_params("name must be a non-empty string")
    if "clientTemplateId" in body and not (
        isinstance(body["clientTemplateId"], str) and body["clientTemplateId"].strip()
    ):
        raise bad_params("clientTemplateId must be a non-empty string")
    if "messageTypeId" in body and body["messageTypeId"] not in {t["id"] for t in MESSAGE_TYPES}:
        raise bad_params(f"Message type {body['messageTypeId']} does not exist")
    if "locale" in body and not (
        isinstance(body["locale"], str) and re.match(r"^[A-Za-z]{2,3}([-_]\w+)*$", body["locale"])
    ):
        raise bad_params(f"Invalid locale {body['locale']!r}")
    for key in ("fromEmail", "replyToEmail", "creatorUserId"):
        if key in body and not _is_email(body[key]):
            raise ApiFailure(400, "InvalidEmailAddressError", f"Invalid email for {key}")
    for key in ("ccEmails", "bccEmails"):
        if key in body and not (
            isinstance(body[key], list) and all(_is_email(e) for e in body[key])
        ):
            raise ApiFailure(400, "InvalidEmailAddressError", f"Invalid email in {key}")
    for param in body.get("linkParams") or []:
        if not (isinstance(param, dict) and param.get("key") and "value" in param):
            raise bad_params("each linkParams entry needs a key and a value")
    if medium == "Push":
        if len(body.get("buttons") or []) > 3:
            raise bad_params("A push template may have at most 3 buttons")
        level = body.get("interruptionLevel")
        if level is not None and level not in _INTERRUPTION_LEVELS:
            raise bad_params(f"Invalid interruptionLevel {level!r}")
        score = body.get("relevanceScore")
        if score is not None and not isinstance(score, (int, float)):
            raise bad_params("relevanceScore must be a number")
        if score is not None:  # Iterable clamps it into 0..1
            body["relevanceScore"] = min(1, max(0, score))
    if medium == "Embedded":
        elements = body.get("elements") or {}
        if len(elements.get("buttons") or []) > 2:
            raise bad_params("An embedded template may have at most 2 buttons")
    if medium == "InApp":
        # Both may be given: the absolute expirationDateTime wins (see messaging._expiry).
        expiry = body.get("expirationDateTime")
        if expiry is not None:
            _shared.parse_time(expiry, "expirationDateTime")
        duration = body.get("expirationDuration")
        if duration is not None and not re.match(r"^now\+\d+[smhdw]$", str(duration)):
            raise bad_params("expirationDuration must look like now+90d")


def _write(template: dict[str, Any], body: dict[str, Any]) -> None:
    """Apply the fields sent (and only those) to the template and the request's locale."""
    medium = template["messageMedium"]
    locale = body.get("locale") or template["defaultLocale"]
    if body.get("isDefaultLocale") and body.get("locale"):
        template["defaultLocale"] = locale
    content = template["localeContent"].setdefault(locale, {})
    for key, value in body.items():
        if key in LOCALIZED[medium]:
            content[key] = copy.deepcopy(value)
        elif key in SHARED[medium] and key not in _READ_ONLY:
            template[key] = copy.deepcopy(value)
    # Mirror the default locale's content at the top level, where other areas read it.
    for key in LOCALIZED[medium]:
        template.pop(key, None)
    template.update(copy.deepcopy(template["localeContent"].get(template["defaultLocale"], {})))
    template["updatedAt"] = now_ms()


def _create(project: Project, medium: str, body: dict[str, Any]) -> dict[str, Any]:
    template_id = project.next_id()
    created = now_ms()
    template: dict[str, Any] = {
        "templateId": template_id,
        "name": body.get("name") or body["clientTemplateId"],
        "clientTemplateId": body["clientTemplateId"],
        "messageMedium": medium,
        "templateType": "Base",
        "creatorUserId": body.get("creatorUserId") or ORGANIZATION_CREATOR,
        "messageTypeId": body.get("messageTypeId") or _default_message_type(medium),
        "createdAt": created,
        "updatedAt": created,
        "defaultLocale": DEFAULT_LOCALE,
        "localeContent": {},
    }
    _write(template, body)
    templates(project)[template_id] = template
    return template


def _body(call: Call) -> dict[str, Any]:
    if call.body is None:
        return {}
    if not isinstance(call.body, dict):
        raise bad_params("The request body must be a JSON object")
    return call.body


def _template_id(value: Any) -> int:
    if isinstance(value, bool) or value in (None, ""):
        raise bad_params("templateId is required")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad_params(f"templateId must be an integer, got {value!r}") from None


def _ensure_locales(template_id: int, template: dict[str, Any]) -> dict[str, Any]:
    """Give a template written by another area (a campaign's copy, a test) its locale index."""
    template.setdefault("templateId", template_id)
    template.setdefault("defaultLocale", DEFAULT_LOCALE)
    if "localeContent" not in template:
        localized = LOCALIZED.get(template.get("messageMedium", ""), frozenset())
        template["localeContent"] = {
            template["defaultLocale"]: {
                k: copy.deepcopy(v) for k, v in template.items() if k in localized
            }
        }
    return template


def _all(project: Project) -> list[dict[str, Any]]:
    return [_ensure_locales(i, t) for i, t in sorted(templates(project).items())]


def _find(project: Project, template_id: int, medium: str) -> dict[str, Any] | None:
    found = templates(project).get(template_id)
    if found is None or found.get("messageMedium") != medium:
        return None
    return _ensure_locales(template_id, found)


# ---- get, update, upsert -------------------------------------------------------------------


def get_template(call: Call) -> dict[str, Any]:
    medium = _medium(call)
    template = _find(call.project, _template_id(call.arg("templateId")), medium)
    if template is None:
        raise not_found(f"No {medium} template with id {call.arg('templateId')}")
    return _as_wire(call.project, template, call.arg("locale"))


def update_template(call: Call) -> dict[str, Any]:
    medium = _medium(call)
    body = _body(call)
    template_id = _template_id(body.get("templateId"))
    template = _find(call.project, template_id, medium)
    if template is None:
        raise not_found(f"No {medium} template with id {template_id}")
    _check_fields(medium, body)
    _write(template, body)
    return success(f"Updated template {template_id}")


def upsert_template(call: Call) -> dict[str, Any]:
    medium = _medium(call)
    body = _body(call)
    client_id = body.get("clientTemplateId")
    if not isinstance(client_id, str) or not client_id.strip():
        raise bad_params("clientTemplateId is required")
    _check_fields(medium, body)
    matches = [
        t
        for t in _all(call.project)
        if t.get("clientTemplateId") == client_id and t.get("messageMedium") == medium
    ]
    if matches:
        for template in matches:
            _write(template, body)
    else:
        matches = [_create(call.project, medium, body)]
    ids = [t["templateId"] for t in matches]
    return success(
        f"Upserted {len(ids)} templates with IDs: {', '.join(map(str, ids))}", templateIds=ids
    )


for _kind in KINDS:
    handles(f"ITERABLE_GET_{_kind}_TEMPLATE")(get_template)
    handles(f"ITERABLE_UPDATE_{_kind}_TEMPLATE")(update_template)
    handles(f"ITERABLE_UPSERT_{_kind}_TEMPLATE")(upsert_template)


# ---- list, look up, delete -----------------------------------------------------------------


def _list_date(call: Call, wire: str) -> int | None:
    value = call.arg(wire)
    if value in (None, ""):
        return None
    return _shared.parse_time_ms(value, wire)


@handles("ITERABLE_LIST_TEMPLATES")
def list_templates(call: Call) -> dict[str, Any]:
    template_type = call.arg("templateType")
    if template_type not in (None, "Base", "Blast", "Triggered", "Workflow"):
        raise bad_params(f"Invalid templateType {template_type!r}")
    medium = call.arg("messageMedium")
    if medium not in (None, "Email", "Push", "InApp", "SMS"):
        raise bad_params(f"Invalid messageMedium {medium!r}")
    start, end = _list_date(call, "startDateTime"), _list_date(call, "endDateTime")
    sort = _SORT.match(call.arg("sort") or "id")
    if sort is None:
        raise bad_params("sort must be id, name, createdAt or updatedAt, optionally prefixed")
    found = [
        t
        for t in _all(call.project)
        if (template_type is None or t.get("templateType") == template_type)
        and (medium is None or t.get("messageMedium") == medium)
        and (start is None or t.get("createdAt", 0) >= start)
        and (end is None or t.get("createdAt", 0) < end)
    ]
    direction, field = sort.groups()
    field = "templateId" if field == "id" else field
    found.sort(
        key=lambda t: (t.get(field) is None, t.get(field) or "", t["templateId"]),
        reverse=direction == "-",
    )
    summaries = [_summary(call.project, t) for t in found]
    if call.arg("page") is None and call.arg("pageSize") is None:
        # The deprecated unpaginated form: everything, without paging fields.
        return {"templates": summaries}
    page = paginate(call, summaries, default_size=20, max_size=1000)
    return {"templates": page.items, "totalTemplatesCount": page.total, **page.links()}


@handles("ITERABLE_GET_TEMPLATE_BY_CLIENT_ID")
def get_by_client_template_id(call: Call) -> dict[str, Any]:
    call.require("clientTemplateId")
    client_id = call.arg("clientTemplateId")
    entries = []
    for template in _all(call.project):
        if template.get("clientTemplateId") != client_id:
            continue
        entry: dict[str, Any] = {
            "templateId": template["templateId"],
            "locales": sorted(template["localeContent"]),
        }
        campaign_id = _campaign_of(call.project, template)
        if campaign_id is not None:
            entry["campaignId"] = campaign_id
        entries.append(entry)
    return {"templates": entries}


@handles("ITERABLE_DELETE_BULK_TEMPLATES")
def bulk_delete(call: Call) -> dict[str, Any]:
    ids = _body(call).get("ids")
    if not isinstance(ids, list) or not ids:
        raise bad_params("ids must be a non-empty list of template ids")
    store = templates(call.project)
    used = _campaign_template_ids(call.project)
    deleted: list[int] = []
    in_use: list[int] = []
    missing: list[int] = []
    for raw in ids:
        template_id = _template_id(raw)
        template = store.get(template_id)
        if template is None:
            missing.append(template_id)
        elif template_id in used or template.get("campaignId") is not None:
            in_use.append(template_id)
        else:
            del store[template_id]
            deleted.append(template_id)
    answer: dict[str, Any] = {"success": deleted, "failed": in_use + missing}
    reasons = []
    if in_use:
        reasons.append(f"templates used by a campaign cannot be deleted: {in_use}")
    if missing:
        reasons.append(f"templates not found: {missing}")
    if reasons:
        answer["failureReason"] = "; ".join(reasons)
    return answer


# ---- rendering: preview and proof ----------------------------------------------------------

_MERGE = re.compile(r"\{\{\{\s*([\w.\-]+)\s*\}\}\}|\{\{\s*([\w.\-]+)\s*\}\}")
_FEED = re.compile(r"\[\[\s*([\w.\-]+)\s*\]\]")
_HANDLEBARS_KEYWORDS = {"else", "this"}


def _lookup(context: dict[str, Any], path: str) -> Any:
    value: Any = context
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def render(text: str, fields: dict[str, Any], feed: dict[str, Any] | None = None) -> str:
    """Fill ``{{field}}`` (HTML-escaped), ``{{{field}}}`` (raw) and ``[[feedField]]``.

    A field the data lacks renders as an empty string, as Iterable does on a real send; block
    helpers (``{{#if}}``) are left as written.
    """

    def merge(match: re.Match[str]) -> str:
        raw, escaped = match.group(1), match.group(2)
        name = raw or escaped
        if name in _HANDLEBARS_KEYWORDS:
            return match.group(0)
        value = _as_text(_lookup(fields, name))
        return value if raw else html_lib.escape(value, quote=True)

    text = _MERGE.sub(merge, text)
    return _FEED.sub(lambda m: _as_text(_lookup(feed or {}, m.group(1))), text)


def _object(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_params(f"{key} must be a JSON object")
    return value


def _preview(call: Call) -> Reply:
    medium = _medium(call)
    template_id = _template_id(call.arg("templateId"))
    template = _find(call.project, template_id, medium)
    if template is None:
        raise not_found(f"Template {template_id} not found")
    _, content = _content_for(template, call.arg("locale"))
    body = _body(call)
    data_fields, data_feed = _object(body, "dataFields"), _object(body, "dataFeed")
    # The sandbox has no data feed sources, so fetchDataFeeds has nothing to add.
    context = dict(template.get("campaignDataFields") or {})
    if template.get("mergeDataFeedContext"):
        context.update(data_feed)
    context.update(data_fields)
    rendered = render(str(content.get("html") or ""), context, data_feed)
    return Reply(rendered, media_type="text/html; charset=utf-8")


handles("ITERABLE_PREVIEW_EMAIL_TEMPLATE")(_preview)
handles("ITERABLE_PREVIEW_IN_APP_TEMPLATE")(_preview)


def _proof(call: Call) -> dict[str, Any]:
    medium = _medium(call)
    body = _body(call)
    template_id = _template_id(body.get("templateId"))
    template = _find(call.project, template_id, medium)
    if template is None:
        raise bad_params(f"No {medium} template with id {template_id}")
    email, user_id = check_identity(
        call.project, body.get("recipientEmail"), body.get("recipientUserId")
    )
    user = require_user(call.project, email, user_id)
    data_fields = _object(body, "dataFields")
    locale = body.get("locale")
    if locale is not None and locale not in template["localeContent"]:
        raise bad_params(f"Template {template_id} has no content for locale {locale!r}")
    if locale is None:
        preferred = user.data_fields.get("locale")
        locale = preferred if preferred in template["localeContent"] else None
    chosen, content = _content_for(template, locale)
    context = {
        **(template.get("campaignDataFields") or {}),
        **user.as_json()["dataFields"],
        **data_fields,
    }
    rendered = {k: render(v, context) for k, v in content.items() if isinstance(v, str)}
    record_message(
        call.project,
        kind="proof",
        medium=medium,
        templateId=template_id,
        campaignId=None,
        email=user.email,
        userId=user.user_id,
        dataFields=dict(data_fields),
        locale=chosen,
        content=rendered,
    )
    return success(f"Sent a proof of template {template_id}")


for _kind in ("EMAIL", "PUSH", "SMS", "IN_APP"):
    handles(f"ITERABLE_SEND_{_kind}_PROOF")(_proof)
