"""The engines an environment runs on, connected for one command.

``status``, ``history``, ``deploy down`` and ``deploy unlock`` all ask the same question (which
engines hold this environment? its :class:`~nexusify.deploy.config.placement.Placement` says) and
close what they opened (an SSH master per host) afterwards.

State on the hosts: an environment whose proxy runs as a container on its hosts
(``proxy.kind = "container"``, always so with ``hosts``) keeps its deploy lock on its primary host
(:mod:`~nexusify.deploy.state.primary`) and its history on every host as well as locally; one
served by a local nginx keeps today's working-copy lock and history (``Placement.state_on_hosts``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor

from nexusify.deploy.config.placement import Placement
from nexusify.deploy.runtime.engine import Engine
from nexusify.deploy.runtime.hosts import connect_host

Host = tuple[str, Engine]  # (display name, connected engine)


@contextlib.contextmanager
def connected_hosts(placement: Placement, env: Mapping[str, str]) -> Iterator[list[Host]]:
    """Connect every engine of the environment (``hosts``, else the single engine), in the
    configuration's order; DeployError names the first that does not answer. All are closed at
    the end."""
    specs = placement.specs
    hosts: list[Host] = []
    errors: list[BaseException] = []
    with ThreadPoolExecutor(max_workers=min(8, len(specs))) as pool:  # an SSH connection costs ~0.3 s
        futures = [(spec, pool.submit(connect_host, spec, env)) for spec in specs]
        for spec, future in futures:
            try:
                hosts.append((placement.display(spec), future.result()))
            except BaseException as exc:  # raised below, once every connection made is closed
                errors.append(exc)
    try:
        if errors:
            raise errors[0]
        yield hosts
    finally:
        for _, engine in hosts:
            engine.close()


__all__ = ["Host", "connected_hosts"]
