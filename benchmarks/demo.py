"""Benchmark: how long `nexusify demo` takes against its budget of 3 minutes (on 2 cores).

Runs the demo as a new user would (``python -m nexusify demo --json``, a subprocess), twice:

1. cold: an empty cache folder (XDG_CACHE_HOME), so publish creates its build environments and
   the build backend wheel is downloaded: what the first run on a fresh machine costs;
2. warm: the same cache again (what every later run costs).

With a container engine (DOCKER_HOST, or the env file scripts/stack.sh writes) the image build
and the blue-green deploy are included; ``--no-engine`` leaves them out. Prints the time of each
step and the ratio of the total to the budget (below 1.0 is within it).

Usage: ``python benchmarks/demo.py [--no-engine]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BUDGET = 180.0
REPO = Path(__file__).resolve().parent.parent
STACK_ENV = Path.home() / ".cache" / "nexusify-stack" / "env.sh"


def _env(cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    if "DOCKER_HOST" not in env and STACK_ENV.is_file():
        for line in STACK_ENV.read_text().splitlines():
            if line.startswith("export ") and "=" in line:
                key, _, value = line[len("export "):].partition("=")
                env.setdefault(key.strip(), value.strip())
    env["XDG_CACHE_HOME"] = str(cache)
    env["NO_COLOR"] = "1"
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_once(workdir: Path, cache: Path, engine: bool) -> tuple[float, dict[str, Any]]:
    cmd = [sys.executable, "-m", "nexusify", "demo", "--workdir", str(workdir), "--json"]
    if not engine:
        cmd.append("--no-engine")
    t0 = time.monotonic()
    proc = subprocess.run(cmd, env=_env(cache), capture_output=True, text=True, check=False)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        sys.exit(f"nexusify demo failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return wall, json.loads(proc.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-engine", dest="engine", action="store_false", help="leave the container steps out")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nexusify-bench-demo-") as tmp:
        base = Path(tmp)
        results = []
        for label in ("cold", "warm"):
            wall, data = run_once(base / "demo", base / "cache", args.engine)
            results.append((label, wall, data))
    names = [s["name"] for s in results[0][2]["steps"]]
    print(f"nexusify demo on {os.cpu_count()} cores" + ("" if args.engine else " (--no-engine)"))
    print(f"{'step':<10}" + "".join(f"{label:>10}" for label, _, _ in results))
    for name in names:
        row = f"{name:<10}"
        for _label, _wall, data in results:
            step = next(s for s in data["steps"] if s["name"] == name)
            row += f"{step['seconds']:>9.1f}s" if step["status"] == "ok" else f"{step['status']:>10}"
        print(row)
    print(f"{'total':<10}" + "".join(f"{wall:>9.1f}s" for _, wall, _ in results))
    for label, wall, _ in results:
        print(f"{label}: {wall:.1f}s of a {BUDGET:.0f}s budget: ratio {wall / BUDGET:.2f}")


if __name__ == "__main__":
    main()
