"""Where an environment's services run: one *site* per engine, each with its traffic switch and
its state. Today's single engine behind a local nginx is one site; ``proxy.kind = "container"``
gives one site per host (``hosts = [...]``, or the single engine), each with its proxy container.

Hosts are connected in parallel (an SSH connection costs ~0.3 s) and closed when the deploy ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from nexusify.config import Settings
from nexusify.deploy.bluegreen import BlueGreen
from nexusify.deploy.config.load import EnvironmentConfig, ServiceConfig
from nexusify.deploy.config.placement import Placement
from nexusify.deploy.plan import make_proxy, routes_of, runtime_of
from nexusify.deploy.protocols import StateBackend
from nexusify.deploy.result import Event, EventSink
from nexusify.deploy.runtime.containers import Probe, ServiceContainers
from nexusify.deploy.runtime.engine import Engine
from nexusify.deploy.runtime.hosts import HostSpec, connect_host
from nexusify.deploy.state.hostset import Host
from nexusify.deploy.traffic.proxy_container import ContainerProxy
from nexusify.deploy.traffic.switch import TrafficSwitch


@dataclass
class Site:
    """One engine of an environment with its traffic switch and state."""

    name: str  # the host's display name ("" for the single engine)
    engine: Engine
    switch_for: Callable[[str], TrafficSwitch]
    store: StateBackend
    network: str | None = None
    probe: Probe | None = None

    def bluegreen(self, env_cfg: EnvironmentConfig, svc: ServiceConfig, sink: EventSink,
                  redact: Callable[[str], str] | None = None) -> BlueGreen:
        rt = runtime_of(env_cfg, svc)
        if self.network:
            rt = replace(rt, network=self.network)
        prefix = f"{self.name}: " if self.name else ""
        box = ServiceContainers(self.engine, rt, redact, self.probe)
        return BlueGreen(box, self.switch_for(svc.name), rt, self.store,
                         on_event=lambda m: sink(Event("info", "switch", prefix + m)))


@contextlib.contextmanager
def open_sites(placement: Placement, settings: Settings, env_cfg: EnvironmentConfig, env: Mapping[str, str],
               build_engine: Engine | None, sink: EventSink, state: StateBackend,
               connected: Sequence[Host] = ()) -> Iterator[list[Site]]:
    """Connect every site of the environment (proxies created on first deploy); closed on exit.
    ``state``: the environment's state; each site records its services in ``state.at(site)``.
    ``connected``: the hosts already connected by the deploy lock, the primary first: reused (not
    closed), and the sites come in their order (the first site runs the migrations)."""
    if not placement.proxy_container:
        assert build_engine is not None
        nginx = make_proxy(env_cfg, settings)
        yield [Site("", build_engine, nginx.switch, state.at(""))]
        return
    proxy_cfg = env_cfg.proxy
    assert proxy_cfg is not None
    ready = {name: eng for name, eng in connected} if placement.has_hosts else {}
    order = [name for name, _ in connected]
    specs = sorted(placement.specs, key=lambda s: order.index(placement.display(s))
                   if placement.display(s) in order else len(order))
    drain = max((s.drain_timeout for s in env_cfg.services.values()), default=5.0)
    routes = routes_of(env_cfg, proxy_cfg)
    owned: list[Engine] = []

    def open_one(spec: HostSpec) -> Site:
        """Connect one host (or take the engine the lock connected) and make sure its network and
        proxy exist (first deploy creates them)."""
        eng = ready.get(placement.display(spec))
        if eng is None:
            reuse = build_engine is not None and not placement.has_hosts
            eng = build_engine if reuse and build_engine is not None else connect_host(spec, env)
            if eng is not build_engine:
                owned.append(eng)
        name = placement.site_name(spec)
        # a host publishes on its `bind` (default: all addresses); the single engine where `listen` says
        bind = spec.bind if placement.has_hosts else proxy_cfg.listen_host
        proxy = ContainerProxy(eng, env_cfg.name, routes, image=proxy_cfg.image, bind=bind,
                               drain_timeout=max(drain, 1.0), host=name,
                               on_event=lambda m: sink(Event("info", "switch", m)))
        proxy.ensure_running()
        proxy.targets()
        return Site(name, eng, proxy.switch, state.at(name),
                    network=proxy.network, probe=proxy.probe)

    try:
        with ThreadPoolExecutor(max_workers=min(8, len(specs))) as pool:
            futures = [pool.submit(open_one, spec) for spec in specs]
            sites: list[Site] = []
            errors: list[BaseException] = []
            for f in futures:
                try:
                    sites.append(f.result())
                except BaseException as exc:  # re-raised below, once every host was tried
                    errors.append(exc)
        if errors:
            raise errors[0]
        yield sites
    finally:
        for e in owned:
            e.close()


__all__ = ["Site", "open_sites"]
