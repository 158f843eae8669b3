"""What a shell-form ``RUN`` does with the consumer's own install: the second half of the one
shared-code rule (:mod:`nexusify.formats.dockerfile_rules` walks the stages and asks this module).

* :func:`segments` splits a RUN into its commands (``&&``, ``||``, ``;``, ``|``), quotes kept;
* :func:`judge_filter`: ``grep -v 'a' requirements.txt > r.txt && pip install -r r.txt`` filters
  a shared package's line out of a requirements file. Once rewrite has made that line a version
  from the index, the filter would leave the package out of the image: the patterns that match
  a shared name go (the whole ``grep ... > r.txt &&`` when every pattern does and ``r.txt`` is only
  read by this RUN's ``-r``); a filter nobody can read with certainty (a pattern that mixes shared
  and other names, ``-f patterns.txt``, ``>>``) is a problem;
* :func:`own_install`: the command that installs the consumer itself (``pip install .``/``/app``,
  ``pip install -r requirements.txt``, ``poetry install``, ``uv sync``, ``pdm install``) and the
  shared packages it pulls from the index, so a ``pip install /deps/a`` of one of them is dropped
  rather than installed twice.

Patterns are matched against the shared packages' names (as written, and with ``-``/``_``/``.``
spelled each way): the lines rewrite writes start with the name. A pattern matching none of them
filters no line rewrite writes, and stays.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from nexusify.errors import Problem
from nexusify.syntax.dockerfile_parse import Instruction

_TOKEN = re.compile(r"""\s*(&&|\|\||;|\||\n|>>|>|(?:"[^"]*"|'[^']*'|\\.|[^\s;&|<>"'\\]|&(?!&))+)""")
_SEPARATORS = {"&&", "||", ";", "|", "\n"}
_PIP = re.compile(r"^(?:python[\d.]*\s+-m\s+)?pip[\d.]*\s+install$|^uv\s+pip\s+install$")
_TARGET_OPTIONS = ("-t", "--target", "--prefix", "--root", "--user", "--system", "--python", "-p")
#: pip/uv pip install options that take a value (the next word): never an install target
PIP_VALUE_OPTIONS = frozenset({
    "-r", "--requirement", "-c", "--constraint", "-i", "--index-url", "--extra-index-url", "-f", "--find-links",
    "-t", "--target", "--prefix", "--root", "--src", "--python-version", "--platform", "--implementation",
    "--abi", "--only-binary", "--no-binary", "--progress-bar", "--log", "--cache-dir", "--trusted-host",
    "--cert", "--client-cert", "--timeout", "--retries", "--proxy", "--config-settings", "-C",
    "--upgrade-strategy", "--python", "-p",
    "-w", "--wheel-dir", "-d", "--dest",  # pip wheel / pip download
})
_TOOL_DIR = {"poetry": ("-C", "--directory", "-P", "--project"), "uv": ("--directory", "--project"),
             "pdm": ("-p", "--project")}
_TOOL_PARTIAL = ("--only-group", "--only-dev", "--no-install-package", "--no-default", "--no-deps")
_GREP_FLAGS = {"v": "invert", "i": "case", "E": "extended", "F": "fixed", "w": "word", "x": "line",
               "s": "", "h": "", "H": ""}
_GREP_LONG = {"--invert-match": "v", "--ignore-case": "i", "--extended-regexp": "E", "--fixed-strings": "F",
              "--word-regexp": "w", "--line-regexp": "x", "--no-messages": "s"}


@dataclass(frozen=True)
class Segment:
    """One command of a RUN: its words (quotes kept) and the operator after it ("" at the end)."""

    words: tuple[str, ...]
    after: str


def segments(args: str) -> list[Segment]:
    out: list[Segment] = []
    words: list[str] = []
    for m in _TOKEN.finditer(args):
        token = m.group(1)
        if token in _SEPARATORS:
            out.append(Segment(tuple(words), token))
            words = []
        elif token != "\\\n":
            words.append(token)
    out.append(Segment(tuple(words), ""))
    return [s for s in out if s.words]


def unquote(word: str) -> str:
    return re.sub(r"""'([^']*)'|"([^"]*)"|\\(.)""", lambda m: next(g for g in m.groups() if g is not None), word)


def command(words: tuple[str, ...]) -> tuple[str, int]:
    """(the command as normalised text, where its arguments start), leading ``VAR=x`` skipped."""
    k = 0
    while k < len(words) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[k]):
        k += 1
    for n in (4, 3, 2, 1):
        text = " ".join(words[k:k + n])
        if len(words) - k >= n and (_PIP.match(text) or text in ("poetry install", "uv sync", "pdm install",
                                                                 "pdm sync", "grep", "cd")):
            return text, k + n
    return (words[k] if k < len(words) else ""), k + 1


# --------------------------------------------------------------------------- grep filters


