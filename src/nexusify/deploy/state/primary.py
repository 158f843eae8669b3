"""Which host of an environment holds its deploy lock (the *primary*), so that it stays put.

The lock is a container created on one host (:mod:`~nexusify.deploy.state.hostlock`), and every
machine that deploys the environment must pick the same host, whatever order its copy of
``hosts`` lists them in. The rule:

1. ``primary = "..."`` names it (the configuration puts it first): nothing is looked for;
2. else the host that already holds the lock: its first lock left an empty named volume there,
   ``nexusify-ENV-primary`` (role ``primary``), and a lock container held right now counts too;
3. else (no host holds it: the first deploy) the first host of the list, which gets the volume.

Two hosts that both hold it are an error naming both, never a guess: two clones whose lists
differ deployed for the first time at once, or the volume was copied. After taking the lock a
deploy checks that no other host holds one (:func:`check_alone`), so two such clones never both
go on (each takes its lock before it looks at the other's host: at least one sees the other).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from nexusify.deploy.config.placement import Placement
from nexusify.deploy.runtime.engine import ROLE_PRIMARY, Engine
from nexusify.deploy.runtime.objects import (
    inspect_container,
    lock_name,
    object_labels,
    primary_volume,
    volume_exists,
)
from nexusify.deploy.runtime.sdk import Conflict, EngineError
from nexusify.deploy.state.hostset import Host
from nexusify.errors import DeployError


def holds_lock_home(engine: Engine, environment: str) -> bool:
    """Does this host hold the environment's lock: its marker volume, or the lock container itself?"""
    try:
        return volume_exists(engine, primary_volume(environment)) or (
            inspect_container(engine, lock_name(environment)) is not None)
    except EngineError as exc:
        raise DeployError(f"engine {engine.url}: cannot tell whether it holds the deploy lock of "
                          f"`{environment}`: {exc.message}") from None


def mark_primary(engine: Engine, environment: str) -> None:
    """Leave the marker volume on the lock host (once; a volume made meanwhile elsewhere is the same)."""
    if volume_exists(engine, primary_volume(environment)):
        return
    with contextlib.suppress(Conflict):
        engine.client.api.create_volume(primary_volume(environment), labels=object_labels(environment, ROLE_PRIMARY))


def _both(environment: str, names: Sequence[str]) -> DeployError:
    return DeployError(
        f"hosts {' and '.join(names)} both hold the deploy lock of `{environment}` "
        f"(volume {primary_volume(environment)} or lock {lock_name(environment)}); nexusify will not guess which",
        hint=f'name the lock host in [deploy.environments.{environment}]: primary = "<its address as `hosts` '
        f'lists it>"; then `docker volume rm {primary_volume(environment)}` on the other host',
    )


def primary_first(hosts: Sequence[Host], placement: Placement) -> list[Host]:
    """``hosts`` (connected, in the configuration's order) with the primary first (see the module)."""
    if placement.primary_named or len(hosts) < 2:
        return list(hosts)
    holders = [h for h in hosts if holds_lock_home(h[1], placement.environment)]
    if len(holders) > 1:
        raise _both(placement.environment, [name for name, _ in holders])
    if not holders:
        return list(hosts)
    return [holders[0], *(h for h in hosts if h is not holders[0])]


def check_alone(hosts: Sequence[Host], placement: Placement) -> None:
    """Called holding the lock on ``hosts[0]``: marks it (an environment with ``hosts``; the single
    engine needs no marker); DeployError when another host holds the lock too."""
    if placement.has_hosts:
        mark_primary(hosts[0][1], placement.environment)
    if placement.primary_named:
        return
    others = [name for name, engine in hosts[1:] if holds_lock_home(engine, placement.environment)]
    if others:
        raise _both(placement.environment, [hosts[0][0], *others])


__all__ = ["check_alone", "holds_lock_home", "mark_primary", "primary_first"]
