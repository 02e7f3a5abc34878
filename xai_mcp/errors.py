"""What a person or an agent is shown when something fails, and the table from gRPC status to it.

    UserError                   any failure whose message is safe to show and says what to fix;
    │                           the tool boundary turns exactly these into tool errors
    ├── InputError              an argument the schema could not rule out is unusable
    ├── settings.ConfigError    the configuration cannot work (names the variable)
    ├── media.OutputError       the output folder cannot be used
    └── XaiError                every failed xAI call
        ├── InvalidRequest      INVALID_ARGUMENT, OUT_OF_RANGE, FAILED_PRECONDITION, ALREADY_EXISTS
        ├── NotFound            NOT_FOUND (what it means is the RPC's: see `rpc.Rpc.not_found`)
        ├── AuthFailed          UNAUTHENTICATED, PERMISSION_DENIED
        ├── RateLimited         RESOURCE_EXHAUSTED
        ├── TimedOut            DEADLINE_EXCEEDED
        ├── Unavailable         UNAVAILABLE
        ├── ImageFetchFailed    DATA_LOSS (xAI could not fetch an image URL)
        ├── Cancelled           CANCELLED
        └── ServerError         INTERNAL, UNKNOWN, UNIMPLEMENTED, ABORTED, and anything else;
                                also an answer that is not a valid message, or a stream cut short

Messages never contain the API key or the authorization header: details from the server are
scrubbed of the key and of any bearer token before they are used. The gRPC error an XaiError
came from is kept as its `__cause__` (for debugging), unscrubbed: show `str(error)`, never the chain.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Self

import grpc
import grpc.aio

_BEARER = re.compile(r"(?i)(bearer\s+)[^\s,;\"']+")
_MAX_DETAILS = 600


class UserError(Exception):
    """A failure whose `str()` is safe to show a person or an agent, and says what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def reword(self, message: str) -> Self:
        """Replace the message in place, for a caller that knows more; type, status and cause stay."""
        self.message = message
        self.args = (message,)
        return self

    def note(self, text: str) -> Self:
        """Append a sentence to the message (in place)."""
        return self.reword(self.message + text)


class InputError(UserError):
    """An argument the schema could not rule out is unusable; the message names the field."""


