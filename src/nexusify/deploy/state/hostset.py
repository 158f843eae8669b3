"""The engines an environment runs on, connected for one command, and where its shared state lives.

``status``, ``history``, ``deploy down`` and ``deploy unlock`` all ask the same question (which
engines hold this environment?) and close what they opened (an SSH master per host) afterwards.

State on the hosts: an environment whose proxy runs as a container on its hosts
(``proxy.kind = "container"``, always so with ``hosts``) keeps its deploy lock on the first host
and its history on every host as well as locally; one served by a local nginx keeps today's
working-copy lock and history (:func:`state_on_hosts`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor

from nexusify.deploy.config.types import DeployConfig, EnvironmentConfig
from nexusify.deploy.runtime.engine import Engine
from nexusify.deploy.runtime.hosts import connect_host
from nexusify.deploy.sites import container_mode, host_specs

Host = tuple[str, Engine]  # (display name, connected engine)


def state_on_hosts(env_cfg: EnvironmentConfig) -> bool:
    """Does the environment keep its lock and history on its hosts (see the module docstring)?"""
    return container_mode(env_cfg)


@contextlib.contextmanager
def connected_hosts(config: DeployConfig, env_cfg: EnvironmentConfig, env: Mapping[str, str], *,
                    first_only: bool = False) -> Iterator[list[Host]]:
    """Connect every engine of the environment (``hosts``, else the single engine; or only the
    first, which holds the lock), first host first; DeployError names the first that does not
    answer. All are closed at the end."""
    specs = host_specs(config, env_cfg, env)[:1 if first_only else None]
    hosts: list[Host] = []
    errors: list[BaseException] = []
    with ThreadPoolExecutor(max_workers=min(8, len(specs))) as pool:  # an SSH connection costs ~0.3 s
        futures = [(spec, pool.submit(connect_host, spec, env)) for spec in specs]
        for spec, future in futures:
            try:
                hosts.append((spec.name if env_cfg.hosts else spec.url, future.result()))
            except BaseException as exc:  # raised below, once every connection made is closed
                errors.append(exc)
    try:
        if errors:
            raise errors[0]
        yield hosts
    finally:
        for _, engine in hosts:
            engine.close()


__all__ = ["Host", "connected_hosts", "state_on_hosts"]
