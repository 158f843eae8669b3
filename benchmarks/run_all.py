"""Run every benchmark and hold the line: each prints its ratios against the goals it states
(``GOAL name: value <= goal  ok|OVER``, see ``goals.py``); this prints them all together and exits
1 when one is over its goal, or when a benchmark fails (2 when none could run).

    python benchmarks/run_all.py                       # every benchmark (the engine ones need scripts/stack.sh)
    python benchmarks/run_all.py --only cli --only audit
    python benchmarks/run_all.py --skip deploy --skip hosts --skip demo --skip publish

Not a timed unit test: run it before you stop, on a machine as quiet as you can get (the goals
are ratios to baselines measured in the same run, so a shared machine moves them less than it
moves absolute times; repeat when the load average is high).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# name -> the benchmark's file and its arguments; in the order they run (cheap first)
BENCHMARKS: dict[str, list[str]] = {
    "cli": ["cli.py"],  # issue 22: audit, rewrite --check, rewrite --no-lock, --version vs floors
    "audit": ["audit.py"],  # in-process audit vs a walk + parse
    "rewrite": ["rewrite.py"],  # in-process rewrite plan vs a tomlkit round trip
    "publish": ["publish.py"],  # publish vs the seed loop
    "demo": ["demo.py"],  # the demo, cold and warm, against its budgets
    "deploy": ["deploy.py"],  # blue-green deploy and rollback under load
    "hosts": ["hosts.py"],  # a rollback on two hosts under load
}
GOAL_LINE = re.compile(r"^GOAL (?P<name>[^:]+): (?P<rest>.*?)\s+(?P<verdict>ok|OVER)\s*$")


def run(name: str, argv: list[str]) -> tuple[int, list[tuple[str, str, str]], float]:
    """Run one benchmark, its output shown as it comes: (exit code, its GOAL lines, seconds)."""
    print(f"\n=== {name}: python benchmarks/{' '.join(argv)}", flush=True)
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, str(HERE / argv[0]), *argv[1:]], stdout=subprocess.PIPE,
                            text=True, cwd=HERE.parent)
    goals: list[tuple[str, str, str]] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        print(line, end="", flush=True)
        m = GOAL_LINE.match(line.strip())
        if m:
            goals.append((f"{name}/{m['name']}", m["rest"], m["verdict"]))
    return proc.wait(), goals, time.monotonic() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", action="append", choices=sorted(BENCHMARKS), help="run only these (repeatable)")
    ap.add_argument("--skip", action="append", choices=sorted(BENCHMARKS), default=[], help="leave these out")
    args = ap.parse_args()
    chosen = [n for n in BENCHMARKS if (not args.only or n in args.only) and n not in args.skip]
    results = {name: run(name, BENCHMARKS[name]) for name in chosen}
    print(f"\n=== summary (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    failed = over = 0
    for name, (code, goals, took) in results.items():
        for goal, rest, verdict in goals:
            print(f"  {'ok  ' if verdict == 'ok' else 'OVER'} {goal}: {rest}")
            over += verdict != "ok"
        if not goals:
            print(f"  {'ok  ' if code == 0 else 'FAIL'} {name}: no GOAL line (exit {code}, {took:.0f}s)")
        if code != 0 and not any(v == "OVER" for _g, _r, v in goals):
            failed += 1
            print(f"  FAIL {name}: exit {code}")
    if not results:
        return 2
    print(f"{over} goal(s) over, {failed} benchmark(s) failed")
    return 1 if over or failed else 0


if __name__ == "__main__":
    sys.exit(main())
