"""Writing the source tables a rewritten ``pyproject.toml`` needs (``[[tool.poetry.source]]``,
``[[tool.uv.index]]``, ``[[tool.pdm.source]]``, ``[tool.uv.sources]``): updated in place when one
carries the source's name, else inserted as a text block after the tool's last table."""

from __future__ import annotations

import re
import tomllib
from typing import Any

import tomlkit
from tomlkit.items import AoT, Array

from nexusify.errors import InternalError, ProblemsFound
from nexusify.formats.edits import Edit, EditResult, changed_blocks
from nexusify.formats.pyproject_base import (
    EditorBase,
    _quote,
    _still_local,
    _walk,
    insert_key_after,
)
from nexusify.formats.sources import insert_block
from nexusify.model import LocalDependency


class SourceTableEdits(EditorBase):
    def _finish(self, text: str, deps: list[LocalDependency]) -> EditResult:
        """The edited text (dependency entries done) with its source tables, line endings, BOM,
        checked and diffed against the original."""
        text = self._source_blocks(text)
        if self.nl == "\r\n" and self.body.count("\n") == self.body.count("\r\n"):
            text = re.sub(r"(?<!\r)\n", "\r\n", text)
        if self.bom:
            text = "\ufeff" + text
        self._verify(text, deps)
        return EditResult(text, self._edits(text))

    def _source_blocks(self, text: str) -> str:
        src = self.source
        if src is None:
            return text
        tool = src.tool
        if self._pending_uv_sources:
            lines = ["[tool.uv.sources]"] + [f"{k} = {{ index = {_quote(src.name)} }}" for k in self._pending_uv_sources]
            text = insert_block(text, "tool.uv", lines, self.nl)
        if self.need_poetry_source and tool in ("auto", "poetry"):
            text = self._ensure_aot(text, ("tool", "poetry", "source"), "tool.poetry", [
                ("name", src.name), ("url", src.url), ("priority", src.priority)])
        if self.need_uv_index and tool in ("auto", "uv"):
            fields: list[tuple[str, Any]] = [("name", src.name), ("url", src.url)]
            if src.explicit:
                fields.append(("explicit", True))
            text = self._ensure_aot(text, ("tool", "uv", "index"), "tool.uv", fields)
        if (self.pdm_packages or self.pdm_reconcile) and tool in ("auto", "pdm"):
            fields = [("name", src.name), ("url", src.pdm_url)]
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
                            insert_key_after(entry, keys[-1], key, new)
                        changed = True
                        self.block_reasons.append((f"{key} = {tomlkit.item(value).as_string()}",
                                                   f"[[{header}]] {name!r}: {key} = {value!r}"))
            if changed:
                return tomlkit.dumps(doc)
            return text
        lines = [f"[[{header}]]"] + [f"{k} = {tomlkit.item(v).as_string()}" for k, v in fields]
        self.block_reasons.append((f"[[{header}]]", f"add [[{header}]] {name!r} ({self.source.priority if self.source else ''})"))
        return insert_block(text, prefix, lines, self.nl)

    # ---------------------------------------------------------------- checks and edits

    def _verify(self, text: str, deps: list[LocalDependency], data: dict[str, Any] | None = None) -> None:
        """``text`` (``data``: already parsed) holds none of ``deps`` as a local entry."""
        if data is None:
            try:
                data = tomllib.loads(text.removeprefix("\ufeff"))
            except tomllib.TOMLDecodeError as exc:  # pragma: no cover - a bug in this module
                raise InternalError(f"internal error: the rewritten {self.where} is not valid TOML ({exc})",
                                    hint="nothing was written; please report this") from exc
        left = sorted({d.name for d in deps if _still_local(data, d)})
        if left:  # pragma: no cover - a bug in this module
            raise InternalError(f"internal error: {self.where} still has local dependencies {left} after rewriting",
                                  hint="nothing was written; please report this")

    def _edits(self, text: str) -> list[Edit]:
        old = self.original.removeprefix("\ufeff").splitlines()
        new = text.removeprefix("\ufeff").splitlines()
        edits: list[Edit] = []
        if self.original == text:
            return edits
        for i1, i2, j1, j2 in changed_blocks(old, new):
            reasons = [self.reasons[n] for n in range(i1 + 1, i2 + 1) if n in self.reasons]
            after = "\n".join(new[j1:j2])
            reasons += [r for marker, r in self.block_reasons if marker in after and r not in reasons]
            edits.append(Edit(i1 + 1, "\n".join(old[i1:i2]), after, "; ".join(reasons) or "formatting"))
        if not edits:  # only the line ending of the last line changed
            edits.append(Edit(len(old), old[-1] if old else "", new[-1] if new else "", "final newline"))
        return edits
