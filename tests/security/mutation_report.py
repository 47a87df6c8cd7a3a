"""Kill rate per module of the last mutation run (``make mutate``; docs/testing.md).

Reads mutmut's results (``mutants/<module>.py.meta``) and prints, per module, the mutants made,
killed (a test failed, or the mutant ran out of time), survived (every test passed, or no test
of the selection calls the mutated function) and not yet run. ``--survivors`` lists the
surviving mutants' names, to look at with ``mutmut show NAME``.

    python -m tests.security.mutation_report [--survivors] [--min PERCENT] [MODULE.py ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

KILLED = {1, 3, 36, 37, -24, 24, 152, 255}  # a failing test, a timeout, a type error
SURVIVED = {0, 5, 33}  # all selected tests passed, or none calls the function
NOT_RUN = {None, 2, 34}


def tally(meta: Path) -> tuple[dict[str, int], list[str]]:
    codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
    counts = {"mutants": len(codes), "killed": 0, "survived": 0, "not run": 0, "other": 0}
    survivors = []
    for name, code in sorted(codes.items()):
        if code in KILLED:
            counts["killed"] += 1
        elif code in SURVIVED:
            counts["survived"] += 1
            survivors.append(name)
        elif code in NOT_RUN:
            counts["not run"] += 1
        else:
            counts["other"] += 1
    return counts, survivors


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("modules", nargs="*")
    parser.add_argument("--survivors", action="store_true")
    parser.add_argument("--min", type=float, default=None, help="fail below this kill rate (%%)")
    args = parser.parse_args(argv)
    metas = sorted(Path("mutants").rglob("*.py.meta"))
    if args.modules:
        wanted = {str(Path("mutants") / m) + ".meta" for m in args.modules}
        metas = [m for m in metas if str(m) in wanted]
    total = {"mutants": 0, "killed": 0, "survived": 0, "not run": 0, "other": 0}
    print(f"{'module':34} {'mutants':>7} {'killed':>7} {'survived':>8} {'not run':>7} {'other':>5} {'kill %':>7}")
    all_survivors: list[str] = []
    for meta in metas:
        counts, survivors = tally(meta)
        if not counts["mutants"]:
            continue
        all_survivors += survivors
        for key in total:
            total[key] += counts[key]
        print(_row(str(meta.relative_to("mutants"))[: -len(".meta")], counts))
    print(_row("total", total))
    if args.survivors:
        print("\n".join(all_survivors))
    rate = 100 * total["killed"] / max(1, total["mutants"])
    return 1 if args.min is not None and rate < args.min else 0


def _row(name: str, c: dict[str, int]) -> str:
    rate = 100 * c["killed"] / max(1, c["mutants"])
    return (f"{name:34} {c['mutants']:7} {c['killed']:7} {c['survived']:8} {c['not run']:7} "
            f"{c['other']:5} {rate:6.1f}%")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