@dataclass(frozen=True)
class RequirementsFilter:
    """``grep -v PATTERN FILE > OUT`` whose patterns drop shared packages' lines."""

    instruction: Instruction
    words: tuple[str, ...]  # the grep command, as written (up to and including OUT)
    file: str  # the filtered file, as written
    out: str  # the output file, as written
    names: tuple[str, ...]  # shared packages it filters out
    drop: tuple[tuple[str, str], ...]  # the (-e, pattern) pairs that go, as written
    whole: bool  # every pattern filters a shared name: the grep goes, ``-r OUT`` reads FILE


def _pattern(raw: str, flags: set[str]) -> re.Pattern[str] | None:
    if "F" in flags:
        text = re.escape(raw)
    elif "E" in flags:
        text = raw
    else:  # basic regular expression: \| \( \) \{ \} \+ \? are the operators, the bare ones literal
        text = re.sub(r"\\([|(){}+?])|([|(){}+?])", lambda m: m.group(1) or "\\" + (m.group(2) or ""), raw)
    if "w" in flags:
        text = rf"(?<![\w])(?:{text})(?![\w])"
    if "x" in flags:
        text = rf"^(?:{text})$"
    try:
        return re.compile(text, re.IGNORECASE if "i" in flags else 0)
    except re.error:
        return None


def spellings(name: str) -> set[str]:
    base = re.sub(r"[-_.]+", "-", name)
    return {name, base, base.replace("-", "_"), base.replace("-", "."), base.lower(), base.lower().replace("-", "_")}


def judge_filter(path: str, instr: Instruction, seg: Segment, nxt: Segment | None, rest: Iterable[Segment],
                 shared_names: Iterable[str], out_used_elsewhere: Callable[[str], bool],
                 problems: list[Problem]) -> RequirementsFilter | None:
    """The filter a ``grep`` command of ``instr`` is (None: not a ``grep -v`` of a shared name).
    ``nxt``/``rest``: the commands after it in the RUN; ``out_used_elsewhere(OUT)``: whether the
    Dockerfile reads OUT outside this RUN."""
    cmd, k = command(seg.words)
    if cmd != "grep":
        return None
    flags: set[str] = set()
    patterns: list[tuple[str | None, str]] = []  # (the -e word or None, the pattern word)
    operands: list[str] = []
    out: str | None = None
    unsure = ""
    from_file = False  # patterns read from a file: what it filters is unknown
    words = seg.words
    i = k
    while i < len(words):
        w = words[i]
        if w in (">", ">>"):
            if w == ">>" or i + 1 >= len(words):
                unsure = "it appends to its output (>>)"
            out = words[i + 1] if i + 1 < len(words) else None
            i += 2
            continue
        if w.startswith(">"):
            out = w[1:]
        elif w in ("-e", "--regexp") and i + 1 < len(words):
            patterns.append((w, words[i + 1]))
            i += 2
            continue
        elif re.fullmatch(r"-[A-Za-z]+e", w) and all(c in _GREP_FLAGS for c in w[1:-1]) and i + 1 < len(words):
            flags.update(w[1:-1])  # -ve PATTERN
            patterns.append((None, words[i + 1]))
            i += 2
            continue
        elif w in _GREP_LONG:
            flags.add(_GREP_LONG[w])
        elif w in ("-f", "--file") or (w.startswith("-") and not w.startswith("--") and "f" in w[1:]):
            unsure = unsure or f"`{w}` is an option nexusify does not read (patterns from a file)"
            flags.update(c for c in w[1:] if c in _GREP_FLAGS)
            patterns.append((None, ""))  # whatever the file holds
            from_file = True
            i += 2
            continue
        elif w.startswith("--regexp="):
            patterns.append((None, w.split("=", 1)[1]))
        elif w.startswith(("--color", "--colour", "--binary-files", "--label")):
            pass  # changes nothing it writes to a file
        elif w.startswith("--"):
            unsure = unsure or f"`{w}` is an option nexusify does not read"
        elif w.startswith("-") and len(w) > 1 and all(c in _GREP_FLAGS for c in w[1:]):
            flags.update(w[1:])
        else:
            operands.append(w)
        i += 1
    if "v" not in flags:
        return None
    if not patterns and operands:
        patterns.append((None, operands.pop(0)))
    patterns = [p for p in patterns if p[1]]
    names = set(shared_names)
    hits: list[tuple[tuple[str | None, str], list[str]]] = []
    mixed = False

    def matching(raw: str) -> list[str] | None:
        rx = _pattern(raw, flags)
        return None if rx is None else sorted(n for n in names if any(rx.search(s) for s in spellings(n)))

    for pair in patterns:
        raw = unquote(pair[1])
        matched = matching(raw)
        if matched is None:
            unsure = unsure or f"its pattern {pair[1]} is not a regular expression nexusify can read"
            continue
        hits.append((pair, matched))
        branches = re.split(r"\\\||\|", raw) if "F" not in flags else [raw]
        if matched and len(branches) > 1:  # an alternation: every branch must name a shared package
            mixed = mixed or any(not matching(b) for b in branches)
    filtered = sorted({n for _p, m in hits for n in m})
    if not filtered and not (from_file and operands and operands[-1].strip("'\"").endswith(".txt")):
        return None  # filters no line rewrite writes (a requirements file read with unknown patterns: a problem)
    filtered = filtered or ["shared packages"]
    line = instr.start

    def problem(why: str) -> None:
        problems.append(Problem(
            "error", "dockerfile-filters-shared", path, line,
            f"`{' '.join(words)}` filters {', '.join(filtered)} out of the requirements, and rewrite makes that "
            f"line a version from the index: {why}, so it cannot be rewritten with certainty",
            "remove the filter for the shared packages by hand (the rewritten requirements install them from "
            "the index)"))

    if unsure:
        problem(unsure)
        return None
    if mixed:
        problem("a pattern also matches other lines (an alternation)")
        return None
    if len(operands) != 1 or out is None:
        problem("it does not filter one file into one output file")
        return None
    file, target = operands[0], out
    if words[-1] not in (target, ">" + target):
        problem(f"something follows its output file {target}")
        return None
    whole = all(m for _p, m in hits)
    if whole:
        reads = [s for s in rest if target in s.words]
        by_r = all(s.words[s.words.index(target) - 1] in ("-r", "--requirement") for s in reads)
        if seg.after != "&&" or nxt is None or not reads or not by_r or out_used_elsewhere(target):
            problem(f"its output {target} is used beyond this RUN's `pip install -r {target}`")
            return None
        return RequirementsFilter(instr, words, file, target, tuple(filtered), (), True)
    drop = tuple((p[0], p[1]) for p, m in hits if m and p[0] is not None)
    if len(drop) != sum(1 for _p, m in hits if m):
        problem("its pattern is not a separate -e argument")
        return None
    return RequirementsFilter(instr, words, file, target, tuple(filtered), drop, False)


