"""The account toolset: what xAI knows about the API key this server uses."""

from __future__ import annotations

from google.protobuf import empty_pb2
from pydantic import BaseModel, Field

from xai_mcp import rpc
from xai_mcp._pb.v1 import auth_pb2
from xai_mcp.errors import scrub
from xai_mcp.keys import current_key
from xai_mcp.state import ToolContext
from xai_mcp.tools._common import READ_ONLY, ToolSpec, app
from xai_mcp.tools._units import iso_time


class ApiKeyInfo(BaseModel):
    api_key_id: str = Field(description="The key's id (not a secret).")
    redacted_key: str = Field(description="The key with all but a few characters hidden, e.g. xai-...cdef.")
    name: str = Field(description="The name given to the key in the xAI console.")
    team_id: str = Field(description="The team the key belongs to (its usage is billed to this team).")
    user_id: str = Field(description="The user who created the key.")
    acls: list[str] = Field(description="Permissions of the key, e.g. api-key:model:* (all models).")
    created: str | None = Field(default=None, description="When the key was created (ISO 8601, UTC).")
    modified: str | None = Field(default=None, description="When the key was last changed (ISO 8601, UTC).")
    blocked: bool = Field(description="xAI has blocked this key.")
    team_blocked: bool = Field(description="xAI has blocked the key's team (often billing or credits).")
    disabled: bool = Field(description="The key was disabled in the console.")
    usable: bool = Field(description="True when the key is neither blocked, nor its team blocked, nor disabled.")
    note: str | None = Field(default=None, description="What to do when the key is not usable.")


def _note(pb: auth_pb2.ApiKey) -> str | None:
    problems = []
    if pb.api_key_blocked:
        problems.append("the key is blocked by xAI")
    if pb.team_blocked:
        problems.append("the key's team is blocked by xAI (check billing and credits)")
    if pb.disabled:
        problems.append("the key is disabled")
    if not problems:
        return None
    return (
        f"Calls with this key will fail: {'; '.join(problems)}. Fix it at https://console.x.ai "
        "or set XAI_API_KEY to another key."
    )


def _from_response(pb: auth_pb2.ApiKey, *, secret: str) -> ApiKeyInfo:
    return ApiKeyInfo(
        api_key_id=pb.api_key_id,
        # xAI redacts the key itself; scrubbing our own key again costs nothing and makes sure
        # a misbehaving endpoint can never put the secret into the agent's context.
        redacted_key=scrub(pb.redacted_api_key, [secret]),
        name=pb.name,
        team_id=pb.team_id,
        user_id=pb.user_id,
        acls=list(pb.acls),
        created=iso_time(pb.create_time),
        modified=iso_time(pb.modify_time),
        blocked=pb.api_key_blocked,
        team_blocked=pb.team_blocked,
        disabled=pb.disabled,
        usable=not (pb.api_key_blocked or pb.team_blocked or pb.disabled),
        note=_note(pb),
    )


async def get_api_key_info(*, ctx: ToolContext) -> ApiKeyInfo:
    """Show the xAI API key this server uses: its redacted form, name, team, permissions, and whether it is usable.

    Free: costs nothing. Use it to diagnose authentication or permission errors; `usable` is
    false (with a `note` saying what to do) when the key or its team is blocked or disabled.
    """
    state = app(ctx)
    response = await state.xai.call(rpc.GET_API_KEY_INFO, empty_pb2.Empty())
    return _from_response(response, secret=current_key(state.settings))


TOOLS = [
    ToolSpec(
        get_api_key_info, READ_ONLY, "Show API key info", "the key's id, redacted key, team, permissions and status"
    ),
]
