"""The Organizer API on FastAPI, protected by apiguard."""
