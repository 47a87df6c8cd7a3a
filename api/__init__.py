"""The edges: HTTP (FastAPI), pages and the CLI. The only importer of fastapi and typer, and the
place where the object graph is built once from settings."""
