"""The Organizer API on Flask, protected by apiguard (``python -m examples.flask_api``)."""
