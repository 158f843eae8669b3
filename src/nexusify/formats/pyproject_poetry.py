"""Poetry dependency edits: ``{path = ..}`` entries (inline tables and sub-tables) become
``{version = .., source = ..}`` with every other key, its order and spacing kept."""

from __future__ import annotations

from tomlkit.items import InlineTable, Item, String, Table

from nexusify.formats.pyproject_base import EditorBase, _item, _quote, _walk
from nexusify.model import LocalDependency
from nexusify.syntax.constraints import poetry_constraint

_DROP_POETRY = ("path", "develop")


class PoetryEdits(EditorBase):
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

    def _inline_from_string(self, item: String, constraint: str) -> Item:
        assert self.source is not None
        new = _item("{" + f"version = {_quote(constraint)}, source = {_quote(self.source.name)}" + "}")
        new.trivia.indent = item.trivia.indent
        new.trivia.comment_ws = item.trivia.comment_ws
        new.trivia.comment = item.trivia.comment
        new.trivia.trail = item.trivia.trail
        return new

