"""State on two real hosts over SSH (tests/hosts_stack.py): the lock on the primary host refuses a
second deploy from another clone naming the holder, and stays on its host when `hosts` is reordered; a third, fresh clone sees the history and
what is live (`history`, `status`) from the hosts alone; a host that disagrees is reported; and
`deploy down` leaves nothing with nexusify's labels on either host.

The tests run in order on one environment (the module's fleet).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nexusify.deploy.runtime.hosts import HostSpec, network_name
from nexusify.deploy.runtime.objects import lock_name
from tests.conftest import REPO, CliResult
from tests.hosts_stack import two_hosts  # noqa: F401 (the fixture)
from tests.test_deploy_hosts import Fleet, deploy, fleet  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.engine, pytest.mark.stack, pytest.mark.slow]

Run = Callable[..., CliResult]


def clone(f: Fleet, name: str) -> Path:
    """A fresh working copy of the project: its files, none of the state a deploy wrote."""
    dest = f.p.root.parent / name
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(f.p.root, dest, ignore=shutil.ignore_patterns(".nexusify"))
    return dest


def cli(run_cli: Run, f: Fleet, root: Path, *argv: str) -> CliResult:
    r = run_cli(*argv, "--root", str(root), "--environment", f.p.environment, env=f.p.env)
    f.outputs.append(r.output)
    return r


def labelled(f: Fleet) -> dict[str, list[str]]:
    """Everything on both hosts that carries the environment's label (and its network, by name)."""
    flt = {"label": f"io.nexusify.environment={f.p.environment}"}
    found: dict[str, list[str]] = {}
    for h, client in zip(f.hosts.hosts, f.clients, strict=True):
        names = [c["Names"][0] for c in client.api.containers(all=True, filters=flt)]
        names += [n["Name"] for n in client.api.networks(filters=flt)]
        names += [n.name for n in client.networks.list(names=[network_name(f.p.environment)])]
        names += [v["Name"] for v in (client.api.volumes(filters=flt) or {}).get("Volumes") or []]
        found[h.address] = names
    return found


def test_a_second_deploy_from_another_clone_is_refused_naming_the_holder(fleet: Fleet, run_cli: Run) -> None:  # noqa: F811
    f = fleet
    assert deploy(run_cli, f, "v1").exit_code == 0
    other = clone(f, "laptop")
    env = {**f.p.env, "NEXUSIFY_DEPLOYER": "alice@ci-runner", "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "nexusify", "deploy", "--root", str(f.p.root), "--environment", f.p.environment,
         "--tag", "v2", "--build-arg", "BUILT_VERSION=v2"], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    try:
        first_host = f.clients[0]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if first_host.api.containers(all=True, filters={"name": lock_name(f.p.environment)}):
                break
            time.sleep(0.05)
        lock = first_host.containers.get(lock_name(f.p.environment))
        assert lock.labels["io.nexusify.role"] == "lock" and lock.status == "created"
        refused = cli(run_cli, f, other, "deploy", "--tag", "v3", "--build-arg", "BUILT_VERSION=v3")
        assert refused.exit_code == 1, refused.output
        assert "being deployed by alice@ci-runner" in refused.output and f"pid {proc.pid}" in refused.output
        assert f"since {lock.labels['io.nexusify.lock.since']}" in refused.output
        out, _ = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    f.outputs.append(out)
    assert f.built_everywhere() == ["v2", "v2"]
    assert not first_host.api.containers(all=True, filters={"name": lock_name(f.p.environment)}), "released"


