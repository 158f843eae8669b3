"""Is a container ready? One HTTP probe of its health path, and free loopback ports to publish on."""

from __future__ import annotations

import http.client
import socket

from nexusify.errors import DeployError


def free_port(host: str = "127.0.0.1", avoid: set[int] | None = None) -> int:
    for _ in range(50):
        with socket.socket() as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if not avoid or port not in avoid:
            return port
    raise DeployError("no free port found on the host")  # pragma: no cover


def check_health(host: str, port: int, path: str, timeout: float = 2.0) -> tuple[bool, str]:
    """One GET of the health path on a fresh connection: (2xx/3xx?, short description)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close", "User-Agent": "nexusify-health"})
        resp = conn.getresponse()
        resp.read()
        return 200 <= resp.status < 400, f"HTTP {resp.status}"
    except (OSError, http.client.HTTPException) as exc:
        return False, f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()



__all__ = ["check_health", "free_port"]
