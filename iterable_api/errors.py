"""Every error this library raises, as one tree.

    IterableError
    ├── InputValidationError        bad input, caught before any request is sent (also a ValueError)
    ├── TransportError              the HTTP exchange itself failed
    │   ├── ConnectError            never reached Iterable: safe to send again
    │   └── TimeoutError            no answer in time (repeatable actions, after retries)
    ├── OutcomeUnknown              a send-class request may or may not have taken effect
    ├── ResponseValidationError     a success answer that is not the shape Iterable documents
    └── ApiError                    Iterable answered with an error status
        ├── BadRequest (400)        BadParams, BadJsonBody, BatchTooLarge, InvalidEmailAddressError,
        │                           RequestFieldsTypesMismatched, UnknownUserIdError, …
        ├── AuthenticationError (401)   BadApiKey, BadAuthorizationHeader, Unauthorized
        ├── PermissionDenied (403)  Forbidden, ForbiddenParamsError
        ├── NotFound (404)
        ├── Conflict (409)          ExternalKeyConflict, ForgottenUserError
        ├── RateLimited (429)       RateLimitExceeded; DailyCapReached
        └── ServerError (5xx)       GenericError, DatabaseError, QueueEmailError, ServiceUnavailable

An ``ApiError`` keeps Iterable's ``code``, ``msg`` and ``params`` and the action it answered. The
class is chosen by Iterable's ``code`` when it names an error, else by the HTTP status: Iterable
sometimes says ``Success`` on an error, so the status decides whether a response failed at all.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any, ClassVar
from urllib.parse import quote, quote_plus, unquote

__all__ = [
    "ApiError",
    "AuthenticationError",
    "BadApiKey",
    "BadAuthorizationHeader",
    "BadJsonBody",
    "BadParams",
    "BadRequest",
    "BatchTooLarge",
    "CODE_CLASSES",
    "Conflict",
    "ConnectError",
    "DailyCapReached",
    "DatabaseError",
    "EmailAlreadyExists",
    "ExternalKeyConflict",
    "Forbidden",
    "ForbiddenParamsError",
    "ForgottenUserError",
    "GenericError",
    "InputValidationError",
    "InvalidEmailAddressError",
    "InvalidJwtPayload",
    "InvalidUserIdError",
    "IterableError",
    "JwtUserIdentifiersMismatched",
    "NotFound",
    "OutcomeUnknown",
    "PermissionDenied",
    "QueueEmailError",
    "RateLimitExceeded",
    "RateLimited",
    "RequestFieldsTypesMismatched",
    "ResponseValidationError",
    "ServerError",
    "ServiceUnavailable",
    "TimeoutError",
    "TransportError",
    "Unauthorized",
    "UniqueFieldsLimitExceeded",
    "UnknownEmailError",
    "UnknownUserIdError",
    "UserIdAlreadyExists",
    "error_from_response",
    "scrub",
]

_TEXT_KEPT = 500
#: Characters of Iterable's ``msg`` (or of a non-JSON body's title or first line) kept in an error.
_MSG_KEPT = 300
MASK = "**********"


class IterableError(Exception):
    """The root of every error raised by this library."""

    action: str | None = None


class InputValidationError(IterableError, ValueError):
    """Input that Iterable would reject, found before any request was sent.

    ``errors`` lists ``(parameter, problem)`` pairs; the message names each parameter.
    """

    def __init__(self, action: str | None, errors: list[tuple[str, str]]) -> None:
        self.action = action
        self.errors = errors
        problems = "; ".join(f"{param}: {problem}" for param, problem in errors)
        super().__init__(f"{action or 'request'}: invalid input: {problems}")


class TransportError(IterableError):
    """The HTTP exchange failed before Iterable gave an answer."""

    def __init__(self, message: str, *, action: str | None = None) -> None:
        self.action = action
        super().__init__(f"{action}: {message}" if action else message)


class ConnectError(TransportError):
    """No connection could be made, so the request never reached Iterable."""


class TimeoutError(TransportError):  # noqa: A001 - the httpx name, scoped to this module
    """Iterable did not answer in time, and retrying did not help."""


class OutcomeUnknown(IterableError):
    """A request that Iterable cannot deduplicate failed after it may have been received.

    It was not retried, because a second attempt could send a second message, proof, campaign or
    export. Check the effect (the campaign, the message log, the export jobs) before sending again.
    """

    def __init__(self, action: str, cause: str) -> None:
        self.action = action
        self.cause = cause
        super().__init__(
            f"{action}: outcome unknown after {cause}; not retried, because repeating it could "
            "duplicate a side effect. Check whether it took effect before sending again."
        )


class ResponseValidationError(IterableError):
    """A success response whose body is not what Iterable documents for the action."""

    def __init__(self, action: str, problem: str, text: str = "") -> None:
        self.action = action
        self.text = text[:_TEXT_KEPT]
        super().__init__(f"{action}: unexpected response: {problem}")


class ApiError(IterableError):
    """Iterable answered with an error status.

    Attributes:
        status: the HTTP status.
        code: Iterable's error code (``BadParams``…), or ``None`` for a body that was not JSON.
        msg: Iterable's message, or the start of a plain-text or HTML body.
        params: Iterable's ``params`` object (may be empty).
        action: the ``ITERABLE_…`` id of the request.
        text: the raw body, cut to 500 characters, when it was not Iterable's JSON envelope.
    """

    status_code: ClassVar[int | None] = None

    def __init__(
        self,
        status: int,
        code: str | None,
        msg: str,
        params: dict[str, Any] | None = None,
        *,
        action: str | None = None,
        text: str = "",
    ) -> None:
        self.status = status
        self.code = code
        self.msg = msg
        self.params = params or {}
        self.action = action
        self.text = text[:_TEXT_KEPT]
        label = f"{code} ({status})" if code else f"HTTP {status}"
        super().__init__(f"{action + ': ' if action else ''}{label}: {msg}")


class BadRequest(ApiError):
    status_code = 400


class AuthenticationError(ApiError):
    status_code = 401


class PermissionDenied(ApiError):
    status_code = 403


class NotFound(ApiError):
    status_code = 404


class Conflict(ApiError):
    status_code = 409


class RateLimited(ApiError):
    """Iterable's limit for this action is spent.

    ``retry_after`` is the wait Iterable asked for, in seconds, when it said one.
    """

    status_code = 429

    def __init__(self, *args: Any, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after = retry_after


class ServerError(ApiError):
    status_code = 500


class BadParams(BadRequest):
    pass


class BadJsonBody(BadRequest):
    pass


class BatchTooLarge(BadRequest):
    pass


class EmailAlreadyExists(BadRequest):
    pass


class InvalidEmailAddressError(BadRequest):
    pass


class InvalidJwtPayload(BadRequest):
    pass


class InvalidUserIdError(BadRequest):
    pass


class JwtUserIdentifiersMismatched(BadRequest):
    pass


class RequestFieldsTypesMismatched(BadRequest):
    """A field was sent with a type other than the one it already has in the project.

    ``validation_errors`` holds Iterable's ``params.validationErrors``: per field, what was expected.
    """

    @property
    def validation_errors(self) -> dict[str, Any]:
        return dict(self.params.get("validationErrors") or {})


class UniqueFieldsLimitExceeded(BadRequest):
    pass


class UnknownEmailError(BadRequest):
    pass


class UnknownUserIdError(BadRequest):
    pass


class UserIdAlreadyExists(BadRequest):
    pass


class BadApiKey(AuthenticationError):
    pass


class BadAuthorizationHeader(AuthenticationError):
    pass


class Unauthorized(AuthenticationError):
    pass


class Forbidden(PermissionDenied):
    pass


class ForbiddenParamsError(PermissionDenied):
    pass


class ExternalKeyConflict(Conflict):
    pass


class ForgottenUserError(Conflict):
    """The user was forgotten under GDPR; Iterable refuses writes for that identifier."""


class RateLimitExceeded(RateLimited):
    pass


class DailyCapReached(RateLimited):
    """The action's 24-hour cap is spent; the next request would only be refused."""


