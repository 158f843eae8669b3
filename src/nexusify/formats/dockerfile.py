"""Dockerfiles: a real instruction parser, the audit of shared-code copies, and the patcher.

:func:`parse` follows the Dockerfile reference: parser directives at the top (``# escape=``
changes the line-continuation character, e.g. to a backtick on Windows images), line
continuations, comment lines inside a continued instruction, empty continuation lines,
heredocs (``<<EOF``, ``<<-EOF``, ``<<"EOF"``; several per instruction), JSON (exec) form,
leading flags (``--from=``, ``--chown=``, ``--mount=``, ``--platform=``), ``FROM ... AS name``
stages. Each :class:`Instruction` knows its 1-based first and last physical line.

:func:`shared_copies` lists ``COPY``/``ADD`` sources that are shared-package folders (or a
folder holding them): the audit reports them, since they break a build whose context is the
service folder.

:func:`patch` (used by ``nexusify rewrite``) makes a Dockerfile install shared packages from
the index instead:

* drops the shared sources of ``COPY``/``ADD`` instructions (the whole instruction when no
  source remains; a ``COPY --from=<stage>`` of a folder those copies filled goes too);
* declares ``ARG NEXUS_INDEX_URL=<index>`` in each stage that installs, right before the first
  install step, and adds ``--index-url "$NEXUS_INDEX_URL"`` to every ``pip install`` /
  ``uv pip install`` (Poetry, ``uv sync`` and PDM read the source written into pyproject.toml);
* when the index needs credentials, mounts a netrc as a BuildKit secret on those steps:
  ``RUN --mount=type=secret,id=netrc,target=/root/.netrc pip install ...``. The password
  never goes into an ``ARG`` or ``ENV`` (both are kept in the image history).

Every other line is kept byte for byte. Shapes that cannot be patched safely (an exec-form
``RUN`` that installs, a different ``--index-url`` already given, an install step running as
a non-root ``USER`` with credentials...) are reported as problems with file:line, and the
file is left untouched.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from nexusify.errors import Problem
from nexusify.formats.pyproject_edit import Edit

INDEX_ARG = "NEXUS_INDEX_URL"
SECRET_ID = "netrc"
SECRET_TARGET = "/root/.netrc"
_DIRECTIVE = re.compile(r"^#\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(.*?)\s*$")
_KNOWN_DIRECTIVES = {"escape", "syntax", "check"}
_HEREDOC = re.compile(r"(?<!<)<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_.-]*)\2")
_PIP_INSTALL = re.compile(r"(?<![\w.-])((?:uv\s+pip|(?:python[\d.]*\s+-m\s+)?pip[\d.]*)\s+install)(?=\s|$)")
_OTHER_INSTALL = re.compile(r"(?<![\w.-])(poetry\s+install|uv\s+sync|pdm\s+(?:install|sync))(?=\s|$)")
_INDEX_OPT = re.compile(r"(?:--index-url|-i)(?:\s+|=)(\S+)")


@dataclass(frozen=True)
class Heredoc:
    delimiter: str
    strip_tabs: bool
    first_line: int  # first body line (1-based)
    last_line: int  # the line holding the closing delimiter


@dataclass
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY...
    start: int  # 1-based first physical line
    end: int  # 1-based last physical line (heredoc bodies included)
    args: str  # the logical arguments after the keyword, continuations joined, flags included
    flags: list[tuple[str, str | None]] = field(default_factory=list)
    words: list[str] = field(default_factory=list)  # arguments after the flags (JSON items or words)
    json_form: bool = False
    heredocs: list[Heredoc] = field(default_factory=list)
    stage: int = -1  # index of the FROM stage it belongs to (-1 = before the first FROM)
    stage_name: str | None = None

    def flag(self, name: str) -> str | None:
        for n, v in self.flags:
            if n == name:
                return v if v is not None else ""
        return None

    def has_flag(self, name: str) -> bool:
        return any(n == name for n, _ in self.flags)

    @property
    def sources(self) -> list[str]:
        """COPY/ADD sources (heredoc sources appear as ``<<NAME``)."""
        if self.keyword not in ("COPY", "ADD") or len(self.words) < 2:
            return []
        return self.words[:-1]

    @property
    def dest(self) -> str | None:
        if self.keyword not in ("COPY", "ADD") or not self.words:
            return None
        return self.words[-1]

    @property
    def image(self) -> str | None:
        return self.words[0] if self.keyword == "FROM" and self.words else None

    @property
    def alias(self) -> str | None:
        if self.keyword == "FROM" and len(self.words) >= 3 and self.words[1].lower() == "as":
            return self.words[2]
        return None


@dataclass
class Dockerfile:
    instructions: list[Instruction]
    directives: dict[str, str]
    escape: str
    lines: list[str]  # physical lines, with their line endings

    @property
    def newline(self) -> str:
        return "\r\n" if any(line.endswith("\r\n") for line in self.lines) else "\n"


class DockerfileSyntaxError(ValueError):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


# --------------------------------------------------------------------------- parsing


def parse(text: str) -> list[Instruction]:
    """The instructions of a Dockerfile, with 1-based line ranges (see the module docstring)."""
    return parse_file(text).instructions


def parse_file(text: str) -> Dockerfile:
    lines = text.removeprefix("\ufeff").splitlines(keepends=True)
    directives: dict[str, str] = {}
    i = 0
    while i < len(lines):
        m = _DIRECTIVE.match(lines[i].rstrip("\r\n"))
        if not m or m.group(1).lower() not in _KNOWN_DIRECTIVES or m.group(1).lower() in directives:
            break
        directives[m.group(1).lower()] = m.group(2)
        i += 1
    escape = directives.get("escape", "\\")
    if escape not in ("\\", "`"):
        raise DockerfileSyntaxError(1, f"invalid escape directive {escape!r} (only \\ and ` are allowed)")
    out: list[Instruction] = []
    stage, stage_name = -1, None
    n = len(lines)
    while i < n:
        raw = lines[i].rstrip("\r\n")
        if not raw.strip() or raw.lstrip().startswith("#"):
            i += 1
            continue
        start = i
        logical = ""
        while True:
            body = lines[i].rstrip("\r\n")
            stripped = body.rstrip()
            if stripped.endswith(escape):
                logical += stripped[: -len(escape)]
                i += 1
                # comment lines and empty lines inside a continuation are dropped
                while i < n and (not lines[i].strip() or lines[i].lstrip().startswith("#")):
                    i += 1
                if i >= n:
                    break
                continue
            logical += body
            i += 1
            break
        end = i  # exclusive, 0-based
        keyword, _, args = logical.strip().partition(" ")
        if "\t" in keyword:
            keyword, _, rest = keyword.partition("\t")
            args = rest + " " + args
        keyword = keyword.upper()
        args = args.strip()
        instr = Instruction(keyword=keyword, start=start + 1, end=end, args=args)
        _split_args(instr)
        if keyword in ("RUN", "COPY", "ADD"):
            for m in _HEREDOC.finditer(args):
                strip_tabs, delim = m.group(1) == "-", m.group(3)
                first = i
                while i < n:
                    candidate = lines[i].rstrip("\r\n")
                    if strip_tabs:
                        candidate = candidate.lstrip("\t")
                    i += 1
                    if candidate == delim:
                        break
                else:
                    raise DockerfileSyntaxError(start + 1, f"heredoc <<{delim} is never closed")
                instr.heredocs.append(Heredoc(delim, strip_tabs, first + 1, i))
            instr.end = i if instr.heredocs else end
        if keyword == "FROM":
            stage += 1
            stage_name = instr.alias
        instr.stage, instr.stage_name = stage, stage_name
        out.append(instr)
    return Dockerfile(out, directives, escape, lines)


def _split_args(instr: Instruction) -> None:
    rest = instr.args
    if instr.keyword in ("FROM", "RUN", "COPY", "ADD", "HEALTHCHECK"):
        while rest.startswith("--"):
            token, _, rest = rest.partition(" ")
            rest = rest.lstrip()
            name, eq, value = token[2:].partition("=")
            instr.flags.append((name, value if eq else None))
    if rest.startswith("["):
        items: object
        try:
            items = json.loads(rest)
        except json.JSONDecodeError:
            items = None
        if isinstance(items, list) and all(isinstance(v, str) for v in items):
            instr.words, instr.json_form = items, True
            return
    instr.words = rest.split()


# --------------------------------------------------------------------------- shared copies


def _segments(path: str) -> list[str]:
    return [s for s in PurePosixPath(path.replace("\\", "/")).parts if s not in ("/", ".", "..")]


def _glob_free(source: str) -> str:
    parts = []
    for seg in source.replace("\\", "/").split("/"):
        if any(c in seg for c in "*?["):
            break
        parts.append(seg)
    return "/".join(parts) or "."


def _is_remote(source: str) -> bool:
    return "://" in source or source.startswith("git@") or source.startswith("<<")


class SharedMatcher:
    """Decides whether a COPY/ADD source is shared code; built once for many Dockerfiles.

    Absolute host paths are compared exactly (the source is the folder, holds it, or is inside
    it); other strings (container paths like ``/shared/packages``) by path segments."""

    def __init__(self, shared: Iterable[Path | str]) -> None:
        self.host: list[str] = []
        self.segments: list[list[str]] = []
        for item in shared:
            if isinstance(item, Path) and item.is_absolute():
                self.host.append(os.path.normpath(str(item)))
            else:
                target = _segments(str(item))
                if target:
                    self.segments.append(target)

    def __call__(self, source: str, context: Path) -> bool:
        if _is_remote(source) or "$" in source:
            return False
        clean = _glob_free(source)
        ctx = os.path.normpath(str(context))
        resolved = os.path.normpath(os.path.join(ctx, clean.lstrip("/")))
        if resolved == ctx:
            return False  # the whole context: whatever is in it is part of the service
        for shared in self.host:
            if resolved == shared or shared.startswith(resolved + os.sep) or resolved.startswith(shared + os.sep):
                return True
        if not self.segments:
            return False
        seg = _segments(clean)
        if not seg:
            return False
        for target in self.segments:
            inside = seg[: len(target)] == target  # the shared folder itself, or a part of it
            holder = len(seg) >= 2 and target[-len(seg):] == seg  # names the tail of a shared path
            escaping = clean.startswith("..") and any(
                seg[k:k + len(target)] == target for k in range(len(seg)))  # ../../<shared>/...
            if inside or holder or escaping:
                return True
        return False


def source_is_shared(source: str, context: Path, shared: Sequence[Path | str] | SharedMatcher) -> bool:
    """Whether a COPY/ADD ``source`` (relative to ``context``) is a shared folder, holds one, or is
    inside one (see :class:`SharedMatcher`)."""
    matcher = shared if isinstance(shared, SharedMatcher) else SharedMatcher(shared)
    return matcher(source, context)


def shared_copies(path: Path, text: str, shared: Iterable[Path | str] | SharedMatcher,
                  context: Path | None = None) -> list[tuple[int, str]]:
    """(line, source) for every COPY/ADD source that is shared code (see :func:`source_is_shared`).

    ``context`` is the build context (default: the Dockerfile's folder). ``COPY --from`` copies
    from a stage or image, not from the context, and is not reported.
    """
    ctx = (context or path.parent).resolve()
    matcher = shared if isinstance(shared, SharedMatcher) else SharedMatcher(shared)
    found: list[tuple[int, str]] = []
    for instr in parse(text):
        if instr.keyword not in ("COPY", "ADD") or instr.has_flag("from"):
            continue
        for src in instr.sources:
            if matcher(src, ctx):
                found.append((instr.start, src))
    return found


def guess_context(text: str, project_dir: Path, root: Path) -> Path:
    """The build context a Dockerfile is written for: the monorepo ``root`` when its COPY/ADD
    sources name the project's own folder from the root (``COPY projects/worker /src``, as in
    ``docker build -f projects/worker/Dockerfile .``), else the project folder."""
    try:
        rel = project_dir.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return project_dir
    if rel in ("", "."):
        return project_dir
    try:
        instructions = parse(text)
    except DockerfileSyntaxError:
        return project_dir
    for instr in instructions:
        if instr.keyword not in ("COPY", "ADD") or instr.has_flag("from"):
            continue
        for src in instr.sources:
            clean = _glob_free(src).removeprefix("./").strip("/")
            if clean == rel or clean.startswith(rel + "/"):
                return root
    return project_dir


# --------------------------------------------------------------------------- patching


@dataclass
class PatchResult:
    path: Path
    text: str
    edits: list[Edit]
    problems: list[Problem]

    @property
    def changed(self) -> bool:
        return bool(self.edits)


@dataclass
class _Change:
    start: int  # 0-based first line replaced
    end: int  # 0-based exclusive
    new: list[str]  # replacement lines (with endings)
    reason: str


def patch(
    path: Path,
    text: str,
    shared: Sequence[Path | str] | SharedMatcher,
    *,
    index_url: str,
    auth: bool = False,
    context: Path | None = None,
    arg_name: str = INDEX_ARG,
    secret_id: str = SECRET_ID,
) -> PatchResult:
    """Patch one Dockerfile (see the module docstring). Problems leave the text unchanged."""
    rel = str(path)
    try:
        df = parse_file(text)
    except DockerfileSyntaxError as exc:
        return PatchResult(path, text, [], [Problem("error", "dockerfile-syntax", rel, exc.line, exc.message)])
    ctx = (context or path.parent).resolve()
    matcher = shared if isinstance(shared, SharedMatcher) else SharedMatcher(shared)
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    nl = df.newline
    lines = df.lines
    problems: list[Problem] = []
    changes: list[_Change] = []
    removed_dests: dict[int, list[str]] = {}
    stage_names: dict[str, int] = {}

    for instr in df.instructions:
        if instr.keyword == "FROM" and instr.alias:
            stage_names[instr.alias.lower()] = instr.stage
        if instr.keyword not in ("COPY", "ADD") or instr.heredocs:
            continue
        src_from = instr.flag("from")
        if src_from is not None:
            stage = stage_names.get(src_from.lower(), int(src_from) if src_from.isdigit() else None)
            gone = removed_dests.get(stage, []) if stage is not None else []
            drop = [s for s in instr.sources if any(_under(s, d) for d in gone)]
        else:
            drop = [s for s in instr.sources if matcher(s, ctx)]
        if not drop:
            continue
        keep = [s for s in instr.sources if s not in drop]
        if not keep:
            if instr.dest:
                removed_dests.setdefault(instr.stage, []).append(instr.dest)
            changes.append(_Change(instr.start - 1, instr.end, [], f"drop {instr.keyword} of shared code "
                                   f"({', '.join(drop)}): shared packages come from the index"))
            continue
        new = _remove_sources(lines[instr.start - 1:instr.end], drop, instr, df.escape)
        if new is None:
            problems.append(Problem("error", "dockerfile-unpatchable", rel, instr.start,
                                    f"{instr.keyword} mixes shared code ({', '.join(drop)}) with other sources in a "
                                    "shape that cannot be edited safely",
                                    "split the instruction: one COPY for the shared folders, one for the rest"))
            continue
        changes.append(_Change(instr.start - 1, instr.end, new,
                               f"drop shared source(s) {', '.join(drop)} from {instr.keyword}"))

    _patch_installs(df, rel, index_url, auth, arg_name, secret_id, nl, changes, problems)

    if problems:
        return PatchResult(path, text, [], problems)
    if not changes:
        return PatchResult(path, text, [], [])
    changes.sort(key=lambda c: (c.start, c.end))
    out: list[str] = []
    edits: list[Edit] = []
    pos = 0
    for ch in changes:
        if ch.start < pos:  # overlapping edits of one instruction: merged by construction
            continue
        out.extend(lines[pos:ch.start])
        before = "".join(lines[ch.start:ch.end])
        out.extend(ch.new)
        edits.append(Edit(ch.start + 1, before.rstrip("\r\n").replace("\r\n", "\n"),
                          "".join(ch.new).rstrip("\r\n").replace("\r\n", "\n"), ch.reason))
        pos = ch.end
    out.extend(lines[pos:])
    new_text = bom + "".join(out)
    return PatchResult(path, new_text, edits, [])


def _under(source: str, dest: str) -> bool:
    s = PurePosixPath(os.path.normpath("/" + source.lstrip("/")))
    d = PurePosixPath(os.path.normpath("/" + dest.lstrip("/")))
    return s == d or s.is_relative_to(d)


def _remove_sources(raw: list[str], drop: list[str], instr: Instruction, escape: str) -> list[str] | None:
    """The instruction's lines without the ``drop`` sources, or None when that is not safe."""
    if instr.json_form:
        if len(raw) != 1:
            return None
        line = raw[0]
        body_end = len(line.rstrip("\r\n"))
        ending = line[body_end:]
        prefix = line[: line.index("[")]
        items = [w for w in instr.words if w not in drop]
        return [prefix + json.dumps(items) + ending]
    out = list(raw)
    for src in drop:
        hits = [(k, m) for k, line in enumerate(out) for m in re.finditer(rf"(?<=\s){re.escape(src)}(?=\s|$)", line)]
        if len(hits) != 1:
            return None
        k, m = hits[0]
        line = out[k]
        before, after = line[: m.start()], line[m.end():]
        if not before.strip() and after.strip() in ("", escape):
            del out[k]  # the source had its own continuation line
            continue
        # the source goes with the blanks before it; what followed keeps its own spacing
        out[k] = before.rstrip(" \t") + after
    return out


