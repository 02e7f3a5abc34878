"""Typed settings, read from the environment. Every field documents itself."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from xai_mcp.errors import UserError
from xai_mcp.tools import TOOLSETS

DEFAULT_HOST = "api.x.ai:443"
MIN_TOKEN_LENGTH = 32
_MAKE_TOKEN = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'
DEFAULT_MANAGEMENT_HOST = "management-api.x.ai:443"


MISSING_KEY = (
    "XAI_API_KEY is not set: create a key at https://console.x.ai and give it to the server as XAI_API_KEY "
    '(in an MCP host, the "env" block of the server\'s entry in its configuration; in a shell, export it), '
    "then restart the server. `xai-mcp doctor` checks the setup."
)


class ConfigError(UserError):
    """The configuration cannot work; the message says which variable to fix."""


def _default_output_dir() -> Path:
    # A per-user folder, never the working directory: a host-launched server often runs in "/".
    return Path.home() / ".cache" / "xai-mcp" / "output"


def split_host(target: str, variable: str = "XAI_API_HOST", example: str = DEFAULT_HOST) -> tuple[str, int]:
    """Split "host:port" (or "[v6]:port", or a bare host meaning port 443); errors name `variable`."""
    if target.startswith("["):
        host, _, rest = target[1:].partition("]")
        port = rest.removeprefix(":")
    elif target.count(":") == 1:
        host, port = target.split(":")
    else:
        host, port = target, ""
    if not host:
        raise ConfigError(f"{variable} {target!r} has no host name; expected host:port, e.g. {example}")
    try:
        number = int(port) if port else 443
    except ValueError:
        raise ConfigError(f"{variable} {target!r} has a bad port; expected host:port, e.g. {example}") from None
    if not 0 < number < 65536:
        raise ConfigError(f"{variable} {target!r} has a port out of range")
    return host, number


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


ENV_PREFIX = "XAI_MCP_"  # a field's variable, unless it names its own (validation_alias)


class Settings(BaseModel):
    """xai-mcp settings. `XAI_API_KEY` and `XAI_API_HOST` are shared with xAI's own tools.

    Fields not given as arguments are read from the environment when built (names compared
    case-insensitively). A plain model, not pydantic-settings: its import (sources for dotenv,
    cloud secrets, a CLI) cost every start about 9 ms for what `_from_environment` does here.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _from_environment(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        environment = {name.upper(): value for name, value in os.environ.items()}
        merged = dict(data)
        for name, field in cls.model_fields.items():
            alias = field.validation_alias if isinstance(field.validation_alias, str) else None
            if name in data or (alias is not None and alias in data):
                continue
            variable = alias or ENV_PREFIX + name.upper()
            if variable in environment:
                merged[alias or name] = environment[variable]
        return merged

    api_key: Annotated[
        SecretStr | None,
        Field(validation_alias="XAI_API_KEY", description="xAI API key (XAI_API_KEY)."),
    ] = None
    api_host: Annotated[
        str,
        Field(
            validation_alias="XAI_API_HOST",
            description="xAI gRPC endpoint as host:port (XAI_API_HOST).",
        ),
    ] = DEFAULT_HOST
    management_key: Annotated[
        SecretStr | None,
        Field(
            validation_alias="XAI_MANAGEMENT_KEY",
            description="xAI management key (XAI_MANAGEMENT_KEY); serves the collections toolset when set.",
        ),
    ] = None
    management_api_host: Annotated[
        str,
        Field(
            validation_alias="XAI_MANAGEMENT_API_HOST",
            description="xAI management gRPC endpoint (collections) as host:port (XAI_MANAGEMENT_API_HOST).",
        ),
    ] = DEFAULT_MANAGEMENT_HOST
    insecure: Annotated[
        bool,
        Field(
            description="Plaintext gRPC, for a local emulator only: refused unless the host (and management host) "
            "is loopback."
        ),
    ] = False
    rpc_timeout: Annotated[
        float,
        Field(gt=0, le=3600, description="Deadline in seconds for each xAI call, retries included."),
    ] = 300.0
    retry_attempts: Annotated[
        int,
        Field(ge=1, le=10, description="Attempts per call when xAI is briefly unavailable (1 = no retry)."),
    ] = 4
    max_paid_inflight: Annotated[
        int,
        Field(
            ge=1,
            le=1024,
            description="Paid xAI calls one server process runs at once; more wait their turn. Bounds memory "
            "(each may hold ten inline images) and the connections opened to xAI.",
        ),
    ] = 12  # 80 calls of ten 1 MB inline images at once: 484 MiB peak (16: up to 596 MiB)
    paid_queue_seconds: Annotated[
        float,
        Field(
            ge=0,
            le=3600,
            description="How long a paid call waits for its turn before failing unsent (nothing billed).",
        ),
    ] = 60.0
    wait_seconds: Annotated[
        float,
        Field(ge=0, le=3600, description="How long a tool waits on a long job before returning a resumable handle."),
    ] = 45.0
    default_model: Annotated[str, Field(min_length=1, description="Chat model used when a call names none.")] = (
        "grok-4.20-reasoning"
    )
    # The factory is the assigned default (not inside Annotated) so type checkers see that it has one.
    output_dir: Annotated[Path, Field(description="Folder where saved images are written.")] = Field(
        default_factory=_default_output_dir
    )
    result_budget_kb: Annotated[
        int,
        Field(
            ge=4,
            le=100_000,
            description="Largest list result in KiB (about 4 bytes a token); longer lists page with next_page_token.",
        ),
    ] = 80
    inline_images_mb: Annotated[
        int,
        Field(ge=1, le=1024, description="Inline images per result in MB (base64); the rest are saved to files."),
    ] = 2
    toolsets: Annotated[
        str,
        Field(description=f"Comma-separated toolsets to serve ({','.join(TOOLSETS)}), or 'all'."),
    ] = "all"
    read_only: Annotated[bool, Field(description="Serve only tools that spend nothing and change nothing.")] = False
    http_token: Annotated[
        SecretStr | None,
        Field(
            description="Bearer token(s) HTTP clients must send, comma-separated to accept several while "
            "rotating (each at least 32 characters); required to bind HTTP to a non-loopback address."
        ),
    ] = None
    http_token_file: Annotated[
        Path | None,
        Field(description="File of accepted bearer tokens, one per line ('#' starts a comment); adds to http_token."),
    ] = None
    http_auth: Annotated[
        Literal["token", "xai-key"],
        Field(
            description="How HTTP clients authenticate: 'token' (a shared XAI_MCP_HTTP_TOKEN, or none on loopback; "
            "calls use XAI_API_KEY) or 'xai-key' (each client's bearer token is its own xAI API key, used for its "
            "calls; no XAI_API_KEY needed)."
        ),
    ] = "token"
    metrics_public: Annotated[
        bool, Field(description="Serve GET /metrics without the bearer token (e.g. to a scraper on a private network).")
    ] = False
    http_max_body_mb: Annotated[
        int, Field(ge=1, le=1024, description="Largest HTTP request body accepted, in MiB (larger ones get 413).")
    ] = 64
    http_max_connections: Annotated[
        int,
        Field(ge=1, le=100_000, description="Open HTTP connections served at once; more are answered 503 and closed."),
    ] = 256
    http_header_timeout: Annotated[
        float,
        Field(gt=0, le=600, description="Seconds a client may take to send a request's headers before it is cut off."),
    ] = 10.0
    http_keep_alive_timeout: Annotated[
        float, Field(gt=0, le=3600, description="Seconds an idle keep-alive HTTP connection is kept open.")
    ] = 5.0
    http_shutdown_timeout: Annotated[
        float,
        Field(ge=0, le=3600, description="Seconds running HTTP requests get to finish on shutdown before being cut."),
    ] = 30.0
    drain_seconds: Annotated[
        float,
        Field(
            ge=0,
            le=3600,
            description="On SIGTERM/SIGINT (or stdin closing): seconds calls in flight get to finish before exit; "
            "new calls are refused and long-job waits return their request id at once.",
        ),
    ] = 20.0
    http_allowed_hosts: Annotated[
        str, Field(description="Extra Host header values (comma-separated, e.g. mcp.example.com:*) accepted over HTTP.")
    ] = ""
    state: Annotated[
        str,
        Field(
            description="Where the job journal, finished deferred answers and spending are kept: empty for a SQLite "
            "file in the user's state folder (~/.local/state/xai-mcp/state.sqlite), a file path, 'memory' "
            "(forgotten at exit), or a redis:// or rediss:// URL shared by replicas."
        ),
    ] = ""
    daily_budget_usd: Annotated[
        float | None,
        Field(
            gt=0,
            description="Refuse paid tools once today's spending (UTC day, as xAI reports it, per API key) "
            "reaches this many US dollars; unset: no limit. If the state store is down, calls are allowed.",
        ),
    ] = None
    log_level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR"], Field(description="Log level (logs go to stderr).")
    ] = "WARNING"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @property
    def per_user_keys(self) -> bool:
        """Each HTTP client sends its own xAI key (XAI_MCP_HTTP_AUTH=xai-key); see xai_mcp/keys.py."""
        return self.http_auth == "xai-key"

    def key(self) -> str:
        """The server's own API key, or a ConfigError naming the variable to set.

        Calls do not read it directly: `keys.current_key` decides which key a call uses."""
        if self.api_key is None or not self.api_key.get_secret_value().strip():
            raise ConfigError(MISSING_KEY)
        return self.api_key.get_secret_value().strip()

    def state_location(self) -> str:
        """XAI_MCP_STATE, checked: a mistyped URL would otherwise be taken for a file path.

        The message names only the scheme: the rest of a URL may hold a password.
        """
        value = self.state.strip()
        scheme, sep, _ = value.partition("://")
        if sep and scheme.lower() not in ("redis", "rediss", "unix"):
            raise ConfigError(
                f"XAI_MCP_STATE: {scheme}:// is not a state store; use redis:// or rediss:// (or unix://), "
                "a file path, 'memory', or leave it empty for the default file."
            )
        return value

    def management(self) -> str | None:
        """The management key, or None when the collections toolset is not configured."""
        if self.management_key is None or not self.management_key.get_secret_value().strip():
            return None
        return self.management_key.get_secret_value().strip()

    def target(self) -> tuple[str, int]:
        """The endpoint, validated: plaintext is allowed only to a loopback address."""
        return self._endpoint(self.api_host, "XAI_API_HOST", DEFAULT_HOST, "API key")

    def management_target(self) -> tuple[str, int]:
        """The management endpoint (collections), validated by the same rules as `target`."""
        return self._endpoint(
            self.management_api_host, "XAI_MANAGEMENT_API_HOST", DEFAULT_MANAGEMENT_HOST, "management key"
        )

    def _endpoint(self, value: str, variable: str, example: str, key: str) -> tuple[str, int]:
        host, port = split_host(value.strip(), variable, example)
        if self.insecure and not is_loopback(host):
            raise ConfigError(
                f"XAI_MCP_INSECURE=1 is only allowed for loopback hosts (127.0.0.1, ::1, localhost), "
                f"not {host!r} ({variable}): the {key} must never cross a network unencrypted. "
                "Unset XAI_MCP_INSECURE."
            )
        return host, port

    def http_tokens(self) -> list[str]:
        """The accepted bearer tokens (none: HTTP is open), or a ConfigError naming what is wrong."""
        if self.per_user_keys:
            if self.http_token is not None or self.http_token_file is not None:
                raise ConfigError(
                    "XAI_MCP_HTTP_AUTH=xai-key takes each client's xAI key as its bearer token, so a shared "
                    "XAI_MCP_HTTP_TOKEN / XAI_MCP_HTTP_TOKEN_FILE has no place: unset them, or unset XAI_MCP_HTTP_AUTH"
                )
            return []
        found: list[tuple[str, str]] = []  # (where it came from, token)
        if self.http_token is not None:
            raw = self.http_token.get_secret_value()
            parts = [t.strip() for t in raw.split(",")]
            if not any(parts):
                raise ConfigError(
                    f"XAI_MCP_HTTP_TOKEN is set but empty: set a strong token ({_MAKE_TOKEN}), or unset it"
                )
            found += [(f"XAI_MCP_HTTP_TOKEN entry {i}", t) for i, t in enumerate(parts, 1) if t]
        if self.http_token_file is not None:
            source = f"XAI_MCP_HTTP_TOKEN_FILE ({self.http_token_file})"
            try:
                lines = self.http_token_file.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as err:
                raise ConfigError(f"{source} cannot be read: {getattr(err, 'strerror', None) or err}") from None
            from_file = [
                (f"{source} line {n}", line.strip())
                for n, line in enumerate(lines, 1)
                if line.strip() and not line.strip().startswith("#")
            ]
            if not from_file:
                raise ConfigError(f"{source} holds no token: write one per line ({_MAKE_TOKEN})")
            found += from_file
        for where, token in found:
            # The token itself never goes into a message: only its place and length.
            if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() for c in token):
                raise ConfigError(
                    f"{where} is too weak: a token needs at least {MIN_TOKEN_LENGTH} characters and no spaces "
                    f"(this one has {len(token)}). Generate one with: {_MAKE_TOKEN}"
                )
        return [token for _, token in found]
