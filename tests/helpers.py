"""Test helpers every test module shares (the one place for them): free loopback ports,
waiting for a server to listen, folder snapshots to prove what a command wrote or left alone,
and hand-made sdists and wheels to put on a test index.

Fixtures live in ``conftest.py``; project builders for the deploy tests in ``deploy_fixtures.py``.
"""

from __future__ import annotations

import hashlib
import io
import socket
import subprocess
import tarfile
import time
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any


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


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def make_sdist(dest: Path, folder: Path, dist: str, version: str, changes: dict[str, bytes] | None = None,
               skip: tuple[str, ...] = ()) -> Path:
    """An sdist as a backend would make it: ``<dist>-<version>/`` + the package's files + PKG-INFO."""
    base = f"{dist.replace('-', '_')}-{version}"
    path = dest / f"{base}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        _add(tar, f"{base}/PKG-INFO", f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n".encode())
        for f in sorted(folder.rglob("*")):
            rel = f.relative_to(folder).as_posix()
            if f.is_file() and "__pycache__" not in rel and rel not in skip:
                _add(tar, f"{base}/{rel}", (changes or {}).get(rel, f.read_bytes()))
    return path


def make_wheel(dest: Path, folder: Path, dist: str, version: str, package: str) -> Path:
    base = f"{dist.replace('-', '_')}-{version}"
    path = dest / f"{base}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for f in sorted((folder / package).rglob("*.py")):
            zf.writestr(f.relative_to(folder).as_posix(), f.read_bytes())
        zf.writestr(f"{base}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    return path


def role(ws: Any, project: Any) -> str:
    """A project's roles by use, as one word: "shared", "consumer", "shared+consumer" or "other"."""
    found = [r for r, yes in (("shared", ws.is_shared(project)), ("consumer", ws.is_consumer(project))) if yes]
    return "+".join(found) or "other"