def test_history_and_status_from_a_fresh_clone_show_what_is_live(fleet: Fleet, run_cli: Run) -> None:  # noqa: F811
    f = fleet
    fresh = clone(f, "third")
    res = cli(run_cli, f, fresh, "history", "--json")
    assert res.exit_code == 0, res.output
    records = json.loads(res.stdout)["records"]
    assert [r["services"][0]["version"] for r in records if r["outcome"] == "success"][-2:] == ["v1", "v2"]
    assert [r["who"] for r in records][-1] == "alice@ci-runner"
    local = json.loads(cli(run_cli, f, f.p.root, "history", "--json").stdout)["records"]
    assert [r["id"] for r in local] == [r["id"] for r in records]  # the same records, by id, in order

    res = cli(run_cli, f, fresh, "status", "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["problems"] == [] and len(report["hosts"]) == 2
    for row in report["services"]:
        assert (row["service"], row["live"], row["kept"][:1], row["healthy"]) == ("app", ["v2"], ["v1"], True), row
    table = cli(run_cli, f, fresh, "status")
    assert table.exit_code == 0 and table.stdout.count("v2") >= 2


def test_status_reports_a_host_that_disagrees(fleet: Fleet, run_cli: Run) -> None:  # noqa: F811
    """Host B's proxy is pointed back at v1 behind nexusify's back: status says the hosts disagree."""
    from nexusify.config import resolve_settings
    from nexusify.deploy.config.load import load_deploy_config
    from nexusify.deploy.plan import routes_of
    from nexusify.deploy.runtime.engine import Engine
    from nexusify.deploy.traffic.proxy_container import ContainerProxy
    from nexusify.deploy.traffic.switch import Target

    f = fleet
    client = f.clients[1]
    v1 = client.containers.list(all=True, filters={"label": [f"io.nexusify.environment={f.p.environment}",
                                                             "io.nexusify.version=v1"]})[0]
    v1.start()
    v1.reload()
    ip = v1.attrs["NetworkSettings"]["Networks"][network_name(f.p.environment)]["IPAddress"]
    env_cfg = load_deploy_config(resolve_settings(f.p.root, env={}), env={}).environment(f.p.environment)
    assert env_cfg.proxy is not None
    # the proxy as the deploy configured it (its published ports are checked against the routes)
    proxy = ContainerProxy(Engine(client, f.hosts.b.docker_host), f.p.environment, routes_of(env_cfg, env_cfg.proxy),
                           image="")
    proxy.point_to("app", Target(host=ip, port=8000, name=v1.name, version="v1"))
    res = cli(run_cli, f, clone(f, "fourth"), "status", "--json")
    assert res.exit_code == 1, res.output
    [problem] = json.loads(res.stdout)["disagreements"]
    assert "serves v2" in problem and "serves v1" in problem and "next deploy or rollback repairs it" in problem


def _volume_on(client: Any, name: str) -> bool:
    return any(v["Name"] == name for v in (client.api.volumes(filters={"name": name}) or {}).get("Volumes") or [])


def _wait_for_lock(f: Fleet, proc: subprocess.Popen[str]) -> list[bool]:
    """Which hosts hold the lock container, once one does (or the deploy ended, or 60 s passed)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        held = [bool(c.api.containers(all=True, filters={"name": lock_name(f.p.environment)})) for c in f.clients]
        if any(held):
            return held
        time.sleep(0.05)
    return [False, False]


def test_reordering_the_hosts_leaves_the_lock_on_its_host(fleet: Fleet, run_cli: Run) -> None:  # noqa: F811
    """Without `primary`, the host that holds the lock keeps it when `hosts` is reordered: a deploy
    from the reordered working copy takes it on host A again, a second clone (reordered too) is
    refused by it, and a fresh clone's history and status show what is live. Two hosts that both
    hold it are an error naming both until `primary` names one."""
    f = fleet
    marker = f"nexusify-{f.p.environment}-primary"
    assert [_volume_on(c, marker) for c in f.clients] == [True, False]  # the first deploys left it on A
    toml = f.p.root / "nexusify.toml"
    text = toml.read_text()
    a, b = (f'{{url = "{h.url}", bind = "{h.address}"}}' for h in f.hosts.hosts)
    assert f"[{a}, {b}]" in text
    toml.write_text(text.replace(f"[{a}, {b}]", f"[{b}, {a}]"))
    other = clone(f, "reordered")
    env = {**f.p.env, "NEXUSIFY_DEPLOYER": "bob@ci-runner", "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "nexusify", "deploy", "--root", str(f.p.root), "--environment", f.p.environment,
         "--tag", "v4", "--build-arg", "BUILT_VERSION=v4"], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    try:
        assert _wait_for_lock(f, proc) == [True, False], "the lock stays on host A, now listed second"
        refused = cli(run_cli, f, other, "deploy", "--tag", "v5", "--build-arg", "BUILT_VERSION=v5")
        assert refused.exit_code == 1, refused.output
        assert "being deployed by bob@ci-runner" in refused.output and f"pid {proc.pid}" in refused.output
        assert f"on host {HostSpec(f.hosts.a.url).name}" in refused.output
        out, _ = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    f.outputs.append(out)
    assert proc.returncode == 0, out
    assert f.built_everywhere() == ["v4", "v4"]
    assert [_volume_on(c, marker) for c in f.clients] == [True, False]

    fresh = clone(f, "reordered-fresh")
    res = cli(run_cli, f, fresh, "history", "--json")
    assert res.exit_code == 0, res.output
    last = json.loads(res.stdout)["records"][-1]
    assert (last["outcome"], last["who"], last["services"][0]["version"]) == ("success", "bob@ci-runner", "v4")
    res = cli(run_cli, f, fresh, "status", "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["problems"] == [] and report["hosts"][0] == HostSpec(f.hosts.a.url).name
    assert {tuple(row["live"]) for row in report["services"]} == {("v4",)}

    f.clients[1].api.create_volume(marker, labels={"io.nexusify.managed": "true",
                                                   "io.nexusify.environment": f.p.environment,
                                                   "io.nexusify.role": "primary"})
    both = cli(run_cli, f, fresh, "status")
    assert both.exit_code == 1, both.output
    assert all(HostSpec(h.url).name in both.output for h in f.hosts.hosts) and "primary = " in both.output
    fresh_toml = fresh / "nexusify.toml"
    fresh_toml.write_text(fresh_toml.read_text().replace(
        "hosts = [", f'primary = "{f.hosts.a.url}"\nhosts = ['))
    named = cli(run_cli, f, fresh, "status", "--json")
    assert named.exit_code == 0, named.output
    f.clients[1].api.remove_volume(marker)


def test_down_leaves_nothing_behind_on_either_host(fleet: Fleet, run_cli: Run) -> None:  # noqa: F811
    f = fleet
    fresh = clone(f, "fifth")
    assert all(labelled(f).values())
    keep = cli(run_cli, f, fresh, "deploy", "down", "--yes")
    assert keep.exit_code == 0, keep.output
    assert "proxy nexusify-" in keep.stdout and "history kept" in keep.stdout
    left = labelled(f)
    assert all(names == [f"nexusify-{f.p.environment}-history"] for names in left.values()), left
    purge = cli(run_cli, f, fresh, "deploy", "down", "--yes", "--purge-history")
    assert purge.exit_code == 0, purge.output
    assert labelled(f) == {h.address: [] for h in f.hosts.hosts}
    after = cli(run_cli, f, fresh, "status")
    assert after.exit_code == 0 and "nothing is deployed" in after.output


def test_no_secret_value_in_any_output_or_history_record(fleet: Fleet) -> None:  # noqa: F811
    assert fleet.outputs and all(fleet.p.secret_value not in out for out in fleet.outputs)
