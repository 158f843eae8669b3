"""PEP 621 / PEP 735 arrays with the tools' local forms: ``name @ file://`` URLs (PDM's
``${PROJECT_ROOT}``, hatch's ``{root:uri}``, PDM's ``-e`` forms) and uv ``[tool.uv.sources]``
``path``/``workspace`` entries (inherited from a workspace root)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Container, Iterator
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from nexusify.errors import Problem
from nexusify.files import relpath
from nexusify.model.paths import file_url_to_path, is_project_relative
from nexusify.model.project import LocalDependency, Project
from nexusify.model.readers.poetry import rel_of
from nexusify.model.readers.uv import UvWorkspaceRoot
from nexusify.syntax.toml import subtable


def pep621_arrays(data: dict[str, Any]) -> Iterator[tuple[tuple[str, ...], str, bool, list[Any]]]:
    proj = subtable(data, "project")
    deps = proj.get("dependencies")
    if isinstance(deps, list):
        yield ("project", "dependencies"), "main", True, deps
    opt = proj.get("optional-dependencies")
    if isinstance(opt, dict):
        for extra, arr in opt.items():
            if isinstance(arr, list):
                yield ("project", "optional-dependencies", extra), f"extra:{extra}", True, arr
    groups = data.get("dependency-groups")
    if isinstance(groups, dict):
        for g, arr in groups.items():
            if isinstance(arr, list):
                yield ("dependency-groups", g), g, False, arr
    uv_dev = subtable(data, "tool", "uv").get("dev-dependencies")
    if isinstance(uv_dev, list):
        yield ("tool", "uv", "dev-dependencies"), "dev", False, uv_dev
    pdm_dev = subtable(data, "tool", "pdm", "dev-dependencies")
    for g, arr in pdm_dev.items():
        if isinstance(arr, list):
            yield ("tool", "pdm", "dev-dependencies", g), g, False, arr


REQ_NAME = re.compile(r"\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)")
_EGG = re.compile(r"[#&]egg=([A-Za-z0-9][A-Za-z0-9._-]*)")



def editable_target(item: str) -> str | None:
    """The URL or path of PDM's unnamed editable forms (``-e file:///${PROJECT_ROOT}/src/api``,
    ``-e ./src/api``): the project it points at names the dependency. None for any other form."""
    text = item.strip()
    if not (text.startswith("-e ") or text.startswith("--editable ")):
        return None
    target = text.split(None, 1)[1].split(";")[0].strip()
    if "@" in target or _EGG.search(target):
        return None
    if target.startswith(("file:", "{root", "${PROJECT_ROOT}", "./", "../", "/")):
        return target
    return None


def parse_requirement(item: str) -> tuple[Requirement | None, bool, str | None]:
    """(requirement, editable, error) for a PEP 508 string, PDM's ``-e`` forms included."""
    text = item.strip()
    editable = False
    if text.startswith("-e ") or text.startswith("--editable "):
        editable = True
        text = text.split(None, 1)[1].strip()
        if "@" not in text.split(";")[0] and text.startswith(("file:", "{root", "${PROJECT_ROOT}")):
            # -e file:///${PROJECT_ROOT}/x#egg=name
            m = _EGG.search(text)
            if not m:
                return None, editable, "an editable file URL needs #egg=<name>"
            url = _EGG.sub("", text)
            text = f"{m.group(1)} @ {url}"
    try:
        return Requirement(text), editable, None
    except InvalidRequirement as exc:
        name_part, sep, url = text.partition("@")
        if sep and ("PROJECT_ROOT" in url or "{root" in url):
            # ${PROJECT_ROOT} / {root:uri} are not valid URL characters until expanded
            try:
                req = Requirement(f"{name_part.strip()} @ file:///placeholder")
            except InvalidRequirement:
                return None, editable, str(exc)
            url, _, marker = url.partition(";")
            req.url = url.strip()
            if marker.strip():
                with contextlib.suppress(InvalidRequirement):
                    req.marker = Requirement(f"x; {marker.strip()}").marker
            return req, editable, None
        return None, editable, str(exc)


