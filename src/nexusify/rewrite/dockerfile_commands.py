"""Edits inside one shell-form ``RUN`` for the Dockerfile patch (:mod:`.dockerfile_patch`):

* a ``grep -v`` filter of shared names (:class:`~nexusify.formats.dockerfile_runs.RequirementsFilter`)
  loses the patterns that name shared packages, or goes whole (``grep ... > r.txt &&``) with
  ``-r r.txt`` reading the file itself;
* a ``pip install`` of a copied shared folder that the consumer's own install already pulls
  (``redundant``) goes: the word, or the whole ``pip install ... &&`` when nothing else is
  installed by it, or the whole RUN when nothing else is left. When the command cannot be cut
  out with certainty (joined by ``;`` or ``||``), it installs the package by version instead.

Words are found in the instruction's raw lines, with blanks and line continuations between them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from nexusify.errors import Problem
from nexusify.formats.dockerfile_rules import PathInstall
from nexusify.formats.dockerfile_runs import PIP_VALUE_OPTIONS, RequirementsFilter


def _sep(escape: str, least: str = "+") -> str:
    """Blanks and line continuations between words (``least="*"``: maybe none)."""
    return rf"(?:[ \t]|{re.escape(escape)}\r?\n){least}"


def _words(words: Sequence[str], escape: str) -> str:
    """The words with blanks between them (none needed after a redirection: ``>r.txt``)."""
    out = ""
    for k, w in enumerate(words):
        if k:
            out += _sep(escape, "*" if words[k - 1] in (">", ">>") else "+")
        out += re.escape(w)
    return out


def _one(pattern: str, body: str) -> re.Match[str] | None:
    hits = list(re.finditer(pattern, body))
    return hits[0] if len(hits) == 1 else None


def _drop_command(body: str, words: Sequence[str], escape: str) -> str | None:
    """``body`` without the command ``words`` and the ``&&`` joining it (None: not with certainty)."""
    sep, opt = _sep(escape), _sep(escape, "*")
    cmd = _words(words, escape)
    m = _one(rf"(?<![^\s]){cmd}{opt}&&{opt}", body)
    if m is None:
        m = _one(rf"{opt}&&{opt}{cmd}(?=\s*$)", body)
    if m is None:  # the RUN's only command
        m = _one(rf"(?<=RUN){sep}(?:--\S+{sep})*{cmd}(?=\s*$)", body)
        if m is None:
            m = _one(rf"(?i)(?<=RUN){sep}(?:--\S+{sep})*{cmd}(?=\s*$)", body)
        return "" if m is not None else None
    return body[:m.start()] + body[m.end():]


def apply_filters(body: str, filters: Sequence[RequirementsFilter], escape: str, rel: str,
                  problems: list[Problem]) -> str | None:
    sep = _sep(escape)
    for f in filters:
        line = f.instruction.start
        if f.whole:
            cut = _drop_command(body, f.words, escape)
            reads = re.compile(rf"((?:-r|--requirement){sep}){re.escape(f.out)}(?=\s|$|;|&|\|)")
            if cut is None or cut == "" or not reads.search(cut):
                problems.append(Problem("error", "dockerfile-unpatchable", rel, line,
                                        f"cannot remove `{' '.join(f.words)}` safely",
                                        "remove the filter of the shared packages by hand"))
                return None
            m = reads.search(cut)
            while m is not None:
                cut = cut[:m.start()] + m.group(1) + f.file + cut[m.end():]
                m = reads.search(cut, m.start() + len(m.group(1)) + len(f.file))
            body = cut
            continue
        for flag, pattern in f.drop:
            m = _one(rf"{sep}{re.escape(flag)}{sep}{re.escape(pattern)}(?=\s|$)", body)
            if m is None:
                problems.append(Problem("error", "dockerfile-unpatchable", rel, line,
                                        f"cannot remove `{flag} {pattern}` from the grep safely",
                                        "remove the filter of the shared packages by hand"))
                return None
            body = body[:m.start()] + body[m.end():]
    return body


def _targets(segment: Sequence[str], start: int) -> list[str]:
    out: list[str] = []
    i = start
    while i < len(segment):
        w = segment[i]
        if w in PIP_VALUE_OPTIONS:
            i += 2
            continue
        if w in ("-e", "--editable") and i + 1 < len(segment):
            out.append(segment[i + 1])
            i += 2
            continue
        if not w.startswith("-"):
            out.append(w)
        i += 1
    return out


def drop_redundant(body: str, installs: Sequence[PathInstall], escape: str,
                   ) -> tuple[str, list[PathInstall], list[str]]:
    """(body without the redundant installs, the installs still to rewrite by version, the names dropped)."""
    sep = _sep(escape)
    keep = [i for i in installs if not i.redundant]
    dropped: list[str] = []
    by_segment: dict[tuple[str, ...], list[PathInstall]] = {}
    for i in installs:
        if i.redundant:
            by_segment.setdefault(i.segment, []).append(i)
    for segment, group in by_segment.items():
        start = next((k for k, w in enumerate(segment) if w == "install"), 0) + 1
        words = {i.word for i in group}
        if all(t in words for t in _targets(segment, start)):  # nothing else installed by it: all or nothing
            cut = _drop_command(body, segment, escape)
            if cut is None:
                keep += group
            else:
                body = cut
                dropped += [i.name for i in group]
            continue
        for i in group:
            flag = rf"{re.escape(i.editable)}(?:{sep}|=)" if i.editable else ""
            m = _one(rf"{sep}{flag}{re.escape(i.word)}(?=\s|$|;|&|\|)", body)
            if m is None:
                keep.append(i)
                continue
            body = body[:m.start()] + body[m.end():]
            dropped.append(i.name)
    return body, keep, dropped


def edit_commands(body: str, filters: Sequence[RequirementsFilter], installs: Sequence[PathInstall], escape: str,
                  rel: str, problems: list[Problem],
                  rewrite: Callable[[str, list[PathInstall]], str | None]) -> tuple[str | None, list[str]]:
    """The RUN's text with its filters and redundant installs edited and its other path installs
    rewritten by ``rewrite`` ("" when nothing of it is left; None: a problem); and why."""
    why: list[str] = []
    if filters:
        edited = apply_filters(body, filters, escape, rel, problems)
        if edited is None:
            return None, why
        body = edited
        why.append(f"stop filtering {', '.join(sorted({n for f in filters for n in f.names}))} out of the "
                   "requirements: they install it from the index")
    body, keep, dropped = drop_redundant(body, installs, escape)
    if dropped:
        why.append(f"drop the install of {', '.join(sorted(set(dropped)))} from the removed copy: the service's own "
                   "install pulls it from the index")
    if body == "" or re.fullmatch(rf"(?is)\s*RUN(?:{_sep(escape)}--\S+)*[\s{re.escape(escape)}]*", body):
        return "", why
    if keep:
        rewritten = rewrite(body, keep)
        if rewritten is None:
            return None, why
        body = rewritten
        why.append(f"install {', '.join(i.name for i in keep)} by version, not from the removed copy")
    return body, why


__all__ = ["apply_filters", "drop_redundant", "edit_commands"]
