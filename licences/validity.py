"""Validity dates by a licence type's rule (GB/T 36902 有效期限): a fixed term ends, by default
one term of the type's years after it starts; an indefinite licence (长期有效) has no end date.

Dates are dates in China: a licence issued at 00:30 Beijing time is issued on that day, not on
the previous day of the server's UTC clock.
"""

from __future__ import annotations

from datetime import date, timedelta

from core.errors import InvalidInput
from licences.models import LicenceType, ValidityRule


def add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def chinese_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def validity_dates(
    entry: LicenceType, valid_from: date | None, valid_until: date | None, today: date
) -> tuple[date, date | None]:
    """The (start, end) a licence of ``entry`` gets, or the rule the request breaks."""
    start = valid_from or today
    if entry.validity_rule == ValidityRule.INDEFINITE.value:
        if valid_until is not None:
            raise InvalidInput(
                "此类证照长期有效，不设有效期截止 / this licence type is valid indefinitely; "
                "leave valid_until empty",
                field="valid_until",
            )
        return start, None
    end = valid_until
    if end is None and entry.validity_years:
        end = add_years(start, entry.validity_years) - timedelta(days=1)
    if end is None:
        raise InvalidInput(
            "此类证照有固定期限，须给出有效期截止 / this licence type has a fixed term; "
            "give valid_until",
            field="valid_until",
        )
    if end < start:
        raise InvalidInput(
            "有效期截止早于起始 / valid_until is before valid_from", field="valid_until"
        )
    if end < today:
        raise InvalidInput("有效期已过 / valid_until is in the past", field="valid_until")
    return start, end
