"""HTTP routes, one module per area: each exposes a ``routes`` list (or an ASGI app).

New areas (the dashboard, the developer portal) are added the same way: a module with its
own ``routes`` list, mounted by :func:`examples.authz_server.app.create_app`.
"""
