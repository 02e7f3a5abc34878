"""The floor for stdio figures: the smallest useful MCP server, on the same SDK as xai-mcp.

One async tool that echoes its argument, nothing else: no gRPC, no settings, no toolsets.
Run it as `python -m xai_mcp.bench.bare`; the benchmark spawns it next to `python -m xai_mcp`.
"""

from __future__ import annotations

from mcp.server import MCPServer


def build() -> MCPServer:
    server = MCPServer("bare")

    # async, like our tools: a sync tool would run on a worker thread and flatter nobody.
    @server.tool()
    async def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    return server


if __name__ == "__main__":
    build().run()
