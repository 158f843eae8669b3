"""Checks on the classified model: shared packages need a name, a PEP 440 version and a build
system; nothing may depend on a project that is not a package."""

from __future__ import annotations

import re
from pathlib import Path

from packaging.version import InvalidVersion, Version

from nexusify.errors import Problem
from nexusify.files import relpath
from nexusify.model.dynamic_version import describe_source
from nexusify.model.project import LEGACY_BACKEND, Project
from nexusify.model.workspace import Workspace
from nexusify.syntax.toml import subtable

NAME_KEY = re.compile(r"^\s*name\s*=")
DYNAMIC_KEY = re.compile(r"^\s*dynamic\s*=")



def check_projects(ws: Workspace, meant_shared: set[Path]) -> None:
    """Problems of each project; ``meant_shared``: the folders of shared packages, named or not."""
    root = ws.root
    by_path = {p.path: p for p in ws.projects}
    for p in ws.projects:
        rel = relpath(p.manifest, root)
        if p.path in meant_shared:
            check_shared(p, rel, ws.problems)
        for d in p.local_deps:
            target = by_path.get(d.resolved) if d.resolved else None
            if target is not None and target.is_virtual and target is not p:
                ws.problems.append(Problem(
                    "error", "virtual-dependency", relpath(d.file, root), d.line,
                    f"{d.name} depends on {relpath(target.path, root)}, which is not a package ({target.virtual_reason})",
                    "give it a [build-system] and package metadata, or move the shared code into a real package",
                ))


def check_shared(p: Project, rel: str, problems: list[Problem]) -> None:
    label = p.name or p.path.name
    if not p.name and p.name_computed is not None:
        line, source = p.name_computed
        problems.append(Problem("error", "name-computed", rel, line,
                                f"setup({source if source.startswith('**') else 'name=' + source}) is computed: "
                                "nexusify reads only literal setup() arguments "
                                "(or setup.cfg [metadata]), so it cannot tell this shared package's name",
                                "write the name as a string in setup() or in setup.cfg [metadata] name"))
    elif not p.name:
        problems.append(Problem("error", "name-missing", rel, None,
                                "shared package has no name", "set [project] name or [tool.poetry] name"))
    if p.version is None:
        if p.version_dynamic:
            problems.append(Problem(
                "error", "version-unresolved", rel, p.lines.pattern(DYNAMIC_KEY),
                f"{label}: the dynamic version could not be resolved ({describe_source(p)})",
                "set a static version, or make the backend's version source readable (attr:, file, hatch path)",
            ))
        else:
            problems.append(Problem(
                "error", "version-missing", rel, p.lines.pattern(NAME_KEY),
                f"{label}: no version", 'add version = "0.1.0" to [project] or [tool.poetry]',
            ))
    else:
        try:
            Version(p.version)
        except InvalidVersion:
            problems.append(Problem(
                "error", "invalid-version", rel, p.lines.pattern(re.compile(r"^\s*version\s*=")),
                f"{label}: version {p.version!r} is not a PEP 440 version; an index rejects it",
                'use a version such as "1.2.0"',
            ))
    pdv = subtable(p.data, "tool", "poetry-dynamic-versioning")
    if pdv.get("enable") is True:
        problems.append(Problem(
            "warning", "placeholder-version", rel, p.lines.header(("tool", "poetry-dynamic-versioning")),
            f"{label}: poetry-dynamic-versioning is enabled, so {p.version!r} is a placeholder; the published "
            "version comes from git tags at build time",
            "publish needs the real version in pyproject.toml: set it (or run the plugin) before publishing",
        ))
    if not p.has_build_system and not p.is_virtual:
        poetry_only = p.style == "poetry"
        problems.append(Problem(
            "error" if poetry_only else "warning", "no-build-system", rel, None,
            f"{label}: no [build-system]; builders fall back to {LEGACY_BACKEND}"
            + (", which cannot read [tool.poetry] metadata" if poetry_only else ""),
            'declare one, e.g. [build-system] requires = ["poetry-core>=1.0"] build-backend = "poetry.core.masonry.api"'
            if "poetry" in p.style else
            'declare one, e.g. [build-system] requires = ["hatchling"] build-backend = "hatchling.build"',
        ))
