"""Bar charts for the supervision dashboard, laid out here and drawn by the template as inline
``<svg>``: no script and no external asset (the CSP forbids both), so a chart shows on any
browser, prints, and reads to a screen reader through its ``<title>``, its text labels and the
table beside it. The geometry is in a ``viewBox``, so the chart scales to the width it gets
(360 px on a phone) instead of scrolling sideways."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

WIDTH = 320
PLOT_TOP = 18  # room for the value labels over the tallest bar
PLOT_HEIGHT = 110
LABEL_ROOM = 28
TOP = 20  # departments drawn per chart; the table beside it lists them all


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    value: int
    label: str  # under the bar (a month as MM, a department's short name)
    full_label: str  # in the bar's own <title>
    value_x: float
    value_y: float


@dataclass(frozen=True)
class Chart:
    key: str
    title: str  # zh / en, also the svg's <title>
    width: int
    height: int
    baseline: float
    bars: tuple[Bar, ...]
    label_y: float


def column_chart(key: str, title: str, points: list[tuple[str, str, int]]) -> Chart:
    """Vertical bars, one per point (short label, full label, value), scaled to the largest."""
    peak = max([value for _, _, value in points] + [1])
    slot = WIDTH / max(len(points), 1)
    width = max(slot * 0.7, 2.0)
    bars = []
    for i, (short, full, value) in enumerate(points):
        height = round(value / peak * PLOT_HEIGHT, 1)
        x = round(i * slot + (slot - width) / 2, 1)
        y = round(PLOT_TOP + PLOT_HEIGHT - height, 1)
        bars.append(
            Bar(x, y, round(width, 1), height, value, short, full, round(x + width / 2, 1), y - 3)
        )
    baseline = PLOT_TOP + PLOT_HEIGHT
    return Chart(key, title, WIDTH, baseline + LABEL_ROOM, baseline, tuple(bars), baseline + 14)


def _shared_start(names: list[str]) -> int:
    """How many leading characters every name shares (the city's name, say), so the short
    labels under the bars tell departments apart."""
    if len(names) < 2:
        return 0
    length = 0
    for chars in zip(*names, strict=False):
        if len(set(chars)) != 1:
            break
        length += 1
    return length


def dashboard_charts(
    by_month: list[dict[str, Any]], by_department: list[dict[str, Any]]
) -> tuple[list[Chart], list[Chart]]:
    """Issued, verified, reused and revoked per month, and per department (this month)."""
    shown = (
        ("issued", "签发 / issued"),
        ("verified", "核验 / verified"),
        ("reused", "复用 / reused"),
        ("revoked", "吊销 / revoked"),
    )
    monthly = [
        column_chart(
            key,
            f"{title} · 按月 / by month",
            [(m["month"][5:], m["month"], int(m[key])) for m in by_month],
        )
        for key, title in shown
    ]
    names = [d["department_name"] for d in by_department]
    common = _shared_start(names)
    departmental = []
    for key, title in shown:
        points = [
            (
                d["department_name"][common:][:4] or d["department_name"][:4],
                f"{d['department_name']} {d['department_code']}",
                int(d[key]),
            )
            for d in by_department
        ]
        heading = f"{title} · 按部门（本月）/ by department (this month)"
        if len(points) > TOP:  # a province's hundreds of departments: the largest, in the chart
            points = sorted(points, key=lambda p: -p[2])[:TOP]
            heading += f" · 前{TOP}个 / top {TOP}"
        departmental.append(column_chart(key, heading, points))
    return monthly, departmental
