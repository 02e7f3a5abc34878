"""Which xAI API key a call uses, and its fingerprint: decided here and nowhere else.

- By default every call uses the server's own key (`XAI_API_KEY`).
- With `XAI_MCP_HTTP_AUTH=xai-key`, an HTTP client's bearer token *is* its xAI key: the SDK's auth
  layer verifies it with `XaiKeyBearer` and keeps it for the request (its auth context), and each
  call made while serving that request is sent with that key. The server then has no key of its own.

Everything a user's calls leave behind (job journal, deferred-result cache, spend counters) is
partitioned by `current_fingerprint()`, which is derived from the very key `current_key()` returns,
so what one key did is never shown to another. Neither the key nor its fingerprint is ever a log
field or a metric label.
"""

from __future__ import annotations

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken, TokenVerifier

from xai_mcp.errors import UserError
from xai_mcp.settings import Settings
from xai_mcp.state_store.fingerprint import key_fingerprint

SCOPE = "xai-mcp"
MAX_KEY_CHARS = 512  # xAI keys are far shorter; anything longer is not a key


class NoKeyForCall(UserError):
    """A call needs a per-user key and the request carried none (only outside HTTP, by mistake)."""


def current_key(settings: Settings) -> str:
    """The xAI key for the call being served now."""
    if not settings.per_user_keys:
        return settings.key()
    token = get_access_token()
    if token is None or token.client_id != _CLIENT_ID:
        raise NoKeyForCall(
            "this server uses each client's own xAI API key, and this request carried none: "
            "send it as 'Authorization: Bearer <your xAI API key>'"
        )
    return token.token


def current_fingerprint(settings: Settings) -> str:
    """The fingerprint of `current_key()`: the partition for everything stored about this call."""
    return key_fingerprint(current_key(settings))


_CLIENT_ID = "xai-key"


class XaiKeyBearer(TokenVerifier):
    """Accepts any plausible xAI key as a bearer token; xAI itself decides whether it is valid.

    Nothing is checked against a list: a wrong key fails on its first call with xAI's own
    "unauthenticated" answer (as it would in the client's own code), and costs us nothing.
    """

    async def verify_token(self, token: str) -> AccessToken | None:
        key = token.strip()
        if not key or len(key) > MAX_KEY_CHARS or any(c.isspace() or not c.isprintable() for c in key):
            return None
        return AccessToken(token=key, client_id=_CLIENT_ID, scopes=[SCOPE])
