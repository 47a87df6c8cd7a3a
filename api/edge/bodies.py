"""Request bodies as the edge passes them on: counted as they are read, never past the route's
limit, and a JSON body checked for nesting before anything parses it.

A ``Content-Length`` is only a claim (and a chunked body has none), so the limit is kept on the
bytes actually received: every ``http.request`` message is counted, and the message that goes
past the limit is the last one read. A JSON body (which the route reads whole anyway) is
collected here up to its limit, its nesting depth measured without parsing it, and then handed
to the route in one message; any other body streams through the counting ``receive``.
"""

from __future__ import annotations

import re
from itertools import accumulate

from starlette.exceptions import HTTPException
from starlette.types import Message, Receive

from api.edge.limits import too_large

_ESCAPES = re.compile(rb"\\.", re.DOTALL)  # a backslash and the character it escapes
_STRINGS = re.compile(rb'"[^"]*"')  # a string, once its escapes are gone
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = [0] * 256
for _open in b"[{":
    _STEP[_open] = 1
for _close in b"]}":
    _STEP[_close] = -1


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a body goes past its limit; the framework answers any
    ``HTTPException`` with its problem+json, whoever was reading the body."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large(limit).detail)


def json_too_deep(body: bytes, depth: int) -> bool:
    """Whether the JSON text nests arrays and objects more than ``depth`` levels deep.

    Linear and without parsing: escapes are removed first (so a string holds no quote), then
    strings, then everything but brackets; the depth is the highest running sum of the
    brackets. Text that is not JSON may be answered either way; the parser refuses it next."""
    if body.count(b"[") + body.count(b"{") <= depth:
        return False
    text = _STRINGS.sub(b"", _ESCAPES.sub(b"", body) if b"\\" in body else body)
    brackets = text.translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0) > depth


def counting(receive: Receive, limit: int) -> Receive:
    """``receive`` that counts body bytes and raises :class:`BodyTooLarge` past ``limit``
    (and on every later call: nothing more is read)."""
    total = 0

    async def counted() -> Message:
        nonlocal total
        if total > limit:
            raise BodyTooLarge(limit)
        message = await receive()
        if message["type"] == "http.request":
            total += len(message.get("body", b""))
            if total > limit:
                raise BodyTooLarge(limit)
        return message

    return counted


async def collect(receive: Receive, limit: int) -> tuple[list[Message], bool]:
    """The body's messages up to the one that ends it (or a disconnect), and whether it went
    past ``limit`` — in which case reading stopped at that message."""
    messages: list[Message] = []
    total = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, False
        total += len(message.get("body", b""))
        if total > limit:
            return messages, True
        if not message.get("more_body", False):
            return messages, False


def joined(messages: list[Message]) -> bytes:
    if len(messages) == 1:
        return bytes(messages[0].get("body", b""))
    return b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")


def replay(body: bytes, ended: Message | None, receive: Receive) -> Receive:
    """``receive`` that hands over the collected body in one message, then (or instead, if the
    client left while it was collected) what the server says next."""
    pending: list[Message] = (
        [ended]
        if ended is not None
        else [{"type": "http.request", "body": body, "more_body": False}]
    )

    async def replayed() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replayed


def message_end(messages: list[Message]) -> Message | None:
    """The disconnect that ended the collection early, if it was one."""
    last = messages[-1]
    return last if last["type"] != "http.request" else None