def read_pep621_deps(p: Project, root: Path | str, problems: list[Problem], ws_root: UvWorkspaceRoot | None = None,
                     known: Container[str] = ()) -> None:
    """Local dependencies of the PEP 621/735 arrays (``known``: the monorepo's project names, so a
    malformed line that names one of them is parsed and reported, not skipped)."""
    rel = rel_of(p, root)
    own_sources = subtable(p.data, "tool", "uv", "sources")
    sources: dict[str, tuple[str, Any, int | None, Path | None]] = {}
    if ws_root is not None and ws_root.project is not p:
        for norm, (k, v, line) in ws_root.sources.items():
            sources[norm] = (k, v, line, ws_root.project.pyproject)
    for k, v in own_sources.items():
        sources[canonicalize_name(k)] = (k, v, None, None)
    for array_path, group, runtime, arr in pep621_arrays(p.data):
        table, key = array_path[:-1], array_path[-1]
        array_line = p.lines.key(table, key)
        for index, item in enumerate(arr):
            if not isinstance(item, str):
                continue  # {include-group = ...}
            target = editable_target(item)
            if target is not None:
                url = target.startswith(("file:", "{root", "${PROJECT_ROOT}"))
                p.local_deps.append(LocalDependency(
                    name=target, normalized="", kind="pep508-file", group=group, runtime=runtime,
                    file=p.pyproject, line=p.lines.string(item, array_line), location=("pep508", array_path, index),
                    raw_path=file_url_to_path(target, p.path) if url else target, resolved=None,
                    editable=True, written=target,
                ))
                continue
            if "@" not in item and "file:" not in item:
                # a plain requirement: local only through a uv source (fast path, no parse)
                m = REQ_NAME.match(item)
                if m is None or (canonicalize_name(m.group(1)) not in sources and m.group(1) not in known):
                    continue
            req, editable, error = parse_requirement(item)
            if req is None:
                line = p.lines.string(item, array_line)
                local = "file:" in item or "PROJECT_ROOT" in item or "{root" in item
                named = REQ_NAME.match(item.removeprefix("-e ").strip())
                problems.append(Problem(
                    "error" if local else "warning", "bad-requirement", rel, line,
                    f"{item!r} is not a valid requirement: {error}",
                    "write it as `name @ file:///${PROJECT_ROOT}/../folder`" if local else None,
                    subjects=(canonicalize_name(named.group(1)),) if named else (),
                ))
                continue
            norm = canonicalize_name(req.name)
            if not req.url and norm not in sources:
                continue
            line = p.lines.string(item, array_line)
            common: dict[str, Any] = {
                "name": req.name, "normalized": norm, "group": group, "runtime": runtime,
                "file": p.pyproject, "line": line, "location": ("pep508", array_path, index),
                "extras": sorted(req.extras), "markers": str(req.marker) if req.marker else None,
                "specifier": str(req.specifier),
            }
            if req.url:
                if req.url.startswith("file:") or is_project_relative(req.url):
                    p.local_deps.append(LocalDependency(
                        kind="pep508-file", raw_path=file_url_to_path(req.url, p.path), resolved=None,
                        editable=editable, written=req.url, **common,
                    ))
                continue
            key, src, src_line, src_file = sources[norm]
            if src_line is None:
                src_line = p.lines.key(("tool", "uv", "sources"), key)
            entries = src if isinstance(src, list) else [src]
            for entry in entries:
                if not isinstance(entry, dict):
                    problems.append(Problem(
                        "error", "bad-source", relpath_of(src_file, p, root), src_line,
                        f"[tool.uv.sources] {key} = {entry!r} is not a source table (uv refuses it)",
                        f"write it as {key} = {{ path = {entry!r} }}" if isinstance(entry, str)
                        else f"write it as {key} = {{ path = \"...\" }} or {{ index = \"...\" }}",
                    ))
                    continue
                if isinstance(entry.get("path"), str):
                    p.local_deps.append(LocalDependency(
                        kind="uv-path", raw_path=entry["path"], resolved=None, source_key=key,
                        editable=bool(entry.get("editable", False)), source_line=src_line,
                        source_file=src_file, written=entry["path"], **common,
                    ))
                    break
                if entry.get("workspace") is True:
                    p.local_deps.append(LocalDependency(
                        kind="uv-workspace", raw_path=None, resolved=None, source_key=key,
                        source_line=src_line, source_file=src_file, editable=True, **common,
                    ))
                    break


def relpath_of(source_file: Path | None, p: Project, root: Path | str) -> str:
    """The display path of the file holding a uv source entry (a workspace root's, or the project's)."""
    if source_file is None or isinstance(root, str):
        return rel_of(p, root)
    return relpath(source_file, root)


def check_dependency_groups(p: Project, root: Path | str, problems: list[Problem]) -> None:
    """PEP 735 ``{include-group = "..."}``: a group that does not exist, or groups that include each
    other in a cycle, are errors (uv and pip refuse the file)."""
    groups = p.data.get("dependency-groups")
    if not isinstance(groups, dict):
        return
    rel = rel_of(p, root)
    norm: dict[str, str] = {canonicalize_name(g): g for g in groups}
    includes: dict[str, list[str]] = {}
    for g, arr in groups.items():
        for item in arr if isinstance(arr, list) else []:
            target = item.get("include-group") if isinstance(item, dict) else None
            if not isinstance(target, str):
                continue
            if canonicalize_name(target) not in norm:
                problems.append(Problem(
                    "error", "group-missing", rel, p.lines.string(target, p.lines.key(("dependency-groups",), g)),
                    f"dependency group {g!r} includes {target!r}, which does not exist",
                    f"add [dependency-groups] {target} = [...], or fix the name",
                ))
                continue
            includes.setdefault(canonicalize_name(g), []).append(canonicalize_name(target))
    state: dict[str, int] = {}

    def visit(g: str, trail: list[str]) -> None:
        state[g] = 1
        for nxt in includes.get(g, []):
            if state.get(nxt) == 1:
                cycle = [*trail[trail.index(nxt):], nxt] if nxt in trail else [g, nxt]
                problems.append(Problem(
                    "error", "group-cycle", rel, p.lines.key(("dependency-groups",), norm[cycle[0]]),
                    f"dependency groups include each other in a cycle: {' -> '.join(norm[c] for c in cycle)}",
                    "remove one of the include-group entries",
                ))
            elif state.get(nxt) is None:
                visit(nxt, [*trail, nxt])
        state[g] = 2

    for g in sorted(includes):
        if state.get(g) is None:
            visit(g, [g])
