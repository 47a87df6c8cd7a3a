"""Which departments a supervision office oversees: those whose GB/T 2260 division falls under
the office's own.

A division code is six digits, province, prefecture and county two each; trailing zero pairs
mean the whole level above (``440000`` Guangdong, ``440300`` Shenzhen, ``440305`` Nanshan).
``000000`` is the national level and covers every division.
"""

from __future__ import annotations

import re

from sqlmodel import Session, col, select

from core.errors import InvalidInput
from seals.models import Department

NATIONAL = "000000"
_CODE = re.compile(r"[0-9]{6}")


def prefix(division_code: str) -> str:
    """The digits every division under ``division_code`` starts with."""
    if _CODE.fullmatch(division_code) is None:
        raise InvalidInput(
            f"行政区划代码须为6位数字 / a GB/T 2260 division code is six digits: {division_code!r}",
            field="division_code",
        )
    if division_code == NATIONAL:
        return ""
    if division_code[2:] == "0000":
        return division_code[:2]
    if division_code[4:] == "00":
        return division_code[:4]
    return division_code


def covers(office_division: str, department_division: str) -> bool:
    return department_division.startswith(prefix(office_division))


def departments_under(session: Session, office_division: str) -> list[str]:
    """The codes of the departments the office oversees, in code order."""
    start = prefix(office_division)
    query = select(Department.code).order_by(col(Department.code))
    if start:
        query = query.where(col(Department.division_code).startswith(start, autoescape=True))
    return list(session.exec(query).all())
