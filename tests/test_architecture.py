"""Imports point down only, and only api/ speaks HTTP or CLI."""

from __future__ import annotations

import ast
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
