"""Paths in the monorepo: relative display paths, glob matching, file URLs (PDM's
``${PROJECT_ROOT}``, hatch's ``{root:uri}``), and mapping container paths onto projects."""

from __future__ import annotations

import fnmatch
import functools
import glob
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit


@functools.lru_cache(maxsize=4096)
def glob_free(source: str) -> str:
    """The leading part of a COPY source before its first segment holding a glob character."""
    parts = []
    for seg in source.replace("\\", "/").split("/"):
        if any(c in seg for c in "*?["):
            break
        parts.append(seg)
    return "/".join(parts) or "."


def is_local(source: str) -> bool:
    """Whether a COPY/ADD source is a path of the build context (not a URL, heredoc or variable)."""
    return not ("://" in source or source.startswith("git@") or source.startswith("<<") or "$" in source)


def matches_glob(rel: str, globs: Iterable[str]) -> bool:
    """Glob match segment by segment: ``*`` never crosses a ``/``; ``**`` matches any depth."""
    parts = rel.split("/")
    for g in globs:
        pattern = g.strip().strip("/")
        if not pattern:
            continue
        if "**" in pattern:
            if fnmatch.fnmatchcase(rel, pattern.replace("**/", "*").replace("**", "*")):
                return True
            continue
        gparts = pattern.split("/")
        if len(gparts) == len(parts) and all(fnmatch.fnmatchcase(a, b) for a, b in zip(parts, gparts, strict=True)):
            return True
    return False



def glob_dirs(base: Path, pattern: Any) -> list[Path]:
    """Folders matching a workspace glob (relative to ``base``; absolute or ``..`` allowed)."""
    if not isinstance(pattern, str) or not pattern.strip():
        return []
    try:
        hits = glob.glob(os.path.join(str(base), pattern.strip().rstrip("/")))
    except (ValueError, OSError):
        return []
    return sorted(Path(os.path.normpath(h)) for h in hits if os.path.isdir(h))



_HATCH_ROOT = re.compile(r"\{root((?::parent)*)(?::real)?:uri\}")


def expand_url(url: str, project_dir: Path) -> str:
    """Expand PDM's ``${PROJECT_ROOT}`` and hatch's ``{root:uri}`` / ``{root:parent:uri}``."""
    base = project_dir.as_posix()
    url = url.replace("${PROJECT_ROOT}", base).replace("$PROJECT_ROOT", base)

    def hatch(m: re.Match[str]) -> str:
        d = project_dir
        for _ in range(m.group(1).count(":parent")):
            d = d.parent
        return "file://" + d.as_posix()

    return _HATCH_ROOT.sub(hatch, url)


def file_url_to_path(url: str, project_dir: Path) -> str:
    """The filesystem path of a ``file:`` URL, with PDM's ``${PROJECT_ROOT}`` and hatch's
    ``{root:uri}`` expanded. A relative ``file:../x`` stays relative."""
    url = expand_url(url, project_dir)
    parts = urlsplit(url)
    path = unquote(parts.path)
    if parts.netloc and parts.netloc not in ("", "localhost"):
        path = f"/{parts.netloc}{path}"
    while path.startswith("//"):  # file:///${PROJECT_ROOT} gives file:////abs/...
        path = path[1:]
    return path


def is_project_relative(url: str) -> bool:
    return "PROJECT_ROOT" in url or "{root" in url



class PathMapper:
    """Maps a path that does not exist here (``/shared/packages/x`` inside a container) onto a
    project: configured aliases first, then the longest matching trailing segments (indexed,
    so each lookup costs the depth of the path, not the number of projects)."""

    def __init__(self, root: Path, by_path: Mapping[Path, object], aliases: dict[str, str]) -> None:
        self.root = root
        self.by_path = by_path
        self.aliases = sorted(aliases.items(), key=lambda kv: -len(kv[0]))
        self.suffixes: dict[tuple[str, ...], list[Path]] = {}
        for path in by_path:
            try:
                parts = path.relative_to(root).parts
            except ValueError:
                continue
            for n in range(1, len(parts) + 1):
                self.suffixes.setdefault(parts[-n:], []).append(path)

    def map(self, raw: str) -> Path | str | None:
        posix = raw.replace("\\", "/").rstrip("/")
        for prefix, target in self.aliases:
            pre = prefix.rstrip("/")
            if posix == pre or posix.startswith(pre + "/"):
                cand = Path(os.path.normpath(self.root / target / posix[len(pre):].lstrip("/")))
                if cand in self.by_path:
                    return cand
        parts = tuple(s for s in PurePosixPath(posix).parts if s not in ("/", ".", ".."))
        for n in range(len(parts), 0, -1):
            hits = self.suffixes.get(parts[-n:])
            if hits:
                return hits[0] if len(hits) == 1 else "ambiguous"
        return None



def requirements_base(file: Path, project_dir: Path, raw: str) -> Path:
    """The folder a relative path of a requirements file is read from: the file's own folder,
    else the project folder (pip reads such paths from the current folder, which is usually
    the service's: ``requirements/prod.txt`` holding ``-e ../../libs/x``)."""
    here = file.parent
    if here == project_dir or os.path.isabs(raw) or (here / raw).exists():
        return here
    return project_dir if (project_dir / raw).exists() else here


def is_inside(path: Path, root: Path) -> bool:
    """``path`` is ``root`` or below it, by their parts (no file system access). POSIX paths are
    first compared on their text, which pathlib spells canonically: a cheap refusal for most pairs."""
    if isinstance(path, PurePosixPath) and isinstance(root, PurePosixPath):
        p, r = str(path), str(root)
        if r != "." and p != r and not p.startswith(r if r.endswith("/") else r + "/"):
            return False
    return path == root or root in path.parents
