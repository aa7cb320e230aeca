"""Tasks for Iterable's message templates: list, read, write, preview, proof and delete.

Iterable keeps one template per message kind (email, push, SMS, in-app, embedded). Each kind has
its own ``get``, ``update`` (by ``templateId``, changing only the fields sent) and ``upsert`` (by
``clientTemplateId``: creates the template, or updates *every* template of that kind carrying
the id). Content can differ per locale; a read for a locale without content answers 404.
Proofs send a real message to one user, so they need the ``send`` permission and never retry.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from prefect_iterable.api.errors import InputValidationError
from prefect_iterable.api.models import ApiResponse
from prefect_iterable.api.models.templates import (
    BulkDeleteTemplatesResult,
    ClientTemplatesResponse,
    DataFeedIds,
    EmailTemplate,
    EmbeddedTemplate,
    EmbeddedTemplateElements,
    InAppDisplaySettings,
    InAppTemplate,
    InterruptionLevel,
    LinkParam,
    PlatformUrls,
    PushButtons,
    PushTemplate,
    SmsTemplate,
    TemplateInboxMetadata,
    TemplatesPage,
    TemplateSummary,
    UpsertTemplateResponse,
    WebInAppDisplaySettings,
)
from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.tasks._core import iterable_task, resolve_credentials
from prefect_iterable.tasks._types import (
    Email,
    ExportDateTime,
    IterableDateTime,
    MessageMedium,
    PositiveId,
    UserId,
    case_insensitive,
)

__all__ = [
    "delete_bulk_templates",
    "get_email_template",
    "get_embedded_template",
    "get_in_app_template",
    "get_push_template",
    "get_sms_template",
    "get_template_by_client_id",
    "iter_templates",
    "list_templates",
    "preview_email_template",
    "preview_in_app_template",
    "send_email_proof",
    "send_in_app_proof",
    "send_push_proof",
    "send_sms_proof",
    "update_email_template",
    "update_embedded_template",
    "update_in_app_template",
    "update_push_template",
    "update_sms_template",
    "upsert_email_template",
    "upsert_embedded_template",
    "upsert_in_app_template",
    "upsert_push_template",
    "upsert_sms_template",
]

#: A locale tag: ``en``, ``en-US``, ``pt_BR``, ``zh-Hant-TW``.
#: A locale such as ``en`` or ``fr-CA``; ``""`` is the project's default locale.
Locale = Annotated[str, StringConstraints(pattern=r"^(?:[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*)?$")]
#: The caller's own key for a template: non-empty, no surrounding whitespace.
ClientTemplateId = Annotated[
    str, StringConstraints(min_length=1, max_length=255, pattern=r"^\S(?:.*\S)?$")
]
TemplateName = Annotated[str, StringConstraints(min_length=1, max_length=255)]
TemplateType = Annotated[
    Literal["Base", "Blast", "Triggered", "Workflow"],
    case_insensitive("Base", "Blast", "Triggered", "Workflow"),
]
#: The mediums the template list filters by (embedded templates cannot be filtered for).
ListMedium = MessageMedium
#: ``id``, ``-createdAt``, ``+name``: a field templates sort by, with an optional direction.
TemplateSort = Annotated[str, StringConstraints(pattern=r"^[+-]?(id|name|createdAt|updatedAt)$")]
PageSize = Annotated[int, Field(ge=1, le=1000)]
#: In-app expiry relative to the send time, e.g. ``now+90d`` (units h, d, w).
ExpirationDuration = Annotated[str, StringConstraints(pattern=r"^now\+[1-9]\d*[hdw]$")]
#: Iterable clamps a relevance score into 0..1 itself; any finite number is sent as given.
RelevanceScore = Annotated[float, Field(allow_inf_nan=False)]


# ---- list, look up, delete ---------------------------------------------------------------------


@iterable_task("ITERABLE_LIST_TEMPLATES")
def list_templates(
    *,
    page: PositiveId | None = None,
    page_size: PageSize | None = None,
    sort: TemplateSort | None = None,
    template_type: TemplateType | None = None,
    message_medium: ListMedium | None = None,
    start_date_time: ExportDateTime | None = None,
    end_date_time: ExportDateTime | None = None,
    credentials: IterableCredentials | None = None,
) -> TemplatesPage:
    """List one page of the project's templates, optionally filtered by type, medium and date.

    Send ``page`` and ``page_size``: without them Iterable answers everything only for projects
    still allowed the deprecated unpaginated form. To walk every page use ``iter_templates``.

    ITERABLE_LIST_TEMPLATES: GET /api/templates (100 requests/s per project).

    Args:
        page: 1-based page number.
        page_size: templates per page, 1-1000 (Iterable's default is 20).
        sort: ``id``, ``name``, ``createdAt`` or ``updatedAt``, prefixed with ``-`` for
            descending (``+`` or nothing for ascending).
        template_type: only ``Base`` (API and library templates), ``Blast``, ``Triggered`` or
            ``Workflow`` (journey) templates.
        message_medium: only ``Email``, ``Push``, ``InApp`` or ``SMS`` templates.
        start_date_time: only templates created at or after this time (naive = UTC).
        end_date_time: only templates created before this time (naive = UTC).
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        The page's templates (id, name, medium, type, timestamps in epoch ms) and, when more
        follow, ``next_page_url``.
    """


class _TemplateFilters(BaseModel):
    """The list filters ``iter_templates`` passes on, checked as ``list_templates`` checks them."""

    model_config = ConfigDict(extra="forbid")

    sort: TemplateSort | None = None
    template_type: TemplateType | None = None
    message_medium: ListMedium | None = None
    start_date_time: ExportDateTime | None = None
    end_date_time: ExportDateTime | None = None


def iter_templates(
    credentials: IterableCredentials | None = None,
    page_size: int = 100,
    **filters: Any,
) -> Iterator[TemplateSummary]:
    """Every template matching ``filters`` (the ``list_templates`` filters), page by page.

    Always sends ``page`` and ``page_size``; stops at a short page or one without
    ``nextPageUrl``. Runs in the caller (no task per page), so call it from a flow or task.
    """
    if not 1 <= page_size <= 1000:
        raise InputValidationError(
            "ITERABLE_LIST_TEMPLATES", [("page_size", "must be between 1 and 1000")]
        )
    try:
        wire = _TemplateFilters(**filters).model_dump(mode="json", exclude_none=True)
    except ValidationError as exc:
        errors = [(".".join(str(p) for p in e["loc"]) or "input", e["msg"]) for e in exc.errors()]
        raise InputValidationError("ITERABLE_LIST_TEMPLATES", errors) from None
    client = resolve_credentials(credentials).get_client()
    page = 1
    while True:
        body = TemplatesPage.model_validate(
            client.call("ITERABLE_LIST_TEMPLATES", page=page, page_size=page_size, **wire)
        )
        yield from body.templates
        if len(body.templates) < page_size or not body.next_page_url:
            return
        page += 1


@iterable_task(
    "ITERABLE_GET_TEMPLATE_BY_CLIENT_ID", run_name="get-template-by-client-id-{client_template_id}"
)
def get_template_by_client_id(
    client_template_id: ClientTemplateId, *, credentials: IterableCredentials | None = None
) -> ClientTemplatesResponse:
    """Find the templates carrying a client template id (of any kind).

    Use it to map your own template key to Iterable's ``templateId`` before an update, a
    preview or a campaign. Several templates may share one client id; an unknown id gives an
    empty list.

    ITERABLE_GET_TEMPLATE_BY_CLIENT_ID: GET /api/templates/getByClientTemplateId (100
    requests/s per project).

    Args:
        client_template_id: the key you gave the template at upsert.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Each matching template's id, the campaign using it (if any) and its content locales.
    """


@iterable_task("ITERABLE_DELETE_BULK_TEMPLATES", run_name="delete-bulk-templates")
def delete_bulk_templates(
    ids: Annotated[list[PositiveId], Field(min_length=1)],
    *,
    credentials: IterableCredentials | None = None,
) -> BulkDeleteTemplatesResult:
    """Delete base templates by id; templates used by a campaign are skipped, not deleted.

    Deletion cannot be undone. Check ``failed`` in the result: ids attached to a campaign (or
    unknown) stay there with a ``failure_reason``. Needs the ``delete`` permission.

    ITERABLE_DELETE_BULK_TEMPLATES: POST /api/templates/bulkDelete (no documented rate limit).

    Args:
        ids: template ids to delete (at least one).
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        The ids deleted (``success``), the ids left (``failed``) and why.
    """


# ---- email -------------------------------------------------------------------------------------


@iterable_task("ITERABLE_GET_EMAIL_TEMPLATE", run_name="get-email-template-{template_id}")
def get_email_template(
    template_id: PositiveId,
    *,
    locale: Locale | None = None,
    credentials: IterableCredentials | None = None,
) -> EmailTemplate:
    """Read an email template's content and settings, in one locale.

    Fails with ``NotFound`` when the id is not an email template or has no content for
    ``locale``.

    ITERABLE_GET_EMAIL_TEMPLATE: GET /api/templates/email/get (100 requests/s per project).

    Args:
        template_id: the email template's id.
        locale: the content's locale (e.g. ``fr``); omitted, the default locale.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Subject, HTML, plain text, sender fields, link parameters, data feeds and metadata.
    """


@iterable_task("ITERABLE_UPDATE_EMAIL_TEMPLATE", run_name="update-email-template-{template_id}")
def update_email_template(
    template_id: PositiveId,
    *,
    name: TemplateName | None = None,
    locale: Locale | None = None,
    is_default_locale: bool | None = None,
    subject: str | None = None,
    html: str | None = None,
    plain_text: str | None = None,
    preheader_text: str | None = None,
    from_name: str | None = None,
    from_email: Email | None = None,
    reply_to_email: Email | None = None,
    cc_emails: list[Email] | None = None,
    bcc_emails: list[Email] | None = None,
    link_params: list[LinkParam] | None = None,
    client_template_id: ClientTemplateId | None = None,
    message_type_id: PositiveId | None = None,
    creator_user_id: Email | None = None,
    campaign_data_fields: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    data_feed_id: PositiveId | None = None,
    data_feed_ids: DataFeedIds | None = None,
    cache_data_feed: bool | None = None,
    merge_data_feed_context: bool | None = None,
    google_analytics_campaign_name: str | None = None,
    credentials: IterableCredentials | None = None,
) -> ApiResponse:
    """Change an existing email template; only the fields given are changed.

    The template must exist and be an email template (``NotFound`` otherwise). Content fields
    (subject, HTML, …) go to ``locale``'s content, which is created if the template had none.

    ITERABLE_UPDATE_EMAIL_TEMPLATE: POST /api/templates/email/update (no documented rate limit).

    Args:
        template_id: the email template to change.
        name: new template name.
        locale: the locale of the content sent (omitted: the default locale).
        is_default_locale: make ``locale`` the template's default (a beta feature).
        subject: subject line; may use ``{{field}}`` merge parameters.
        html: HTML body.
        plain_text: plain-text body.
        preheader_text: preview text shown after the subject in inboxes.
        from_name: sender name.
        from_email: sender address; must be an authorized sender.
        reply_to_email: reply-to address.
        cc_emails: CC addresses.
        bcc_emails: BCC addresses.
        link_params: query parameters appended to every link.
        client_template_id: your own key for the template (upserts match on it).
        message_type_id: the message type (and so channel) the template sends under.
        creator_user_id: email of the project member recorded as creator.
        campaign_data_fields: campaign-level ``{{field}}`` values; user and event fields of
            the same name win.
        metadata: template metadata, as ``get_email_template`` returns it.
        data_feed_id: deprecated single data feed id; prefer ``data_feed_ids``.
        data_feed_ids: data feeds the template renders with.
        cache_data_feed: cache data feed lookups for an hour.
        merge_data_feed_context: expose data feed fields as ``{{field}}`` instead of ``[[field]]``.
        google_analytics_campaign_name: the ``utm_campaign`` value.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope.
    """


@iterable_task(
    "ITERABLE_UPSERT_EMAIL_TEMPLATE", run_name="upsert-email-template-{client_template_id}"
)
def upsert_email_template(
    client_template_id: ClientTemplateId,
    *,
    name: TemplateName | None = None,
    locale: Locale | None = None,
    is_default_locale: bool | None = None,
    subject: str | None = None,
    html: str | None = None,
    plain_text: str | None = None,
    preheader_text: str | None = None,
    from_name: str | None = None,
    from_email: Email | None = None,
    reply_to_email: Email | None = None,
    cc_emails: list[Email] | None = None,
    bcc_emails: list[Email] | None = None,
    link_params: list[LinkParam] | None = None,
    message_type_id: PositiveId | None = None,
    creator_user_id: Email | None = None,
    data_feed_id: PositiveId | None = None,
    data_feed_ids: DataFeedIds | None = None,
    cache_data_feed: bool | None = None,
    merge_data_feed_context: bool | None = None,
    google_analytics_campaign_name: str | None = None,
    credentials: IterableCredentials | None = None,
) -> UpsertTemplateResponse:
    """Create an email template, or update every email template with this client template id.

    Safe to repeat: the same call leaves the same state. Use it to keep templates in code and
    sync them; only the fields given change on existing templates.

    ITERABLE_UPSERT_EMAIL_TEMPLATE: POST /api/templates/email/upsert (no documented rate limit).

    Args:
        client_template_id: your key for the template; every email template with it is
            updated, or one is created.
        name: template name.
        locale: the locale of the content sent (omitted: the default locale).
        is_default_locale: make ``locale`` the template's default (a beta feature).
        subject: subject line; may use ``{{field}}`` merge parameters.
        html: HTML body.
        plain_text: plain-text body.
        preheader_text: preview text shown after the subject in inboxes.
        from_name: sender name.
        from_email: sender address; must be an authorized sender.
        reply_to_email: reply-to address.
        cc_emails: CC addresses.
        bcc_emails: BCC addresses.
        link_params: query parameters appended to every link.
        message_type_id: the message type (and so channel) the template sends under.
        creator_user_id: email of the project member recorded as creator (default: the
            organization's creator).
        data_feed_id: deprecated single data feed id; prefer ``data_feed_ids``.
        data_feed_ids: data feeds the template renders with.
        cache_data_feed: cache data feed lookups for an hour.
        merge_data_feed_context: expose data feed fields as ``{{field}}`` instead of
            ``[[field]]``.
        google_analytics_campaign_name: the ``utm_campaign`` value.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope; ``template_ids`` lists the templates written.
    """


@iterable_task("ITERABLE_PREVIEW_EMAIL_TEMPLATE", run_name="preview-email-template-{template_id}")
def preview_email_template(
    template_id: PositiveId,
    *,
    locale: Locale | None = None,
    data_fields: dict[str, Any] | None = None,
    data_feed: dict[str, Any] | None = None,
    fetch_data_feeds: bool | None = None,
    credentials: IterableCredentials | None = None,
) -> str:
    """Render an email template's HTML with the data you give, without sending anything.

    Fields the template uses but the data lacks render as empty strings, as in a real send.

    ITERABLE_PREVIEW_EMAIL_TEMPLATE: POST /api/templates/email/preview (10 requests/s per
    project).

    Args:
        template_id: the email template to render.
        locale: the content's locale (omitted: the default locale).
        data_fields: values for ``{{field}}`` merge parameters (profile, event or custom).
        data_feed: data feed values, used as ``[[field]]`` (or ``{{field}}`` when the template
            merges the data feed context).
        fetch_data_feeds: also fetch the template's configured data feeds; ``data_feed``
            overrides what they return.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        The rendered HTML.
    """


@iterable_task(
    "ITERABLE_SEND_EMAIL_PROOF",
    run_name="send-email-proof-{template_id}",
    one_of=("recipient_email", "recipient_user_id"),
    need_one=True,
)
def send_email_proof(
    template_id: PositiveId,
    *,
    recipient_email: Email | None = None,
    recipient_user_id: UserId | None = None,
    data_fields: dict[str, Any] | None = None,
    locale: Locale | None = None,
    credentials: IterableCredentials | None = None,
) -> ApiResponse:
    """Send a proof of an email template to one user of the project.

    Each call sends another email, so the task never retries; it needs the ``send``
    permission. Name the recipient by email or by userId, as the project identifies users.

    ITERABLE_SEND_EMAIL_PROOF: POST /api/templates/email/proof (20 requests/s per API key).

    Args:
        template_id: the email template to send.
        recipient_email: the recipient's email (give this or ``recipient_user_id``).
        recipient_user_id: the recipient's userId.
        data_fields: merge values; they override the recipient's profile fields.
        locale: the content locale; omitted, the recipient's locale, then the default.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope.
    """


# ---- push --------------------------------------------------------------------------------------


@iterable_task("ITERABLE_GET_PUSH_TEMPLATE", run_name="get-push-template-{template_id}")
def get_push_template(
    template_id: PositiveId,
    *,
    locale: Locale | None = None,
    credentials: IterableCredentials | None = None,
) -> PushTemplate:
    """Read a push template's content and settings, in one locale.

    Fails with ``NotFound`` when the id is not a push template or has no content for
    ``locale``.

    ITERABLE_GET_PUSH_TEMPLATE: GET /api/templates/push/get (100 requests/s per project).

    Args:
        template_id: the push template's id.
        locale: the content's locale (e.g. ``fr``); omitted, the default locale.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Title, message, buttons, deep link, rich media, payload and iOS settings.
    """


@iterable_task("ITERABLE_UPDATE_PUSH_TEMPLATE", run_name="update-push-template-{template_id}")
def update_push_template(
    template_id: PositiveId,
    *,
    name: TemplateName | None = None,
    locale: Locale | None = None,
    is_default_locale: bool | None = None,
    title: str | None = None,
    message: str | None = None,
    badge: str | None = None,
    sound: str | None = None,
    wake: bool | None = None,
    is_silent_push: bool | None = None,
    interruption_level: InterruptionLevel | None = None,
    relevance_score: RelevanceScore | None = None,
    buttons: PushButtons | None = None,
    deeplink: PlatformUrls | None = None,
    rich_media: PlatformUrls | None = None,
    payload: dict[str, Any] | None = None,
    client_template_id: ClientTemplateId | None = None,
    message_type_id: PositiveId | None = None,
    campaign_id: PositiveId | None = None,
    campaign_data_fields: dict[str, Any] | None = None,
    data_feed_ids: DataFeedIds | None = None,
    cache_data_feed: bool | None = None,
    merge_data_feed_context: bool | None = None,
    credentials: IterableCredentials | None = None,
) -> ApiResponse:
    """Change an existing push template; only the fields given are changed.

    The template must exist and be a push template (``NotFound`` otherwise). Content fields go
    to ``locale``'s content, which is created if the template had none.

    ITERABLE_UPDATE_PUSH_TEMPLATE: POST /api/templates/push/update (no documented rate limit).

    Args:
        template_id: the push template to change.
        name: new template name.
        locale: the locale of the content sent (omitted: the default locale).
        is_default_locale: make ``locale`` the template's default (a beta feature).
        title: notification title.
        message: notification text; may use ``{{field}}`` merge parameters.
        badge: the app icon badge to set.
        sound: the sound to play.
        wake: set iOS content-available, waking the app in the background.
        is_silent_push: a silent (data-only) notification.
        interruption_level: iOS interruption level: passive, active, time-sensitive or
            critical.
        relevance_score: iOS 15+ relevance, 0 to 1.
        buttons: up to three action buttons.
        deeplink: deep link per platform (``ios``, ``android``).
        rich_media: rich-media URL per platform.
        payload: custom JSON sent with the notification.
        client_template_id: your own key for the template (upserts match on it).
        message_type_id: the message type (and so channel) the template sends under.
        campaign_id: the campaign the template belongs to (as Iterable reports it).
        campaign_data_fields: campaign-level ``{{field}}`` values; user and event fields of
            the same name win.
        data_feed_ids: data feeds the template renders with.
        cache_data_feed: cache data feed lookups for an hour.
        merge_data_feed_context: expose data feed fields as ``{{field}}``.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope.
    """


@iterable_task(
    "ITERABLE_UPSERT_PUSH_TEMPLATE", run_name="upsert-push-template-{client_template_id}"
)
def upsert_push_template(
    client_template_id: ClientTemplateId,
    *,
    name: TemplateName | None = None,
    locale: Locale | None = None,
    is_default_locale: bool | None = None,
    title: str | None = None,
    message: str | None = None,
    badge: str | None = None,
    sound: str | None = None,
    wake: bool | None = None,
    is_silent_push: bool | None = None,
    interruption_level: InterruptionLevel | None = None,
    relevance_score: RelevanceScore | None = None,
    buttons: PushButtons | None = None,
    deeplink: PlatformUrls | None = None,
    rich_media: PlatformUrls | None = None,
    payload: dict[str, Any] | None = None,
    message_type_id: PositiveId | None = None,
    creator_user_id: Email | None = None,
    data_feed_ids: DataFeedIds | None = None,
    cache_data_feed: bool | None = None,
    merge_data_feed_context: bool | None = None,
    credentials: IterableCredentials | None = None,
) -> UpsertTemplateResponse:
    """Create a push template, or update every push template with this client template id.

    Safe to repeat: the same call leaves the same state. Only the fields given change on
    existing templates.

    ITERABLE_UPSERT_PUSH_TEMPLATE: POST /api/templates/push/upsert (no documented rate limit).

    Args:
        client_template_id: your key for the template; every push template with it is
            updated, or one is created.
        name: template name.
        locale: the locale of the content sent (omitted: the default locale).
        is_default_locale: make ``locale`` the template's default (a beta feature).
        title: notification title.
        message: notification text; may use ``{{field}}`` merge parameters.
        badge: the app icon badge to set.
        sound: the sound to play.
        wake: set iOS content-available, waking the app in the background.
        is_silent_push: a silent (data-only) notification.
        interruption_level: iOS interruption level: passive, active, time-sensitive or
            critical.
        relevance_score: iOS 15+ relevance, 0 to 1.
        buttons: up to three action buttons.
        deeplink: deep link per platform (``ios``, ``android``).
        rich_media: rich-media URL per platform.
        payload: custom JSON sent with the notification.
        message_type_id: the message type (and so channel) the template sends under.
        creator_user_id: email of the project member recorded as creator.
        data_feed_ids: data feeds the template renders with.
        cache_data_feed: cache data feed lookups for an hour.
        merge_data_feed_context: expose data feed fields as ``{{field}}``.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope; ``template_ids`` lists the templates written.
    """


@iterable_task(
    "ITERABLE_SEND_PUSH_PROOF",
    run_name="send-push-proof-{template_id}",
    one_of=("recipient_email", "recipient_user_id"),
    need_one=True,
)
def send_push_proof(
    template_id: PositiveId,
    *,
    recipient_email: Email | None = None,
    recipient_user_id: UserId | None = None,
    data_fields: dict[str, Any] | None = None,
    locale: Locale | None = None,
    credentials: IterableCredentials | None = None,
) -> ApiResponse:
    """Send a proof of a push template to one user's devices.

    Each call sends another notification, so the task never retries; it needs the ``send``
    permission.

    ITERABLE_SEND_PUSH_PROOF: POST /api/templates/push/proof (20 requests/s per API key).

    Args:
        template_id: the push template to send.
        recipient_email: the recipient's email (give this or ``recipient_user_id``).
        recipient_user_id: the recipient's userId.
        data_fields: merge values; they override the recipient's profile fields.
        locale: the content locale; omitted, the recipient's locale, then the default.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope.
    """


# ---- SMS ---------------------------------------------------------------------------------------


@iterable_task("ITERABLE_GET_SMS_TEMPLATE", run_name="get-sms-template-{template_id}")
def get_sms_template(
    template_id: PositiveId,
    *,
    locale: Locale | None = None,
    credentials: IterableCredentials | None = None,
) -> SmsTemplate:
    """Read an SMS template's content and settings, in one locale.

    Fails with ``NotFound`` when the id is not an SMS template or has no content for
    ``locale``.

    ITERABLE_GET_SMS_TEMPLATE: GET /api/templates/sms/get (100 requests/s per project).

    Args:
        template_id: the SMS template's id.
        locale: the content's locale (e.g. ``fr``); omitted, the default locale.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Message text, image URL, link parameters and tracking settings.
    """


@iterable_task("ITERABLE_UPDATE_SMS_TEMPLATE", run_name="update-sms-template-{template_id}")
def update_sms_template(
    template_id: PositiveId,
    *,
    name: TemplateName | None = None,
    locale: Locale | None = None,
    is_default_locale: bool | None = None,
    message: str | None = None,
    image_url: str | None = None,
    link_params: list[LinkParam] | None = None,
    tracking_domain: str | None = None,
    client_template_id: ClientTemplateId | None = None,
    message_type_id: PositiveId | None = None,
    campaign_id: PositiveId | None = None,
    campaign_data_fields: dict[str, Any] | None = None,
    google_analytics_campaign_name: str | None = None,
    credentials: IterableCredentials | None = None,
) -> ApiResponse:
    """Change an existing SMS template; only the fields given are changed.

    The template must exist and be an SMS template (``NotFound`` otherwise). Content fields go
    to ``locale``'s content, which is created if the template had none.

    ITERABLE_UPDATE_SMS_TEMPLATE: POST /api/templates/sms/update (no documented rate limit).

    Args:
        template_id: the SMS template to change.
        name: new template name.
        locale: the locale of the content sent (omitted: the default locale).
        is_default_locale: make ``locale`` the template's default (a beta feature).
        message: the text; may use ``{{field}}`` merge parameters.
        image_url: an image to send as MMS.
        link_params: query parameters appended to every link in the text.
        tracking_domain: the domain used for shortened, tracked links.
        client_template_id: your own key for the template (upserts match on it).
        message_type_id: the message type (and so channel) the template sends under.
        campaign_id: the campaign the template belongs to.
        campaign_data_fields: campaign-level ``{{field}}`` values; user and event fields of
            the same name win.
        google_analytics_campaign_name: the ``utm_campaign`` value.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope.
    """


@iterable_task("ITERABLE_UPSERT_SMS_TEMPLATE", run_name="upsert-sms-template-{client_template_id}")
def upsert_sms_template(
    client_template_id: ClientTemplateId,
    *,
    name: TemplateName | None = None,
    locale: Locale | None = None,
    is_default_locale: bool | None = None,
    message: str | None = None,
    image_url: str | None = None,
    link_params: list[LinkParam] | None = None,
    message_type_id: PositiveId | None = None,
    creator_user_id: Email | None = None,
    google_analytics_campaign_name: str | None = None,
    credentials: IterableCredentials | None = None,
) -> UpsertTemplateResponse:
    """Create an SMS template, or update every SMS template with this client template id.

    Safe to repeat: the same call leaves the same state. Only the fields given change on
    existing templates.

    ITERABLE_UPSERT_SMS_TEMPLATE: POST /api/templates/sms/upsert (no documented rate limit).

    Args:
        client_template_id: your key for the template; every SMS template with it is
            updated, or one is created.
        name: template name.
        locale: the locale of the content sent (omitted: the default locale).
        is_default_locale: make ``locale`` the template's default (a beta feature).
        message: the text; may use ``{{field}}`` merge parameters.
        image_url: an image to send as MMS.
        link_params: query parameters appended to every link in the text.
        message_type_id: the message type (and so channel) the template sends under.
        creator_user_id: email of the project member recorded as creator.
        google_analytics_campaign_name: the ``utm_campaign`` value.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope; ``template_ids`` lists the templates written.
    """


@iterable_task(
    "ITERABLE_SEND_SMS_PROOF",
    run_name="send-sms-proof-{template_id}",
    one_of=("recipient_email", "recipient_user_id"),
    need_one=True,
)
def send_sms_proof(
    template_id: PositiveId,
    *,
    recipient_email: Email | None = None,
    recipient_user_id: UserId | None = None,
    data_fields: dict[str, Any] | None = None,
    locale: Locale | None = None,
    credentials: IterableCredentials | None = None,
) -> ApiResponse:
    """Send a proof of an SMS template to one user's phone number.

    Each call sends another text, so the task never retries; it needs the ``send``
    permission.

    ITERABLE_SEND_SMS_PROOF: POST /api/templates/sms/proof (20 requests/s per API key).

    Args:
        template_id: the SMS template to send.
        recipient_email: the recipient's email (give this or ``recipient_user_id``).
        recipient_user_id: the recipient's userId.
        data_fields: merge values; they override the recipient's profile fields.
        locale: the content locale; omitted, the recipient's locale, then the default.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope.
    """


# ---- in-app ------------------------------------------------------------------------------------


@iterable_task("ITERABLE_GET_IN_APP_TEMPLATE", run_name="get-in-app-template-{template_id}")
def get_in_app_template(
    template_id: PositiveId,
    *,
    locale: Locale | None = None,
    credentials: IterableCredentials | None = None,
) -> InAppTemplate:
    """Read an in-app template's content and settings, in one locale.

    Fails with ``NotFound`` when the id is not an in-app template or has no content for
    ``locale``.

    ITERABLE_GET_IN_APP_TEMPLATE: GET /api/templates/inapp/get (no documented rate limit).

    Args:
        template_id: the in-app template's id.
        locale: the content's locale (e.g. ``fr``); omitted, the default locale.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        HTML, inbox metadata, display settings, payload and expiry.
    """


@iterable_task(
    "ITERABLE_UPDATE_IN_APP_TEMPLATE",
    run_name="update-in-app-template-{template_id}",
)
def update_in_app_template(
    template_id: PositiveId,
    *,
    name: TemplateName | None = None,
    locale: Locale | None = None,
    is_default_locale: bool | None = None,
    html: str | None = None,
    payload: dict[str, Any] | None = None,
    inbox_metadata: TemplateInboxMetadata | None = None,
    in_app_display_settings: InAppDisplaySettings | None = None,
    web_in_app_display_settings: WebInAppDisplaySettings | None = None,
    expiration_date_time: IterableDateTime | None = None,
    expiration_duration: ExpirationDuration | None = None,
    client_template_id: ClientTemplateId | None = None,
    message_type_id: PositiveId | None = None,
    campaign_id: PositiveId | None = None,
    campaign_data_fields: dict[str, Any] | None = None,
    credentials: IterableCredentials | None = None,
) -> ApiResponse:
    """Change an existing in-app template; only the fields given are changed.

    The template must exist and be an in-app template (``NotFound`` otherwise). Give at most
    one of ``expiration_date_time`` and ``expiration_duration``.

    ITERABLE_UPDATE_IN_APP_TEMPLATE: POST /api/templates/inapp/update (no documented rate
    limit).

    Args:
        template_id: the in-app template to change.
        name: new template name.
        locale: the locale of the content sent (omitted: the default locale).
        is_default_locale: make ``locale`` the template's default (a beta feature).
        html: the message's HTML; may use ``{{field}}`` merge parameters.
        payload: custom JSON delivered with the message.
        inbox_metadata: title, subtitle and icon shown in the mobile inbox.
        in_app_display_settings: padding, background and animation on mobile.
        web_in_app_display_settings: position on web pages.
        expiration_date_time: absolute expiry (naive = UTC); a time before the send hides the
            message from everyone.
        expiration_duration: expiry relative to the send, e.g. ``now+30d`` (default 90 days).
        client_template_id: your own key for the template (upserts match on it).
        message_type_id: the message type (and so channel) the template sends under.
        campaign_id: the campaign the template belongs to (as Iterable reports it).
        campaign_data_fields: campaign-level ``{{field}}`` values; user and event fields of
            the same name win.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope.
    """


@iterable_task(
    "ITERABLE_UPSERT_IN_APP_TEMPLATE",
    run_name="upsert-in-app-template-{client_template_id}",
)
def upsert_in_app_template(
    client_template_id: ClientTemplateId,
    *,
    name: TemplateName | None = None,
    locale: Locale | None = None,
    is_default_locale: bool | None = None,
    html: str | None = None,
    payload: dict[str, Any] | None = None,
    inbox_metadata: TemplateInboxMetadata | None = None,
    in_app_display_settings: InAppDisplaySettings | None = None,
    web_in_app_display_settings: WebInAppDisplaySettings | None = None,
    expiration_date_time: IterableDateTime | None = None,
    expiration_duration: ExpirationDuration | None = None,
    message_type_id: PositiveId | None = None,
    creator_user_id: Email | None = None,
    credentials: IterableCredentials | None = None,
) -> UpsertTemplateResponse:
    """Create an in-app template, or update every in-app template with this client template id.

    Safe to repeat: the same call leaves the same state. Only the fields given change on
    existing templates. Give at most one of ``expiration_date_time`` and
    ``expiration_duration``.

    ITERABLE_UPSERT_IN_APP_TEMPLATE: POST /api/templates/inapp/upsert (no documented rate
    limit).

    Args:
        client_template_id: your key for the template; every in-app template with it is
            updated, or one is created.
        name: template name.
        locale: the locale of the content sent (omitted: the default locale).
        is_default_locale: make ``locale`` the template's default (a beta feature).
        html: the message's HTML; may use ``{{field}}`` merge parameters.
        payload: custom JSON delivered with the message.
        inbox_metadata: title, subtitle and icon shown in the mobile inbox.
        in_app_display_settings: padding, background and animation on mobile.
        web_in_app_display_settings: position on web pages.
        expiration_date_time: absolute expiry (naive = UTC).
        expiration_duration: expiry relative to the send, e.g. ``now+30d`` (default 90 days).
        message_type_id: the message type (and so channel) the template sends under.
        creator_user_id: email of the project member recorded as creator.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope; ``template_ids`` lists the templates written.
    """


@iterable_task("ITERABLE_PREVIEW_IN_APP_TEMPLATE", run_name="preview-in-app-template-{template_id}")
def preview_in_app_template(
    template_id: PositiveId,
    *,
    locale: Locale | None = None,
    data_fields: dict[str, Any] | None = None,
    data_feed: dict[str, Any] | None = None,
    fetch_data_feeds: bool | None = None,
    credentials: IterableCredentials | None = None,
) -> str:
    """Render an in-app template's HTML with the data you give, without sending anything.

    Fields the template uses but the data lacks render as empty strings, as in a real send.

    ITERABLE_PREVIEW_IN_APP_TEMPLATE: POST /api/templates/inapp/preview (10 requests/s per
    project).

    Args:
        template_id: the in-app template to render.
        locale: the content's locale (omitted: the default locale).
        data_fields: values for ``{{field}}`` merge parameters (profile, event or custom).
        data_feed: data feed values, used as ``[[field]]`` (or ``{{field}}`` when the template
            merges the data feed context).
        fetch_data_feeds: also fetch the template's configured data feeds; ``data_feed``
            overrides what they return.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        The rendered HTML.
    """


@iterable_task(
    "ITERABLE_SEND_IN_APP_PROOF",
    run_name="send-in-app-proof-{template_id}",
    one_of=("recipient_email", "recipient_user_id"),
    need_one=True,
)
def send_in_app_proof(
    template_id: PositiveId,
    *,
    recipient_email: Email | None = None,
    recipient_user_id: UserId | None = None,
    data_fields: dict[str, Any] | None = None,
    locale: Locale | None = None,
    credentials: IterableCredentials | None = None,
) -> ApiResponse:
    """Send a proof of an in-app template to one user's app.

    Each call delivers another message, so the task never retries; it needs the ``send``
    permission.

    ITERABLE_SEND_IN_APP_PROOF: POST /api/templates/inapp/proof (20 requests/s per API key).

    Args:
        template_id: the in-app template to send.
        recipient_email: the recipient's email (give this or ``recipient_user_id``).
        recipient_user_id: the recipient's userId.
        data_fields: merge values; they override the recipient's profile fields.
        locale: the content locale; omitted, the recipient's locale, then the default.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope.
    """


# ---- embedded ----------------------------------------------------------------------------------


@iterable_task("ITERABLE_GET_EMBEDDED_TEMPLATE", run_name="get-embedded-template-{template_id}")
def get_embedded_template(
    template_id: PositiveId,
    *,
    locale: Locale | None = None,
    credentials: IterableCredentials | None = None,
) -> EmbeddedTemplate:
    """Read an embedded message template's content and settings, in one locale.

    Fails with ``NotFound`` when the id is not an embedded template or has no content for
    ``locale``.

    ITERABLE_GET_EMBEDDED_TEMPLATE: GET /api/templates/embedded/get (100 requests/s per
    project).

    Args:
        template_id: the embedded template's id.
        locale: the content's locale (e.g. ``fr``); omitted, the default locale.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Title, body, elements (buttons, media, text), payload and placement.
    """


@iterable_task(
    "ITERABLE_UPDATE_EMBEDDED_TEMPLATE", run_name="update-embedded-template-{template_id}"
)
def update_embedded_template(
    template_id: PositiveId,
    *,
    name: TemplateName | None = None,
    locale: Locale | None = None,
    is_default_locale: bool | None = None,
    title: str | None = None,
    body: str | None = None,
    elements: EmbeddedTemplateElements | None = None,
    payload: dict[str, Any] | None = None,
    placement_id: PositiveId | None = None,
    client_template_id: ClientTemplateId | None = None,
    message_type_id: PositiveId | None = None,
    campaign_id: PositiveId | None = None,
    campaign_data_fields: dict[str, Any] | None = None,
    credentials: IterableCredentials | None = None,
) -> ApiResponse:
    """Change an existing embedded message template; only the fields given are changed.

    The template must exist and be an embedded template (``NotFound`` otherwise).

    ITERABLE_UPDATE_EMBEDDED_TEMPLATE: POST /api/templates/embedded/update (no documented rate
    limit).

    Args:
        template_id: the embedded template to change.
        name: new template name.
        locale: the locale of the content sent (omitted: the default locale).
        is_default_locale: make ``locale`` the template's default (a beta feature).
        title: the message's title.
        body: the message's body text.
        elements: buttons (at most two), media, custom text fields and the default action.
        payload: custom JSON delivered with the message.
        placement_id: the embedded placement the template belongs to.
        client_template_id: your own key for the template (upserts match on it).
        message_type_id: the message type (and so channel) the template sends under.
        campaign_id: the campaign the template belongs to (as Iterable reports it).
        campaign_data_fields: campaign-level ``{{field}}`` values; user and event fields of
            the same name win.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope.
    """


@iterable_task(
    "ITERABLE_UPSERT_EMBEDDED_TEMPLATE", run_name="upsert-embedded-template-{client_template_id}"
)
def upsert_embedded_template(
    client_template_id: ClientTemplateId,
    *,
    name: TemplateName | None = None,
    locale: Locale | None = None,
    is_default_locale: bool | None = None,
    title: str | None = None,
    body: str | None = None,
    elements: EmbeddedTemplateElements | None = None,
    payload: dict[str, Any] | None = None,
    placement_id: PositiveId | None = None,
    message_type_id: PositiveId | None = None,
    creator_user_id: Email | None = None,
    credentials: IterableCredentials | None = None,
) -> UpsertTemplateResponse:
    """Create an embedded template, or update every embedded template with this client id.

    Safe to repeat: the same call leaves the same state. Only the fields given change on
    existing templates.

    ITERABLE_UPSERT_EMBEDDED_TEMPLATE: POST /api/templates/embedded/upsert (no documented rate
    limit).

    Args:
        client_template_id: your key for the template; every embedded template with it is
            updated, or one is created.
        name: template name.
        locale: the locale of the content sent (omitted: the default locale).
        is_default_locale: make ``locale`` the template's default (a beta feature).
        title: the message's title.
        body: the message's body text.
        elements: buttons (at most two), media, custom text fields and the default action.
        payload: custom JSON delivered with the message.
        placement_id: the embedded placement the template belongs to.
        message_type_id: the message type (and so channel) the template sends under.
        creator_user_id: email of the project member recorded as creator.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope; ``template_ids`` lists the templates written.
    """
