"""How a benchmark states a goal and reports against it: one ``GOAL`` line per measured ratio,
which ``benchmarks/run_all.py`` collects, and an exit status of 1 when one is over its goal.

    GOAL audit-offline-json: 3.21x floor <= 4.00x  ok
"""

from __future__ import annotations

import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Goal:
    name: str
    value: float  # the measured ratio (or time)
    goal: float  # the most it may be
    unit: str = "x"  # what value and goal are: "x floor", "s"...

    @property
    def ok(self) -> bool:
        return self.value <= self.goal

    def line(self) -> str:
        return f"GOAL {self.name}: {self.value:.2f}{self.unit} <= {self.goal:.2f}{self.unit.split()[0]}  " + \
            ("ok" if self.ok else "OVER")


def report(goals: list[Goal]) -> int:
    """Print every goal line; the exit status: 1 when a goal is missed, else 0."""
    for g in goals:
        print(g.line(), flush=True)
    return 0 if all(g.ok for g in goals) else 1


def finish(goals: list[Goal]) -> None:
    sys.exit(report(goals))
