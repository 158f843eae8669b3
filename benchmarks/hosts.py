"""Benchmark: reaching remote hosts over SSH, and a rollback of two hosts under load.

Runs on the real stack with the two SSH hosts of tests/hosts_stack.py (sshd on 127.0.0.2 and
127.0.0.3, two independent Podman engines):

1. API calls over SSH: docker-py's own ssh mode (``DockerClient(base_url="ssh://...",
   use_ssh_client=True)``, one SSH connection per call) against nexusify's ``connect_host`` (one
   multiplexed master per host, a forwarded socket, HTTP keep-alive): connect time and time per
   call (``ping``), and their ratio.
2. ``nexusify rollback`` of an environment on both hosts, under load through both proxies
   (2 threads each, a new connection per request): wall time per round and failed requests.

Goals (issue 22): the two-host rollback's wall time (median) at most 0.8 s with the SSH masters
kept, 0 failed requests. The engine API calls (over the forwarded sockets) and the ssh processes a
rollback starts are counted too (``calls.py``): they do not move with the machine's load.

Usage: ``python benchmarks/hosts.py [--rounds N] [--calls N]`` (after ``bash scripts/stack.sh``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

from benchmarks.calls import Counted  # noqa: E402
from benchmarks.cli_run import load_stack_env, nexusify  # noqa: E402
from benchmarks.goals import Goal, finish  # noqa: E402
from tests.deploy_fixtures import Load, make_project, remove_labelled  # noqa: E402
from tests.hosts_stack import TwoHosts, start_two_hosts  # noqa: E402

from nexusify.deploy.runtime.hosts import HostSpec, connect_host, network_name  # noqa: E402


def api_calls(hosts: TwoHosts, calls: int) -> dict[str, float]:
    import docker

    url = hosts.b.url
    t0 = time.monotonic()
    try:
        native = docker.DockerClient(base_url=url, use_ssh_client=True, version="1.41")
    except docker.errors.DockerException as exc:  # docker-py's ssh mode needs paramiko installed
        print(f"  docker-py ssh mode unavailable: {exc}")
        native_connect = native_call = float("nan")
    else:
        native_connect = time.monotonic() - t0
        t0 = time.monotonic()
        for _ in range(calls):
            native.ping()
        native_call = (time.monotonic() - t0) / calls
        native.close()
    t0 = time.monotonic()
    engine = connect_host(HostSpec(url), dict(os.environ))
    tunnel_connect = time.monotonic() - t0
    t0 = time.monotonic()
    for _ in range(calls):
        engine.client.ping()
    tunnel_call = (time.monotonic() - t0) / calls
    engine.close()
    return {"native_connect": native_connect, "native_call": native_call, "tunnel_connect": tunnel_connect,
            "tunnel_call": tunnel_call}


ROLLBACK_GOAL = 0.8  # seconds, median wall time of a two-host `nexusify rollback` under load (issue 22)


def rollbacks(hosts: TwoHosts, base: Path, rounds: int) -> tuple[list[tuple[float, int]], str]:
    import docker

    p = make_project(base, health_timeout=10)
    port = p.public_port
    spec = ", ".join(f'{{url = "{h.url}", bind = "{h.address}"}}' for h in hosts.hosts)
    image = os.environ.get("NEXUSIFY_TEST_NGINX_IMAGE", "localhost/nginx:stack")
    with (p.root / "nexusify.toml").open("a") as fh:
        fh.write(f"\n[deploy.environments.{p.environment}]\nhosts = [{spec}]\n"
                 f'[deploy.environments.{p.environment}.proxy]\nkind = "container"\nimage = "{image}"\n')
    clients = [docker.DockerClient(base_url=h.docker_host, timeout=120) for h in hosts.hosts]
    out: list[tuple[float, int]] = []
    calls = ""
    try:
        for version in ("v1", "v2"):
            code, data, _ = nexusify(p.env, "deploy", "--root", str(p.root), "--environment", p.environment,
                                     "--tag", version, "--build-arg", f"BUILT_VERSION={version}")
            if code != 0:
                raise SystemExit(f"deploy {version} failed: {data}")
        for _ in range(rounds):
            loads = [Load(port, host=h.address, threads=2, max_seconds=60).start() for h in hosts.hosts]
            time.sleep(0.5)
            with Counted() as counted:
                code, data, took = nexusify(p.env, "rollback", "--root", str(p.root), "--environment", p.environment)
            calls = counted.summary()
            time.sleep(0.5)
            failed = sum(len(lo.stop().failures) for lo in loads)
            if code != 0:
                raise SystemExit(f"rollback failed: {data}")
            out.append((took, failed))
    finally:
        for c in clients:
            remove_labelled(c, p.environment)
            for n in c.networks.list(names=[network_name(p.environment)]):
                with contextlib.suppress(Exception):
                    n.remove()
            c.close()
    return out, calls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=10)
    args = parser.parse_args()
    load_stack_env()
    with tempfile.TemporaryDirectory(prefix="nexusify-bench-hosts-") as tmp, start_two_hosts(Path(tmp)) as hosts:
        calls = api_calls(hosts, args.calls)
        rounds, calls_made = rollbacks(hosts, Path(tmp) / "project", args.rounds)
    walls = [w for w, _ in rounds]
    print(f"hosts benchmark: {args.calls} API calls per client, {args.rounds} rollback round(s) of 2 hosts under load")
    print(f"  docker-py ssh mode : connect {calls['native_connect']:.3f}s, {calls['native_call'] * 1000:.0f} ms per call")
    print(f"  nexusify tunnel    : connect {calls['tunnel_connect']:.3f}s, {calls['tunnel_call'] * 1000:.1f} ms per call")
    print(f"ratio: per-call time docker-py ssh / tunnel = {calls['native_call'] / max(calls['tunnel_call'], 1e-6):.0f}x")
    print(f"  rollback of 2 hosts: median {statistics.median(walls):.2f}s, max {max(walls):.2f}s, "
          f"failed requests {sum(f for _, f in rounds)}")
    print(f"  rollback of 2 hosts, last round: {calls_made} (load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores)")
    finish([Goal("rollback-two-hosts", statistics.median(walls), ROLLBACK_GOAL, " s"),
            Goal("failed-requests", sum(f for _, f in rounds), 0, " failed")])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
