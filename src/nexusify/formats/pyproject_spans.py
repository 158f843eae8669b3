"""The fast road of the ``pyproject.toml`` editor: the same edits as the tomlkit editor of
:mod:`nexusify.formats.pyproject_edit`, spliced into the text at the offsets
:mod:`nexusify.syntax.toml_spans` finds, for the shapes written in nearly every file:

* a Poetry dependency written as a one-line inline table ``name = {path = ..}`` in a
  ``[tool.poetry...dependencies]`` table;
* a requirement string (``"name @ file:.."``, ``"name"``) in a ``[project]`` or
  ``[dependency-groups]`` array, its ``[tool.uv.sources]`` entry a one-line inline table;
* entries added after a table's last line, and strings appended to an array written one element
  a line, each ending with a comma.

Each edit renders the exact text the tomlkit editor writes (``tests/test_pyproject_spans.py``
compares the two on every fixture and on tricky shapes). Anything else (publish staging, a
reconcile, CRLF files, sub-tables, dotted keys, comments where additions go, a failed edit)
raises :class:`~nexusify.syntax.toml_spans.Unsure` and the caller takes the tomlkit road. The
result is parsed again with tomllib and compared, value for value, with the original data
carrying the intended edits: a wrong splice is never written, it falls back.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from typing import Any

from packaging.utils import canonicalize_name

from nexusify.formats.edits import EditResult
from nexusify.formats.pyproject_base import _PLAIN, _key, _quote
from nexusify.formats.pyproject_pep621 import Pep621Edits, by_version
from nexusify.formats.pyproject_sources import SourceTableEdits
from nexusify.model import LocalDependency
from nexusify.syntax.constraints import admits, pep440_specifier, poetry_constraint
from nexusify.syntax.requirements import requirement_name
from nexusify.syntax.toml_spans import (
    KeyValue,
    Section,
    Unsure,
    array_elements,
    inline_entries,
    scan,
)

_DROP_POETRY = ("path", "develop")
_DROP_UV = ("path", "editable", "workspace", "package")


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _get(data: Any, path: Sequence[str]) -> Any:
    for part in path:
        if not isinstance(data, dict) or part not in data:
            raise Unsure(f"no {'.'.join(path)}")
        data = data[part]
    return data


class SpanEditor(Pep621Edits, SourceTableEdits):
    """One edit of one file (:meth:`edit`); raises Unsure where it is not certain."""

    def edit(self, deps: list[LocalDependency], add: Sequence[Any]) -> EditResult:
        if self.source is None or "\r" in self.body:
            raise Unsure("publish staging or CRLF")
        self.sections = scan(self.body)
        self.found_sections: dict[tuple[tuple[str, ...], bool], Section] = {}
        self.arrays: dict[tuple[str, ...], tuple[KeyValue, list[tuple[int, int]]]] = {}
        self.written: dict[int, set[str]] = {}  # id of a section -> canonical names of its keys
        self.expected = _copy(self.data)
        self.splices: list[tuple[int, int, str]] = []  # (start, end, new text) in self.body
        self.inserts: dict[int, list[str]] = {}  # offset -> texts inserted there, in order
        self.added: dict[tuple[str, ...], set[str]] = {}  # table -> canonical names added
        self.spliced: dict[int, str] = {}  # start of a rewritten inline table -> its new text
        for dep in deps:
            if dep.kind == "poetry-path":
                self._poetry_span(dep)
            elif dep.kind == "pep508-file":
                self._pep508_span(dep)
            elif dep.kind in ("uv-path", "uv-workspace"):
                self._uv_span(dep)
            else:
                raise Unsure(dep.kind)
        poetry_style = any(d.kind == "poetry-path" for d in deps)
        for extra in add:
            self._add_span(extra, poetry_style)
        text = self._source_blocks(self._apply())
        try:
            got = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise Unsure(str(exc)) from exc
        # the source tables are written as by the tomlkit editor (the same code): taken as written
        for path in (("tool", "poetry", "source"), ("tool", "uv", "index"), ("tool", "pdm", "source")) + (
                (("tool", "uv", "sources"),) if self._pending_uv_sources else ()):
            try:
                found = _get(got, path)
            except Unsure:
                continue
            parent = self.expected
            for part in path[:-1]:
                parent = parent.setdefault(part, {})
            parent[path[-1]] = found
        if got != self.expected:
            raise Unsure("the spliced text does not hold the intended edits")
        self._verify(text, deps, got)
        if self.bom:
            text = "\ufeff" + text
        return EditResult(text, self._edits(text))

    # ---------------------------------------------------------------- where things are

    def _section(self, path: Sequence[str], whole: bool = True) -> Section:
        """The one ``[path]`` table; ``whole``: with no sub-table and no dotted key (their keys
        would be the table's too)."""
        path = tuple(path)
        cached = self.found_sections.get((path, whole))
        if cached is not None:
            return cached
        found = [s for s in self.sections if s.path == path]
        if len(found) != 1 or found[0].aot:
            raise Unsure(f"[{'.'.join(path)}]")
        if not whole:
            self.found_sections[(path, whole)] = found[0]
            return found[0]
        if any(s.path[:len(path)] == path and len(s.path) > len(path) for s in self.sections):
            raise Unsure(f"sub-tables of [{'.'.join(path)}]")
        if any(len(e.parts) != 1 for e in found[0].entries):
            raise Unsure(f"dotted keys in [{'.'.join(path)}]")
        self.found_sections[(path, whole)] = found[0]
        return found[0]

    def _written(self, section: Section) -> set[str]:
        names = self.written.get(id(section))
        if names is None:
            names = self.written[id(section)] = {canonicalize_name(e.parts[0]) for e in section.entries}
        return names

    def _entry(self, section: Section, key: str) -> KeyValue | None:
        found = [e for e in section.entries if e.parts[0] == key]
        if len(found) > 1:
            raise Unsure(f"{key} twice")
        return found[0] if found else None

    def _inline_span(self, entry: KeyValue, new_keys: list[tuple[str, str]], drop: Sequence[str]) -> None:
        """The tomlkit editor's ``_inline``: new keys first, then the kept ones, the table's own
        spacing; the line's key, comment and ending stay."""
        vs, ve = entry.value
        if self.body[vs] != "{" or "\n" in self.body[vs:ve]:
            raise Unsure("not a one-line inline table")
        items, end = inline_entries(self.body, vs)
        if end != ve:
            raise Unsure("inline table end")
        raw = self.body[vs:ve]
        pad = " " if raw.startswith("{ ") or raw.startswith("{\t") else ""
        eq = " = "
        kept: list[str] = []
        names = {n for n, _ in new_keys}
        for n, (parts, ks, ke, vstart, vend) in enumerate(items):
            if len(parts) != 1:
                raise Unsure("dotted key in an inline table")
            sep = self.body[ke:vstart]
            if n == 0:
                eq = sep
            if parts[0] in drop or parts[0] in names:
                continue
            kept.append(f"{self.body[ks:ke]}{sep}{self.body[vstart:vend]}")
        body = ", ".join([f"{k}{eq}{v}" for k, v in new_keys] + kept)
        self.splices.append((vs, ve, "{" + pad + body + pad + "}"))
        self.spliced[vs] = self.splices[-1][2]

    def _append_entry(self, path: tuple[str, ...], section: Section, key: str, value_toml: str) -> None:
        """The tomlkit editor's ``_defer`` + ``_flush``: a line after the table's last entry."""
        if not section.entries or section.comment_after:
            raise Unsure("nowhere certain to add a key")
        last = section.entries[-1]
        if not last.newline:
            raise Unsure("no line ending after the last key")
        indent = self.body[last.start:last.key_start]
        self.inserts.setdefault(last.end, []).append(f"{indent}{_key(key)} = {value_toml}\n")
        self.added.setdefault(path, set()).add(canonicalize_name(key))

    def _array(self, path: Sequence[str]) -> tuple[KeyValue, list[tuple[int, int]]]:
        found = self.arrays.get(tuple(path))
        if found is None:
            section = self._section(path[:-1], whole=False)
            entry = self._entry(section, path[-1])
            if entry is None or self.body[entry.value[0]] != "[":
                raise Unsure(f"no array {'.'.join(path)}")
            found = self.arrays[tuple(path)] = (entry, array_elements(self.body, entry.value[0]))
        return found

    def _set_string_span(self, dep: LocalDependency, new_value: str) -> None:
        _, array_path, index = dep.location
        assert isinstance(index, int)
        _entry, elements = self._array(array_path)
        if index >= len(elements):
            raise Unsure("index")
        start, end = elements[index]
        quote = self.body[start]
        if self.body.startswith(quote * 3, start) or quote not in "\"'":
            raise Unsure("not a one-line string")
        if not _PLAIN.match(new_value) or '"' in new_value or "\\" in new_value or "'" in new_value:
            raise Unsure("a string to escape")
        self.splices.append((start, end, quote + new_value + quote))
        arr = _get(self.expected, array_path)
        arr[index] = new_value

    def _string_at(self, dep: LocalDependency) -> str:
        _, array_path, index = dep.location
        arr = _get(self.data, array_path)
        if not isinstance(arr, list) or not isinstance(index, int) or index >= len(arr) or not isinstance(arr[index], str):
            raise Unsure("not a requirement string")
        value: str = arr[index]
        return value

    def _version_or_unsure(self, name: str) -> str:
        v = self.versions.get(canonicalize_name(name))
        if v is None:
            raise Unsure("no version")
        return v

    # ---------------------------------------------------------------- the edits

    def _poetry_span(self, dep: LocalDependency) -> None:
        assert self.source is not None
        _, table_path, key = dep.location
        assert isinstance(key, str)
        constraint = poetry_constraint(self._version_or_unsure(dep.name), self.mode)
        entry = self._entry(self._section(table_path), key)
        if entry is None:
            raise Unsure("entry not found")
        new_keys = [("version", _quote(constraint)), ("source", _quote(self.source.name))]
        self.need_poetry_source = True
        self._inline_span(entry, new_keys, _DROP_POETRY)
        table = _get(self.expected, table_path)
        old = table[key]
        if not isinstance(old, dict):
            raise Unsure("not a table")
        table[key] = {"version": constraint, "source": self.source.name,
                      **{k: v for k, v in old.items() if k not in _DROP_POETRY and k not in ("version", "source")}}
        if dep.line:
            self.reasons[dep.line] = (f"{dep.name}: path dependency -> version {constraint} "
                                      f"from source {self.source.name!r}")

    def _pep508_span(self, dep: LocalDependency) -> None:
        value = self._string_at(dep)
        version = self._version_or_unsure(dep.name)
        spec = pep440_specifier(version, self.mode)
        self._set_string_span(dep, by_version(dep, value, spec))
        if self.uses_uv:
            self._uv_source_span(dep.name, None)
        elif self.uses_pdm:
            self.pdm_packages.append(dep.name)
        if dep.line:
            self.reasons[dep.line] = f"{dep.name}: file URL -> {spec}"

    def _uv_span(self, dep: LocalDependency) -> None:
        import re

        value = self._string_at(dep)
        version = self._version_or_unsure(dep.name)
        spec = pep440_specifier(version, self.mode)
        if dep.specifier:
            if not admits(dep.specifier, version):
                raise Unsure("the specifier excludes the version")
        else:
            m = re.match(r"^(\s*[A-Za-z0-9][A-Za-z0-9._-]*\s*(?:\[[^\]]*\])?)(.*)$", value, re.S)
            if m is None:
                raise Unsure("unparsed requirement")
            self._set_string_span(dep, m.group(1).rstrip() + spec + m.group(2))
            if dep.line:
                self.reasons[dep.line] = f"{dep.name}: gains {spec} (version {version})"
        key = dep.source_key or dep.name
        if key not in self.done_uv_keys:
            self.done_uv_keys.add(key)
            self._uv_source_span(key, dep)

    def _uv_source_span(self, key: str, dep: LocalDependency | None) -> None:
        assert self.source is not None
        path = ("tool", "uv", "sources")
        sources = self.data.get("tool", {}).get("uv", {}).get("sources")
        line = self._uv_line(key)
        if sources is None:
            if key not in self._pending_uv_sources:
                self.block_reasons.append(("[tool.uv.sources]", "add [tool.uv.sources] for the index"))
                self._pending_uv_sources.append(key)
            self.need_uv_index = True
            return
        section = self._section(path)
        entry = self._entry(section, key)
        if entry is None:
            if canonicalize_name(key) in self.added.get(path, set()) or canonicalize_name(key) in self._written(section):
                return
            self._append_entry(path, section, key, "{ index = " + _quote(self.source.name) + " }")
            _get(self.expected, path)[key] = {"index": self.source.name}
            self.need_uv_index = True
            return
        old = sources.get(key)
        if not isinstance(old, dict):
            raise Unsure("a list of uv sources")
        self._inline_span(entry, [("index", _quote(self.source.name))], _DROP_UV)
        _get(self.expected, path)[key] = {"index": self.source.name,
                                          **{k: v for k, v in old.items() if k not in _DROP_UV and k != "index"}}
        self.need_uv_index = True
        if line:
            self.reasons[line] = f"{key}: uv source -> index {self.source.name!r}"

    def _add_span(self, extra: Any, poetry_style: bool) -> None:
        assert self.source is not None
        version = self._version_or_unsure(extra.name)
        via = f" (via {extra.via})" if extra.via else ""
        if poetry_style:
            path: tuple[str, ...] = ("tool", "poetry", "dependencies") if extra.group == "main" else (
                "tool", "poetry", "group", extra.group, "dependencies")
            section = self._section(path)
            if canonicalize_name(extra.name) in self._written(section) | self.added.get(path, set()):
                raise Unsure("declared already")
            constraint = poetry_constraint(version, self.mode)
            style = next((e for e in section.entries if self.body[e.value[0]] == "{"), None)
            # the tomlkit editor looks at the table after its edits: a spliced one starts as it renders
            text = style and self.spliced.get(style.value[0], self.body[style.value[0]:style.value[1]])
            pad = " " if text and text.startswith("{ ") else ""
            self._append_entry(path, section, extra.name,
                               "{" + pad + f"version = {_quote(constraint)}, source = {_quote(self.source.name)}" + pad + "}")
            _get(self.expected, path)[extra.name] = {"version": constraint, "source": self.source.name}
            self.need_poetry_source = True
            self.block_reasons.append((f"{extra.name} =", f"{extra.name}: transitive shared package declared with "
                                                           f"source {self.source.name!r}{via}"))
            return
        array_path = ("project", "dependencies") if extra.group == "main" else ("dependency-groups", extra.group)
        entry, _elements = self._array(array_path)
        arr = _get(self.expected, array_path)
        names = self.added.get(array_path)
        if names is None:  # the names written, and those added
            names = self.added[array_path] = {n for v in _get(self.data, array_path) if (n := requirement_name(v))}
        spec = pep440_specifier(version, self.mode)
        if canonicalize_name(extra.name) not in names:
            self._append_string(entry, extra.name + spec)
            names.add(canonicalize_name(extra.name))
            arr.append(extra.name + spec)
            self.block_reasons.append((f'"{extra.name}{spec}"', f"{extra.name}: transitive shared package declared{via}"))
        if self.uses_uv:
            self._uv_source_span(extra.name, None)
        elif self.uses_pdm:
            self.pdm_packages.append(extra.name)

    def _append_string(self, entry: KeyValue, value: str) -> None:
        """tomlkit's ``Array.append`` on an array written one ``"element",`` a line."""
        vs, ve = entry.value
        raw = self.body[vs:ve]
        lines = raw.split("\n")
        if len(lines) < 3 or lines[0] != "[" or lines[-1] != "]":
            raise Unsure("array shape")
        indent = ""
        for line in lines[1:-1]:
            stripped = line.lstrip(" \t")
            indent = line[:len(line) - len(stripped)]
            if not (indent and stripped.startswith('"') and stripped.endswith('",')
                    and '"' not in stripped[1:-2] and "\\" not in stripped):
                raise Unsure("array shape")
        if not _PLAIN.match(value) or '"' in value or "\\" in value:
            raise Unsure("a string to escape")
        self.inserts.setdefault(ve - 2, []).append(f"\n{indent}\"{value}\",")

    # ---------------------------------------------------------------- the text

    def _apply(self) -> str:
        edits = [(s, e, t) for s, e, t in self.splices] + [(at, at, "".join(ts)) for at, ts in self.inserts.items()]
        edits.sort(key=lambda x: (x[0], x[1]))
        out: list[str] = []
        pos = 0
        for s, e, t in edits:
            if s < pos:
                raise Unsure("overlapping edits")
            out.append(self.body[pos:s])
            out.append(t)
            pos = e
        out.append(self.body[pos:])
        return "".join(out)


__all__ = ["SpanEditor"]
