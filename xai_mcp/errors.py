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
        │   └── RequestTooLarge a request over the gRPC message limit: refused before sending
        ├── AnswerTooLarge      RESOURCE_EXHAUSTED that gRPC raised because an answer was larger
        │                       than a side's message limit: processed, but the answer is lost
        ├── RateLimited         RESOURCE_EXHAUSTED (xAI's own rate limit or quota)
        ├── TimedOut            DEADLINE_EXCEEDED
        ├── Unavailable         UNAVAILABLE
        │   └── Refused         UNAVAILABLE from an HTTP/2 REFUSED_STREAM: never processed
        ├── Busy                this process already runs its most paid calls at once; not sent
        ├── ImageFetchFailed    DATA_LOSS (xAI could not fetch an image URL)
        ├── Cancelled           CANCELLED
        └── ServerError         INTERNAL, UNKNOWN, UNIMPLEMENTED, ABORTED, and anything else;
                                also an answer that is not a valid message, or a stream cut short

gRPC itself raises RESOURCE_EXHAUSTED for a message over a size limit and UNAVAILABLE for a
refused stream; its details tell those apart from xAI's own statuses (`transport_failure`), and
each gets its own entry, because what to do differs: a rate limit is waited out, an oversized
request is made smaller, a refused stream is simply sent again.

Messages never contain the API key or the authorization header: details from the server are
scrubbed of the key and of any bearer token before they are used. The gRPC error an XaiError
came from is kept as its `__cause__` (for debugging), unscrubbed: show `str(error)`, never the chain.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal, Self

if TYPE_CHECKING:  # grpc (14 MiB of native library) loads with the first xAI call, not at start-up
    import grpc

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


class RequestTooLarge(InvalidRequest):
    """The request is larger than a gRPC message may be: it was not sent, or not processed."""


class AnswerTooLarge(XaiError):
    """xAI processed the request, but its answer exceeded a message size limit and was lost."""


class RateLimited(XaiError):
    pass


class TimedOut(XaiError):
    pass


class Unavailable(XaiError):
    pass


class Refused(Unavailable):
    """The HTTP/2 stream was refused before xAI processed anything (RFC 9113 §8.7): safe to send again."""


class Busy(XaiError):
    """Paid work waited too long for one of this process's paid-call slots; it was not sent."""


class ImageFetchFailed(XaiError):
    pass


class Cancelled(XaiError):
    pass


class ServerError(XaiError):
    pass


# status -> (error type, message template). Placeholders: {what} (the call, e.g. "chat"),
# {subject} (e.g. "model 'grok-9'"), {details} (xAI's text, scrubbed), {timeout}, {host}.
_TABLE: dict[str, tuple[type[XaiError], str]] = {  # by grpc.StatusCode name
    "INVALID_ARGUMENT": (InvalidRequest, "xAI rejected the {what} request: {details}"),
    "OUT_OF_RANGE": (InvalidRequest, "xAI rejected the {what} request (a value is out of range): {details}"),
    "FAILED_PRECONDITION": (InvalidRequest, "xAI cannot do this {what} request now: {details}"),
    "ALREADY_EXISTS": (InvalidRequest, "xAI rejected the {what} request (already exists): {details}"),
    # Only a fallback: each RPC says what its NOT_FOUND means (`rpc.Rpc.not_found`).
    "NOT_FOUND": (NotFound, "xAI could not find {subject} ({details}). Check the name or id."),
    "UNAUTHENTICATED": (
        AuthFailed,
        "xAI rejected the API key ({details}). Check XAI_API_KEY: it must be a valid, active xAI API key.",
    ),
    "PERMISSION_DENIED": (
        AuthFailed,
        "xAI refused access ({details}). Check XAI_API_KEY: the key may be disabled or blocked, or may not "
        "have access to this model or feature (get_api_key_info shows its permissions).",
    ),
    "RESOURCE_EXHAUSTED": (
        RateLimited,
        "xAI rate limit or quota reached ({details}). Wait a little and retry, or send fewer requests at once.",
    ),
    "DEADLINE_EXCEEDED": (
        TimedOut,
        "xAI did not answer the {what} request within {timeout:g} s. Retry, or raise XAI_MCP_RPC_TIMEOUT "
        "if the request needs longer.",
    ),
    "UNAVAILABLE": (
        Unavailable,
        "xAI unavailable: could not reach {host} ({details}). Check the network and XAI_API_HOST, then retry.",
    ),
    "DATA_LOSS": (
        ImageFetchFailed,
        "xAI could not fetch an image URL given in the request ({details}). Make sure the URL is public and "
        "reachable, or pass the image as a data URL or a local file.",
    ),
    "CANCELLED": (Cancelled, "The xAI {what} call was cancelled."),
    "UNIMPLEMENTED": (
        ServerError,
        "The endpoint at {host} does not support this {what} call ({details}). Check XAI_API_HOST.",
    ),
}
_FALLBACK = (
    ServerError,
    "xAI internal error ({code}) in the {what} request: {details}. Retry; if it persists, "
    "the problem is on xAI's side.",
)


def _status(name: str) -> grpc.StatusCode:
    import grpc  # loaded by now: only failed or refused xAI calls get here

    return grpc.StatusCode[name]


# Failures gRPC itself reports with a status of xAI's, told apart by their details. The words
# are grpc core's (1.85), checked by tests that trigger each one: "CLIENT: Sent message larger
# than max (25200089 vs. 20971520)", "Stream removed (CLIENT: Received message larger than max
# (…))", and from a gRPC server "SERVER: Sent …" or "SERVER: Received …". A side that is not
# ours ("SERVER", or no prefix from another server stack) speaks of the server's messages.
_OVERSIZE = re.compile(r"(?:\b(CLIENT|SERVER): )?(Sent|Received) message larger than max \((\d+) vs\. (\d+)\)")
# An HTTP/2 RST_STREAM with REFUSED_STREAM (error code 7): the server refused the stream before
# processing any of it (RFC 9113 §8.7), so it can be sent again whatever it costs.
_REFUSED = re.compile(r"RST_STREAM with error code 7\b|REFUSED_STREAM")

_REQUEST_TOO_LARGE = (
    "The {what} request is {size}, over the {limit} gRPC message limit{whose}, so nothing was processed "
    "or billed. Send fewer or smaller inline images or files, or pass them as URLs."
)
_WOULD_BE_TOO_LARGE = (
    "{field}: the {what} request would be {size}, over the {limit} gRPC message limit, so it was not sent "
    "(nothing was billed). Send fewer or smaller inline images or files, or pass them as URLs."
)
_ANSWER_TOO_LARGE = (
    "xAI's answer to the {what} request was {size}, over the {limit} gRPC message limit{whose}, so it was "
    "lost{processed}. Ask for less in one call: fewer images, or output='url' for images."
)
_PAID_PROCESSED = "; xAI processed and billed the request, so calling again pays again"
_REFUSED_MESSAGE = (
    "xAI refused the {what} request before processing it (HTTP/2 REFUSED_STREAM: too many requests at once "
    "on one connection), so nothing was billed. It is safe to call again."
)
_BUSY = (
    "The {what} request was not sent (nothing was billed): this server already runs {limit} paid xAI calls "
    "at once (XAI_MCP_MAX_PAID_INFLIGHT) and none finished within {waited:g} s "
    "(XAI_MCP_PAID_QUEUE_SECONDS). Call again shortly."
)

Transport = Literal["request_too_large", "answer_too_large", "refused"]


def transport_failure(code: grpc.StatusCode | None, details: str) -> Transport | None:
    """Which failure of gRPC's own a status is (see `_OVERSIZE`, `_REFUSED`), or None for xAI's."""
    if code is _status("RESOURCE_EXHAUSTED"):
        found = _OVERSIZE.search(details)
        if found is not None:
            ours = found.group(1) == "CLIENT"
            sent = found.group(2) == "Sent"
            return "request_too_large" if ours == sent else "answer_too_large"
    if code is _status("UNAVAILABLE") and _REFUSED.search(details):
        return "refused"
    return None


def mebibytes(size: int) -> str:
    """A message size as people read it: "20 MiB", "23.9 MiB", "12.5 KiB", "587 bytes"."""
    for unit, scale in (("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size // scale} {unit}" if size % scale == 0 else f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def _transport_error(kind: Transport, code: grpc.StatusCode, details: str, *, what: str, paid: bool) -> XaiError:
    if kind == "refused":
        return Refused(_REFUSED_MESSAGE.format(what=what), code=code)
    found = _OVERSIZE.search(details)
    assert found is not None  # transport_failure() matched it
    size, limit = mebibytes(int(found.group(3))), mebibytes(int(found.group(4)))
    whose = "" if found.group(1) == "CLIENT" else " of xAI's server"
    if kind == "request_too_large":
        return RequestTooLarge(_REQUEST_TOO_LARGE.format(what=what, size=size, limit=limit, whose=whose), code=code)
    processed = _PAID_PROCESSED if paid else ""
    message = _ANSWER_TOO_LARGE.format(what=what, size=size, limit=limit, whose=whose, processed=processed)
    return AnswerTooLarge(message, code=code)


def request_too_large(*, what: str, field: str, size: int, limit: int) -> XaiError:
    """A request refused before it was sent: `field` is the part of it that is the largest."""
    message = _WOULD_BE_TOO_LARGE.format(what=what, field=field, size=mebibytes(size), limit=mebibytes(limit))
    return RequestTooLarge(message, code=_status("INVALID_ARGUMENT"))


def busy(*, what: str, limit: int, waited: float) -> XaiError:
    """Paid work that found no free paid-call slot in time (see `rpc.XaiClient`)."""
    return Busy(_BUSY.format(what=what, limit=limit, waited=waited), code=_status("RESOURCE_EXHAUSTED"))


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
    return ServerError(_UNREADABLE.format(what=what, host=host or "the xAI endpoint"), code=_status("INTERNAL"))


def cut_short(*, what: str, received: str) -> XaiError:
    """A stream that ended cleanly but without its final message (`received` says what came)."""
    return ServerError(_CUT_SHORT.format(what=what, received=received), code=_status("INTERNAL"))


def broke_off(error: XaiError, *, what: str, received: str) -> XaiError:
    """The same error, noting that the stream failed part-way (after `received`)."""
    return error.note(_BROKE_OFF.format(what=what, received=received))


def not_connected(*, what: str, host: str, waited: float) -> XaiError:
    """Paid work found no connection to send it over (it is sent only over a ready one)."""
    message = _NOT_CONNECTED.format(what=what, host=host or "the xAI endpoint", waited=waited)
    return Unavailable(message, code=_status("UNAVAILABLE"))


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
    paid: bool = False,
) -> XaiError:
    """Map a gRPC error to the XaiError a tool raises. The single place this mapping lives.

    `not_found` is the message template for NOT_FOUND (placeholders {subject} and {details}):
    what is missing, and where to look it up, depends on the call. `paid`: the call is billed
    (an answer lost after processing then cost money).
    """
    code, raw = status_of(err)
    failure = transport_failure(code, raw)
    if failure is not None and code is not None:
        return _transport_error(failure, code, raw, what=what, paid=paid)
    details = scrub(" ".join(raw.split()), secrets)
    if len(details) > _MAX_DETAILS:
        details = details[:_MAX_DETAILS] + "…"
    kind, template = _TABLE.get(code.name, _FALLBACK) if code is not None else _FALLBACK
    if code is _status("NOT_FOUND") and not_found is not None:
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
