"""The api-load baseline: the smallest FastAPI app, served as `weatherpipe api` serves its own.

    python -m benchmarks.minimal_api PORT
"""

from __future__ import annotations

import sys
from typing import Any

from fastapi import FastAPI


def minimal_app() -> FastAPI:
    app = FastAPI()

    @app.get("/")
    async def root() -> dict[str, Any]:
        return {"status": "ok"}

    return app


def main(port: int) -> None:
    """Serve `minimal_app` on 127.0.0.1:`port` through the uvicorn settings of `weatherpipe api`
    (weatherpipe.runner.serve), so the two differ by the application only."""
    from weatherpipe.api.server import listen_socket
    from weatherpipe.config import load_settings
    from weatherpipe.runner import serve

    settings = load_settings(api_host="127.0.0.1", api_port=port)
    serve(minimal_app(), settings, listen_socket("127.0.0.1", port))


if __name__ == "__main__":
    main(int(sys.argv[1]))
