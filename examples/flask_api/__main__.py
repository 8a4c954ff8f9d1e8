"""Run the Organizer API on 127.0.0.1 (``PORT``, default 5000): ``python -m examples.flask_api``."""

from __future__ import annotations

import os

from .app import create_app


def main() -> None:
    port = int(os.environ.get("PORT", "5000"))
    # Werkzeug's server is fine for an example; no debugger and no reloader (a reloader
    # would fork a second process, and the debugger runs code sent to it).
    create_app().run(host="127.0.0.1", port=port, threaded=True, debug=False, use_reloader=False)


if __name__ == "__main__":
    main()
