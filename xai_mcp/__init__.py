"""xai-mcp: an MCP server for xAI's API over gRPC, with a local xAI-compatible emulator."""

__version__ = "0.1.0"

__all__ = ["__version__"]
