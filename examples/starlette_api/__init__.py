"""The Organizer API on Starlette, protected by apiguard's ASGI middleware."""
