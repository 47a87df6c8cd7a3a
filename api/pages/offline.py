"""The offline verifier's service worker and what it caches for ``/verify``.

``GET /verify-sw.js`` serves ``static/offline/sw.js`` from the site's root, so the worker's
scope, ``/``, covers ``/verify`` and the ``/V/<code>`` URLs printed in QR codes without a
``Service-Worker-Allowed`` header. The worker only ever answers for the paths it caches (the page,
its CSS and scripts, the trust list and the status list), ``/V/<code>`` navigations and the
``/verify`` form; every other request passes it untouched.

The asset list and a version (the SHA-256 of every cached file) are written into the worker
here rather than kept by hand in the script: the scripts' ES module imports (the vendored cborg
is some twenty files) must all be cached or the page cannot start offline, and a changed file
changes the worker's bytes, which is what makes browsers install the new worker and drop the
old cache.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import Response

router = APIRouter()
STATIC = Path(__file__).parent / "static"
WORKER = STATIC / "offline" / "sw.js"
PAGE = "/verify"
# What the page loads: its style sheets, and every module the verifier imports.
ASSET_GLOBS = ("app.css", "offline/*.css", "offline/*.js", "vendor/**/*.js")


def _assets() -> list[Path]:
    found = {path for pattern in ASSET_GLOBS for path in STATIC.glob(pattern)}
    return sorted(path for path in found if path != WORKER)


@cache
def worker_script() -> bytes:
    """The worker with its asset list and version filled in (files change only on deploy)."""
    assets = _assets()
    digest = hashlib.sha256()
    for path in [*assets, WORKER]:
        digest.update(path.relative_to(STATIC).as_posix().encode() + b"\0" + path.read_bytes())
    urls = [PAGE] + [f"/static/{path.relative_to(STATIC).as_posix()}" for path in assets]
    text = WORKER.read_text(encoding="utf-8")
    text = text.replace("'__VERSION__'", json.dumps(digest.hexdigest()[:16]))
    text = text.replace("__ASSETS__", json.dumps(urls))
    return text.encode("utf-8")


@router.get("/verify-sw.js", include_in_schema=False)
def service_worker() -> Response:
    """The worker script. ``no-cache``: browsers compare it with the installed one on each
    visit, so a new release reaches a counter the next time it opens /verify online."""
    return Response(
        worker_script(),
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache"},
    )
