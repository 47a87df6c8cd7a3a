"""The HTTP ceiling: a trivial endpoint, POST echoing the size of a small JSON body.

``app`` is a bare FastAPI application (the framework's ceiling). ``stacked()`` is the elicence
application itself with the same route added — the same middleware (``api/edge/middleware.py``), logging
and service graph, served with the same uvicorn options as ``elicence serve`` — so a route's
ratio to it measures that route's own work, not the stack every route shares.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request

app = FastAPI()


@app.post("/trivial")
async def trivial(request: Request) -> dict[str, Any]:
    body = await request.json()
    return {"ok": True, "n": len(body)}


def stacked() -> FastAPI:
    """``uvicorn --factory bench.trivial:stacked`` with ``ELICENCE_DATA_DIR`` set."""
    from api.app import create_app
    from api.edge.observability import configure_logging

    configure_logging()
    application = create_app()
    application.add_api_route("/trivial", trivial, methods=["POST"])
    return application
