"""Minimal, byte-preserving edits of ``pyproject.toml``: local dependencies become versions.

One editing core shared by ``rewrite`` (services) and ``publish`` (staged copies of shared
packages). It parses with tomlkit, replaces only the entries named by the
:class:`~nexusify.workspace.LocalDependency` records it is given, and leaves every other
byte as it was: comments, key order, quoting style, inline-table spacing, CRLF line endings,
a missing trailing newline, a UTF-8 BOM.

The rules (``mode`` is a constraint mode of :mod:`nexusify.formats.constraints`):

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

import difflib
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
from packaging.utils import canonicalize_name
from tomlkit.container import Container
from tomlkit.items import AoT, Array, InlineTable, Item, String, Table

from nexusify.errors import OperationFailed, ProblemsFound, TomlError
from nexusify.formats.constraints import admits, pep440_specifier, poetry_constraint
from nexusify.formats.edits import Edit, EditResult
from nexusify.model import LocalDependency

PRIORITIES = ("explicit", "supplemental", "primary")
TOOLS = ("auto", "poetry", "uv", "pdm", "pip")
_DROP_POETRY = ("path", "develop")
_DROP_UV = ("path", "editable", "workspace", "package")


@dataclass(frozen=True)
class SourceSpec:
    """The package source a rewritten service resolves shared packages from."""

    name: str
    url: str
    priority: str = "explicit"
    tool: str = "auto"  # which source table(s) to write; "auto" = the ones the file's tools read

    @property
    def explicit(self) -> bool:
        return self.priority == "explicit"


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


# --------------------------------------------------------------------------- implementation


def _newline(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def _item(value_toml: str, trail: str = "\n", indent: str = "") -> Item:
    item = tomlkit.value(value_toml)  # parses just the value, keeping its exact formatting
    item.trivia.trail = trail
    item.trivia.indent = indent
    return item


_REQ_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(name: str) -> str:
    """A TOML key: bare when it can be (``Acme.Events`` must be quoted, or it is a dotted key)."""
    return name if _BARE_KEY.match(name) else _quote(name)


_PLAIN = re.compile(r"^[\x20-\x7e]*$")


def _quote(value: str) -> str:
    """A TOML basic string (fast path for printable ASCII without quotes or backslashes)."""
    if _PLAIN.match(value) and '"' not in value and "\\" not in value:
        return f'"{value}"'
    return tomlkit.string(value).as_string()


def _walk_cached(editor: _Editor, path: tuple[str, ...]) -> Any:
    found = editor._walks.get(path)
    if found is None:
        found = editor._walks[path] = _walk(editor.doc, path)
    return found


def _walk(doc: Container, path: Sequence[str]) -> Any:
    cur: Any = doc
    for key in path:
        cur = cur[key]
    return cur


class _Editor:
    def __init__(self, text: str, versions: Mapping[str, str], mode: str, source: SourceSpec | None,
                 path: Path | None, data: Mapping[str, Any] | None = None) -> None:
        self.bom = text.startswith("\ufeff")
        self.original = text
        self.body = text.removeprefix("\ufeff")
        self.nl = _newline(self.body)
        self.versions = {canonicalize_name(k): v for k, v in versions.items()}
        self.mode = mode
        self.source = source
        self.path = path
        self.where = str(path) if path else "pyproject.toml"
        self.reasons: dict[int, str] = {}  # original line -> reason
        self.block_reasons: list[tuple[str, str]] = []  # (marker text in new lines, reason)
        self.problems: list[str] = []
        self.first_problem_line: int | None = None
        try:
            self.doc = tomlkit.parse(self.body)
        except Exception as exc:  # tomlkit's ParseError carries line/col in its message
            raise TomlError(f"invalid TOML: {exc}", path=self.where) from exc
        self.data = data if data is not None else tomllib.loads(self.body)
        self.uses_uv = "uv" in self.data.get("tool", {}) or (source is not None and source.tool == "uv")
        self.uses_pdm = "pdm" in self.data.get("tool", {}) or (source is not None and source.tool == "pdm")
        self.need_poetry_source = False
        self.need_uv_index = False
        self.pdm_packages: list[str] = []
        self.pdm_reconcile = False
        self.done_uv_keys: set[str] = set()
        self._pending_uv_sources: list[str] = []
        self._deferred: dict[int, tuple[Table, list[tuple[str, str]]]] = {}
        self._table_index: dict[int, dict[str, str]] = {}
        self._placeholders: dict[str, str] = {}
        self._walks: dict[tuple[str, ...], Any] = {}
        self._uv_lines: dict[str, int] | None = None
        self._pad: dict[int, str] = {}
        self._array_names: dict[int, set[str]] = {}

    # ---------------------------------------------------------------- helpers

    def _fail(self, line: int | None, message: str) -> None:
        loc = f"{self.where}:{line}" if line else self.where
        self.problems.append(f"{loc}: {message}")
        if self.first_problem_line is None:
            self.first_problem_line = line

    def _version(self, dep_name: str, line: int | None) -> str | None:
        v = self.versions.get(canonicalize_name(dep_name))
        if v is None:
            self._fail(line, f"{dep_name}: no version known for this shared package")
        return v

    # ---------------------------------------------------------------- main

    def run(self, deps: list[LocalDependency], add: list[AddedDependency], reconcile: bool = False) -> EditResult:
        if reconcile and self.source is not None:
            outdated = _outdated_tables(self.data, self.source)
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
        text = self._expand(tomlkit.dumps(self.doc))
        text = self._source_blocks(text)
        if self.nl == "\r\n" and self.body.count("\n") == self.body.count("\r\n"):
            text = re.sub(r"(?<!\r)\n", "\r\n", text)
        if self.bom:
            text = "\ufeff" + text
        self._verify(text, deps)
        return EditResult(text, self._edits(text))

    # ---------------------------------------------------------------- Poetry

    def _poetry(self, dep: LocalDependency) -> None:
        _, table_path, key = dep.location
        assert isinstance(key, str)
        version = self._version(dep.name, dep.line)
        if version is None:
            return
        constraint = poetry_constraint(version, self.mode)
        try:
            table = _walk(self.doc, table_path)
            item = table[key]
        except KeyError:
            self._fail(dep.line, f"{dep.name}: entry not found in [{'.'.join(table_path)}]")
            return
        new_keys: list[tuple[str, str]] = [("version", _quote(constraint))]
        if self.source is not None:
            new_keys.append(("source", _quote(self.source.name)))
            self.need_poetry_source = True
        if isinstance(item, InlineTable):
            table[key] = self._inline(item, new_keys, _DROP_POETRY)
        elif isinstance(item, Table):
            self._subtable(item, new_keys, _DROP_POETRY)
        else:
            self._fail(dep.line, f"{dep.name}: a list of constraints with a path is not rewritten automatically")
            return
        where = "source " + repr(self.source.name) if self.source else "the index"
        if dep.line:
            self.reasons[dep.line] = f"{dep.name}: path dependency -> version {constraint} from {where}"

    def _inline(self, item: InlineTable, new_keys: list[tuple[str, str]], drop: Sequence[str]) -> Item:
        """Render a new inline table: ``new_keys`` first, then kept keys, original spacing."""
        raw = item.as_string()
        inner = raw.strip()
        pad = " " if inner.startswith("{ ") or inner.startswith("{\t") else ""
        eq = " = "
        kept: list[str] = []
        first = True
        for k, v in item.value.body:
            if k is None:
                continue
            key_text = k.as_string()
            sep = key_text[len(key_text.rstrip()):] + (getattr(k, "sep", "= ") or "= ")
            if first:
                eq = sep
                first = False
            name = k.key
            if name in drop or name in {n for n, _ in new_keys}:
                continue
            kept.append(f"{key_text.rstrip()}{sep}{v.as_string().strip()}")
        parts = [f"{n}{eq}{val}" for n, val in new_keys] + kept
        body = ", ".join(parts)
        new = _item("{" + pad + body + pad + "}" if parts else "{}")
        new.trivia.indent = item.trivia.indent
        new.trivia.comment_ws = item.trivia.comment_ws
        new.trivia.comment = item.trivia.comment
        new.trivia.trail = item.trivia.trail
        return new

    def _subtable(self, item: Table, new_keys: list[tuple[str, str]], drop: Sequence[str]) -> None:
        keys = [k for k in item if k not in drop]
        anchor = next((k for k in item if k in drop), None) or (keys[0] if keys else None)
        indent = item[anchor].trivia.indent if anchor is not None else ""
        after = anchor
        for name, val in new_keys:
            if name in item and name not in drop:
                item[name] = _item(val, self.nl, item[name].trivia.indent)
                continue
            new = _item(val, self.nl, indent)
            if after is None:
                item.add(name, new)
            else:
                item.value._insert_after(after, name, new)
            after = name
        for name in drop:
            if name in item:
                del item[name]

    # ---------------------------------------------------------------- PEP 508 arrays

    def _array_string(self, dep: LocalDependency) -> tuple[Array, int, str] | None:
        _, array_path, index = dep.location
        assert isinstance(index, int)
        try:
            arr = _walk(self.doc, array_path)
            value = arr[index]
        except (KeyError, IndexError):
            self._fail(dep.line, f"{dep.name}: requirement not found in {'.'.join(array_path)}")
            return None
        if not isinstance(value, str):
            self._fail(dep.line, f"{dep.name}: expected a requirement string")
            return None
        return arr, index, str(value)

    def _set_string(self, arr: Array, index: int, new_value: str) -> None:
        old = arr[index]
        type_ = old.type if isinstance(old, String) else None
        arr[index] = String.from_raw(new_value, type_=type_) if type_ is not None else new_value

    def _pep508_file(self, dep: LocalDependency) -> None:
        found = self._array_string(dep)
        version = self._version(dep.name, dep.line)
        if found is None or version is None:
            return
        arr, index, value = found
        body = value.strip()
        if body.startswith("-e ") or body.startswith("--editable "):  # PDM editable dev dependency
            body = body.split(None, 1)[1].strip()
        head, at, rest = body.partition("@")
        if not at or "file:" in head or "{root" in head:  # "file:///...#egg=name": no name written
            head = dep.name + (f"[{','.join(dep.extras)}]" if dep.extras else "")
            rest = body
        marker = rest.partition(";")[2].strip()
        spec = pep440_specifier(version, self.mode)
        new_value = head.strip() + spec + (f"; {marker}" if marker else "")
        self._set_string(arr, index, new_value)
        if self.source is not None:
            if self.uses_uv:
                self._uv_source_entry(dep.name, None)
            elif self.uses_pdm:
                self.pdm_packages.append(dep.name)
        if dep.line:
            self.reasons[dep.line] = f"{dep.name}: file URL -> {spec}"

    def _uv(self, dep: LocalDependency) -> None:
        found = self._array_string(dep)
        version = self._version(dep.name, dep.line)
        if found is None or version is None:
            return
        arr, index, value = found
        spec = pep440_specifier(version, self.mode)
        if dep.specifier:
            if not admits(dep.specifier, version):
                self._fail(dep.line, f"{dep.name}: the specifier {dep.specifier!r} does not admit version {version}; "
                                     "change the specifier or publish a matching version")
                return
        else:
            m = re.match(r"^(\s*[A-Za-z0-9][A-Za-z0-9._-]*\s*(?:\[[^\]]*\])?)(.*)$", value, re.S)
            if m is None:
                self._fail(dep.line, f"{dep.name}: cannot parse the requirement {value!r}")
                return
            head, tail = m.group(1).rstrip(), m.group(2)
            self._set_string(arr, index, head + spec + tail)
            if dep.line:
                self.reasons[dep.line] = f"{dep.name}: gains {spec} (version {version})"
        key = dep.source_key or dep.name
        if key not in self.done_uv_keys:
            self.done_uv_keys.add(key)
            self._uv_source_entry(key, dep)

    def _uv_source_entry(self, key: str, dep: LocalDependency | None) -> None:
        """Point ``[tool.uv.sources] key`` at the index (or drop it when staging)."""
        try:
            sources = _walk_cached(self, ("tool", "uv", "sources"))
        except KeyError:
            sources = None
        line = self._uv_line(key)
        if sources is None or key not in sources:
            if self.source is None:
                return
            if sources is None:
                if key not in self._pending_uv_sources:
                    self.block_reasons.append(("[tool.uv.sources]", "add [tool.uv.sources] for the index"))
                    self._pending_uv_sources.append(key)
                self.need_uv_index = True
                return
            if canonicalize_name(key) in self._names(sources):
                return  # added already (deferred)
            self._defer(sources, key, "{ index = " + _quote(self.source.name) + " }")
            self.need_uv_index = True
            return
        entry = sources[key]
        if self.source is None:
            del sources[key]
            if line:
                self.reasons[line] = f"{key}: uv path source removed (staged copy resolves from the index)"
            return
        if isinstance(entry, InlineTable):
            sources[key] = self._inline(entry, [("index", _quote(self.source.name))], _DROP_UV)
        elif isinstance(entry, Table):
            self._subtable(entry, [("index", _quote(self.source.name))], _DROP_UV)
        else:
            self._fail(line, f"{key}: a list of uv sources is not rewritten automatically")
            return
        self.need_uv_index = True
        if line:
            self.reasons[line] = f"{key}: uv source -> index {self.source.name!r}"

    def _uv_line(self, key: str) -> int | None:
        if self._uv_lines is None:
            self._uv_lines = {}
            start = _header_line(self.body, "tool.uv.sources")
            if start is not None:
                rx = re.compile(r"^\s*[\"']?([^\"'=\s]+)[\"']?\s*=")
                for n, line in enumerate(self.body.splitlines()[start:], start + 1):
                    if _header_key(line):
                        break
                    m = rx.match(line)
                    if m:
                        self._uv_lines.setdefault(m.group(1), n)
        return self._uv_lines.get(key)

    def _defer(self, table: Table, key: str, value_toml: str) -> None:
        """Add ``key = value`` after the table's last key; all additions to one table are parsed
        in one go by :meth:`_flush` (tomlkit parsing is the cost of this module)."""
        self._deferred.setdefault(id(table), (table, []))[1].append((key, value_toml))
        self._names(table)[canonicalize_name(key)] = key

    def _names(self, table: Table) -> dict[str, str]:
        """canonical name -> key as written, for one table (computed once)."""
        index = self._table_index.get(id(table))
        if index is None:
            index = self._table_index[id(table)] = {canonicalize_name(k): k for k in table}
        return index

    def _flush(self) -> None:
        """Put a placeholder key where each table's additions go; :meth:`_expand` replaces it
        with the rendered lines after dumping (no TOML parsing for added entries)."""
        for n, (table, pairs) in enumerate(self._deferred.values()):
            keys = [k for k in table]
            indent = table[keys[-1]].trivia.indent if keys else ""
            marker = f"__nexusify_insert_{n}__"
            item = tomlkit.item(0)
            item.trivia.indent = indent
            item.trivia.trail = self.nl
            if keys:
                table.value._insert_after(keys[-1], marker, item)
            else:
                table.add(marker, item)
            self._placeholders[marker] = "".join(f"{indent}{_key(k)} = {v}{self.nl}" for k, v in pairs)
        self._deferred.clear()

    def _expand(self, text: str) -> str:
        for marker, block in self._placeholders.items():
            text, count = re.subn(rf"^[ \t]*{marker} = 0\r?\n", block.replace("\\", "\\\\"), text, count=1,
                                  flags=re.M)
            if count != 1:  # pragma: no cover - a bug in this module
                raise OperationFailed(f"internal error: lost an insertion point in {self.where}",
                                      hint="nothing was written; please report this")
        return text

    def _append_key(self, table: Table, key: str, item: Item) -> None:
        keys = [k for k in table]
        if keys:
            last = table[keys[-1]]
            item.trivia.indent = last.trivia.indent
            table.value._insert_after(keys[-1], key, item)
        else:
            table.add(key, item)

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
                if isinstance(item, String):
                    table[existing] = self._inline_from_string(item, str(item))
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
            for v in arr:
                m = _REQ_NAME.match(v) if isinstance(v, str) else None
                if m:
                    names.add(canonicalize_name(m.group(1)))
        spec = pep440_specifier(version, self.mode)
        if canonicalize_name(extra.name) not in names:
            names.add(canonicalize_name(extra.name))
            arr.append(extra.name + spec)
            self.block_reasons.append((f'"{extra.name}{spec}"', f"{extra.name}: transitive shared package declared{via}"))
        if self.uses_uv:
            self._uv_source_entry(extra.name, None)
        elif self.uses_pdm:
            self.pdm_packages.append(extra.name)

    def _inline_from_string(self, item: String, constraint: str) -> Item:
        assert self.source is not None
        new = _item("{" + f"version = {_quote(constraint)}, source = {_quote(self.source.name)}" + "}")
        new.trivia.indent = item.trivia.indent
        new.trivia.comment_ws = item.trivia.comment_ws
        new.trivia.comment = item.trivia.comment
        new.trivia.trail = item.trivia.trail
        return new

    # ---------------------------------------------------------------- source tables

    def _source_blocks(self, text: str) -> str:
        src = self.source
        if src is None:
            return text
        tool = src.tool
        if self._pending_uv_sources:
            lines = ["[tool.uv.sources]"] + [f"{k} = {{ index = {_quote(src.name)} }}" for k in self._pending_uv_sources]
            text = _insert_block(text, "tool.uv", lines, self.nl)
        if self.need_poetry_source and tool in ("auto", "poetry"):
            text = self._ensure_aot(text, ("tool", "poetry", "source"), "tool.poetry", [
                ("name", src.name), ("url", src.url), ("priority", src.priority)])
        if self.need_uv_index and tool in ("auto", "uv"):
            fields: list[tuple[str, Any]] = [("name", src.name), ("url", src.url)]
            if src.explicit:
                fields.append(("explicit", True))
            text = self._ensure_aot(text, ("tool", "uv", "index"), "tool.uv", fields)
        if (self.pdm_packages or self.pdm_reconcile) and tool in ("auto", "pdm"):
            fields = [("name", src.name), ("url", src.url)]
            if src.explicit and self.pdm_packages:
                fields.append(("include_packages", sorted(set(self.pdm_packages))))
            text = self._ensure_aot(text, ("tool", "pdm", "source"), "tool.pdm", fields)
        return text

    def _ensure_aot(self, text: str, path: tuple[str, ...], prefix: str, fields: list[tuple[str, Any]]) -> str:
        """One ``[[path]]`` entry named ``fields[0]``: update it in place, or insert a new block."""
        header = ".".join(path)
        name = fields[0][1]
        cur: Any = self.data  # the source tables are never touched by the dependency edits
        for k in path:
            cur = cur.get(k) if isinstance(cur, dict) else None
        if cur is not None and not isinstance(cur, list):
            self._fail(None, f"{header} is not an array of tables; add the source {name!r} by hand")
            raise ProblemsFound("\n".join(self.problems), path=self.where)
        entries: list[Any] = cur or []
        existing = [i for i, e in enumerate(entries) if isinstance(e, dict) and e.get("name") == name]
        if existing and all(entries[existing[0]].get(k) == v for k, v in fields[1:]):
            return text  # up to date: nothing to parse
        if existing:
            doc = tomlkit.parse(text)
            aot = _walk(doc, path)
            entry = aot[existing[0]] if isinstance(aot, AoT | Array) else None
            changed = False
            if entry is not None:
                for key, value in fields[1:]:
                    if entry.get(key) != value:
                        if key in entry:
                            entry[key] = value
                        else:
                            keys = list(entry)
                            new = tomlkit.item(value)
                            new.trivia.trail = self.nl
                            entry.value._insert_after(keys[-1], key, new)
                        changed = True
                        self.block_reasons.append((f"{key} = {tomlkit.item(value).as_string()}",
                                                   f"[[{header}]] {name!r}: {key} = {value!r}"))
            if changed:
                return tomlkit.dumps(doc)
            return text
        lines = [f"[[{header}]]"] + [f"{k} = {tomlkit.item(v).as_string()}" for k, v in fields]
        self.block_reasons.append((f"[[{header}]]", f"add [[{header}]] {name!r} ({self.source.priority if self.source else ''})"))
        return _insert_block(text, prefix, lines, self.nl)

    # ---------------------------------------------------------------- checks and edits

    def _verify(self, text: str, deps: list[LocalDependency]) -> None:
        try:
            data = tomllib.loads(text.removeprefix("\ufeff"))
        except tomllib.TOMLDecodeError as exc:  # pragma: no cover - a bug in this module
            raise OperationFailed(f"internal error: the rewritten {self.where} is not valid TOML ({exc})",
                                  hint="nothing was written; please report this") from exc
        left = sorted({d.name for d in deps if _still_local(data, d)})
        if left:  # pragma: no cover - a bug in this module
            raise OperationFailed(f"internal error: {self.where} still has local dependencies {left} after rewriting",
                                  hint="nothing was written; please report this")

    def _edits(self, text: str) -> list[Edit]:
        old = self.original.removeprefix("\ufeff").splitlines()
        new = text.removeprefix("\ufeff").splitlines()
        edits: list[Edit] = []
        if self.original == text:
            return edits
        sm = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
        for tag, i1, i2, j1, j2 in sm.get_opcodes():
            if tag == "equal":
                continue
            reasons = [self.reasons[n] for n in range(i1 + 1, i2 + 1) if n in self.reasons]
            after = "\n".join(new[j1:j2])
            reasons += [r for marker, r in self.block_reasons if marker in after and r not in reasons]
            edits.append(Edit(i1 + 1, "\n".join(old[i1:i2]), after, "; ".join(reasons) or "formatting"))
        if not edits:  # only the line ending of the last line changed
            edits.append(Edit(len(old), old[-1] if old else "", new[-1] if new else "", "final newline"))
        return edits


def _wanted_fields(source: SourceSpec) -> dict[str, dict[str, Any]]:
    wanted: dict[str, dict[str, Any]] = {
        "poetry": {"url": source.url, "priority": source.priority},
        "uv": {"url": source.url},
        "pdm": {"url": source.url},
    }
    if source.explicit:
        wanted["uv"]["explicit"] = True
    return wanted


def _outdated_tables(data: Mapping[str, Any], source: SourceSpec) -> set[str]:
    """The tools ("poetry", "uv", "pdm") whose source entry named like ``source`` exists and
    differs from it (url, Poetry priority, uv explicit)."""
    tool = data.get("tool", {})
    tables = {"poetry": tool.get("poetry", {}).get("source"), "uv": tool.get("uv", {}).get("index"),
              "pdm": tool.get("pdm", {}).get("source")}
    out: set[str] = set()
    for name, fields in _wanted_fields(source).items():
        entries = tables[name]
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and entry.get("name") == source.name and any(
                    entry.get(k) != v for k, v in fields.items()):
                out.add(name)
    return out


def sources_outdated(data: Mapping[str, Any], source: SourceSpec) -> bool:
    """Whether a source table carrying ``source.name`` differs from ``source`` (cheap: no
    tomlkit), i.e. whether ``edit_pyproject(..., reconcile=True)`` would change something."""
    return bool(_outdated_tables(data, source))


def _still_local(data: Mapping[str, Any], dep: LocalDependency) -> bool:
    """Whether the place ``dep`` was written at still holds a path/file/workspace dependency."""
    kind, where, key = dep.location
    cur: Any = data
    for part in where:
        cur = cur.get(part) if isinstance(cur, dict) else None
    if kind == "poetry":
        entry = cur.get(key) if isinstance(cur, dict) and isinstance(key, str) else None
        entries = entry if isinstance(entry, list) else [entry]
        return any(isinstance(e, dict) and "path" in e for e in entries)
    value = cur[key] if isinstance(cur, list) and isinstance(key, int) and key < len(cur) else None
    if isinstance(value, str) and ("file:" in value or "PROJECT_ROOT" in value or "{root" in value):
        return True
    if dep.kind in ("uv-path", "uv-workspace") and dep.source_key and (dep.source_file in (None, dep.file)):
        source = data.get("tool", {}).get("uv", {}).get("sources", {}).get(dep.source_key)
        sources = source if isinstance(source, list) else [source]
        return any(isinstance(e, dict) and ("path" in e or e.get("workspace") is True) for e in sources)
    return False


# --------------------------------------------------------------------------- text blocks

_HEADER = re.compile(r"^\s*\[\[?\s*([^\[\]]+?)\s*\]\]?\s*(?:#.*)?$")


def _header_key(line: str) -> str | None:
    m = _HEADER.match(line)
    if not m:
        return None
    return ".".join(part.strip().strip("\"'") for part in m.group(1).split("."))


def _header_line(text: str, key: str) -> int | None:
    for n, line in enumerate(text.splitlines(), 1):
        if _header_key(line) == key:
            return n
    return None


def _insert_block(text: str, prefix: str, block: list[str], nl: str) -> str:
    """Insert ``block`` (lines) after the last table whose header starts with ``prefix``
    (before the comments that introduce the next table), or at the end of the file."""
    lines = text.splitlines(keepends=True)
    keys = [_header_key(line) for line in lines]
    last = max((i for i, k in enumerate(keys) if k and (k == prefix or k.startswith(prefix + "."))), default=None)
    at = len(lines)
    if last is not None:
        nxt = next((i for i in range(last + 1, len(lines)) if keys[i]), None)
        if nxt is not None:
            at = nxt
            while at > last + 1 and (lines[at - 1].strip() == "" or lines[at - 1].lstrip().startswith("#")):
                at -= 1
    head, tail = lines[:at], lines[at:]
    if head and not head[-1].endswith(("\n", "\r")):
        head[-1] += nl
    out = list(head)
    if out and out[-1].strip():
        out.append(nl)
    out += [b + nl for b in block]
    if tail and tail[0].strip():
        out.append(nl)
    return "".join(out + tail)


__all__ = [
    "AddedDependency", "Edit", "EditResult", "SourceSpec", "edit_pyproject", "local_entries_left", "sources_outdated",
    "versionize",
]
