"""ASGI entry point for ``uvicorn`` workers: each worker builds its graph from the environment."""

from api.app import create_app

app = create_app()
