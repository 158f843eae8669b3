"""Minimal, byte-preserving edits of ``pyproject.toml``: local dependencies become versions.

One editing core shared by ``rewrite`` (services) and ``publish`` (staged copies of shared
packages). It parses with tomlkit, replaces only the entries named by the
:class:`~nexusify.model.LocalDependency` records it is given, and leaves every other
byte as it was: comments, key order, quoting style, inline-table spacing, CRLF line endings,
a missing trailing newline, a UTF-8 BOM.

The rules (``mode`` is a constraint mode of :mod:`nexusify.syntax.constraints`):

==========================  ====================================================================
written as                  becomes
==========================  ====================================================================
Poetry ``{path = ..}``      ``{version = "^X.Y.Z", source = "<name>", <kept keys>}``: ``path`` and
                            ``develop`` go; ``extras``, ``optional``, ``markers``, ``python``,
                            ``allow-prereleases`` (and any other key) stay, in their order, with
                            the table's own spacing (``{a = 1}`` or ``{ a = 1 }``).
                            A ``[tool.poetry.dependencies.<name>]`` sub-table is edited in place.
PEP 508 ``n[x] @ file:..``  ``n[x]<spec>`` with the original marker text after ``;``
PEP 508 + uv source         a bare ``"n"`` gains ``<spec>``; an existing specifier must admit the
                            version (else an error); the ``[tool.uv.sources]`` entry (``path`` or
                            ``workspace``) becomes ``{ index = "<name>" }`` keeping ``marker``,
                            ``extra``, ``group``
==========================  ====================================================================

``source`` decides between the two users:

* ``source=None``: **publish staging**. Plain version constraints, no ``source`` key,
  ``[tool.uv.sources]`` path/workspace entries are removed, no index table is added.
* ``source=SourceSpec(name, url, priority, tool)``: **service rewrite**. Poetry entries name the
  source, and the file gains one source table where its tools need one:
  ``[[tool.poetry.source]]`` (name, url, priority) for Poetry dependencies,
  ``[[tool.uv.index]]`` (name, url, ``explicit = true`` under the explicit priority) for uv
  sources, ``[[tool.pdm.source]]`` (name, url, ``include_packages`` under explicit) for PDM
  file URLs. A plain PEP 621 project built by pip needs none: the Dockerfile passes the index.
  ``add`` lists shared packages to declare as direct dependencies (the transitive ones, so an
  explicit source covers every shared package the service installs).

A source table with the same name that exists already is updated in place, never duplicated,
so the edit is idempotent. The result is parsed again and checked: every dependency given
must have stopped being a path/file/workspace dependency.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
from packaging.utils import canonicalize_name
from tomlkit.items import InlineTable, String, Table

from nexusify.errors import ProblemsFound
from nexusify.formats.edits import Edit, EditResult
from nexusify.formats.pyproject_base import _quote, _walk, _walk_cached
from nexusify.formats.pyproject_pep621 import Pep621Edits
from nexusify.formats.pyproject_poetry import PoetryEdits
from nexusify.formats.pyproject_sources import SourceTableEdits
from nexusify.formats.pyproject_spans import SpanEditor
from nexusify.formats.sources import SourceSpec, outdated_tables, sources_outdated
from nexusify.model import LocalDependency
from nexusify.syntax.constraints import pep440_specifier, poetry_constraint
from nexusify.syntax.requirements import requirement_name
from nexusify.syntax.toml_spans import Unsure

PRIORITIES = ("explicit", "supplemental", "primary")
TOOLS = ("auto", "poetry", "uv", "pdm", "pip")


@dataclass(frozen=True)
class AddedDependency:
    """A shared package to declare directly (a transitive one, for an explicit source)."""

    name: str
    group: str = "main"
    via: str = ""


# --------------------------------------------------------------------------- public API


def versionize(
    text: str,
    deps: Sequence[LocalDependency],
    versions: Mapping[str, str],
    *,
    mode: str = "caret",
    source: SourceSpec | None = None,
    add: Sequence[AddedDependency] = (),
    path: Path | None = None,
) -> str:
    """``text`` with ``deps`` replaced by version constraints (see the module docstring)."""
    return edit_pyproject(text, deps, versions, mode=mode, source=source, add=add, path=path).text


def edit_pyproject(
    text: str,
    deps: Sequence[LocalDependency],
    versions: Mapping[str, str],
    *,
    mode: str = "caret",
    source: SourceSpec | None = None,
    add: Sequence[AddedDependency] = (),
    path: Path | None = None,
    data: Mapping[str, Any] | None = None,
    reconcile: bool = False,
) -> EditResult:
    """Like :func:`versionize`, returning the edits too. Raises ProblemsFound (file:line) for
    shapes it cannot rewrite safely and for specifiers that exclude the version. ``data`` is
    ``text`` already parsed (tomllib), when the caller has it. ``reconcile``: bring source
    tables that already carry the source's name up to date (url, priority), adding none."""
    if source is not None and not reconcile:
        try:
            return SpanEditor(text, versions, mode, source, path, data).edit(list(deps), add)
        except Unsure:
            pass  # a shape the span editor does not locate with certainty: tomlkit's road
    editor = _Editor(text, versions, mode, source, path, data)
    return editor.run(list(deps), list(add), reconcile=reconcile)


