"""Benchmark: the seed's publish loop against `nexusify publish`, same packages, same run.

The seed's loop, per shared package in dependency order:
    python -m build --outdir dist/<pkg> <pkg>      (a fresh isolated build env per build)
    twine upload --repository-url URL dist/<pkg>/*
against `nexusify publish` (one build env per distinct [build-system].requires, parallel
builds, one process). Each contender gets a fresh copy of the monorepo and a fresh
pypiserver on loopback. Reported:

- fresh publish, cold: no nexusify state and no cached build envs (a CI runner's first run)
- fresh publish, warm envs: a fresh clone and a fresh index, build envs in a user cache dir
- no-op re-run: everything already published

Usage: python benchmarks/publish.py [--monorepo DIR] [--rounds N]
Targets (issue 4): fresh publish <= 1/3 of the loop (goal 1/5), no-op <= 1/10 (goal 1/20).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "fixtures" / "monorepo"
sys.path.insert(0, str(REPO))

from tests.helpers import free_port, wait_for_port  # noqa: E402


class Server:
    def __init__(self, base: Path) -> None:
        self.packages = base / "packages"
        self.packages.mkdir(parents=True)
        self.port = free_port()
        exe = shutil.which("pypi-server") or "pypi-server"
        self.proc = subprocess.Popen([exe, "run", "-i", "127.0.0.1", "-p", str(self.port), "-a", ".", "-P", ".",
                                      "--disable-fallback", str(self.packages)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def publish_order(root: Path) -> list[Path]:
    sys.path.insert(0, str(REPO / "src"))
    from nexusify.model import load_workspace

    ws = load_workspace(root)
    return [ws.by_name[n].path for n in ws.publish_order()]


def seed_loop(root: Path, url: str) -> float:
    started = time.perf_counter()
    for pkg in publish_order(root):
        out = root / "dist" / pkg.name
        subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(pkg)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run([sys.executable, "-m", "twine", "upload", "--disable-progress-bar", "--non-interactive",
                        "--repository-url", url, "-u", "x", "-p", "x", *map(str, sorted(out.iterdir()))],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def nexusify(root: Path, url: str, env_dir: Path) -> float:
    env = {**os.environ, "NEXUSIFY_BUILD_ENV_DIR": str(env_dir), "PYTHONPATH": str(REPO / "src")}
    env.pop("NEXUS_PASSWORD", None)
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "nexusify", "publish", "--root", str(root),
                           "--repository-url", url, "--json"], env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"nexusify publish failed:\n{proc.stdout}\n{proc.stderr}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--monorepo", type=Path, default=SAMPLE)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    loop_t, cold_t, warm_t, noop_t = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="nexusify-bench-") as tmp_s:
        tmp = Path(tmp_s)
        warm_envs = tmp / "warm-envs"
        for r in range(args.rounds):
            base = tmp / f"round{r}"
            ignore = shutil.ignore_patterns(".nexusify", "dist", "build", "*.egg-info", "__pycache__")
            # the seed's loop
            root = base / "loop"
            shutil.copytree(args.monorepo, root, ignore=ignore)
            server = Server(base / "loop-index")
            try:
                loop_t.append(seed_loop(root, server.url))
            finally:
                server.stop()
            # nexusify, cold: fresh clone, fresh index, no build envs anywhere
            root = base / "cold"
            shutil.copytree(args.monorepo, root, ignore=ignore)
            server = Server(base / "cold-index")
            try:
                cold_t.append(nexusify(root, server.url, base / "cold-envs"))
                noop_t.append(nexusify(root, server.url, base / "cold-envs"))
            finally:
                server.stop()
            # nexusify, warm build envs (a user cache dir), fresh clone and fresh index
            if not warm_envs.exists():
                root = base / "prime"
                shutil.copytree(args.monorepo, root, ignore=ignore)
                server = Server(base / "prime-index")
                try:
                    nexusify(root, server.url, warm_envs)
                finally:
                    server.stop()
            root = base / "warm"
            shutil.copytree(args.monorepo, root, ignore=ignore)
            server = Server(base / "warm-index")
            try:
                warm_t.append(nexusify(root, server.url, warm_envs))
            finally:
                server.stop()
            print(f"round {r + 1}: loop {loop_t[-1]:.2f}s  cold {cold_t[-1]:.2f}s  warm-envs {warm_t[-1]:.2f}s  "
                  f"no-op {noop_t[-1]:.2f}s", flush=True)
    loop, cold, warm, noop = (statistics.median(x) for x in (loop_t, cold_t, warm_t, noop_t))
    # each round's contenders ran back to back: the median of per-round ratios is robust to load
    # that changes between rounds
    r_cold, r_warm, r_noop = (statistics.median(t / lp for t, lp in zip(x, loop_t, strict=True))
                              for x in (cold_t, warm_t, noop_t))
    n = len(publish_order(args.monorepo))
    print(f"\n{n} shared packages, median of {args.rounds} round(s), {os.cpu_count()} CPU(s)")
    print(f"seed loop (python -m build + twine upload per package): {loop:6.2f}s")
    print(f"nexusify publish, fresh clone, cold build envs:         {cold:6.2f}s  ratio {r_cold:.3f} (1/{1 / r_cold:.1f})")
    print(f"nexusify publish, fresh clone, warm build envs:         {warm:6.2f}s  ratio {r_warm:.3f} (1/{1 / r_warm:.1f})")
    print(f"nexusify publish, no-op re-run:                         {noop:6.2f}s  ratio {r_noop:.3f} (1/{1 / r_noop:.1f})")
    print("(ratios: median over rounds of contender / seed loop in the same round)")
    print("targets: fresh <= 1/3 (goal 1/5), no-op <= 1/10 (goal 1/20)")


if __name__ == "__main__":
    main()
