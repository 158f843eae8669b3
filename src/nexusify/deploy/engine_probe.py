"""The one engine check, through docker-py's documented calls only: does the engine answer
(``client.ping()``), and is it Podman (``client.version()``, whose ``Components`` name
"Podman Engine"). Every connection path (local socket, ``tcp://`` with TLS, an SSH tunnel) asks
these two functions.
"""

from __future__ import annotations

from typing import Any


def ping(client: Any, *, timeout: float | None = None) -> None:
    """Ask the engine to answer ``/_ping`` (docker-py's ``DockerClient.ping``), waiting ``timeout``
    seconds at most when given (the client keeps its own timeout for later calls). Raises what
    docker-py raises: ``docker.errors.APIError`` (its ``response`` is the HTTP answer) for an
    HTTP error, a requests/OS error when nothing answers."""
    api = client.api
    saved = api.timeout
    if timeout is not None:
        api.timeout = timeout
    try:
        client.ping()
    finally:
        api.timeout = saved


def is_podman(client: Any) -> bool:
    """Whether the engine is Podman: ``client.version()`` lists its components, and Podman's
    Docker-compatible API names its own "Podman Engine" there (dockerd names "Engine")."""
    components = client.version().get("Components") or []
    return any("podman" in str(c.get("Name", "")).lower() for c in components if isinstance(c, dict))


__all__ = ["is_podman", "ping"]
