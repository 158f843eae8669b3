"""The lock check's second half: what a consumer's lockfile pins for each shared package it
installs is what the configured index serves today. ``uv lock --check`` (and Poetry's and PDM's
checks) compare the lock with the manifest, never with the index: a re-published wheel (another
hash) or a lock made against another index passes them, and ``uv sync --frozen`` then fails on
the hash (or installs from that other index).

Per lockfile entry of a shared package the consumer needs: its recorded index (uv's
``source.registry``, Poetry's ``[package.source]``, PyPI when Poetry records none) must be the
configured index, and every file it pins (uv's sdist and wheels, Poetry's and PDM's ``files``)
must be served by the index under that name with that hash. Path entries are the static check's.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from nexusify.credentials import Credentials
from nexusify.errors import NexusifyError
from nexusify.index.pages import IndexFile
from nexusify.model import Project, relpath
from nexusify.verify.report import Finding
from nexusify.verify.sources import PYPI, same_index


def _pins(lock: Path, data: Mapping[str, Any]) -> list[tuple[str, str, str | None, list[tuple[str, str]]]]:
    """(name, version, recorded index URL or None when it is not an index entry, [(file, hash)])."""
    out: list[tuple[str, str, str | None, list[tuple[str, str]]]] = []
    for pkg in data.get("package", []):
        if not isinstance(pkg, dict) or "name" not in pkg:
            continue
        name, version = canonicalize_name(str(pkg["name"])), str(pkg.get("version", ""))
        files: list[tuple[str, str]] = []
        index: str | None = None
        if lock.name == "uv.lock":
            source = pkg.get("source") or {}
            if "registry" not in source:
                continue
            index = str(source["registry"])
            for f in [pkg.get("sdist") or {}, *(pkg.get("wheels") or [])]:
                if isinstance(f, dict) and f.get("url"):
                    files.append((str(f["url"]).rsplit("/", 1)[-1].split("#")[0], str(f.get("hash", ""))))
        else:
            source = pkg.get("source") or {}
            if lock.name == "poetry.lock":
                if source and source.get("type") not in ("legacy", None):
                    continue
                index = str(source.get("url") or PYPI)
            elif pkg.get("path") or pkg.get("editable") or pkg.get("url"):
                continue
            for f in pkg.get("files") or []:
                if isinstance(f, dict):
                    fname = f.get("file") or str(f.get("url", "")).rsplit("/", 1)[-1]
                    files.append((str(fname), str(f.get("hash", ""))))
        out.append((name, version, index, files))
    return out


def lock_index_findings(consumer: Project, root: Path, needed: set[str], index_url: str,
                        creds: Credentials | None, timeout: float = 30.0) -> list[Finding]:
    """Every pin of a ``needed`` shared package in ``consumer``'s lockfiles the index contradicts."""
    from nexusify.index.client import make_client, origin
    from nexusify.index.pages import SimpleIndex

    out: list[Finding] = []
    served: dict[str, list[IndexFile] | str] = {}
    scheme, host, port = origin(index_url)
    with make_client(credentials=creds, auth_origins=(f"{scheme}://{host}:{port}",), timeout=timeout) as client:
        index = SimpleIndex(client, index_url)
        for lock in consumer.lockfiles:
            if lock.name not in ("uv.lock", "poetry.lock", "pdm.lock"):
                continue
            try:
                text = lock.read_text(encoding="utf-8")
                data = tomllib.loads(text)
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
                continue  # the tool's own check reports it
            rel = relpath(lock, root)
            for name, version, recorded, files in _pins(lock, data):
                if name not in needed:
                    continue
                line = _entry_line(text, name)
                if recorded is not None and not same_index(recorded, index_url):
                    out.append(Finding(f"{name} {version} is locked from {recorded}, not from the configured index "
                                       f"{index_url}", rel, line, f"re-lock against the index (`{consumer.tool} lock`)"))
                    continue
                if name not in served:
                    try:
                        served[name] = index.project_files(name)
                    except NexusifyError as exc:
                        served[name] = exc.message
                have = served[name]
                if isinstance(have, str):
                    out.append(Finding(f"{name}: the index could not be read to compare the lock: {have}", rel, line))
                    continue
                by_file = {f.filename: f for f in have}
                for fname, digest in files:
                    algo, _, value = digest.partition(":")
                    found = by_file.get(fname)
                    if found is None:
                        out.append(Finding(f"{name} {version}: the lock pins {fname}, which the index does not "
                                           "serve, so a frozen install fails", rel, line,
                                           "publish that file, or re-lock against the index"))
                    elif value and found.hash_matches({algo or "sha256": value}) is False:
                        out.append(Finding(f"{name} {version}: the lock pins {fname} with another hash than the "
                                           "file the index serves, so a frozen install fails on the hash", rel, line,
                                           f"re-lock against the index (`{consumer.tool} lock`)"))
    return out


def _entry_line(text: str, name: str) -> int | None:
    rx = re.compile(r'^\s*name\s*=\s*"([^"]+)"')
    for n, line in enumerate(text.splitlines(), 1):
        m = rx.match(line)
        if m and canonicalize_name(m.group(1)) == name:
            return n
    return None


__all__ = ["lock_index_findings"]
