"""Imports point down only; only api/ speaks HTTP, HTML or CLI; the edge runs no queries.

Inside api/, each room serves one audience and imports only what is under it: ``edge`` (the
middleware, limits, errors and credentials every request passes) under ``http`` (the
departments' API and PKI), ``pages`` (what citizens and counter staff see), ``cli`` and ``ops``;
the composition root (``app``, ``asgi``, ``container``, ``settings``) over all.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["core", "keys", "trust", "seals", "licences", "verify", "supervision", "migrations", "api"]
EDGE_ONLY = {"fastapi", "typer", "starlette", "uvicorn", "jinja2", "prometheus_client", "authlib"}


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
    for package in ("api", "core", "keys", "trust", "seals", "licences", "verify", "supervision"):
        for path in (ROOT / package).rglob("*.py"):
            if path == ROOT / "core" / "clock.py":
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if DATE_SHORTCUTS.search(line.split("#", 1)[0]):
                    problems.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert problems == []


# What each room of the edge may import from the others (the composition root is not a room).
ROOMS: dict[str, set[str]] = {
    "edge": set(),
    "http": {"edge"},
    "pages": {"edge"},
    "dev_idp": set(),
    "ops": set(),
    "cli": {"ops", "edge"},
}
DATABASE_MODULES = ("core.db", "sqlmodel", "sqlalchemy")
DATABASE_NAMES = {"session", "Session", "engine", "select", "transaction", "reading"}


def room_violations(room: str, source: str) -> list[str]:
    """Imports of another room of the edge that ``room`` may not use."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if parts[0] == "api" and len(parts) > 1 and parts[1] in ROOMS:
                other = parts[1]
                if other != room and other not in ROOMS[room]:
                    found.append(f"api.{room} imports api.{other}")
    return found


def query_violations(source: str) -> list[str]:
    """Database access in an edge module: imports of the database layer, sessions, engines."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith(DATABASE_MODULES):
                found.append(f"imports {node.module}")
        elif isinstance(node, ast.Import):
            found += [
                f"imports {a.name}" for a in node.names if a.name.startswith(DATABASE_MODULES)
            ]
        elif isinstance(node, ast.Name) and node.id in DATABASE_NAMES:
            found.append(f"uses {node.id}")
        elif isinstance(node, ast.Attribute) and node.attr in DATABASE_NAMES:
            found.append(f"uses .{node.attr}")
        elif isinstance(node, ast.arg) and node.arg in DATABASE_NAMES:
            found.append(f"takes {node.arg}")
    return sorted(set(found))


def test_checker_catches_rooms_and_queries() -> None:
    assert room_violations("http", "from api.pages.verify import templates") == [
        "api.http imports api.pages"
    ]
    assert room_violations("pages", "from api.edge.auth import require") == []
    assert query_violations("from core.db import reading") == ["imports core.db"]
    assert query_violations("with transaction(services.engine) as session:\n    pass") == [
        "uses .engine",
        "uses session",
        "uses transaction",
    ]
    assert query_violations("def f(session: Session) -> None: ...") == [
        "takes session",
        "uses Session",
    ]
    assert query_violations("rows = services.holders.usage(code)") == []


def test_the_edge_rooms_and_no_queries_at_the_edge() -> None:
    """Every query lives behind a domain service; only the container (``api/container/``, the
    composition root) builds the engine and hands it to the domain's services."""
    problems = []
    checked = 0
    for path in (ROOT / "api").rglob("*.py"):
        relative = path.relative_to(ROOT / "api")
        source = path.read_text()
        checked += 1
        if relative.parts[0] in ROOMS:
            problems += [f"api/{relative}: {v}" for v in room_violations(relative.parts[0], source)]
        if relative.parts[0] != "container":
            problems += [f"api/{relative}: {v}" for v in query_violations(source)]
    assert checked > 40
    assert problems == []
