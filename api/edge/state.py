"""The service graph as the edge sees it: typed, from the application that serves the request.

``create_app`` stores the graph on ``app.state``, which Starlette types as ``Any``; every route
reads it through :func:`services_of`, so the graph is checked by mypy at each use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from starlette.requests import HTTPConnection

if TYPE_CHECKING:
    from api.container import Services


def services_of(request: HTTPConnection) -> Services:
    """The graph ``create_app`` built for this application."""
    return cast("Services", request.app.state.services)
