"""The stages of a Dockerfile as the shared-code rule walks them: the container paths a removed
copy filled (:class:`Filled`), where the consumer's own files land, and the consumer's own
installs (:func:`judge_commands`), with what installing the consumer pulls (:func:`project_pulls`)."""

from __future__ import annotations

import functools
import os
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from nexusify.errors import Problem
from nexusify.formats.dockerfile_runs import (
    OwnInstall,
    ProjectPulls,
    RequirementsFilter,
    command,
    judge_filter,
    own_install,
    segments,
    unquote,
)
from nexusify.formats.shared_code import SharedCode
from nexusify.model.paths import glob_free, is_local
from nexusify.syntax.dockerfile_parse import Dockerfile, Instruction

if TYPE_CHECKING:
    from nexusify.model import Project


@dataclass(frozen=True)
class Filled:
    """A container path a removed copy would have filled (``name``: the package it holds there)."""

    path: str
    name: str | None
    line: int


@dataclass
class Stage:
    workdir: str = "/"
    filled: list[Filled] = field(default_factory=list)
    own: list[tuple[str, Path]] = field(default_factory=list)  # (container path, the consumer's host path)
    installs: list[OwnInstall] = field(default_factory=list)  # the consumer's own installs in this stage

    def host_of(self, path: str) -> Path | None:
        """The consumer's host file or folder a container path holds (None: not the consumer's)."""
        path = posixpath.normpath(path)
        for container, host in reversed(self.own):
            if under(path, container):
                rest = posixpath.relpath(path, container)
                return host if rest == "." else Path(os.path.normpath(host / rest))
        return None


@functools.lru_cache(maxsize=8192)  # pure, and asked for the same few paths in every Dockerfile
def abs_path(path: str, workdir: str) -> str:
    """A container path, ``path`` read from ``workdir``."""
    return posixpath.normpath(posixpath.join(workdir, path))


def under(path: str, folder: str) -> bool:
    """Whether the container path ``path`` is ``folder`` or inside it."""
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def track_own(instr: Instruction, stage: Stage, ctx: Path, project_dir: Path) -> None:
    """Where the consumer's own files land: a COPY of its folder, of a folder holding it, or of
    files inside it (``COPY requirements.txt .``, ``COPY . /app``, ``COPY services/api /srv``)."""
    dest = instr.dest or ""
    if "$" in dest:
        return
    sources = instr.sources
    base = abs_path(dest, stage.workdir)
    into = dest.endswith("/") or dest in (".", "./") or len(sources) > 1
    for src in sources:
        if not is_local(src):
            continue
        host = Path(os.path.normpath(os.path.join(str(ctx), glob_free(src).lstrip("/"))))
        if glob_free(src) != src.replace("\\", "/"):  # a glob: each file it names lands in the folder
            for hit in sorted(ctx.glob(src.lstrip("/"))) if inside(host, project_dir) else []:
                if hit.is_file():
                    stage.own.append((abs_path(hit.name, base), Path(os.path.normpath(hit))))
            continue
        if inside(project_dir, host) and (host.is_dir() or host == project_dir):
            stage.own.append((abs_path(os.path.relpath(project_dir, host), base), project_dir))
        elif inside(host, project_dir):
            stage.own.append((abs_path(host.name, base) if into and host.is_file() else base, host))


def inside(path: Path, folder: Path) -> bool:
    """Whether the host path ``path`` is ``folder`` or inside it."""
    return path == folder or str(path).startswith(str(folder).rstrip(os.sep) + os.sep)


def judge_commands(path: str, instr: Instruction, stage: Stage, df: Dockerfile, names: list[str],
                   pulls: ProjectPulls | None, filters: list[RequirementsFilter], problems: list[Problem]) -> None:
    """Each command of a shell-form RUN: ``cd``, a ``grep -v`` of shared names, the consumer's own install."""
    cmds = segments(instr.args)
    cwd = stage.workdir
    for k, seg in enumerate(cmds):
        cmd, start = command(seg.words)
        if cmd == "cd" and start < len(seg.words) and seg.after == "&&":
            cwd = abs_path(unquote(seg.words[start]), cwd)
            continue
        if cmd == "grep":
            def elsewhere(out: str) -> bool:
                return any(out in i.args for i in df.instructions if i is not instr and i.keyword in ("RUN", "COPY",
                                                                                                      "ENV", "CMD"))
            found = judge_filter(path, instr, seg, cmds[k + 1] if k + 1 < len(cmds) else None, cmds[k + 1:],
                                 names, elsewhere, problems)
            if found is not None:
                filters.append(found)
                source = stage.host_of(abs_path(unquote(found.file), cwd))
                if source is not None:  # what it writes is the file, without lines nobody installs twice
                    stage.own.append((abs_path(unquote(found.out), cwd), source))
            continue
        if pulls is not None:
            mine = own_install(seg, cwd, stage.host_of, pulls)
            if mine is not None:
                stage.installs.append(mine)


def project_pulls(project: Project, shared: SharedCode) -> ProjectPulls:
    """What installing ``project`` pulls: its runtime shared packages, and per requirements file
    the shared packages it (and what it includes) names, each with what they need in turn."""
    direct: dict[Path, set[str]] = {}
    for d in project.local_deps:
        if d.kind == "requirements" and d.resolved is not None:
            direct.setdefault(d.file, set()).add(d.normalized)
    for i in project.index_deps:
        if i.location[0] == "requirements":
            direct.setdefault(i.file, set()).add(i.normalized)

    def names(path: Path, seen: frozenset[Path] = frozenset()) -> frozenset[str]:
        parsed = project.requirement_files.get(path)
        inc = [x.target for x in parsed.includes if x.option == "--requirement"] if parsed else []
        return frozenset(direct.get(path, set())).union(*(names(t, seen | {path}) for t in inc if t not in seen))

    files = set(project.requirement_files) | set(direct)
    runtime = shared.installed_with(project.internal_names(runtime_only=True))
    return ProjectPulls(project.path, project.pyproject, runtime, {f: shared.installed_with(names(f)) for f in files})


__all__ = ["Filled", "Stage", "abs_path", "inside", "judge_commands", "project_pulls", "track_own", "under"]
