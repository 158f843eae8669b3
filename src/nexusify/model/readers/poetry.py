"""Poetry: ``path`` dependencies in every dependency table (main, dev, groups, extras)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from nexusify.errors import Problem
from nexusify.files import relpath
from nexusify.model.project import LocalDependency, Project
from nexusify.syntax.toml import subtable


def poetry_tables(data: dict[str, Any]) -> Iterator[tuple[tuple[str, ...], str, bool]]:
    """(table path, group name, runtime?) for every Poetry dependency table.

    Runtime: what the project needs where it runs. For a package, its main dependencies (a
    group never reaches the wheel's metadata). For an application (``package-mode = false``),
    what ``poetry install`` installs by default: main and every non-optional group, except the
    ``dev`` group (and the legacy ``dev-dependencies``), development-only by Poetry's convention."""
    poetry = subtable(data, "tool", "poetry")
    application = poetry.get("package-mode") is False
    if isinstance(poetry.get("dependencies"), dict):
        yield ("tool", "poetry", "dependencies"), "main", True
    if isinstance(poetry.get("dev-dependencies"), dict):
        yield ("tool", "poetry", "dev-dependencies"), "dev", False
    groups = poetry.get("group", {})
    if isinstance(groups, dict):
        for g, body in groups.items():
            if isinstance(body, dict) and isinstance(body.get("dependencies"), dict):
                installed = application and g != "dev" and body.get("optional") is not True
                yield ("tool", "poetry", "group", g, "dependencies"), g, installed


def rel_of(p: Project, root: Path | str) -> str:
    return root if isinstance(root, str) else relpath(p.pyproject, root)




def read_poetry_deps(p: Project, root: Path | str, problems: list[Problem]) -> None:
    poetry = subtable(p.data, "tool", "poetry")
    if not poetry:
        return
    rel = rel_of(p, root)
    extras_of: dict[str, list[str]] = {}
    extras = subtable(p.data, "tool", "poetry", "extras")
    for extra, members in extras.items():
        if isinstance(members, list):
            for m in members:
                if isinstance(m, str):
                    extras_of.setdefault(canonicalize_name(m), []).append(extra)
    for table_path, group, runtime in poetry_tables(p.data):
        table = subtable(p.data, *table_path)
        for key, spec in table.items():
            if key == "python":
                continue
            entries = spec if isinstance(spec, list) else [spec]
            for entry in entries:
                if not isinstance(entry, dict) or "path" not in entry:
                    continue
                line = p.lines.key(table_path, key)
                raw = entry.get("path")
                if not isinstance(raw, str) or not raw.strip():
                    problems.append(Problem("error", "bad-path", rel, line, f"{key}: `path` must be a non-empty string"))
                    continue
                extras_list = entry.get("extras", [])
                optional = bool(entry.get("optional", False))
                g = group
                if optional and canonicalize_name(key) in extras_of:
                    g = "extra:" + ",".join(extras_of[canonicalize_name(key)])
                p.local_deps.append(LocalDependency(
                    name=key, normalized=canonicalize_name(key), kind="poetry-path", raw_path=raw,
                    resolved=None, group=g, runtime=runtime, file=p.pyproject,
                    line=line, location=("poetry", table_path, key),
                    extras=[e for e in extras_list if isinstance(e, str)] if isinstance(extras_list, list) else [],
                    markers=entry.get("markers") if isinstance(entry.get("markers"), str) else None,
                    editable=bool(entry.get("develop", False)), optional=optional, written=raw,
                ))