# --------------------------------------------------------------------------- the consumer's own install


@dataclass(frozen=True)
class OwnInstall:
    """A command installing the consumer itself (or its requirements file): the shared packages it
    pulls, and the environment it installs into (None: the tool's own, which counts for any)."""

    names: frozenset[str]
    env: tuple[str, ...] | None


@dataclass(frozen=True)
class ProjectPulls:
    """What installing the consumer pulls: its folder and pyproject (runtime dependencies), and
    each requirements file (host path -> the shared packages it names, its includes' too)."""

    folder: Path
    pyproject: Path
    runtime: frozenset[str]
    requirements: Mapping[Path, frozenset[str]]


def pip_env(words: tuple[str, ...], start: int, cmd: str) -> tuple[str, ...]:
    """The options that choose where pip installs, with the installer: equal tuples, one environment."""
    out = ["uv" if cmd.startswith("uv") else "pip"]
    for i, w in enumerate(words[start:], start):
        opt = w.split("=", 1)[0]
        if opt in _TARGET_OPTIONS:
            out.append(w if "=" in w or opt in ("--user", "--system") else f"{w}={words[i + 1] if i + 1 < len(words) else ''}")
    return tuple(out)


def own_install(seg: Segment, cwd: str, host_of: Callable[[str], Path | None],
                pulls: ProjectPulls) -> OwnInstall | None:
    cmd, k = command(seg.words)
    words = seg.words
    if _PIP.match(cmd):
        if "--no-deps" in words:
            return None
        names: set[str] = set()
        i = k
        while i < len(words):
            w = unquote(words[i])
            if w in ("-r", "--requirement") and i + 1 < len(words):
                host = host_of(posixpath.join(cwd, unquote(words[i + 1])))
                names |= pulls.requirements.get(host, frozenset()) if host else frozenset()
                i += 2
                continue
            if w in PIP_VALUE_OPTIONS:
                i += 2
                continue
            if w in ("-e", "--editable") or w.startswith("-"):
                i += 1
                continue
            target = re.sub(r"\[[^\]]*\]$", "", w.removeprefix("file://"))
            if host_of(posixpath.join(cwd, target)) == pulls.folder:
                names |= pulls.runtime
            i += 1
        return OwnInstall(frozenset(names), pip_env(words, k, cmd)) if names else None
    tool = cmd.split()[0] if cmd in ("poetry install", "uv sync", "pdm install", "pdm sync") else None
    if tool is None or any(w.split("=", 1)[0] in _TOOL_PARTIAL for w in words):
        return None
    if tool == "poetry" and any(w.startswith("--only") and "main" not in w for w in words) and "main" not in words:
        return None
    where = cwd
    for i, w in enumerate(words):
        opt, eq, val = w.partition("=")
        if opt in _TOOL_DIR[tool]:
            where = posixpath.join(cwd, unquote(val if eq else (words[i + 1] if i + 1 < len(words) else "")))
    if host_of(where) == pulls.folder or host_of(posixpath.join(where, "pyproject.toml")) == pulls.pyproject:
        return OwnInstall(pulls.runtime, None)
    return None


__all__ = ["PIP_VALUE_OPTIONS", "OwnInstall", "ProjectPulls", "RequirementsFilter", "Segment", "command", "judge_filter", "own_install",
           "pip_env", "segments", "spellings", "unquote"]
