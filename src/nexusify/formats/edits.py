"""What an edit of a file changed, as data: ``rewrite --json`` and ``--diff`` list these."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Edit:
    """One changed region: 1-based first line in the original, old and new text, why."""

    line: int
    before: str
    after: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "before": self.before, "after": self.after, "reason": self.reason}


@dataclass
class EditResult:
    text: str
    edits: list[Edit] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.edits)


__all__ = ["Edit", "EditResult"]
