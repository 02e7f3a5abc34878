"""The floor for stdio figures: the smallest useful MCP server, on the same SDK as xai-mcp.

One async tool that echoes its argument, nothing else: no gRPC, no settings, no toolsets.
Run it as `python -m xai_mcp.bench.bare`; the benchmark spawns it next to `python -m xai_mcp`.
`python -m xai_mcp.bench.bare --http PORT` serves it as a stateless streamable HTTP app on the
same server stack as `xai-mcp serve --transport http` (our uvicorn set-up, default limits): the
floor of the HTTP figures.
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


def serve_http(port: int) -> None:
    import asyncio

    from xai_mcp.http_server import HttpLimits, uvicorn_server
    from xai_mcp.settings import Settings

    app = build().streamable_http_app(streamable_http_path="/mcp", stateless_http=True, host="127.0.0.1")
    server = uvicorn_server(
        app, host="127.0.0.1", port=port, limits=HttpLimits.from_settings(Settings.model_validate({}))
    )
    asyncio.run(server.serve())


if __name__ == "__main__":
    import sys

    if len(sys.argv) == 3 and sys.argv[1] == "--http":
        serve_http(int(sys.argv[2]))
    else:
        build().run()
