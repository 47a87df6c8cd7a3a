"""When a licence is near its end, and what its holder is told: pure rules shared by the daily
scan (``supervision.expiry``) and the holder's pages, so the page and the reminder agree on the
window without the page waiting for the scan to have run.

The reminder period is the platform's message policy, not part of a licence type's GB/T 36902
definition: it is kept here, from settings (a default and optional per-type values), rather
than in the catalogue entry, whose every field is versioned, exchanged and served to the
departments' API. A type's period can change without a new catalogue version, and a department
cannot shorten its own licences' reminders to nothing.

Dates are China dates (``core.clock.china_today``): a licence whose last day is ``valid_until``
is valid through that whole day in Beijing and expired from the next midnight there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from core.errors import InvalidInput

MAX_DAYS = 366


def _days(value: int, name: str, lowest: int = 1, highest: int = MAX_DAYS) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lowest <= value <= highest:
        raise InvalidInput(
            f"{name} 须为 {lowest}-{highest} 的整数 / {name} is a whole number "
            f"from {lowest} to {highest}: {value!r}",
            field=name,
        )
    return value


@dataclass(frozen=True)
class ExpiryPolicy:
    """The scan's windows, in days. ``reminder_days_by_type`` maps a licence type code to its
    own reminder period; other types use ``reminder_days``."""

    reminder_days: int = 30
    reminder_days_by_type: Mapping[str, int] = field(default_factory=dict)
    overdue_days: int = 30  # 逾期未换证告知: this many days after expiry, not renewed
    catch_up_days: int = 31  # how far back a scan after downtime still looks
    alert_days: int = 30  # the alert counts licences expiring within this many days
    alert_threshold: int = 50  # ... and fires only above this many per department

    def __post_init__(self) -> None:
        _days(self.reminder_days, "expiry_reminder_days")
        _days(self.overdue_days, "expiry_overdue_days")
        _days(self.catch_up_days, "expiry_catch_up_days")
        _days(self.alert_days, "expiry_alert_days")
        _days(self.alert_threshold, "expiry_alert_threshold", 0, 10_000_000)
        for code, days in self.reminder_days_by_type.items():
            if not isinstance(code, str) or not 1 <= len(code) <= 21:
                raise InvalidInput(
                    f"证照类型代码无效 / not a licence type code: {code!r}",
                    field="expiry_reminder_days_by_type",
                )
            _days(days, f"expiry_reminder_days_by_type[{code}]")

    def reminder_days_for(self, type_code: str) -> int:
        return self.reminder_days_by_type.get(type_code, self.reminder_days)


@dataclass(frozen=True)
class ExpiryNotice:
    """What the holder's page says about a licence's end: ``expiring`` within the reminder
    window (``days_left`` from 0, its last day, up), ``expired`` after it."""

    kind: Literal["expiring", "expired"]
    days_left: int
    valid_until: date
    text: str


def expiry_notice(
    *, stored_status: str, valid_until: date | None, today: date, reminder_days: int
) -> ExpiryNotice | None:
    """The notice for a licence whose stored status is ``stored_status``: only a licence still
    valid as stored is near its end or expired (a revoked, cancelled or superseded one is
    shown by its status; an indefinite one never ends)."""
    if stored_status != "valid" or valid_until is None:
        return None
    left = (valid_until - today).days
    day = valid_until.isoformat()
    if left < 0:
        text = "已过期，请办理延续或重新申领 / expired; apply for renewal"
        return ExpiryNotice("expired", left, valid_until, text)
    if left > reminder_days:
        return None
    if left == 0:
        text = (
            f"今日为有效期最后一天（{day}），请及时办理延续 / "
            f"today is its last valid day ({day}); apply for renewal"
        )
    else:
        text = (
            f"将于 {left} 天后到期（{day}），请及时办理延续 / "
            f"expires in {left} days ({day}); apply for renewal"
        )
    return ExpiryNotice("expiring", left, valid_until, text)