def local_entries_left(text: str, names: Iterable[str], path: Path | None = None,
                       data: dict[str, Any] | None = None) -> list[str]:
    """Names among ``names`` still written as path/file/workspace dependencies in ``text``
    (``data``: ``text`` already parsed)."""
    from nexusify.model import Project, read_local_dependencies

    if data is None:
        data = tomllib.loads(text.removeprefix("\ufeff"))
    where = path or Path("pyproject.toml")
    project = Project(path=where.parent, pyproject=where, data=data, text=text)
    wanted = {canonicalize_name(n) for n in names}
    return sorted({d.name for d in read_local_dependencies(project, [], str(where)) if d.normalized in wanted})


# --------------------------------------------------------------------------- the editor


class _Editor(PoetryEdits, Pep621Edits, SourceTableEdits):
    def run(self, deps: list[LocalDependency], add: list[AddedDependency], reconcile: bool = False) -> EditResult:
        if reconcile and self.source is not None:
            outdated = outdated_tables(self.data, self.source)
            self.need_poetry_source |= "poetry" in outdated
            self.need_uv_index |= "uv" in outdated
            self.pdm_reconcile = "pdm" in outdated
        for dep in deps:
            if dep.kind == "poetry-path":
                self._poetry(dep)
            elif dep.kind == "pep508-file":
                self._pep508_file(dep)
            elif dep.kind in ("uv-path", "uv-workspace"):
                self._uv(dep)
        poetry_style = any(d.kind == "poetry-path" for d in deps)
        if self.source is not None:
            for extra in add:
                self._add(extra, poetry_style)
        if self.problems:
            raise ProblemsFound(
                f"cannot rewrite {self.where}:\n  " + "\n  ".join(self.problems),
                path=self.where, line=self.first_problem_line,
                hint="fix these entries by hand or exclude the file; nothing was written",
            )
        self._flush()
        return self._finish(self._expand(tomlkit.dumps(self.doc)), deps)

    # ---------------------------------------------------------------- additions

    def _add(self, extra: AddedDependency, poetry_style: bool) -> None:
        assert self.source is not None
        version = self._version(extra.name, None)
        if version is None:
            return
        via = f" (via {extra.via})" if extra.via else ""
        if poetry_style:
            path: tuple[str, ...] = ("tool", "poetry", "dependencies") if extra.group == "main" else (
                "tool", "poetry", "group", extra.group, "dependencies")
            try:
                table = _walk_cached(self, path)
            except KeyError:
                try:  # Poetry < 1.2 layout
                    table = _walk(self.doc, ("tool", "poetry", "dev-dependencies"))
                except KeyError:
                    table = None
                if extra.group != "dev" or table is None:
                    self._fail(None, f"{extra.name}: no [{'.'.join(path)}] table to add it to")
                    return
            existing = self._names(table).get(canonicalize_name(extra.name))
            constraint = poetry_constraint(version, self.mode)
            if existing is not None:
                item = table[existing]
                if isinstance(item, String):  # an empty constraint (`libmq = ""`) Poetry cannot parse: the version
                    table[existing] = self._inline_from_string(item, str(item) if str(item).strip() else constraint)
                elif isinstance(item, InlineTable) and "source" not in item:
                    table[existing] = self._inline(item, [("source", _quote(self.source.name))], ())
                elif isinstance(item, Table) and "source" not in item:
                    self._subtable(item, [("source", _quote(self.source.name))], ())
                else:
                    return
                self.block_reasons.append((f"{existing} =", f"{extra.name}: name source {self.source.name!r}{via}"))
                return
            pad = self._pad.get(id(table))
            if pad is None:
                style = next((v for v in table.value.values() if isinstance(v, InlineTable)), None)
                pad = self._pad[id(table)] = " " if style is not None and style.as_string().startswith("{ ") else ""
            self._defer(table, extra.name,
                        "{" + pad + f"version = {_quote(constraint)}, source = {_quote(self.source.name)}" + pad + "}")
            self.need_poetry_source = True
            self.block_reasons.append((f"{extra.name} =", f"{extra.name}: transitive shared package declared with "
                                                           f"source {self.source.name!r}{via}"))
            return
        # PEP 621 / 735
        array_path = ("project", "dependencies") if extra.group == "main" else ("dependency-groups", extra.group)
        try:
            arr = _walk_cached(self, array_path)
        except KeyError:
            self._fail(None, f"{extra.name}: no {'.'.join(array_path)} array to add it to")
            return
        names = self._array_names.get(id(arr))
        if names is None:
            names = self._array_names[id(arr)] = set()
            names.update(n for v in arr if (n := requirement_name(v)))
        spec = pep440_specifier(version, self.mode)
        if canonicalize_name(extra.name) not in names:
            names.add(canonicalize_name(extra.name))
            arr.append(extra.name + spec)
            self.block_reasons.append((f'"{extra.name}{spec}"', f"{extra.name}: transitive shared package declared{via}"))
        if self.uses_uv:
            self._uv_source_entry(extra.name, None)
        elif self.uses_pdm:
            self.pdm_packages.append(extra.name)


__all__ = [
    "AddedDependency", "Edit", "EditResult", "SourceSpec", "edit_pyproject", "local_entries_left", "sources_outdated",
    "versionize",
]
