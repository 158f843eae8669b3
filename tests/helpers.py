"""Test helpers every test module shares (the one place for them): free loopback ports,
waiting for a server to listen, and folder snapshots to prove what a command wrote or left alone.

Fixtures live in ``conftest.py``; project builders for the deploy tests in ``deploy_fixtures.py``.
"""

from __future__ import annotations

import hashlib
import socket
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_port_in(ports: Iterable[int], host: str = "127.0.0.1") -> int | None:
    """The first of ``ports`` that can be bound now, or None when all are taken."""
    for port in ports:
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    return None


def wait_for_port(port: int, timeout: float = 20.0, proc: subprocess.Popen[bytes] | None = None,
                  host: str = "127.0.0.1") -> None:
    """Return once something accepts connections on ``host:port``; raise when ``proc`` exits
    first or nothing listens within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listened on {host}:{port} within {timeout}s")


def snapshot(root: Path, skip: Iterable[str] = ()) -> dict[str, bytes]:
    """Every file under ``root`` by relative POSIX path -> its bytes; folders named in ``skip``
    (e.g. ``.nexusify``) are left out."""
    skipped = set(skip)
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not skipped & set(p.relative_to(root).parts)}


def stamps(root: Path) -> dict[str, tuple[str, float]]:
    """Every file under ``root`` -> (sha256, mtime): proves files were neither changed nor touched."""
    return {p.relative_to(root).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime)
            for p in sorted(root.rglob("*")) if p.is_file()}
