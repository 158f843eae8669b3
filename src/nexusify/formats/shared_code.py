"""What counts as shared code in a container build: the shared packages' folders on the host,
and container paths that stand for them. One matcher, asked by the Dockerfile rule for every
COPY/ADD source."""

from __future__ import annotations

import bisect
import functools
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from nexusify.model.paths import glob_free, is_local

if TYPE_CHECKING:
    from nexusify.model import Workspace


def _segments(path: str) -> list[str]:
    return [s for s in PurePosixPath(path.replace("\\", "/")).parts if s not in ("/", ".", "..")]


@dataclass(frozen=True)
class SharedCode:
    """The shared packages' folders on the host (with their names), and container paths that
    stand for them (``path_aliases``, ``/srv/platform/python/core``): what counts as shared code."""

    packages: tuple[tuple[str, str], ...] = ()  # (normalized absolute folder, display name)
    segments: tuple[tuple[str, ...], ...] = ()
    pulls: tuple[tuple[str, frozenset[str]], ...] = ()  # (normalized name, what installing it installs: the model's closure)

    @classmethod
    def of(cls, packages: Iterable[tuple[Path | str, str]], container_paths: Iterable[str] = ()) -> SharedCode:
        host = tuple(sorted({(os.path.normpath(str(p)), name) for p, name in packages}))
        segs = tuple(t for t in (tuple(_segments(c)) for c in container_paths) if t)
        return cls(host, segs)

    @classmethod
    def from_workspace(cls, ws: Workspace, path_aliases: Iterable[str] = ()) -> SharedCode:
        """The shared packages of ``ws`` and every container path its projects map onto them."""
        container = set(path_aliases)
        for p in ws.projects:
            container.update(d.mapped_from for d in p.local_deps if d.mapped_from)
        found = cls.of([(p.path, p.name or p.rel(ws.root)) for p in ws.shared()], sorted(container))
        pulls = tuple(sorted((n, ws.reached(n)) for n in ws.by_name))
        return cls(found.packages, found.segments, pulls)

    def installed_with(self, names: Iterable[str]) -> frozenset[str]:
        """``names`` (normalized) with what installing them installs (the model's
        :meth:`~nexusify.model.Workspace.closure`, looked up): what they pull from the index."""
        pulls = self._pull_map
        names = frozenset(names)
        return names.union(*(pulls.get(n, frozenset()) for n in names))

    @functools.cached_property
    def marks(self) -> frozenset[str]:
        """Every shared package's folder name and distribution name (both spellings): a path naming
        one of them names shared code."""
        out: set[str] = set()
        for folder, name in self.packages:
            out |= {os.path.basename(folder), name, name.replace("-", "_"), name.replace("_", "-")}
        return frozenset(out)

    @functools.cached_property
    def _pull_map(self) -> dict[str, frozenset[str]]:
        return dict(self.pulls)  # built once, not once per project judged

    def without(self, folder: Path) -> SharedCode:
        own = os.path.normpath(str(folder))
        kept = tuple(p for p in self.packages if p[0] != own)
        if len(kept) == len(self.packages):
            return self  # a consumer: the same matcher, its lookups built once for every project
        return SharedCode(kept, self.segments, self.pulls)

    @functools.cached_property
    def _folders(self) -> list[str]:
        return [folder for folder, _name in self.packages]  # sorted: packages is

    def _hits(self, resolved: str) -> tuple[tuple[str, str | None], ...]:
        """The packages at, under or above the normalized host path ``resolved``, in the order of
        ``packages``: (name, folder relative to it), "" when it is the package, None when inside it."""
        folders = self._folders
        found: list[tuple[int, str | None]] = []
        # equal, and every ancestor of resolved (a folder the source is inside), by exact lookup
        at = resolved
        while True:
            i = bisect.bisect_left(folders, at)
            while i < len(folders) and folders[i] == at:
                found.append((i, "" if at == resolved else None))
                i += 1
            parent = os.path.dirname(at)
            if parent == at or parent == os.sep:  # a package at the file system's root holds nothing
                break
            at = parent
        # every folder below resolved: one contiguous run in sorted order
        prefix = resolved + os.sep
        i = bisect.bisect_left(folders, prefix)
        while i < len(folders) and folders[i].startswith(prefix):
            found.append((i, folders[i][len(prefix):].replace(os.sep, "/")))
            i += 1
        return tuple((self.packages[i][1], rel) for i, rel in sorted(found))

    def match(self, source: str, context: Path) -> tuple[tuple[str, str | None], ...] | None:
        """The shared packages a COPY/ADD ``source`` (relative to ``context``) brings, each with
        its folder relative to the source ("" = the source is the package; None = the source is
        a part of it), ``()`` for a container path with no known package, None: not shared."""
        if not is_local(source):
            return None
        clean = glob_free(source)
        ctx = os.path.normpath(str(context))
        resolved = os.path.normpath(os.path.join(ctx, clean.lstrip("/")))
        if resolved == ctx:
            return None  # the whole context: whatever is in it is part of the project
        hits = self._hits(resolved)
        if hits:
            return hits
        seg = _segments(clean)
        for target in self.segments if seg else ():
            inside = list(seg[: len(target)]) == list(target)
            holder = len(seg) >= 2 and list(target[-len(seg):]) == seg
            escaping = clean.startswith("..") and any(
                tuple(seg[k:k + len(target)]) == target for k in range(len(seg)))
            if inside or holder or escaping:
                return ()
        return None


__all__ = ["SharedCode"]
