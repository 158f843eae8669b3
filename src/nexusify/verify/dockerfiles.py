"""Dockerfiles that build no consumer but whose build context holds shared code (or a consumer):
a root Dockerfile built once per app through compose build args, one in ``docker/`` the model
could not attach, the virtual workspace root's own. verify and ``rewrite --check`` judge them
with the one shared-code rule (:func:`~nexusify.formats.dockerfile_rules.judge_file`, every build
arg set of every build), so what no consumer owns is not left unjudged."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from nexusify.files import relpath
from nexusify.formats.dockerfile_rules import JudgedDockerfile, judge_file
from nexusify.formats.shared_code import SharedCode
from nexusify.model import Project, Workspace
from nexusify.model.project import DockerBuild


def _holds(context: Path, folders: Iterable[Path]) -> bool:
    ctx = os.path.normpath(str(context))
    return any(os.path.normpath(str(f)) == ctx or os.path.normpath(str(f)).startswith(ctx + os.sep) for f in folders)


def unowned_dockerfiles(ws: Workspace, shared: SharedCode, consumers: Iterable[Project]) -> list[JudgedDockerfile]:
    """The verdicts on every Dockerfile no consumer owns whose build context holds a shared
    package or a consumer (``consumers``: every consumer of the monorepo)."""
    owned = {df for c in consumers for df in [*c.dockerfiles, *(b.dockerfile for b in c.docker_builds)]}
    builds: dict[Path, list[DockerBuild]] = {}
    home: dict[Path, Path] = {}
    for p in ws.projects:
        if ws.is_shared(p):
            continue  # a library's own image (tests, docs): not a consumer's build
        for df in p.dockerfiles:
            builds.setdefault(df, [])
            home.setdefault(df, p.path)
        for b in p.docker_builds:
            builds.setdefault(b.dockerfile, []).append(b)
            home.setdefault(b.dockerfile, p.path)
    for b in ws.unmatched_builds:
        builds.setdefault(b.dockerfile, []).append(b)
    watched = [Path(folder) for folder, _name in shared.packages] + [c.path for c in consumers]
    out: list[JudgedDockerfile] = []
    for df, found in sorted(builds.items()):
        if df in owned or not df.is_file():
            continue
        contexts = [b.context for b in found] or [home.get(df, df.parent)]
        if not any(_holds(c, watched) for c in contexts):
            continue
        rel = relpath(df, ws.root)
        additional = {name: folder for b in found for name, folder in b.additional_contexts}
        content, verdict = judge_file(
            df, rel, project_dir=home.get(df, df.parent), root=ws.root, shared=shared,
            contexts=[b.context for b in found if b.origin.startswith(("compose", "ci:"))], additional=additional,
            arg_sets=[dict(b.build_args) for b in found] or [{}])
        out.append(JudgedDockerfile(df, rel, content, verdict, tuple(sorted(additional.items()))))
    return out


__all__ = ["unowned_dockerfiles"]
