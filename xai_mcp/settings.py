"""Typed settings, read from the environment. Every field documents itself."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from xai_mcp.errors import UserError
from xai_mcp.tools import TOOLSETS

DEFAULT_HOST = "api.x.ai:443"


class ConfigError(UserError):
    """The configuration cannot work; the message says which variable to fix."""


def _default_output_dir() -> Path:
    # A per-user folder, never the working directory: a host-launched server often runs in "/".
    return Path.home() / ".cache" / "xai-mcp" / "output"


def split_host(target: str) -> tuple[str, int]:
    """Split "host:port" (or "[v6]:port", or a bare host meaning port 443)."""
    if target.startswith("["):
        host, _, rest = target[1:].partition("]")
        port = rest.removeprefix(":")
    elif target.count(":") == 1:
        host, port = target.split(":")
    else:
        host, port = target, ""
    if not host:
        raise ConfigError(f"XAI_API_HOST {target!r} has no host name; expected host:port, e.g. {DEFAULT_HOST}")
    try:
        number = int(port) if port else 443
    except ValueError:
        raise ConfigError(f"XAI_API_HOST {target!r} has a bad port; expected host:port, e.g. {DEFAULT_HOST}") from None
    if not 0 < number < 65536:
        raise ConfigError(f"XAI_API_HOST {target!r} has a port out of range")
    return host, number


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    """xai-mcp settings. `XAI_API_KEY` and `XAI_API_HOST` are shared with xAI's own tools."""

    model_config = SettingsConfigDict(env_prefix="XAI_MCP_", frozen=True, extra="ignore", populate_by_name=True)

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
    insecure: Annotated[
        bool,
        Field(description="Plaintext gRPC, for a local emulator only: refused unless the host is loopback."),
    ] = False
    rpc_timeout: Annotated[
        float,
        Field(gt=0, le=3600, description="Deadline in seconds for each xAI call, retries included."),
    ] = 300.0
    retry_attempts: Annotated[
        int,
        Field(ge=1, le=10, description="Attempts per call when xAI is briefly unavailable (1 = no retry)."),
    ] = 4
    wait_seconds: Annotated[
        float,
        Field(ge=0, le=3600, description="How long a tool waits on a long job before returning a resumable handle."),
    ] = 45.0
    default_model: Annotated[str, Field(min_length=1, description="Chat model used when a call names none.")] = (
        "grok-4.20-reasoning"
    )
    output_dir: Annotated[
        Path, Field(default_factory=_default_output_dir, description="Folder where saved images are written.")
    ]
    toolsets: Annotated[
        str,
        Field(description=f"Comma-separated toolsets to serve ({','.join(TOOLSETS)}), or 'all'."),
    ] = "all"
    read_only: Annotated[bool, Field(description="Serve only tools that spend nothing and change nothing.")] = False
    http_token: Annotated[
        SecretStr | None,
        Field(description="Bearer token HTTP clients must send; required to bind HTTP to a non-loopback address."),
    ] = None
    http_allowed_hosts: Annotated[
        str, Field(description="Extra Host header values (comma-separated, e.g. mcp.example.com:*) accepted over HTTP.")
    ] = ""
    log_level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR"], Field(description="Log level (logs go to stderr).")
    ] = "WARNING"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    def key(self) -> str:
        """The API key, or a ConfigError naming the variable to set."""
        if self.api_key is None or not self.api_key.get_secret_value().strip():
            raise ConfigError("XAI_API_KEY is not set: export your xAI API key (https://console.x.ai) as XAI_API_KEY.")
        return self.api_key.get_secret_value().strip()

    def target(self) -> tuple[str, int]:
        """The endpoint, validated: plaintext is allowed only to a loopback address."""
        host, port = split_host(self.api_host.strip())
        if self.insecure and not is_loopback(host):
            raise ConfigError(
                f"XAI_MCP_INSECURE=1 is only allowed for loopback hosts (127.0.0.1, ::1, localhost), "
                f"not {host!r}: the API key must never cross a network unencrypted. Unset XAI_MCP_INSECURE."
            )
        return host, port
