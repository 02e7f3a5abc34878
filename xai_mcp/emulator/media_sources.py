"""Source media named in requests (images to edit, videos to extend): how the emulator reads them.

xAI fetches source URLs itself and fails the call with DATA_LOSS when it cannot. The emulator
never goes to the network: it fails only for the reserved host `unreachable.invalid` (RFC 6761
guarantees `.invalid` never resolves, so the outcome matches reality) and accepts other http(s)
URLs and file ids unseen. Data URLs are decoded, since their bytes are right there; and URLs the
emulator itself served are looked up in its media store, so outputs can be chained.
"""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import urlsplit

import grpc

from xai_mcp.emulator.env import Env, Rejected

UNREACHABLE_HOST = "unreachable.invalid"
# data:[<mime>][;<param>...];base64,<payload>
_DATA_URL = re.compile(r"data:[^;,]*(?:;[^;,]*)*?;base64,(?P<payload>.*)", re.DOTALL)


def decode_data_url(url: str) -> bytes | None:
    """The bytes of a base64 data URL; None if `url` is not one or its payload is not base64."""
    match = _DATA_URL.fullmatch(url)
    if match is None:
        return None
    payload = "".join(match["payload"].split())  # tolerate line breaks in long payloads
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None


def _shown(url: str) -> str:
    # Data URLs can be megabytes long: error messages quote only their start.
    return url if len(url) <= 120 else url[:117] + "..."


def fetch(url: str, env: Env, *, what: str) -> bytes | None:
    """The bytes behind a source URL when the emulator can know them without a network, else None.

    `what` ("image", "video") words the messages. Raises Rejected with DATA_LOSS for the
    unreachable host (how xAI reports a failed fetch) and INVALID_ARGUMENT for a data URL that
    does not decode or a URL that is neither http(s) nor data.
    """
    if url.startswith("data:"):
        data = decode_data_url(url)
        if data is None:
            raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, f"could not decode source {what}")
        return data
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Rejected(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"unsupported source {what} URL {_shown(url)!r}: expected http(s) or a base64 data URL",
        )
    if parts.hostname == UNREACHABLE_HOST:
        raise Rejected(grpc.StatusCode.DATA_LOSS, f"Failed to fetch {what} from URL {_shown(url)}")
    media_prefix = f"{env.media.base_url}/media/"
    if env.media.base_url and url.startswith(media_prefix):
        item = env.media.get(url[len(media_prefix) :])
        if item is not None:
            return item[0]
    return None