def _patch_installs(df: Dockerfile, rel: str, index_url: str, auth: bool, arg_name: str, secret_id: str, nl: str,
                    changes: list[_Change], problems: list[Problem]) -> None:
    lines = df.lines
    arg_declared: set[int] = set()
    user_by_stage: dict[int, str] = {}
    for instr in df.instructions:
        if instr.keyword == "ARG" and instr.words and instr.words[0].split("=", 1)[0] == arg_name:
            arg_declared.add(instr.stage)
            name, eq, default = instr.words[0].partition("=")
            line = lines[instr.start - 1]
            simple = instr.start == instr.end and len(instr.words) == 1 and default.strip("\"'") == default
            if eq and default != index_url and simple and default in line:
                # rewritten before, with another index URL: bring its default in line
                start = line.index(default, line.index(name))
                changes.append(_Change(instr.start - 1, instr.end,
                                       [line[:start] + index_url + line[start + len(default):]],
                                       f"index URL default: {default} -> {index_url}"))
        if instr.keyword == "USER" and instr.words:
            user_by_stage[instr.stage] = instr.words[0]
        if instr.keyword != "RUN":
            continue
        body = "".join(lines[instr.start - 1:instr.end])
        if instr.json_form:
            words = " ".join(instr.words)
            if not (_PIP_INSTALL.search(words) or _OTHER_INSTALL.search(words)):
                continue
            problems.append(Problem("error", "dockerfile-unpatchable", rel, instr.start,
                                    "an exec-form (JSON) RUN installs packages; it cannot expand $" + arg_name,
                                    "write it in shell form: RUN pip install ..."))
            continue
        pip_hits = list(_PIP_INSTALL.finditer(body))
        other_hits = list(_OTHER_INSTALL.finditer(body))
        if not pip_hits and not other_hits:
            continue
        new_body = body
        if pip_hits:
            pieces: list[str] = []
            pos = 0
            for m in pip_hits:
                tail = body[m.end():]
                line_rest = re.split(r"&&|\|\||;|\n", tail, maxsplit=1)[0]
                opt = _INDEX_OPT.search(line_rest)
                if opt is not None:
                    if arg_name in opt.group(1):
                        continue
                    problems.append(Problem("error", "dockerfile-unpatchable", rel, instr.start,
                                            f"the install step already names an index ({opt.group(1)})",
                                            f"replace it with --index-url \"${arg_name}\" or remove it"))
                    continue
                pieces.append(body[pos:m.end()] + f' --index-url "${arg_name}"')
                pos = m.end()
            pieces.append(body[pos:])
            new_body = "".join(pieces)
        mount = f"--mount=type=secret,id={secret_id}"
        if auth and mount not in body:
            user = user_by_stage.get(instr.stage, "root")
            if user not in ("root", "0", "0:0", "root:root"):
                problems.append(Problem("error", "dockerfile-unpatchable", rel, instr.start,
                                        f"the install step runs as USER {user}; the index credentials are mounted for root",
                                        f"move `USER {user}` after the install step"))
                continue
            new_body = re.sub(r"^(\s*RUN)(\s+)", rf"\1 {mount},target={SECRET_TARGET}\2", new_body, count=1,
                              flags=re.IGNORECASE)
        if new_body == body and instr.stage in arg_declared:
            continue
        new_lines = new_body.splitlines(keepends=True)
        if instr.stage not in arg_declared and (pip_hits or auth):
            indent = re.match(r"\s*", lines[instr.start - 1]).group(0)  # type: ignore[union-attr]
            new_lines.insert(0, f"{indent}ARG {arg_name}={index_url}{nl}")
            arg_declared.add(instr.stage)
        if new_lines == lines[instr.start - 1:instr.end]:
            continue
        why = []
        if pip_hits:
            why.append(f"install from ${arg_name}")
        if auth:
            why.append("index credentials from a BuildKit secret (netrc), never an ARG/ENV")
        changes.append(_Change(instr.start - 1, instr.end, new_lines, "; ".join(why) or "declare the index URL"))


__all__ = [
    "INDEX_ARG", "SECRET_ID", "Dockerfile", "DockerfileSyntaxError", "Heredoc", "Instruction", "PatchResult",
    "SharedMatcher",
    "guess_context", "parse", "parse_file", "patch", "shared_copies", "source_is_shared",
]
