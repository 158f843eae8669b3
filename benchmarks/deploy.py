"""Benchmark: blue-green deploy and rollback vs a plain "stop old, start new" redeploy.

Runs on the real stack (Podman's Docker API via DOCKER_HOST, nginx) with the tiny app of
fixtures/deploy/app, under continuous load (4 threads, a new connection per request):

1. ``nexusify deploy`` v1, then v2 under load: switch time (proxy pointed + old requests
   drained), whole deploy time, failed requests.
2. ``nexusify rollback`` under load: wall time of the command, switch time, failed requests.
3. The same app redeployed the plain way, measured in the same run: the container published
   directly on the public port, ``stop`` the old one, ``run`` the new one; failed requests
   and the window during which nothing answered.

Goals (issue 22): the rollback's wall time (median) at most 0.5 s, and 0 failed requests in the
deploys and rollbacks. The engine API calls a rollback makes are counted too (``calls.py``): unlike
times, they do not move with the machine's load.

Usage: ``python benchmarks/deploy.py [--rounds N]`` (after ``bash scripts/stack.sh``).
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

from benchmarks.calls import Counted  # noqa: E402
from benchmarks.cli_run import load_stack_env, nexusify  # noqa: E402
from benchmarks.goals import Goal, finish  # noqa: E402
from tests.deploy_fixtures import Load, LoadReport, make_project  # noqa: E402
from tests.helpers import free_port, wait_for_port  # noqa: E402

ROLLBACK_GOAL = 0.5  # seconds, median wall time of `nexusify rollback` under load (issue 22)


def under_load(port: int, action: Any) -> tuple[Any, LoadReport]:
    with Load(port, threads=4) as load:
        deadline = time.monotonic() + 10
        while len(load.answers) < 30 and time.monotonic() < deadline:
            time.sleep(0.01)
        result = action()
        done = time.monotonic()
        deadline = done + 15  # wait until the service answers again (the plain redeploy needs this)
        time.sleep(0.3)
        while time.monotonic() < deadline and not any(
                s > done and s > max(load.failure_times, default=0) for s, _, _ in list(load.answers)):
            time.sleep(0.05)
        return result, load.stop()


def gap(report: LoadReport) -> float:
    """Longest time between two successful answers (the outage a user sees)."""
    times = sorted(r for _, r, _ in report.answers)
    return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


def outage(report: LoadReport) -> float:
    """From the last good answer before the first failed request to the first good answer after the last."""
    if not report.failure_times:
        return gap(report)
    first, last = min(report.failure_times), max(report.failure_times)
    before = [r for _, r, _ in report.answers if r <= first]
    after = [r for s, r, _ in report.answers if s >= last]
    if not before or not after:
        return float("nan")
    return min(after) - max(before)


def plain_redeploy(client: Any, image_v1: str, image_v2: str, label_env: str) -> tuple[float, LoadReport]:
    """Stop the old container, start the new one on the same published port; under load."""
    port = free_port()
    labels = {"io.nexusify.environment": label_env, "io.nexusify.bench": "plain"}
    old = client.containers.run(image_v1, detach=True, ports={"8000/tcp": ("127.0.0.1", port)}, labels=labels,
                                environment={"API_KEY": "bench"})
    wait_for_port(port)
    time.sleep(0.5)

    def redeploy() -> float:
        t0 = time.monotonic()
        old.stop(timeout=10)
        old.remove(force=True)
        client.containers.run(image_v2, detach=True, ports={"8000/tcp": ("127.0.0.1", port)}, labels=labels,
                              environment={"API_KEY": "bench"})
        return time.monotonic() - t0

    took, report = under_load(port, redeploy)
    return took, report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="deploy/rollback rounds to measure (default 3)")
    args = parser.parse_args()
    load_stack_env()
    import docker

    client = docker.DockerClient(base_url=os.environ["DOCKER_HOST"], version="1.41")
    base = Path(tempfile.mkdtemp(prefix="nexusify-bench-"))
    p = make_project(base, health_timeout=20)
    env = p.env
    rows: dict[str, list[float]] = {k: [] for k in (
        "deploy_total", "deploy_switch", "deploy_failed", "rollback_wall", "rollback_switch", "rollback_failed",
        "plain_total", "plain_failed", "plain_gap", "bg_gap", "rollback_calls")}
    calls = ""
    try:
        code, data, _ = nexusify(env, "deploy", "--root", str(p.root), "-e", p.environment, "--tag", "v1",
                                 "--build-arg", "BUILT_VERSION=v1")
        assert code == 0, data
        for n in range(args.rounds):
            v = f"r{n}"
            (code, data, took), rep = under_load(p.public_port, lambda v=v: nexusify(
                env, "deploy", "--root", str(p.root), "-e", p.environment, "--tag", v, "--build-arg", f"BUILT_VERSION={v}"))
            assert code == 0, data
            rows["deploy_total"].append(took)
            rows["deploy_switch"].append(data["services"][0]["switch_seconds"])
            rows["deploy_failed"].append(len(rep.failures))
            rows["bg_gap"].append(gap(rep))
            with Counted() as counted:
                (code, data, took), rep = under_load(p.public_port, lambda: nexusify(
                    env, "rollback", "--root", str(p.root), "-e", p.environment))
            assert code == 0, data
            rows["rollback_calls"].append(counted.total)
            calls = counted.summary()
            rows["rollback_wall"].append(took)
            rows["rollback_switch"].append(data["services"][0]["switch_seconds"])
            rows["rollback_failed"].append(len(rep.failures))
            rows["bg_gap"].append(gap(rep))
            img1 = client.images.get("app:v1").id
            img2 = client.images.get(f"app:{v}").id
            took, rep = plain_redeploy(client, img1, img2, p.environment)
            rows["plain_total"].append(took)
            rows["plain_failed"].append(len(rep.failures))
            rows["plain_gap"].append(outage(rep))
    finally:
        p.cleanup(client)

    med = {k: statistics.median(v) for k, v in rows.items() if v}
    tot = {k: sum(v) for k, v in rows.items() if v}
    print(f"deploy benchmark, {args.rounds} round(s), 4 client threads, new connection per request (medians)")
    print(f"  blue-green deploy : {med['deploy_total']:.2f}s total (build+switch), switch {med['deploy_switch']:.3f}s, "
          f"failed requests {int(tot['deploy_failed'])}")
    print(f"  rollback          : {med['rollback_wall']:.2f}s wall, switch {med['rollback_switch']:.3f}s, "
          f"failed requests {int(tot['rollback_failed'])}")
    print(f"  plain stop+start  : {med['plain_total']:.2f}s, failed requests {int(tot['plain_failed'])}, "
          f"outage (last good answer before the failures -> first good answer after) {med['plain_gap']:.3f}s")
    print(f"  blue-green/rollback longest gap between answers: {med['bg_gap']:.3f}s (no failure)")
    ratio = med["plain_gap"] / med["bg_gap"] if med["bg_gap"] else float("inf")
    print(f"ratio: plain redeploy outage / blue-green longest gap = {ratio:.1f}x; "
          f"failed requests {int(tot['plain_failed'])} (plain) vs "
          f"{int(tot['deploy_failed'] + tot['rollback_failed'])} (blue-green + rollback)")
    print(f"  rollback engine API calls: {calls} (last round; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores)")
    finish([Goal("rollback-one-host", med["rollback_wall"], ROLLBACK_GOAL, " s"),
            Goal("failed-requests", tot["deploy_failed"] + tot["rollback_failed"], 0, " failed")])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
