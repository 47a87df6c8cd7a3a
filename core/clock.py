"""Time as a collaborator, so validity, expiry and revocation can be tested with a controlled clock.

One date rule: a licence's dates (valid from, valid until, issue date, a grant's last day) are
calendar dates in China. ``china_today`` is the one function that turns an instant into that
date; every check of validity and every printed date goes through it, never through
``datetime.date()`` (the UTC date, a day behind from 00:00 to 08:00 Beijing time) nor through
``date.today()`` (the host's zone).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

CHINA = ZoneInfo("Asia/Shanghai")


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


def china_today(now: datetime) -> date:
    """The date in China at the instant ``now`` (an aware datetime): the date a licence's
    validity is measured against, and the date printed for an instant such as ``issued_at``."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("china_today needs an aware datetime")
    return now.astimezone(CHINA).date()


def china_time(now: datetime) -> datetime:
    """The instant ``now`` as a wall clock in China reads it (hour, weekday): working hours are
    China's, whatever zone the host or the test runner is in. Dates still go through
    :func:`china_today`."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("china_time needs an aware datetime")
    return now.astimezone(CHINA)


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that only moves when told to."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._at = at

    def now(self) -> datetime:
        return self._at

    def advance(self, delta: timedelta) -> None:
        self._at = self._at + delta
