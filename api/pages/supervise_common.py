"""What every supervision page shares: the page response (no-store, the session renewed), the
redirect to sign-in, and a refusal shown as a page."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from api.edge.errors import STATUS
from api.edge.supervisor_session import csrf_of, renew
from api.pages.verify import templates
from core.errors import ElicenceError
from supervision.supervisor_desk import Supervisor

NO_STORE = {"Cache-Control": "no-store"}
SIGN_IN = "/supervise/sign-in"


def to_sign_in(request: Request) -> Response:
    """To the sign-in form (saying why when a session was there but is no longer valid)."""
    problem = getattr(request.state, "supervisor_problem", None)
    response = RedirectResponse(SIGN_IN + ("?expired=1" if problem else ""), status_code=303)
    response.headers.update(NO_STORE)
    return response


def page(
    request: Request,
    name: str,
    supervisor: Supervisor | None,
    context: dict[str, Any],
    *,
    nav: str = "",
    status: int = 200,
) -> Response:
    """A supervision page (``supervise_base.html``), not stored, its session renewed."""
    values = {"supervisor": supervisor, "csrf": csrf_of(request), "nav": nav, **context}
    response = templates.TemplateResponse(
        request, name, values, status_code=status, headers=NO_STORE
    )
    return renew(request, response)


def problem_page(request: Request, supervisor: Supervisor, exc: ElicenceError) -> Response:
    """A refusal a supervisor's browser shows as a page, with the status its kind maps to."""
    context = {"message": exc.message}
    return page(request, "supervise_problem.html", supervisor, context, status=STATUS[exc.kind])
