"""ASGI entry point for ``uvicorn`` workers: each worker builds its graph from the environment."""

from api.app import create_app
from api.edge.observability import configure_logging

configure_logging()
app = create_app()
