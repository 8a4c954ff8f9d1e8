"""A local, Auth0-shaped OAuth 2.0 / OpenID Connect authorization server (development only).

>>> from examples.authz_server import Settings, create_app
>>> app = create_app(Settings(db_path=":memory:"))  # doctest: +SKIP
"""

from .app import create_app
from .settings import Settings

__all__ = ["Settings", "create_app"]
