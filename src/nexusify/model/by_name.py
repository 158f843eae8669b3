"""Shared packages a project names with no version and no index: not "by version".

``dependencies = ["maestro-core-config"]`` in a project that configures no index of its own
installs whatever the default index (PyPI) holds under that name, or fails: audit and rewrite
call it what it is, and say what works (the one rule: :func:`by_name_only`).
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from pathlib import Path

from nexusify.errors import Problem
from nexusify.model.project import IndexDependency, Project


def names_an_index(project: Project, dep: IndexDependency) -> bool:
    """Whether ``dep`` comes from an index the project configures: its own source, or an index
    the project's manifest names (Poetry/PDM sources, uv indexes; a requirements file's
    ``--index-url`` is the line's source)."""
    if dep.source:
        return True
    tool = project.data.get("tool", {})
    tool = tool if isinstance(tool, dict) else {}
    return bool((tool.get("poetry") or {}).get("source") or (tool.get("uv") or {}).get("index")
                or (tool.get("pdm") or {}).get("source"))


def by_name_only(project: Project, shared: Container[str | None]) -> list[IndexDependency]:
    """The ``shared`` packages (normalised names) ``project``'s manifest names with no version and no
    index. Requirements files are not judged here: rewrite gives a file that names a shared package
    the index (``--index-url``) when it rewrites its consumer, and their lines keep no specifier."""
    return [d for d in project.index_deps
            if d.normalized in shared and d.location[0] != "requirements" and not d.specifier.strip()
            and not names_an_index(project, d)]


def by_name_problem(project: Project, dep: IndexDependency, root: Path, versions: Mapping[str, str | None],
                    source_name: str = "nexus") -> Problem:
    """The warning for one such dependency, with the declaration that works (the form rewrite writes)."""
    version = versions.get(dep.normalized) or "X.Y.Z"
    if project.tool == "poetry" and dep.location[0] == "poetry":
        works = f'`{dep.name} = {{version = "^{version}", source = "{source_name}"}}` with a `[[tool.poetry.source]]`'
    else:
        works = (f'`"{dep.name}>={version}"` with `[tool.uv.sources] {dep.name} = {{ index = "{source_name}" }}` '
                 "and an explicit `[[tool.uv.index]]`")
    try:
        rel = dep.file.relative_to(root).as_posix()
    except ValueError:
        rel = str(dep.file)
    return Problem(
        "warning", "shared-by-name", rel, dep.line,
        f"{project.name or project.rel(root)} names the shared package {dep.name} without a version or an index: "
        "it installs whatever the default index (PyPI) holds under that name",
        f"declare it by version from your index: {works}; rewrite changes path dependencies only")


__all__ = ["by_name_only", "by_name_problem", "names_an_index"]
