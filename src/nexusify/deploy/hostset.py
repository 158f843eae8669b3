"""The engines an environment runs on, connected for one command: its ``hosts``, or the single engine.

``status``, ``history``, ``deploy down`` and ``deploy unlock`` all ask the same question (which
engines hold this environment?) and close what they opened (an SSH master per host) afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

from nexusify.deploy.config_types import DeployConfig, EnvironmentConfig
from nexusify.deploy.engine import Engine, connect, engine_url
from nexusify.deploy.hosts import connect_host

Host = tuple[str, Engine]  # (display name, connected engine)


def host_names(config: DeployConfig, env_cfg: EnvironmentConfig, env: Mapping[str, str]) -> list[str]:
    """Display names of the environment's engines, first host first."""
    if env_cfg.hosts:
        return [h.name for h in env_cfg.hosts]
    return [engine_url(config.engine, env)]


@contextlib.contextmanager
def connected_hosts(config: DeployConfig, env_cfg: EnvironmentConfig, env: Mapping[str, str], *,
                    first_only: bool = False) -> Iterator[list[Host]]:
    """Connect every engine of the environment (or only the first host, which holds the lock;
    DeployError naming the first that does not answer), yield them first host first, close them
    all at the end."""
    hosts: list[Host] = []
    try:
        if env_cfg.hosts:
            for spec in env_cfg.hosts[:1] if first_only else env_cfg.hosts:
                hosts.append((spec.name, connect_host(spec, env)))
        else:
            engine = connect(config.engine, env)
            hosts.append((engine.url, engine))
        yield hosts
    finally:
        for _, engine in hosts:
            engine.close()


__all__ = ["Host", "connected_hosts", "host_names"]
