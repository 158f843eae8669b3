"""Reading the consumers' lockfiles (``uv.lock``, ``poetry.lock``, ``pdm.lock``): which entries
install a shared package from a path (with their lines), and which version each package is pinned
at. One reader for verify's static check and for the re-lock's own checks (a re-lock that leaves
a path pin, or moves a third-party pin, is not accepted).

The path scan goes line by line (``tomllib`` gives no lines): a ``[[package]]`` entry of a shared
package whose source is a folder or file (uv ``source = { editable/path/directory = ... }``,
Poetry ``[package.source] type = "directory"|"file"``, PDM ``path = ...``/``editable = true``/
``url = "file:...``), and any inline ``{ name = "<shared>", editable/path/directory = ... }``
(uv's recorded requirements).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass

from packaging.utils import canonicalize_name

_NAME = re.compile(r'^\s*name\s*=\s*"([^"]+)"')
_UV_SOURCE = re.compile(r'^\s*source\s*=\s*\{[^}]*\b(editable|path|directory)\s*=\s*"([^"]*)"')
_POETRY_TYPE = re.compile(r'^\s*type\s*=\s*"(directory|file)"')
_PDM_PATH = re.compile(r'^\s*(?:path\s*=\s*"([^"]*)"|editable\s*=\s*true|url\s*=\s*"(file:[^"]*)")')
_INLINE = re.compile(r'\{\s*name\s*=\s*"([^"]+)"[^}]*\b(editable|path|directory)\s*=\s*"([^"]*)"')


@dataclass(frozen=True)
class PathPin:
    """One place a lockfile installs a shared package from a path."""

    line: int
    name: str  # normalised
    message: str  # "<name> is locked from path `./src/api`"


def path_pins(text: str, lock_name: str, shared: Iterable[str], owner: str | None = None) -> list[PathPin]:
    """Every place the lockfile ``text`` (named ``lock_name``) installs one of the ``shared``
    packages (normalised names) from a path.

    ``owner``: the consumer's name when the lock is a uv workspace root's, which records every
    member's requirements; then only the owner's own recorded requirements count."""
    names = set(shared)
    out: list[PathPin] = []
    current: str | None = None  # the [[package]] entry the line belongs to
    section = ""
    for no, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("["):
            section = stripped
            if stripped == "[[package]]" or not stripped.startswith("[package."):
                current = None
            continue
        m = _NAME.match(line)
        if m and section == "[[package]]" and current is None:
            current = canonicalize_name(m.group(1))
            continue
        for im in _INLINE.finditer(line):
            if canonicalize_name(im.group(1)) in names and (owner is None or current in (owner, *names)):
                out.append(PathPin(no, canonicalize_name(im.group(1)), f"{im.group(1)} is recorded from {im.group(2)} `{im.group(3)}`"))
        if current not in names or current is None:
            continue
        hit = None
        if (um := _UV_SOURCE.match(line)) and section == "[[package]]":
            hit = f"{um.group(1)} `{um.group(2)}`"
        elif (tm := _POETRY_TYPE.match(line)) and section == "[package.source]":
            hit = f"a {tm.group(1)} source"
        elif (pm := _PDM_PATH.match(line)) and section == "[[package]]" and lock_name == "pdm.lock":
            hit = f"path `{pm.group(1)}`" if pm.group(1) else f"`{pm.group(2)}`" if pm.group(2) else "an editable path"
        if hit:
            out.append(PathPin(no, current, f"{current} is locked from {hit}"))
    return out


def pinned_versions(text: str) -> dict[str, frozenset[str]]:
    """Normalised name -> the versions its ``[[package]]`` entries pin (all three tools write
    ``[[package]] name = .. version = ..``; uv may lock one name at several versions by marker).
    Unreadable TOML: nothing."""
    try:
        data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError):
        return {}
    out: dict[str, set[str]] = {}
    for entry in data.get("package", []) if isinstance(data.get("package"), list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            out.setdefault(canonicalize_name(entry["name"]), set()).add(str(entry.get("version", "")))
    return {k: frozenset(v) for k, v in out.items()}


def moved_pins(old: str, new: str, ignore: Iterable[str]) -> list[str]:
    """The packages (outside ``ignore``, normalised names) that both lockfile texts pin, at
    different versions: ``["six 1.16.0 -> 1.17.0"]``."""
    skip = set(ignore)
    before, after = pinned_versions(old), pinned_versions(new)
    return [f"{name} {', '.join(sorted(before[name]))} -> {', '.join(sorted(after[name]))}"
            for name in sorted(before.keys() & after.keys()) if name not in skip and before[name] != after[name]]


__all__ = ["PathPin", "moved_pins", "path_pins", "pinned_versions"]
