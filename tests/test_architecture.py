"""Imports point down only, and only api/ speaks HTTP or CLI."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["core", "keys", "trust", "seals", "licences", "verify", "migrations", "api"]
EDGE_ONLY = {"fastapi", "typer", "starlette", "uvicorn"}


def imported_roots(source: str) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def violations(package: str, source: str) -> list[str]:
    rank = LAYERS.index(package)
    found = []
    for root in imported_roots(source):
        if root in LAYERS and LAYERS.index(root) > rank:
            found.append(f"{package} imports higher layer {root}")
        if root in EDGE_ONLY and package != "api":
            found.append(f"{package} imports {root}, which only api/ may use")
    return found


def test_checker_catches_upward_and_edge_imports() -> None:
    assert violations("trust", "from licences.models import Licence") == [
        "trust imports higher layer licences"
    ]
    assert violations("verify", "import fastapi") == [
        "verify imports fastapi, which only api/ may use"
    ]
    assert violations("licences", "from seals.models import Seal\nimport typing") == []


def test_every_module_respects_the_layers() -> None:
    problems = []
    checked = 0
    for package in LAYERS:
        for path in (ROOT / package).rglob("*.py"):
            checked += 1
            problems += [
                f"{path.relative_to(ROOT)}: {v}" for v in violations(package, path.read_text())
            ]
    assert checked > 20
    assert problems == []


DATE_SHORTCUTS = re.compile(
    r"\bdate\.today\(|\bdatetime\.(?:now|today|utcnow)\(|\.date\(\)|\.astimezone\(CHINA\)"
)


def test_dates_follow_the_one_china_date_rule() -> None:
    """A licence's dates are dates in China: only ``core.clock`` reads the wall clock, and a
    date is taken from an instant by ``core.clock.china_today``, never by ``.date()`` (the UTC
    date of a clock reading) nor by ``date.today()`` (the host's zone)."""
    for bad in ("date.today()", "datetime.now(UTC)", "clock.now().date()", "issued_at.date()"):
        assert DATE_SHORTCUTS.search(bad), bad
    assert not DATE_SHORTCUTS.search("china_today(self._clock.now())")
    problems = []
    for package in ("api", "core", "keys", "trust", "seals", "licences", "verify"):
        for path in (ROOT / package).rglob("*.py"):
            if path == ROOT / "core" / "clock.py":
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if DATE_SHORTCUTS.search(line.split("#", 1)[0]):
                    problems.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert problems == []
