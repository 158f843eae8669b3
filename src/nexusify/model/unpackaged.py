"""Shared code that is no package: a folder of Python code outside any project, with no package
metadata (no ``pyproject.toml``, ``setup.py`` or ``setup.cfg``), that the images of the monorepo's
projects take from a path (``COPY shared /app/shared`` then ``pip install /app/shared``,
``pip install -r /app/shared/requirements.txt`` or ``ENV PYTHONPATH=/app``).

It cannot be published to an index, so nexusify cannot migrate those images: each such COPY is an
error at its line (``shared-code-unpackaged``) that audit reports, and that rewrite (and its
``--check``) and verify refuse the building project for (the project becomes a consumer of it,
:mod:`nexusify.model.roles`). Which copies count (never a guess from a folder name):

* the folder is copied by name from the build context (not the context itself, not a folder holding
  the building project, not inside any project: a project's code is the roles' business);
* it holds Python code (a ``.py`` file, a requirements file or a package folder at its top);
* the image installs it from where it was copied (``pip install /app/shared``, or ``-r`` of a
  requirements file in it); or it is on ``PYTHONPATH`` (the place or its parent) in the images of
  two projects or more (one service's own code kept in another folder is not shared).
"""

from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path

from nexusify.errors import Problem
from nexusify.files import relpath
from nexusify.model.paths import glob_free, is_inside, is_local
from nexusify.model.project import DockerBuild, Project
from nexusify.syntax.dockerfile_parse import DockerfileSyntaxError, Instruction, parse

CODE = "shared-code-unpackaged"
_METADATA = ("pyproject.toml", "setup.py", "setup.cfg")
_PYTHONPATH = re.compile(r"PYTHONPATH\s*=\s*[\"']?([^\s\"']+)")


def _python_code(folder: Path) -> bool:
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return False
    return any((e.is_file() and (e.name.endswith(".py") or (e.name.startswith("requirements")
                                                          and e.name.endswith(".txt"))))
               or (e.is_dir() and os.path.isfile(os.path.join(e.path, "__init__.py"))) for e in entries)


def _copies(build: DockerBuild, projects: list[Path], own: Path) -> list[tuple[Instruction, Path, str, list[Instruction]]]:
    """(COPY, host folder, container path, the instructions after it in its stage) of every copy by
    name of a folder of Python code outside any project and without package metadata."""
    try:
        instructions = parse(build.dockerfile.read_text(encoding="utf-8", errors="replace"))
    except (OSError, DockerfileSyntaxError):
        return []
    out = []
    workdir = "/"
    for k, instr in enumerate(instructions):
        if instr.keyword == "FROM":
            workdir = "/"
        elif instr.keyword == "WORKDIR" and instr.words:
            workdir = posixpath.normpath(posixpath.join(workdir, instr.words[0]))
        if instr.keyword not in ("COPY", "ADD") or instr.has_flag("from") or instr.json_form:
            continue
        dest = instr.dest or "."
        for src in instr.sources:
            if not is_local(src) or src.startswith("<<") or any(c in src for c in "*?[$"):
                continue
            host = Path(os.path.normpath(os.path.join(str(build.context), glob_free(src).lstrip("/"))))
            if (host == build.context or not is_inside(host, build.context) or not host.is_dir()
                    or is_inside(own, host) or any(is_inside(host, p) or is_inside(p, host) for p in projects)
                    or any((host / m).exists() for m in _METADATA) or not _python_code(host)):
                continue
            into = posixpath.join(dest, host.name) if dest.endswith("/") and len(instr.sources) > 1 else dest
            where = posixpath.normpath(posixpath.join(workdir, into))
            rest = [i for i in instructions[k + 1:] if i.stage == instr.stage]
            out.append((instr, host, where, rest))
    return out


def _use(where: str, rest: list[Instruction], before: list[Instruction]) -> str | None:
    """How the image uses the copied folder as code: "install" (a ``pip install`` of it or of a
    requirements file in it), "path" (a ``PYTHONPATH`` naming it or its parent), or None."""
    for instr in rest:
        if instr.keyword == "RUN" and re.search(r"pip[\d.]*\s+install|uv\s+pip\s+install", instr.args):
            for word in instr.args.split():
                word = word.strip("\"'")
                if word.rstrip("/") == where or word.startswith(where + "/"):
                    return "install"
    parent = posixpath.dirname(where)
    for instr in [*before, *rest]:
        for m in _PYTHONPATH.finditer(instr.args if instr.keyword in ("ENV", "RUN", "ARG") else ""):
            paths = {posixpath.normpath(p) for p in m.group(1).split(":") if p.startswith("/")}
            if where in paths or parent in paths:
                return "path"
    return None


def unpackaged_copies(root: Path, projects: list[Project]) -> tuple[list[Problem], dict[Path, list[Path]]]:
    """The ``shared-code-unpackaged`` errors (one per COPY line) and, per project, the folders its
    images take that way (see the module docstring)."""
    folders = [p.path for p in projects]
    found: list[tuple[Project, DockerBuild, Instruction, Path, str | None]] = []
    copied_by: dict[Path, set[Path]] = {}
    for p in projects:
        for b in p.docker_builds:
            try:
                before = parse(b.dockerfile.read_text(encoding="utf-8", errors="replace"))
            except (OSError, DockerfileSyntaxError):
                continue
            for instr, host, where, rest in _copies(b, folders, p.path):
                stage_before = [i for i in before if i.stage == instr.stage and i.start < instr.start]
                use = _use(where, rest, stage_before)
                found.append((p, b, instr, host, use))
                if use is not None:
                    copied_by.setdefault(host, set()).add(p.path)
    lines: dict[tuple[Path, int], tuple[Instruction, Path, list[str]]] = {}
    takes: dict[Path, list[Path]] = {}
    for p, b, instr, host, use in found:
        # installed from a path: the path-dependency shape itself; on PYTHONPATH: shared when the
        # images of two projects or more take it so (one service's own code kept elsewhere is not)
        if use is None or (use == "path" and len(copied_by[host]) < 2):
            continue
        takes.setdefault(p.path, []).append(host)
        lines.setdefault((b.dockerfile, instr.start), (instr, host, []))[2].append(p.rel(root))
    problems = []
    for (dockerfile, line), (instr, host, subjects) in sorted(lines.items()):
        users = sorted(relpath(f, root) for f in copied_by[host])
        problems.append(Problem(
            "error", CODE, relpath(dockerfile, root), line,
            f"{instr.keyword} {' '.join(instr.sources)} takes {relpath(host, root)}/, Python code "
            f"{'the images of ' + ', '.join(users) + ' take' if len(users) > 1 else 'the image installs'} from a "
            "path, but it has no package metadata (pyproject.toml, setup.py or setup.cfg), so it cannot be "
            "published to the index and this image cannot install it from there",
            f"make {relpath(host, root)} a package (a pyproject.toml with a name, a version and a build backend), "
            "then re-run `nexusify audit`", subjects=tuple(sorted(set(subjects)))))
    return problems, takes


__all__ = ["CODE", "unpackaged_copies"]