class GenericError(ServerError):
    pass


class DatabaseError(ServerError):
    pass


class QueueEmailError(ServerError):
    pass


class ServiceUnavailable(ServerError):
    status_code = 503


#: Every error ``code`` in Iterable's Swagger enum, mapped to its class.
CODE_CLASSES: dict[str, type[ApiError]] = {
    cls.__name__: cls
    for cls in (
        BadApiKey,
        BadAuthorizationHeader,
        BadJsonBody,
        BadParams,
        BatchTooLarge,
        DatabaseError,
        EmailAlreadyExists,
        ExternalKeyConflict,
        Forbidden,
        ForbiddenParamsError,
        ForgottenUserError,
        GenericError,
        InvalidEmailAddressError,
        InvalidJwtPayload,
        InvalidUserIdError,
        JwtUserIdentifiersMismatched,
        NotFound,
        QueueEmailError,
        RateLimitExceeded,
        RequestFieldsTypesMismatched,
        Unauthorized,
        UniqueFieldsLimitExceeded,
        UnknownEmailError,
        UnknownUserIdError,
        UserIdAlreadyExists,
    )
}

_STATUS_CLASSES: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    429: RateLimited,
    503: ServiceUnavailable,
}

_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_RATE_IN_MESSAGE = re.compile(r"([\d.]+)\s*(?:requests?\s*)?per\s*(second|minute|hour|day)", re.I)
_PERIOD_SECONDS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86_400.0}


