"""What an edit of a file changed, as data: ``rewrite --json`` and ``--diff`` list these."""

from __future__ import annotations

import bisect
import difflib
import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# a gap without a unique line is compared line by line (difflib, quadratic) only up to this many
# line pairs; a larger one is reported as one changed block
_SMALL_GAP = 250_000


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


def changed_blocks(old: Sequence[str], new: Sequence[str]) -> list[tuple[int, int, int, int]]:
    """The regions where ``new`` differs from ``old``, as ``(i1, i2, j1, j2)``: ``old[i1:i2]``
    became ``new[j1:j2]``, in order, adjacent regions merged.

    Near linear whatever the text holds (a patience diff): the common head and tail are skipped,
    lines found exactly once in both sides anchor the rest (their longest increasing run), and
    only the small gaps left between anchors are compared line by line. difflib on a whole file
    is quadratic in its repeated lines (8,000 comment lines took 5 s)."""
    out: list[tuple[int, int, int, int]] = []
    stack = [(0, len(old), 0, len(new))]
    while stack:
        alo, ahi, blo, bhi = stack.pop()
        while alo < ahi and blo < bhi and old[alo] == new[blo]:
            alo, blo = alo + 1, blo + 1
        while alo < ahi and blo < bhi and old[ahi - 1] == new[bhi - 1]:
            ahi, bhi = ahi - 1, bhi - 1
        if alo == ahi and blo == bhi:
            continue
        anchors = [] if alo == ahi or blo == bhi else _unique_anchors(old, alo, ahi, new, blo, bhi)
        if anchors:
            bounds = [(alo - 1, blo - 1), *anchors, (ahi, bhi)]
            stack.extend((i + 1, i2, j + 1, j2) for (i, j), (i2, j2) in itertools.pairwise(bounds))
        elif alo == ahi or blo == bhi or (ahi - alo) * (bhi - blo) > _SMALL_GAP:
            out.append((alo, ahi, blo, bhi))
        else:
            sm = difflib.SequenceMatcher(a=old[alo:ahi], b=new[blo:bhi], autojunk=False)
            out.extend((alo + i1, alo + i2, blo + j1, blo + j2)
                       for tag, i1, i2, j1, j2 in sm.get_opcodes() if tag != "equal")
    out.sort()
    merged: list[tuple[int, int, int, int]] = []
    for block in out:
        if merged and merged[-1][1] == block[0] and merged[-1][3] == block[2]:
            merged[-1] = (merged[-1][0], block[1], merged[-1][2], block[3])
        else:
            merged.append(block)
    return merged


def _unique_anchors(a: Sequence[str], alo: int, ahi: int, b: Sequence[str], blo: int, bhi: int) -> list[tuple[int, int]]:
    """Lines found once in ``a[alo:ahi]`` and once in ``b[blo:bhi]``, as ``(i, j)`` pairs, the
    longest run increasing in both (patience sorting)."""
    count_a, count_b = Counter(a[alo:ahi]), Counter(b[blo:bhi])
    where_b = {b[j]: j for j in range(blo, bhi) if count_b[b[j]] == 1}
    pairs = [(i, where_b[a[i]]) for i in range(alo, ahi) if count_a[a[i]] == 1 and a[i] in where_b]
    tails: list[int] = []  # tails[k]: the smallest j ending a run of length k + 1
    tail_at: list[int] = []  # index in pairs of that run's end
    back: list[int] = []
    for n, (_, j) in enumerate(pairs):
        k = bisect.bisect_left(tails, j)
        if k == len(tails):
            tails.append(j)
            tail_at.append(n)
        else:
            tails[k], tail_at[k] = j, n
        back.append(tail_at[k - 1] if k else -1)
    run: list[tuple[int, int]] = []
    n = tail_at[-1] if tail_at else -1
    while n >= 0:
        run.append(pairs[n])
        n = back[n]
    return run[::-1]


__all__ = ["Edit", "EditResult", "changed_blocks"]
