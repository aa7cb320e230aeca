"""Request and response schemas for Iterable's template actions (email, push, SMS, in-app, embedded).

The five template kinds share most of their shape, so the nested request objects (link
parameters, push and embedded buttons, in-app display settings) and the response bases are
defined here once and reused by every kind's tasks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, StringConstraints

from prefect_iterable.api.models._base import (
    ApiResponse,
    IterableModel,
    RequestModel,
    response_twin,
)
from prefect_iterable.api.types import PositiveId

__all__ = [
    "BulkDeleteTemplatesResult",
    "ClientTemplateEntry",
    "ClientTemplatesResponse",
    "DataFeedIds",
    "EmailTemplate",
    "EmbeddedTemplate",
    "EmbeddedTemplateAction",
    "EmbeddedTemplateButton",
    "EmbeddedTemplateElements",
    "EmbeddedTemplateText",
    "InAppBackgroundColor",
    "InAppDisplaySettings",
    "InAppPadding",
    "InAppTemplate",
    "InterruptionLevel",
    "LinkParam",
    "PlatformUrls",
    "PushButton",
    "PushButtonAction",
    "PushButtonIcon",
    "PushButtons",
    "PushTemplate",
    "SmsTemplate",
    "TemplateContent",
    "TemplateInboxMetadata",
    "TemplateSummary",
    "TemplatesPage",
    "UpsertTemplateResponse",
    "WebInAppDisplaySettings",
]

# ---- shared request pieces -------------------------------------------------------------------

#: iOS interruption levels a push template may ask for.
InterruptionLevel = Literal["passive", "active", "time-sensitive", "critical"]

#: Data feed ids a template renders with.
DataFeedIds = list[PositiveId]

_NonEmpty = Annotated[str, StringConstraints(min_length=1)]


class LinkParam(RequestModel):
    """A query parameter Iterable appends to every link in the message (e.g. UTM tags)."""

    key: _NonEmpty = Field(description="Parameter name, e.g. utm_source.")
    value: str = Field(description="Parameter value; may hold merge fields.")


class PlatformUrls(RequestModel):
    """A URL per mobile platform: a push deep link or rich-media attachment."""

    ios: str | None = Field(None, description="URL used on iOS.")
    android: str | None = Field(None, description="URL used on Android.")


class PushButtonAction(RequestModel):
    """What tapping a push button does."""

    type: str | None = Field(
        None,
        description="Empty to open the app, 'openUrl' to open `data`, or a custom action name.",
    )
    data: str | None = Field(None, description="The URL to open when type is 'openUrl'.")


class PushButtonIcon(RequestModel):
    """An iOS action icon shown on a push button."""

    icon_type: Literal["SystemImage", "TemplateImage"] | str
    image_name: _NonEmpty


class PushButton(RequestModel):
    """One of up to three action buttons shown with a push notification."""

    identifier: _NonEmpty = Field(description="Identifies the button in tracked events.")
    title: _NonEmpty = Field(description="Text on the button.")
    open_app: bool = Field(description="Open the app when the button runs a custom action.")
    button_type: Literal["default", "destructive", "textInput"] | None = None
    action: PushButtonAction | None = None
    action_icon: PushButtonIcon | None = None
    requires_unlock: bool | None = Field(None, description="The phone must be unlocked first.")
    input_title: str | None = Field(None, description="Submit text of a textInput button.")
    input_placeholder: str | None = Field(None, description="Placeholder of a textInput box.")


#: Push buttons: Iterable allows at most three.
PushButtons = Annotated[list[PushButton], Field(max_length=3)]


class EmbeddedTemplateAction(RequestModel):
    """An embedded message's click action: ``openUrl`` with a URL, or a custom action URL."""

    type: _NonEmpty = Field(description="'openUrl', or the custom action's full URL.")
    data: str = Field("", description="The URL for openUrl; empty for custom actions.")


