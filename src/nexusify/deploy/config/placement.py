"""Where an environment runs and keeps its state, decided once from its configuration.

Every part of deploy that asks "does this environment have hosts?", "is its proxy a container?",
"where do the lock and the history live?" or "which engines are its sites?" asks the
:class:`Placement` built by :func:`placement_of`, never the raw configuration.

Two shapes today: the single engine behind a local nginx (state in the working copy), and one
site per engine with a proxy container on each (``proxy.kind = "container"``: ``hosts = [...]``,
or the single engine), whose deploy lock and history live on the engines themselves. Which host
holds the lock is decided on the hosts (:mod:`~nexusify.deploy.state.primary`): the one named
``primary``, else the one that already holds it, else the first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from nexusify.deploy.config.types import DeployConfig, EnvironmentConfig
from nexusify.deploy.runtime.engine import engine_url
from nexusify.deploy.runtime.hosts import HostSpec


@dataclass(frozen=True)
class Placement:
    """The environment's sites and where its state lives."""

    environment: str
    specs: tuple[HostSpec, ...]  # the engines: ``hosts`` (the named primary first), else the single engine
    has_hosts: bool  # ``hosts`` is listed (each spec is a remote host with its own name)
    proxy_container: bool  # a proxy container on every site (else the local nginx)
    primary_named: bool  # ``primary`` names the lock host: it is never looked for

    @property
    def state_on_hosts(self) -> bool:
        """The deploy lock and the history live on the engines (else: the working copy's only)."""
        return self.proxy_container

    @property
    def migrations_on_host(self) -> bool:
        """Migrations run in a one-off container on the primary host (else: from this machine)."""
        return self.has_hosts

    def display(self, spec: HostSpec) -> str:
        """How output names the engine of ``spec`` (the host's name, or the single engine's address)."""
        return spec.name if self.has_hosts else spec.url

    def site_name(self, spec: HostSpec) -> str:
        """The site's name in events and state files ("" for the single engine)."""
        return spec.name if self.has_hosts else ""


def placement_of(config: DeployConfig, env_cfg: EnvironmentConfig, env: Mapping[str, str]) -> Placement:
    """The placement of ``env_cfg`` (``env``: where the single engine is when ``hosts`` is not set)."""
    return Placement(
        environment=env_cfg.name,
        specs=env_cfg.hosts or (HostSpec(engine_url(config.engine, env)),),
        has_hosts=bool(env_cfg.hosts),
        proxy_container=env_cfg.proxy is not None and env_cfg.proxy.kind == "container",
        primary_named=env_cfg.primary is not None,
    )


__all__ = ["Placement", "placement_of"]
