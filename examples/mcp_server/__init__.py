"""The Organizer tools as an MCP server, protected by apiguard."""