class EmbeddedTemplateButton(RequestModel):
    """A button of an embedded message (at most two per template)."""

    id: _NonEmpty
    title: str | None = None
    action: EmbeddedTemplateAction | None = None


class EmbeddedTemplateText(RequestModel):
    """A custom text field; its label is defined by the template's placement."""

    label: _NonEmpty
    text: str


class EmbeddedTemplateElements(RequestModel):
    """The visible parts of an embedded message: buttons, media, custom text, default action."""

    buttons: Annotated[list[EmbeddedTemplateButton], Field(max_length=2)] | None = None
    default_action: EmbeddedTemplateAction | None = None
    media_url: str | None = None
    media_url_caption: str | None = None
    text: list[EmbeddedTemplateText] | None = None


class TemplateInboxMetadata(RequestModel):
    """How an in-app message is listed in the mobile inbox."""

    title: str | None = None
    subtitle: str | None = None
    icon: str | None = Field(None, description="URL of the thumbnail.")


class InAppPadding(RequestModel):
    """Padding of one side of an in-app message: a percentage, or auto-expand."""

    percentage: Annotated[int, Field(ge=-1, le=100)] | None = Field(
        None, description="0-100, or -1 to auto-expand."
    )
    display_option: Literal["AutoExpand"] | None = None


class InAppBackgroundColor(RequestModel):
    hex: Annotated[str, StringConstraints(pattern=r"^#[0-9A-Fa-f]{6}$")] | None = None
    alpha: Annotated[float, Field(ge=0, le=1)] | None = None


class InAppDisplaySettings(RequestModel):
    """Position and look of a mobile in-app message."""

    top: InAppPadding | None = None
    bottom: InAppPadding | None = None
    left: InAppPadding | None = None
    right: InAppPadding | None = None
    bg_color: InAppBackgroundColor | None = None
    should_animate: bool | None = None


class WebInAppDisplaySettings(RequestModel):
    """Where a web in-app message appears on the page."""

    position: Literal["Full", "Center", "TopRight", "BottomRight"]


# ---- responses -------------------------------------------------------------------------------

# The request objects as answers carry them: unknown keys kept, no field required, no limits.
# Type checkers see the request models (same fields); at run time the tolerant twins read answers.
if TYPE_CHECKING:
    _LinkParamRead = LinkParam
    _PlatformUrlsRead = PlatformUrls
    _PushButtonRead = PushButton
    _EmbeddedElementsRead = EmbeddedTemplateElements
    _InboxMetadataRead = TemplateInboxMetadata
    _DisplaySettingsRead = InAppDisplaySettings
    _WebDisplaySettingsRead = WebInAppDisplaySettings
else:
    _LinkParamRead = response_twin(LinkParam)
    _PlatformUrlsRead = response_twin(PlatformUrls)
    _PushButtonRead = response_twin(PushButton)
    _EmbeddedElementsRead = response_twin(EmbeddedTemplateElements)
    _InboxMetadataRead = response_twin(TemplateInboxMetadata)
    _DisplaySettingsRead = response_twin(InAppDisplaySettings)
    _WebDisplaySettingsRead = response_twin(WebInAppDisplaySettings)

_Timestamp = int | str  # epoch ms in practice; the Swagger calls it a date-time string


class TemplateSummary(IterableModel):
    """A template's metadata, as template lists and ``metadata`` blocks carry it."""

    template_id: int
    name: str | None = None
    created_at: _Timestamp | None = None
    updated_at: _Timestamp | None = None
    creator_user_id: str | None = None
    message_type_id: int | None = None
    campaign_id: int | None = Field(None, description="The campaign using this template.")
    client_template_id: str | None = None
    message_medium: str | None = Field(None, description="Email, Push, SMS, InApp, Embedded.")
    template_type: str | None = Field(None, description="Base, Blast, Triggered or Workflow.")


