"""Dependencies on the monorepo's own packages by name and version: what a consumer declares
after ``rewrite`` (Poetry ``{version, source}``, PEP 508 ranges with a uv index source, named
lines of requirements files). They are still dependencies on those shared packages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from nexusify.model.project import IndexDependency, Project
from nexusify.model.readers.pep621 import pep621_arrays
from nexusify.model.readers.poetry import poetry_tables
from nexusify.syntax.requirements import file_group, requirement_name
from nexusify.syntax.toml import subtable


def read_index_dependencies(p: Project, known: Mapping[str, object]) -> list[IndexDependency]:
    """Every entry of ``p`` naming a project in ``known`` (normalised names) without a path."""
    out: list[IndexDependency] = []
    own = p.normalized
    for table_path, group, runtime in poetry_tables(p.data):
        for key, spec in subtable(p.data, *table_path).items():
            norm = canonicalize_name(key)
            if key == "python" or norm == own or norm not in known:
                continue
            entries = spec if isinstance(spec, list) else [spec]
            if any(isinstance(e, dict) and ("path" in e or "url" in e or "git" in e) for e in entries):
                continue
            first = entries[0] if entries else ""
            version = first if isinstance(first, str) else first.get("version", "") if isinstance(first, dict) else ""
            source = first.get("source") if isinstance(first, dict) else None
            out.append(IndexDependency(
                name=key, normalized=norm, specifier=str(version), group=group, runtime=runtime,
                file=p.pyproject, line=p.lines.key(table_path, key), location=("poetry", table_path, key),
                source=source if isinstance(source, str) else None,
            ))
    uv_sources = subtable(p.data, "tool", "uv", "sources")
    sources = {canonicalize_name(k): v for k, v in uv_sources.items()}
    for array_path, group, runtime, arr in pep621_arrays(p.data):
        array_line = p.lines.key(array_path[:-1], array_path[-1])
        for index, item in enumerate(arr):
            if not isinstance(item, str):
                continue
            found = requirement_name(item)
            if found is None or found == own or found not in known:
                continue
            norm = canonicalize_name(found)
            try:
                req = Requirement(item.strip())
            except InvalidRequirement:
                continue  # reported by the PEP 621 reader when it matters
            if req.url or _is_local_source(sources.get(norm)):
                continue
            src = sources.get(norm)
            index_name = src.get("index") if isinstance(src, dict) else None
            out.append(IndexDependency(
                name=req.name, normalized=norm, specifier=str(req.specifier), group=group, runtime=runtime,
                file=p.pyproject, line=p.lines.string(item, array_line), location=("pep508", array_path, index),
                source=index_name if isinstance(index_name, str) else None,
            ))
    for path, parsed in p.requirement_files.items():
        group, runtime = file_group(path)
        index_urls = parsed.index_urls()
        for named, line in parsed.names:
            if named == own or named not in known:
                continue
            out.append(IndexDependency(
                name=named, normalized=canonicalize_name(named), specifier="", group=group, runtime=runtime, file=path, line=line,
                location=("requirements", (), line), source=index_urls[0].value if index_urls else None,
            ))
    return out


def _is_local_source(entry: Any) -> bool:
    entries = entry if isinstance(entry, list) else [entry]
    return any(isinstance(e, dict) and ("path" in e or e.get("workspace") is True or "git" in e or "url" in e)
               for e in entries)
