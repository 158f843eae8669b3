"""``nexusify deploy down``: remove what nexusify created for an environment, on every host.

What is removed is found by label (``managed=true``, ``environment=ENV``) and by the names
nexusify gives (network ``nexusify-ENV``), never guessed: service containers (live and kept),
the proxy container, helper containers a killed command left, the network, and the lock (the
down itself holds it, so it never runs under a deploy, and releases it last). The history stays
unless asked (``--purge-history``): it is the record of what ran, and a later deploy appends to
it. Images stay too (other environments may run them); the engine's prune removes them.

Without hosts, the local engine's containers go, and the private nginx nexusify started is
stopped and its files removed (an nginx of your own, ``proxy.conf``, is left running: its
config includes nexusify's files, which stay for you to remove from that include first).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nexusify.config import Settings
from nexusify.deploy.config.placement import placement_of
from nexusify.deploy.config.types import DeployConfig
from nexusify.deploy.plan import make_proxy
from nexusify.deploy.runtime.engine import (
    LABEL_ENVIRONMENT,
    LABEL_MANAGED,
    LABEL_ROLE,
    ROLE_HISTORY,
    ROLE_LOCK,
    ROLE_PRIMARY,
    Engine,
)
from nexusify.deploy.runtime.hosts import network_name
from nexusify.deploy.runtime.objects import (
    environment_filter,
    history_exists,
    history_volume,
)
from nexusify.deploy.runtime.sdk import NotFound
from nexusify.deploy.state.backend import state_backend
from nexusify.deploy.state.hostset import Host, connected_hosts
from nexusify.deploy.traffic.switch import NginxProxy

ORDER = {"container": 0, "proxy": 0, "network": 1, "volume": 2, "lock": 3, "file": 4, "nginx": 4}


@dataclass(frozen=True)
class Found:
    """One object of the environment: where, what kind, its name (and the engine's id)."""

    host: str
    kind: str  # container | proxy | lock | network | volume | nginx | file
    name: str
    ident: str = ""
    role: str = ""

    def describe(self) -> str:
        if self.kind == "nginx":
            return self.name
        return f"{self.kind} {self.name} on {self.host}" if self.kind != "file" else f"file {self.name}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _containers(host: str, engine: Engine, environment: str, purge_history: bool) -> list[Found]:
    out = []
    for row in engine.client.api.containers(all=True, filters=environment_filter(environment)):
        labels = row.get("Labels") or {}
        role = labels.get(LABEL_ROLE, "service")
        if role == ROLE_HISTORY and not purge_history:
            continue  # a history write in flight (another machine appending) is left alone
        name = (row.get("Names") or [row["Id"][:12]])[0].lstrip("/")
        kind = {ROLE_LOCK: "lock", "proxy": "proxy"}.get(role, "container")
        out.append(Found(host, kind, name, str(row["Id"]), role))
    return out


def _ours(labels: Mapping[str, str], environment: str) -> bool:
    """Labels of an object nexusify made for ``environment`` (checked here whatever the engine's filter did)."""
    return labels.get(LABEL_MANAGED) == "true" and labels.get(LABEL_ENVIRONMENT) == environment


def _networks(host: str, engine: Engine, environment: str) -> list[Found]:
    seen: dict[str, Found] = {}
    api = engine.client.api
    for row in api.networks(filters=environment_filter(environment)) or []:
        if not _ours(row.get("Labels") or {}, environment):
            continue
        seen[str(row["Id"])] = Found(host, "network", str(row["Name"]), str(row["Id"]), "network")
    for row in api.networks(names=[network_name(environment)]) or []:
        if row.get("Name") == network_name(environment):
            seen[str(row["Id"])] = Found(host, "network", str(row["Name"]), str(row["Id"]), "network")
    return list(seen.values())


def _volumes(host: str, engine: Engine, environment: str) -> list[Found]:
    """The environment's volumes on a host: its history, and the marker of the lock host (role
    ``primary``: it goes with the environment, so a later first deploy picks the lock host anew)."""
    rows = (engine.client.api.volumes(filters=environment_filter(environment)) or {}).get("Volumes") or []
    # Podman ORs the label filters of a volume list (Docker ANDs them): every label is checked here
    roles = {str(v["Name"]): str(labels.get(LABEL_ROLE, ROLE_HISTORY)) for v in rows
             if _ours(labels := v.get("Labels") or {}, environment)}
    if history_exists(engine, environment):
        roles[history_volume(environment)] = ROLE_HISTORY
    return [Found(host, "volume", n, n, roles[n]) for n in sorted(roles)]


def find_on_hosts(environment: str, hosts: Sequence[Host], *, purge_history: bool) -> tuple[list[Found], list[Found]]:
    """(what down removes, what it keeps: the history volumes unless ``purge_history``) on the hosts."""
    remove: list[Found] = []
    keep: list[Found] = []
    for name, engine in hosts:
        remove += _containers(name, engine, environment, purge_history)
        remove += _networks(name, engine, environment)
        for volume in _volumes(name, engine, environment):
            (remove if purge_history or volume.role == ROLE_PRIMARY else keep).append(volume)
    return sorted(remove, key=lambda f: ORDER.get(f.kind, 9)), keep


def find_local(state_dir: Path, proxy: NginxProxy | None, *, purge_history: bool) -> tuple[list[Found], list[Found]]:
    """What down removes in the working copy: the state file, the private nginx and its files;
    the local history is kept unless ``purge_history``."""
    remove: list[Found] = []
    keep: list[Found] = []
    if proxy is not None and proxy.managed and proxy.conf_dir.is_dir():
        if proxy.running():
            remove.append(Found("this machine", "nginx", f"nexusify's private nginx (stopped), of {proxy.conf_dir}"))
        remove.append(Found("this machine", "file", str(proxy.conf_dir)))
    for state in (state_dir / "state.json", state_dir / "hosts"):  # the deploy state (per host with hosts)
        if state.exists():
            remove.append(Found("this machine", "file", str(state)))
    history = state_dir / "history.jsonl"
    if history.is_file():
        (remove if purge_history else keep).append(Found("this machine", "file", str(history)))
    return remove, keep


def remove_all(found: Sequence[Found], hosts: Sequence[Host], proxy: NginxProxy | None) -> list[Found]:
    """Remove ``found`` in order (containers, networks, volumes; the lock is left to its holder's
    release); returns what was removed. An object already gone counts as removed."""
    engines = dict(hosts)
    removed: list[Found] = []
    for item in found:
        if item.kind == "lock":
            continue  # ours: released (removed) when the down lets go of the lock
        if item.kind == "nginx" and proxy is not None:
            proxy.stop()
        elif item.kind == "file":
            path = Path(item.name)
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        else:
            api = engines[item.host].client.api
            try:
                if item.kind == "network":
                    api.remove_network(item.ident)
                elif item.kind == "volume":
                    api.remove_volume(item.ident, force=True)
                else:
                    api.remove_container(item.ident, force=True)
            except NotFound:
                pass
        removed.append(item)
    return removed


@dataclass
class DownResult:
    environment: str
    has_hosts: bool
    removed: list[Found] = field(default_factory=list)
    kept: list[Found] = field(default_factory=list)  # the history, unless purged
    declined: bool = False  # the confirmation was answered no: nothing was removed

    @property
    def history_volume(self) -> str:
        return history_volume(self.environment)

    def to_dict(self) -> dict[str, Any]:
        return {"environment": self.environment, "removed": [i.to_dict() for i in self.removed],
                "kept": [i.to_dict() for i in self.kept], "declined": self.declined}


def down(config: DeployConfig, settings: Settings, environment: str, *, env: Mapping[str, str],
         purge_history: bool = False, lock_wait: float | None = None,
         confirm: Callable[[list[Found]], bool] | None = None) -> DownResult:
    """Remove the environment's objects under its deploy lock; ``confirm(objects)`` is asked
    first when given (False: nothing is removed). The lock itself goes last, on release."""
    env_cfg = config.environment(environment)
    placement = placement_of(config, env_cfg, env)
    proxy = None if placement.state_on_hosts else make_proxy(env_cfg, settings)
    state_dir = settings.state_path / "deploy" / env_cfg.name
    wait = env_cfg.lock_wait if lock_wait is None else lock_wait
    result = DownResult(env_cfg.name, placement.state_on_hosts)
    with connected_hosts(placement, env) as hosts:
        with state_backend(settings, placement, hosts, env).hold(wait=wait, action="down"):
            on_hosts, kept = find_on_hosts(env_cfg.name, hosts, purge_history=purge_history)
            local, kept_local = find_local(state_dir, proxy, purge_history=purge_history)
            items = on_hosts + local
            result.kept = kept + kept_local
            if not any(i.kind != "lock" and i.role != ROLE_PRIMARY for i in items):
                remove_all([i for i in items if i.role == ROLE_PRIMARY], hosts, proxy)  # it goes with the lock
                return result  # nothing but our own lock
            if confirm is not None and not confirm(items):
                result.declined = True
                return result
            result.removed = remove_all(items, hosts, proxy)
        result.removed += [i for i in items if i.kind == "lock"]  # released with the lock just now
    return result


__all__ = ["DownResult", "Found", "down", "find_local", "find_on_hosts", "remove_all"]
