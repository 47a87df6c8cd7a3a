"""Bounded HTTP to other domains: trust lists, OCSP, licence-status answers.

Another domain's server is not ours: every request has a connect and a total read timeout,
follows no redirect (the pinned URL is the URL), and reads at most a fixed number of bytes, so
a slow, hostile or broken peer costs at most a few seconds and a few megabytes.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from core.errors import InvalidInput, Unavailable

CONNECT_SECONDS = 5.0
READ_SECONDS = 10.0
USER_AGENT = "elicence-federation/1"


def check_url(url: str, field: str = "url") -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > 512:
        raise InvalidInput(
            f"须为 http(s) 网址 / {field} must be an http or https URL of at most 512 characters",
            field=field,
        )
    return url


def fetch(
    method: str,
    url: str,
    *,
    max_bytes: int,
    what: str,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
) -> tuple[bytes, str]:
    """The body and content type of a 200 answer; anything else is ``Unavailable`` naming
    ``what`` and the reason in one line."""
    check_url(url)
    timeout = httpx.Timeout(READ_SECONDS, connect=CONNECT_SECONDS)
    try:
        with (
            httpx.Client(
                timeout=timeout,
                follow_redirects=False,
                transport=transport,
                headers={"User-Agent": USER_AGENT},
            ) as client,
            client.stream(method, url, content=content, headers=headers) as response,
        ):
            if response.status_code != 200:
                raise _unavailable(what, url, f"HTTP {response.status_code}")
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                raise _unavailable(what, url, f"larger than {max_bytes} bytes")
            body = bytearray()
            for chunk in response.iter_bytes():
                body.extend(chunk)
                if len(body) > max_bytes:
                    raise _unavailable(what, url, f"larger than {max_bytes} bytes")
            return bytes(body), response.headers.get("content-type", "")
    except httpx.HTTPError as exc:
        raise _unavailable(what, url, type(exc).__name__) from None


def _unavailable(what: str, url: str, reason: str) -> Unavailable:
    return Unavailable(
        f"无法获取{what} / cannot fetch the {_EN.get(what, what)} from {url}: {reason}"
    )


_EN = {
    "信任列表": "trust list",
    "OCSP应答": "OCSP response",
    "证照状态": "licence status",
}