def _class_for(status: int, code: str | None) -> type[ApiError]:
    if code in CODE_CLASSES:
        return CODE_CLASSES[code]
    if status in _STATUS_CLASSES:
        return _STATUS_CLASSES[status]
    return ServerError if status >= 500 else ApiError


def _retry_after(headers: dict[str, str], params: dict[str, Any], msg: str) -> float | None:
    """The wait Iterable asked for: ``params.rateLimitReset``, ``Retry-After``, or its rate text."""
    reset = params.get("rateLimitReset")
    if isinstance(reset, (int, float)) and reset >= 0:
        return float(reset)
    header = headers.get("retry-after")
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            pass
    match = _RATE_IN_MESSAGE.search(msg)
    if match and float(match[1]) > 0:
        return _PERIOD_SECONDS[match[2].lower()] / float(match[1])
    return None


# A run of characters that base64, hex or url-encoding can produce: a candidate for an echo.
_ENCODED_TOKEN = re.compile(r"[A-Za-z0-9+/_%=.-]{12,}")


def _decodings(token: str) -> list[str]:
    """What ``token`` may stand for: url-decoded, base64-decoded (both alphabets), hex-decoded."""
    out = [unquote(token)]
    bare = token.rstrip("=")
    for alphabet in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            out.append(alphabet(bare + "=" * (-len(bare) % 4)).decode("latin-1"))
        except (binascii.Error, ValueError):
            pass
    if len(token) % 2 == 0:
        try:
            out.append(bytes.fromhex(token).decode("latin-1"))
        except ValueError:
            pass
    return out


def scrub(text: str, secret: str | None) -> str:
    """``text`` without ``secret``, raw or echoed encoded.

    A proxy or gateway may echo request headers into its error page: the key itself, url-encoded,
    base64 (alone or inside ``Basic``/``Api-Key: …`` headers) or hex. Every token that decodes to
    something holding the key is masked whole.
    """
    if not secret or not text:
        return text

    def hide(match: re.Match[str]) -> str:
        return MASK if any(secret in d for d in _decodings(match[0])) else match[0]

    text = _ENCODED_TOKEN.sub(hide, text)
    raw = secret.encode()
    # Forms glued to other characters, which the token scan does not isolate.
    for form in (
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        raw.hex(),
        raw.hex().upper(),
    ):
        text = text.replace(form, MASK)
    return text


def _scrubbed(value: Any, secret: str | None) -> Any:
    """A JSON value with ``scrub`` applied to every string in it (keys included)."""
    if isinstance(value, str):
        return scrub(value, secret)
    if isinstance(value, dict):
        return {scrub(str(k), secret): _scrubbed(v, secret) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrubbed(v, secret) for v in value]
    return value


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def error_from_response(
    status: int,
    headers: dict[str, str],
    text: str,
    *,
    action: str | None = None,
    secret: str | None = None,
) -> ApiError:
    """The most specific error for a failed response, whatever its body is.

    ``headers`` must have lower-case names. JSON envelopes give ``code``/``msg``/``params``; of a
    plain-text or HTML body only the ``<title>`` or first line becomes the message (the body,
    cut, stays in ``text``). ``secret`` (the API key) is scrubbed from all of it, raw or encoded.
    The message keeps at most ``_MSG_KEPT`` characters of Iterable's ``msg``.
    """
    text = scrub(text, secret)
    code: str | None = None
    params: dict[str, Any] = {}
    msg = ""
    raw = ""
    try:
        body = json.loads(text) if text.strip() else None
    except ValueError:
        body = None
    if isinstance(body, dict) and ("code" in body or "msg" in body):
        code = body.get("code") if isinstance(body.get("code"), str) else None
        msg = str(body.get("msg") or "")
        given = body.get("params")
        params = given if isinstance(given, dict) else {}
    elif isinstance(body, dict) and ("error" in body or "message" in body):
        # ErrorHttpResponse {error, message, code, data}, used by a few endpoints.
        msg = str(body.get("message") or body.get("error") or "")
        code = body.get("code") if isinstance(body.get("code"), str) else None
        raw = text
    else:
        raw = text
        title = _HTML_TITLE.search(text)
        msg = _first_line(title[1] if title else text)
    # JSON escapes (``\/``) can hide an echo from the scrub of the raw text: scrub what was read.
    msg = scrub(msg, secret)[:_MSG_KEPT]
    params = _scrubbed(params, secret)
    if code is not None:
        code = scrub(code, secret)[:_MSG_KEPT]
    if code == "Success":
        code = None  # Iterable's "Success" on an error status names no error
    cls = _class_for(status, code)
    kwargs: dict[str, Any] = {"action": action, "text": raw}
    if issubclass(cls, RateLimited):
        kwargs["retry_after"] = _retry_after(headers, params, msg)
    return cls(status, code, msg or f"HTTP {status}", params, **kwargs)
