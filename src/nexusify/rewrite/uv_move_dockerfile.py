"""A moved uv workspace member's Dockerfile: from building inside the workspace to building the member alone.

The shape real monorepos have: built from the repository root, it copies the workspace's
``pyproject.toml``/``uv.lock``, the shared folders (``COPY libs ./libs``) and the member's folder,
then ``uv sync --frozen --directory services/x`` (or ``--package x``). After the move the member has
its own ``uv.lock`` (in its folder) and takes the shared packages from the index, so:

* the copies of the workspace root's ``pyproject.toml``/``uv.lock`` and of shared code go; a copy of
  the member's ``pyproject.toml`` alone (the layer-caching shape: ``uv sync --no-install-project``
  first) copies its ``uv.lock`` too;
* the member's folder is still copied to the same container path, so every other line (``WORKDIR``,
  ``CMD``, ``COPY --from=builder``) keeps working; ``--package x`` becomes ``--directory <that path>``,
  and ``uv sync`` gets ``UV_PROJECT_ENVIRONMENT=<the workspace's .venv>`` so the environment stays
  where the workspace put it, and ``UV_DEFAULT_INDEX="$NEXUS_INDEX_URL"`` (``ARG`` declared in its stage)
  so what uv installs beyond the lock (the member's own build backend) comes from the index too;
* when a compose file builds it and nothing else it copies lies outside the member's folder, it
  builds from the member's folder: sources become relative to it and the compose service's
  ``build.context``/``build.dockerfile`` point there (checked by reading the edited compose file
  back); otherwise it keeps the root context (the command that builds it is not in any file).

Anything else that needs the workspace (``--all-packages``, a ``uv sync`` of the root, a copy of a
folder holding the member and others, ``uv run --package`` ...) is an error at file:line and the
Dockerfile is left untouched: never a half-patch.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from nexusify.errors import Problem
from nexusify.formats.dockerfile_rules import DockerfileVerdict
from nexusify.formats.edits import Edit
from nexusify.model import Project, relpath
from nexusify.model.project import DockerBuild
from nexusify.rewrite.dockerfile_patch import INDEX_ARG, one_line_url

_UV_SYNC = re.compile(r"(?<![\w.-])uv\s+sync(?=\s|$)")
_PACKAGE = re.compile(r"--package(?:\s+|=)(\S+)")
_DIRECTORY = re.compile(r"--(?:directory|project)(?:\s+|=)(\S+)")
_HINT = ("build the member from its own folder by hand (copy it, then `uv sync --frozen` in it), or leave it out "
         "of the rewrite targets; nothing was written")


@dataclass
class MovedDockerfile:
    text: str
    context: Path | None  # the build context it is written for now
    edits: list[Edit] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    compose: list[tuple[Path, str, str, list[Edit]]] = field(default_factory=list)  # (file, old, new, edits)


def _abs(path: str, workdir: str) -> str:
    return posixpath.normpath(posixpath.join(workdir, path))


def _flags(instr: Any) -> str:
    return "".join(f"--{n}={v} " if v is not None else f"--{n} " for n, v in instr.flags)


def move_dockerfile(rel: str, text: str, verdict: DockerfileVerdict, project: Project, wroot: Path,
                    builds: list[DockerBuild], root: Path, index_url: str) -> MovedDockerfile:
    """The Dockerfile of ``project`` (a moved member of the workspace at ``wroot``) rewritten to
    build without the workspace (see the module docstring); problems leave it untouched."""
    one_line_url(index_url)
    out = MovedDockerfile(text, verdict.context)
    df = verdict.dockerfile

    def fail(line: int | None, message: str) -> MovedDockerfile:
        out.problems.append(Problem("error", "dockerfile-uv-move", rel, line, message, _HINT))
        out.text, out.edits, out.compose = text, [], []
        return out

    if df is None or verdict.context != wroot:
        return fail(None, "it is not built from the uv workspace root, so nexusify cannot tell what it needs")
    member = relpath(project.path, wroot)
    shared = {(c.instruction.start, s) for c in verdict.copies for s in c.sources}
    lines = list(df.lines)
    workdir, ws_dir, member_dest = "/", None, None
    manifest_dest: str | None = None  # where the member's pyproject.toml (and now uv.lock) alone went
    outside = False
    arg_stages: set[int] = set()
    stage_from: dict[int, int] = {}  # stage -> last line of its FROM
    kept: dict[int, tuple[Any, list[str], str]] = {}  # start -> (instr, kept sources, dest)
    for instr in df.instructions:
        if instr.keyword == "FROM":
            workdir = "/"
            stage_from[instr.stage] = instr.end
        elif instr.keyword == "ARG" and instr.words and instr.words[0].split("=", 1)[0] == INDEX_ARG:
            arg_stages.add(instr.stage)
        elif instr.keyword == "WORKDIR" and instr.words:
            workdir = _abs(instr.words[0], workdir)
        elif instr.keyword in ("COPY", "ADD") and not instr.has_flag("from"):
            dest = instr.dest or "."
            keep: list[str] = []
            for src in instr.sources:
                clean = src.removeprefix("./").rstrip("/") or "."
                if src.startswith("<<"):
                    keep.append(src)
                elif clean in ("pyproject.toml", "uv.lock"):
                    ws_dir = _abs(dest if dest.endswith("/") or len(instr.sources) > 1 else posixpath.dirname(dest)
                                  or ".", workdir)
                elif (instr.start, src) in shared:
                    continue
                elif clean == member:
                    keep.append(src)
                    member_dest = _abs(dest, workdir)
                elif clean == member + "/pyproject.toml" and f"{member}/uv.lock" not in {
                        s.removeprefix("./") for s in instr.sources}:
                    # the layer-caching shape (manifest first, `uv sync --no-install-project`, then the
                    # code): the member's own uv.lock goes with its manifest
                    if not dest.endswith("/"):
                        return fail(instr.start, f"{instr.keyword} {src} copies the member's manifest to a file "
                                                 "name; its uv.lock cannot be added beside it")
                    keep.extend([src, f"{member}/uv.lock"])
                    manifest_dest = _abs(dest, workdir)
                elif clean.startswith(member + "/"):
                    keep.append(src)
                elif clean == "." or member.startswith(clean + "/"):
                    return fail(instr.start, f"{instr.keyword} {src} copies the member together with the rest of "
                                             "the workspace")
                else:
                    keep.append(src)
                    outside = True
            kept[instr.start] = (instr, keep, dest)
        elif instr.keyword == "RUN" and _UV_SYNC.search(instr.args):
            if instr.json_form:
                return fail(instr.start, "an exec-form (JSON) RUN runs `uv sync`")
            if "--all-packages" in instr.args:
                return fail(instr.start, "`uv sync --all-packages` installs the whole workspace")
            sync_dir = member_dest or manifest_dest
            if sync_dir is None:
                return fail(instr.start, f"`uv sync` runs before {member} is copied (its own uv.lock must reach "
                                         "the image)")
            if ws_dir is None:
                return fail(instr.start, "`uv sync` here does not build inside the workspace (no root "
                                         "pyproject.toml copied before it)")
            body = "".join(lines[instr.start - 1:instr.end])
            pkg = _PACKAGE.search(body)
            there = _DIRECTORY.search(body)
            if pkg is not None:
                if canonicalize_name(pkg.group(1).strip("\"'")) != project.normalized:
                    return fail(instr.start, f"`uv sync --package {pkg.group(1)}` installs another member")
                where = posixpath.relpath(sync_dir, workdir)
                body = body[:pkg.start()] + f"--directory {where if not where.startswith('..') else sync_dir}" \
                    + body[pkg.end():]
            elif there is not None:
                if _abs(there.group(1).strip("\"'"), workdir) != sync_dir:
                    return fail(instr.start, f"`uv sync` runs in {there.group(1)}, not in {sync_dir}")
            elif workdir != sync_dir:
                return fail(instr.start, "`uv sync` runs at the workspace root: it installs the workspace")
            env = "" if "UV_PROJECT_ENVIRONMENT" in text else \
                f"UV_PROJECT_ENVIRONMENT={posixpath.join(ws_dir, '.venv')} "
            if "UV_DEFAULT_INDEX" not in text and "UV_INDEX_URL" not in text:
                # what uv installs beyond the lock (the member's build backend) comes from the index too
                env += f'UV_DEFAULT_INDEX="${INDEX_ARG}" '
                if instr.stage not in arg_stages and instr.stage in stage_from:
                    # declared right after FROM, so install steps before this one see it too
                    at = stage_from[instr.stage]
                    arg = f"ARG {INDEX_ARG}={index_url}\n"
                    out.edits.append(Edit(at, lines[at - 1].rstrip("\n"), lines[at - 1].rstrip("\n") + "\n" +
                                          arg.rstrip("\n"), "declare the index URL for `uv sync`"))
                    lines[at - 1] = lines[at - 1] + ("" if lines[at - 1].endswith("\n") else "\n") + arg
                    arg_stages.add(instr.stage)
            hit = _UV_SYNC.search(body)
            assert hit is not None
            body = body[:hit.start()] + env + body[hit.start():]
            new = body.splitlines(keepends=True)
            if new != lines[instr.start - 1:instr.end]:
                out.edits.append(Edit(instr.start, "".join(lines[instr.start - 1:instr.end]).rstrip("\n"),
                                      body.rstrip("\n"), "sync the member alone, from its own uv.lock, into the "
                                                         "environment the workspace used"))
                lines[instr.start - 1:instr.end] = new + [""] * (instr.end - instr.start + 1 - len(new))
        elif "--package" in instr.args or "--all-packages" in instr.args:
            return fail(instr.start, f"{instr.keyword} names a workspace package (--package/--all-packages)")
    if member_dest is None:
        return fail(None, f"it does not copy {member} as a whole, so the member's own uv.lock would not reach the image")
    compose = [] if outside else _compose_edits(project, wroot, builds, root)
    for start, (instr, keep, dest) in sorted(kept.items()):
        if compose:
            keep = ["." if s.removeprefix("./").rstrip("/") == member else
                    s.removeprefix("./").removeprefix(member + "/") if not s.startswith("<<") else s for s in keep]
        if keep == instr.sources:
            continue
        if instr.json_form or (keep and instr.start != instr.end):
            return fail(start, f"{instr.keyword} is written in a shape that cannot be edited safely")
        old = "".join(lines[start - 1:instr.end])
        if not keep:
            new_text, reason = "", "drop the copy of workspace files and shared code: the member builds alone"
        else:
            nl = "\n" if old.endswith("\n") else ""
            new_text = f"{instr.keyword} {_flags(instr)}{' '.join(keep)} {dest}{nl}"
            reason = "copy the member alone" + (" from its own folder (the build context)" if compose else "")
        if new_text != old:
            out.edits.append(Edit(start, old.rstrip("\n"), new_text.rstrip("\n"), reason))
            lines[start - 1:instr.end] = [new_text] + [""] * (instr.end - start)
    out.text = "".join(lines)
    if compose:
        out.context = project.path
        out.compose = compose
    return out


def _compose_edits(project: Project, wroot: Path, builds: list[DockerBuild],
                   root: Path) -> list[tuple[Path, str, str, list[Edit]]]:
    """The compose files' edits that make every build of this Dockerfile use the member's folder as
    context; [] when any build is not a compose one from the workspace root, or an edit cannot be
    proven by reading the file back (the Dockerfile then keeps the root context)."""
    import yaml  # type: ignore[import-untyped]

    if not builds or any(not b.origin.startswith("compose:") or b.context != wroot for b in builds):
        return []
    out: dict[Path, tuple[str, str, list[Edit]]] = {}
    for b in builds:
        _, file_rel, service = b.origin.split(":", 2)
        compose = root / file_rel
        old_text = out[compose][1] if compose in out else compose.read_text(encoding="utf-8")
        context = os.path.relpath(project.path, compose.parent)
        dockerfile = os.path.relpath(b.dockerfile, project.path)
        lines = old_text.splitlines(keepends=True)
        start = next((i for i, ln in enumerate(lines) if re.match(rf"^\s*{re.escape(service)}:\s*$", ln)), None)
        if start is None:
            return []
        indent = len(lines[start]) - len(lines[start].lstrip())
        end = next((i for i in range(start + 1, len(lines)) if lines[i].strip() and not lines[i].lstrip().startswith("#")
                    and len(lines[i]) - len(lines[i].lstrip()) <= indent), len(lines))
        done = set()
        edits = out[compose][2] if compose in out else []
        for i in range(start + 1, end):
            m = re.match(r"^(\s*)(context|dockerfile):(\s*)(\S.*?)(\s*)$", lines[i].rstrip("\n"))
            if m is None or m.group(2) in done:
                continue
            value = context if m.group(2) == "context" else dockerfile
            new = f"{m.group(1)}{m.group(2)}:{m.group(3) or ' '}{value}{m.group(5)}\n"
            edits.append(Edit(i + 1, lines[i].rstrip("\n"), new.rstrip("\n"),
                              f"build {project.rel(root)} from its own folder"))
            lines[i] = new
            done.add(m.group(2))
        new_text = "".join(lines)
        try:
            before, after = yaml.safe_load(old_text), yaml.safe_load(new_text)
            want = dict(before["services"][service]["build"], context=context, dockerfile=dockerfile)
            before["services"][service]["build"] = want
        except (yaml.YAMLError, KeyError, TypeError):
            return []
        if done != {"context", "dockerfile"} or after != before:
            return []
        out[compose] = (out[compose][0] if compose in out else old_text, new_text, edits)
    return [(path, old, new, edits) for path, (old, new, edits) in sorted(out.items())]


__all__ = ["MovedDockerfile", "move_dockerfile"]
