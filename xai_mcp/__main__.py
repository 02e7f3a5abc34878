from xai_mcp.cli import main

main()
