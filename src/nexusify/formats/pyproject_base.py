"""The core of the byte-preserving ``pyproject.toml`` editor: parsed document, problems, and the
deferred additions (keys added to a table are rendered as text after one tomlkit dump; tomlkit
parsing is the cost of editing). :mod:`nexusify.formats.pyproject_poetry`,
:mod:`nexusify.formats.pyproject_pep621` and :mod:`nexusify.formats.pyproject_sources` add the
edits of each table kind; :mod:`nexusify.formats.pyproject_edit` puts them together.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import tomlkit
from packaging.utils import canonicalize_name
from tomlkit.container import Container
from tomlkit.items import InlineTable, Item, Table

from nexusify.errors import InternalError, TomlError
from nexusify.formats.sources import SourceSpec
from nexusify.model import LocalDependency


def _newline(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def _item(value_toml: str, trail: str = "\n", indent: str = "") -> Item:
    item = tomlkit.value(value_toml)  # parses just the value, keeping its exact formatting
    item.trivia.trail = trail
    item.trivia.indent = indent
    return item


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


def insert_key_after(table: Table, after: str | None, key: str, item: Item) -> None:
    """Put ``key = item`` right after the key ``after`` (None: after the table's last key), through
    tomlkit's public API only: the keys that follow ``after`` are taken out and appended again after
    the new one, each keeping its own trivia (indent, comment, line ending)."""
    keys = list(table)
    tail = keys[keys.index(after) + 1:] if after in keys else []
    moved = [(k, table.value.item(k)) for k in tail]
    for k in tail:
        del table[k]
    table.raw_append(key, item)
    for k, v in moved:
        table.raw_append(k, v)


def _walk_cached(editor: EditorBase, path: tuple[str, ...]) -> Any:
    found = editor.walks.get(path)
    if found is None:
        found = editor.walks[path] = _walk(editor.doc, path)
    return found


def _walk(doc: Container, path: Sequence[str]) -> Any:
    cur: Any = doc
    for key in path:
        cur = cur[key]
    return cur


class EditorBase:
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
        if data is None:
            try:
                data = tomllib.loads(self.body)
            except tomllib.TOMLDecodeError:
                _ = self.doc  # tomlkit's message (line and column) when it refuses the text too
                raise
        self.data = data
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
        self.walks: dict[tuple[str, ...], Any] = {}
        self._uv_lines: dict[str, int] | None = None
        self._pad: dict[int, str] = {}
        self._array_names: dict[int, set[str]] = {}

    @functools.cached_property
    def doc(self) -> tomlkit.TOMLDocument:
        """The tomlkit document, parsed when first needed (the span editor never needs it)."""
        try:
            return tomlkit.parse(self.body)
        except Exception as exc:  # tomlkit's ParseError carries line/col in its message
            raise TomlError(f"invalid TOML: {exc}", path=self.where) from exc

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
                insert_key_after(item, after, name, new)
            after = name
        for name in drop:
            if name in item:
                del item[name]

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
            insert_key_after(table, keys[-1] if keys else None, marker, item)
            self._placeholders[marker] = "".join(f"{indent}{_key(k)} = {v}{self.nl}" for k, v in pairs)
        self._deferred.clear()

    def _expand(self, text: str) -> str:
        for marker, block in self._placeholders.items():
            text, count = re.subn(rf"^[ \t]*{marker} = 0\r?\n", block.replace("\\", "\\\\"), text, count=1,
                                  flags=re.M)
            if count != 1:  # pragma: no cover - a bug in this module
                raise InternalError(f"internal error: lost an insertion point in {self.where}",
                                      hint="nothing was written; please report this")
        return text

    def _append_key(self, table: Table, key: str, item: Item) -> None:
        keys = [k for k in table]
        if keys:
            last = table[keys[-1]]
            item.trivia.indent = last.trivia.indent
        insert_key_after(table, keys[-1] if keys else None, key, item)


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
