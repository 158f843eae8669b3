"""PEP 621 / 735 dependency edits: ``name @ file:..`` strings in arrays become ``name<spec>``, and
uv's ``[tool.uv.sources]`` path/workspace entries become ``{ index = .. }``."""

from __future__ import annotations

import re

from packaging.utils import canonicalize_name
from tomlkit.items import Array, InlineTable, String, Table

from nexusify.formats.pyproject_base import EditorBase, _quote, _walk, _walk_cached
from nexusify.formats.sources import header_key, header_line
from nexusify.model import LocalDependency
from nexusify.syntax.constraints import admits, pep440_specifier

_DROP_UV = ("path", "editable", "workspace", "package")



def by_version(dep: LocalDependency, value: str, spec: str) -> str:
    """The PEP 508 string ``value`` (``name @ file:///...``, ``-e file:///...#egg=name``, a PDM
    ``-e`` dev entry) naming ``dep`` by the version specifier ``spec`` instead, its extras and
    marker kept: the one rule both pyproject editors (tomlkit's and the span editor) write."""
    body = value.strip()
    if body.startswith("-e ") or body.startswith("--editable "):  # PDM editable dev dependency
        body = body.split(None, 1)[1].strip()
    head, at, rest = body.partition("@")
    if not at or "file:" in head or "{root" in head:  # "file:///...#egg=name": no name written
        head = dep.name + (f"[{','.join(dep.extras)}]" if dep.extras else "")
        rest = body
    marker = rest.partition(";")[2].strip()
    return head.strip() + spec + (f"; {marker}" if marker else "")

class Pep621Edits(EditorBase):
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
        spec = pep440_specifier(version, self.mode)
        self._set_string(arr, index, by_version(dep, value, spec))
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
            start = header_line(self.body, "tool.uv.sources")
            if start is not None:
                rx = re.compile(r"^\s*[\"']?([^\"'=\s]+)[\"']?\s*=")
                for n, line in enumerate(self.body.splitlines()[start:], start + 1):
                    if header_key(line):
                        break
                    m = rx.match(line)
                    if m:
                        self._uv_lines.setdefault(m.group(1), n)
        return self._uv_lines.get(key)

