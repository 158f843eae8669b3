"""pip requirements files: local entries (paths, ``-e``, ``file:`` URLs) as dependencies."""

from __future__ import annotations

from pathlib import Path

from packaging.utils import canonicalize_name

from nexusify.errors import Problem
from nexusify.files import relpath
from nexusify.model.paths import file_url_to_path
from nexusify.model.project import LocalDependency, Project
from nexusify.syntax.requirements import file_group, find_requirements_files, read_tree


def read_requirements_deps(p: Project, root: Path, problems: list[Problem]) -> None:
    """Local entries of the project's requirements files (and the files they include) as
    LocalDependency objects; every issue found while reading becomes a Problem (file:line)."""
    if not p.requirements_only:
        p.requirement_tops = find_requirements_files(p.path)
    if not p.requirement_tops:
        return
    p.requirement_files = read_tree(p.requirement_tops)
    for path, parsed in p.requirement_files.items():
        rel = relpath(path, root)
        for issue in parsed.issues:
            problems.append(Problem(issue.severity, issue.code, rel, issue.line or None, issue.message, issue.hint,
                                    subjects=(issue.subject,) if issue.subject else ()))
        group, runtime = file_group(path)
        for entry in parsed.entries:
            raw = file_url_to_path(entry.written, path.parent) if entry.is_url else entry.written
            name = entry.name or entry.written
            p.local_deps.append(LocalDependency(
                name=name, normalized=canonicalize_name(entry.name) if entry.name else "", kind="requirements",
                raw_path=raw, resolved=None, group=group, runtime=runtime, file=path, line=entry.line,
                location=("requirements", (), entry.line), extras=list(entry.extras), markers=entry.markers,
                editable=entry.editable, written=entry.written,
            ))