class TemplatesPage(IterableModel):
    """One page of ``GET /api/templates``."""

    templates: list[TemplateSummary] = Field(default_factory=list)
    next_page_url: str | None = None
    previous_page_url: str | None = None
    total_templates_count: int | None = None


class TemplateContent(IterableModel):
    """What every kind's ``…/get`` returns besides its own content: ids, names, locale."""

    template_id: int
    name: str | None = None
    locale: str | None = Field(None, description="The locale of the content returned.")
    is_default_locale: bool | None = None
    client_template_id: str | None = None
    message_type_id: int | None = None
    campaign_id: int | dict[str, Any] | None = None
    campaign_data_fields: dict[str, Any] | None = None
    creator_user_id: str | None = None
    created_at: _Timestamp | None = None
    updated_at: _Timestamp | None = None
    metadata: TemplateSummary | None = None


class EmailTemplate(TemplateContent):
    subject: str | None = None
    html: str | None = None
    plain_text: str | None = None
    preheader_text: str | None = None
    from_name: str | None = None
    from_email: str | None = None
    reply_to_email: str | None = None
    cc_emails: list[str] | None = None
    bcc_emails: list[str] | None = None
    link_params: list[_LinkParamRead] | None = None
    data_feed_id: int | None = None
    data_feed_ids: list[int] | None = None
    cache_data_feed: bool | dict[str, Any] | None = None
    merge_data_feed_context: bool | dict[str, Any] | None = None
    google_analytics_campaign_name: str | None = None


class PushTemplate(TemplateContent):
    title: str | None = None
    message: str | None = None
    badge: str | None = None
    sound: str | None = None
    wake: bool | None = None
    is_silent_push: bool | None = None
    interruption_level: InterruptionLevel | None = None
    relevance_score: float | None = None
    buttons: list[_PushButtonRead] | None = None
    deeplink: _PlatformUrlsRead | None = None
    rich_media: _PlatformUrlsRead | None = None
    payload: dict[str, Any] | None = None
    data_feed_ids: list[int] | None = None
    cache_data_feed: bool | None = None
    merge_data_feed_context: bool | None = None


class SmsTemplate(TemplateContent):
    message: str | None = None
    image_url: str | None = None
    link_params: list[_LinkParamRead] | None = None
    tracking_domain: str | None = None
    google_analytics_campaign_name: str | None = None


class InAppTemplate(TemplateContent):
    html: str | None = None
    payload: dict[str, Any] | None = None
    inbox_metadata: _InboxMetadataRead | None = None
    expiration_date_time: str | None = Field(None, description="YYYY-MM-DD HH:MM:SS, UTC.")
    expiration_duration: str | None = Field(None, description="Relative expiry, e.g. now+90d.")
    in_app_display_settings: _DisplaySettingsRead | None = None
    web_in_app_display_settings: _WebDisplaySettingsRead | None = None


class EmbeddedTemplate(TemplateContent):
    title: str | None = None
    body: str | None = None
    elements: _EmbeddedElementsRead | None = None
    payload: dict[str, Any] | None = None
    placement_id: int | dict[str, Any] | None = None


class UpsertTemplateResponse(ApiResponse):
    """The envelope of a template upsert; ``params.templateIds`` lists every template written."""

    @property
    def template_ids(self) -> list[int]:
        return [int(i) for i in (self.params or {}).get("templateIds", [])]


class ClientTemplateEntry(IterableModel):
    template_id: int
    campaign_id: int | None = Field(None, description="The campaign using this template.")
    locales: list[str] = Field(default_factory=list, description="Locales with content.")


class ClientTemplatesResponse(IterableModel):
    templates: list[ClientTemplateEntry] = Field(default_factory=list)


class BulkDeleteTemplatesResult(IterableModel):
    """Which templates a bulk delete removed, and which it left (e.g. used by a campaign)."""

    success: list[int] = Field(default_factory=list, description="Ids deleted.")
    failed: list[int] = Field(default_factory=list, description="Ids not deleted.")
    failure_reason: str | None = None
