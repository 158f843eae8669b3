"""What counts as shared code in a container build: the shared packages' folders on the host,
and container paths that stand for them. One matcher, asked by the Dockerfile rule for every
COPY/ADD source."""

from __future__ import annotations

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
        pulls = tuple(sorted((n, frozenset(ws.closure([n]))) for n in ws.by_name))
        return cls(found.packages, found.segments, pulls)

    def installed_with(self, names: Iterable[str]) -> frozenset[str]:
        """``names`` (normalized) with what installing them installs (the model's
        :meth:`~nexusify.model.Workspace.closure`, looked up): what they pull from the index."""
        pulls = dict(self.pulls)
        names = frozenset(names)
        return names.union(*(pulls.get(n, frozenset()) for n in names))

    def without(self, folder: Path) -> SharedCode:
        own = os.path.normpath(str(folder))
        return SharedCode(tuple(p for p in self.packages if p[0] != own), self.segments, self.pulls)

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
        hits: list[tuple[str, str | None]] = []
        for folder, name in self.packages:
            if resolved == folder:
                hits.append((name, ""))
            elif folder.startswith(resolved + os.sep):
                hits.append((name, Path(folder).relative_to(resolved).as_posix()))
            elif resolved.startswith(folder + os.sep):
                hits.append((name, None))
        if hits:
            return tuple(hits)
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
