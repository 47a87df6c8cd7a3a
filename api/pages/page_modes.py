"""How a public page is shown, not what it says: large text (适老化) and the self-service kiosk.

Large text is a preference a person sets once without any script: a plain link to
``/text-size?size=large&next=<this page>`` stores a cookie and comes back, and a page opened
with ``?text=large`` shows large text at once (a printed notice can link to it). The templates
read ``large_text`` from every page's context (a context processor of the shared templates), so
the holder pages, the presentation page and the verification page follow it alike.

The kiosk (自助终端) is ``/verify?kiosk=1`` on a fixed terminal: its result page prints with the
licence's own verification URL drawn as a QR code, server-side, so the printout can be verified
again by anyone; the page script only keeps the scanner focused and resets the screen.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse

from licences.links import code_from_text, verify_url
from licences.qr import qr_svg_data_uri

router = APIRouter()

TEXT_COOKIE = "elicence_text"
LARGE = "large"
NORMAL = "normal"
COOKIE_SECONDS = 365 * 24 * 3600  # a preference, not a credential: no personal data in it
FALLBACK = "/verify"


def large_text(request: Request) -> bool:
    """The query parameter wins over the cookie, so one link shows either size."""
    asked = request.query_params.get("text")
    if asked in (LARGE, NORMAL):
        return asked == LARGE
    return request.cookies.get(TEXT_COOKIE) == LARGE


def page_modes(request: Request) -> dict[str, Any]:
    """Context for every template: the text size and the link that switches it."""
    large = large_text(request)
    target = NORMAL if large else LARGE
    path = request.url.path
    if path.startswith("/h/"):
        # A holder link's secret is its path: it is never copied into another URL (the page
        # shows the size its query asks for, with no cookie).
        toggle = f"?text={target}"
    else:
        # The path only: a query may carry what must not travel (a sign-in's code and state).
        toggle = f"/text-size?size={target}&next={quote(path, safe='/')}"
    return {"large_text": large, "text_toggle": toggle}


def local_path(value: str | None) -> str:
    """Only a path on this site: ``//host``, ``/\\host``, schemes and control characters would
    let a link on a trusted page send a person elsewhere (an open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//"):
        return FALLBACK
    if "\\" in value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return FALLBACK
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return FALLBACK
    return value


@router.get("/text-size", include_in_schema=False)
def text_size(
    size: str = LARGE, back: str = Query(default=FALLBACK, alias="next", max_length=2048)
) -> RedirectResponse:
    """Store the text size and go back; an unknown size is the normal size."""
    response = RedirectResponse(local_path(back), status_code=303)
    response.set_cookie(
        TEXT_COOKIE,
        LARGE if size == LARGE else NORMAL,
        max_age=COOKIE_SECONDS,
        path="/",
        httponly=True,
        samesite="lax",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def kiosk_qr(base_url: str, scanned: str | None) -> str | None:
    """The licence's own verification URL as an SVG QR code (a ``data:`` URI), for the printed
    result; ``None`` when the scan held no code of this service (nothing worth re-scanning)."""
    if not scanned:
        return None
    code = code_from_text(scanned)
    return qr_svg_data_uri(verify_url(base_url, code)) if code else None