class XaiError(UserError):
    """A failed xAI call. `str(error)` is the actionable message."""

    code: grpc.StatusCode | None = None

    def __init__(self, message: str, *, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class InvalidRequest(XaiError):
    pass


class NotFound(XaiError):
    pass


class AuthFailed(XaiError):
    pass


class RateLimited(XaiError):
    pass


class TimedOut(XaiError):
    pass


class Unavailable(XaiError):
    pass


class ImageFetchFailed(XaiError):
    pass


class Cancelled(XaiError):
    pass


class ServerError(XaiError):
    pass


_S = grpc.StatusCode

# status -> (error type, message template). Placeholders: {what} (the call, e.g. "chat"),
# {subject} (e.g. "model 'grok-9'"), {details} (xAI's text, scrubbed), {timeout}, {host}.
_TABLE: dict[grpc.StatusCode, tuple[type[XaiError], str]] = {
    _S.INVALID_ARGUMENT: (InvalidRequest, "xAI rejected the {what} request: {details}"),
    _S.OUT_OF_RANGE: (InvalidRequest, "xAI rejected the {what} request (a value is out of range): {details}"),
    _S.FAILED_PRECONDITION: (InvalidRequest, "xAI cannot do this {what} request now: {details}"),
    _S.ALREADY_EXISTS: (InvalidRequest, "xAI rejected the {what} request (already exists): {details}"),
    # Only a fallback: each RPC says what its NOT_FOUND means (`rpc.Rpc.not_found`).
    _S.NOT_FOUND: (NotFound, "xAI could not find {subject} ({details}). Check the name or id."),
    _S.UNAUTHENTICATED: (
        AuthFailed,
        "xAI rejected the API key ({details}). Check XAI_API_KEY: it must be a valid, active xAI API key.",
    ),
    _S.PERMISSION_DENIED: (
        AuthFailed,
        "xAI refused access ({details}). Check XAI_API_KEY: the key may be disabled or blocked, or may not "
        "have access to this model or feature (get_api_key_info shows its permissions).",
    ),
    _S.RESOURCE_EXHAUSTED: (
        RateLimited,
        "xAI rate limit or quota reached ({details}). Wait a little and retry, or send fewer requests at once.",
    ),
    _S.DEADLINE_EXCEEDED: (
        TimedOut,
        "xAI did not answer the {what} request within {timeout:g} s. Retry, or raise XAI_MCP_RPC_TIMEOUT "
        "if the request needs longer.",
    ),
    _S.UNAVAILABLE: (
        Unavailable,
        "xAI unavailable: could not reach {host} ({details}). Check the network and XAI_API_HOST, then retry.",
    ),
    _S.DATA_LOSS: (
        ImageFetchFailed,
        "xAI could not fetch an image URL given in the request ({details}). Make sure the URL is public and "
        "reachable, or pass the image as a data URL or a local file.",
    ),
    _S.CANCELLED: (Cancelled, "The xAI {what} call was cancelled."),
    _S.UNIMPLEMENTED: (
        ServerError,
        "The endpoint at {host} does not support this {what} call ({details}). Check XAI_API_HOST.",
    ),
}
_FALLBACK = (
    ServerError,
    "xAI internal error ({code}) in the {what} request: {details}. Retry; if it persists, "
    "the problem is on xAI's side.",
)


_UNREADABLE = (
    "xAI sent an answer to the {what} request that could not be read (not a valid {what} response). "
    "Retry; if it persists, check that XAI_API_HOST ({host}) is xAI's gRPC API."
)
_CUT_SHORT = (
    "xAI's {what} stream ended before the answer was complete ({received}, no finish reason); "
    "the partial answer was dropped. Retry the call."
)
_BROKE_OFF = " The {what} stream broke off after {received}; the partial answer was dropped."
_NOT_CONNECTED = (
    "xAI unavailable: could not connect to {host} within {waited:g} s, so the {what} request was not sent "
    "(nothing was billed). Check the network and XAI_API_HOST, then retry."
)
_SENT_ONCE = " The {what} request was not resent automatically, so that it is never paid for twice."


def unreadable_answer(*, what: str, host: str = "") -> XaiError:
    """An answer whose bytes are not the expected message (grpc.aio then hands back None)."""
    return ServerError(_UNREADABLE.format(what=what, host=host or "the xAI endpoint"), code=grpc.StatusCode.INTERNAL)


def cut_short(*, what: str, received: str) -> XaiError:
    """A stream that ended cleanly but without its final message (`received` says what came)."""
    return ServerError(_CUT_SHORT.format(what=what, received=received), code=grpc.StatusCode.INTERNAL)


def broke_off(error: XaiError, *, what: str, received: str) -> XaiError:
    """The same error, noting that the stream failed part-way (after `received`)."""
    return error.note(_BROKE_OFF.format(what=what, received=received))


def not_connected(*, what: str, host: str, waited: float) -> XaiError:
    """Paid work found no connection to send it over (it is sent only over a ready one)."""
    message = _NOT_CONNECTED.format(what=what, host=host or "the xAI endpoint", waited=waited)
    return Unavailable(message, code=grpc.StatusCode.UNAVAILABLE)


def sent_once(error: XaiError, *, what: str) -> XaiError:
    """The same error, noting that paid work was not retried (the reader may want to call again)."""
    return error.note(_SENT_ONCE.format(what=what))


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove secrets and bearer tokens from text that may reach a person, an agent or a log."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return _BEARER.sub(r"\1[redacted]", text)


def status_of(err: grpc.RpcError) -> tuple[grpc.StatusCode | None, str]:
    """The status code and details of a failed call (grpc.aio errors are not grpc.Call)."""
    code = getattr(err, "code", None)
    details = getattr(err, "details", None)
    return (code() if callable(code) else None), ((details() if callable(details) else None) or "")


def from_rpc_error(
    err: grpc.RpcError,
    *,
    what: str,
    subject: str = "",
    timeout: float = 0.0,
    host: str = "",
    secrets: Iterable[str] = (),
    not_found: str | None = None,
) -> XaiError:
    """Map a gRPC error to the XaiError a tool raises. The single place this mapping lives.

    `not_found` is the message template for NOT_FOUND (placeholders {subject} and {details}):
    what is missing, and where to look it up, depends on the call.
    """
    code, raw = status_of(err)
    details = scrub(" ".join(raw.split()), secrets)
    if len(details) > _MAX_DETAILS:
        details = details[:_MAX_DETAILS] + "…"
    kind, template = _TABLE.get(code, _FALLBACK) if code is not None else _FALLBACK
    if code is grpc.StatusCode.NOT_FOUND and not_found is not None:
        template = not_found
    message = template.format(
        what=what,
        subject=subject or "the requested item",
        details=details or "no details",
        timeout=timeout,
        host=host or "the xAI endpoint",
        code=code.name if code is not None else "UNKNOWN",
    )
    return kind(message, code=code)
