"""Benchmark: nexusify's command line on a synthetic monorepo of 1,000 services, as ratios to a
floor measured in the same run (issue 22).

The monorepo is the audit benchmark's (60 shared packages in a layered DAG, Poetry, PEP 621 + uv
and PDM styles; 1,000 services with 2-6 shared dependencies each and a multi-stage Dockerfile).
Every command runs as a new process (``python -m nexusify ...``), as a user or a CI job runs it.
The floors, measured in the same run and interleaved with the commands (the machine may be
shared: ratios, not absolute times, are what the goals bound):

- floor: one Python process that walks the tree, reads every manifest (pyproject.toml,
  requirements*.txt) and Dockerfile, and parses the TOML with tomllib;
- bare: ``python -c pass`` (the interpreter's own start).

Modules are imported from cached bytecode, as after ``pip install`` (the warm-up round writes it,
even where ``PYTHONDONTWRITEBYTECODE`` is set).

Goals (the median of ``--repeat`` runs after a warm-up, each over the median of its floor):

| work | goal |
|---|---|
| ``nexusify audit --offline --json`` | <= 4x floor |
| ``nexusify rewrite --check`` | <= 9x floor |
| ``nexusify rewrite --no-lock`` (writes ~2,000 files, on a fresh copy each time) | <= 12.5x floor |
| ``nexusify --version`` | <= 8x bare (0.08 s where Python starts in 0.01 s) |

``--by cpu`` judges by the processes' CPU time (user + system) instead of wall time: steadier
when other work shares the cores. Exits 1 when a ratio is over its goal.

    python benchmarks/cli.py [--services 1000] [--shared 60] [--repeat 3] [--by wall|cpu]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from goals import Goal, finish  # noqa: E402

URL = "https://nexus.example.com/repository/pypi-group/simple/"

FLOOR = r"""
import os, sys, tomllib
n = 0
for dirpath, _dirs, files in os.walk(sys.argv[1]):
    for f in files:
        if f == "pyproject.toml" or f.startswith("Dockerfile") or (f.startswith("requirements") and f.endswith(".txt")):
            with open(os.path.join(dirpath, f), "rb") as fh:
                data = fh.read()
            if f.endswith(".toml"):
                tomllib.loads(data.decode("utf-8"))
            n += 1
print(n)
"""

# name, argv after `python -m nexusify`, accepted exit codes, floor it is measured against, goal
COMMANDS: list[tuple[str, list[str], set[int], str, float]] = [
    ("audit-offline-json", ["audit", "--offline", "--json"], {0, 1}, "floor", 4.0),
    ("rewrite-check", ["rewrite", "--check", "--index-url", URL], {1}, "floor", 9.0),
    ("rewrite-no-lock", ["rewrite", "--no-lock", "--index-url", URL], {0}, "floor", 12.5),
    ("version", ["--version"], {0}, "bare", 8.0),
]


def _generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bench_audit", HERE / "audit.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate


def timed(argv: list[str], cwd: Path, env: dict[str, str], codes: set[int]) -> tuple[float, float]:
    """Run ``argv``: (wall seconds, CPU seconds of the process)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    if code not in codes:
        sys.exit(f"{' '.join(argv)}: exit {code}, expected {sorted(codes)}\n{err[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--shared", type=int, default=60)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--by", choices=("wall", "cpu"), default="wall")
    ap.add_argument("--only", action="append", help="run only these commands (by name)")
    args = ap.parse_args()
    env = dict(os.environ)
    env["PYTHONPATH"] = str(HERE.parent / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env["NO_COLOR"] = "1"
    env.pop("NEXUSIFY_ROOT", None)
    # as installed (pip compiles the modules): the timed runs import cached bytecode, the warm-up writes it
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    py = sys.executable
    pick = 0 if args.by == "wall" else 1
    commands = [c for c in COMMANDS if not args.only or c[0] in args.only]
    with tempfile.TemporaryDirectory(prefix="nexusify-bench-cli-") as tmp:
        pristine = Path(tmp) / "pristine"
        _generator()(pristine, args.services, args.shared)
        work = Path(tmp) / "work"
        shutil.copytree(pristine, work)

        def fresh() -> None:  # a write must start from the pristine monorepo
            shutil.rmtree(work)
            shutil.copytree(pristine, work)

        floors: dict[str, Callable[[], tuple[float, float]]] = {
            "floor": lambda: timed([py, "-c", FLOOR, str(work)], work, env, {0}),
            "bare": lambda: timed([py, "-c", "pass"], work, env, {0}),
        }
        # each command's floor is measured right before it (same state of the machine), per round
        samples: dict[str, list[float]] = {c[0]: [] for c in commands}
        floor_samples: dict[str, list[float]] = {c[0]: [] for c in commands}
        for rnd in range(args.repeat + 1):  # round 0 warms the caches up and is not counted
            for name, argv, codes, floor, _goal in commands:
                if "--no-lock" in argv:
                    fresh()
                base = floors[floor]()[pick]
                root = [] if argv == ["--version"] else ["--root", str(work)]
                value = timed([py, "-m", "nexusify", *argv, *root], work, env, codes)[pick]
                if "--no-lock" in argv:
                    fresh()
                if rnd:
                    samples[name].append(value)
                    floor_samples[name].append(base)
    print(f"nexusify CLI, {args.services} services, {args.shared} shared packages, median of {args.repeat} "
          f"({args.by} time), load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    goals = []
    for name, _argv, _codes, floor, goal in commands:
        value, base = statistics.median(samples[name]), statistics.median(floor_samples[name])
        ratio = value / base
        print(f"  {name:<20} {value:7.3f} s  {floor} {base:6.3f} s  {ratio:6.2f}x {floor}")
        goals.append(Goal(name, ratio, goal, f"x {floor}"))
    finish(goals)


if __name__ == "__main__":
    main()
