"""Dockerfile lines that break once shared code is installed from the index, whatever copies
(or does not copy) the code: the part of the one shared-code rule (:func:`judge_dockerfile`)
that reads more than COPY/ADD. Each is an error at file:line for audit, rewrite (which then
leaves the file alone), ``rewrite --check`` and verify alike.

* :func:`path_install_problems`: ``pip install ../../shared/packages/x`` (or ``uv pip install``,
  ``pip wheel``) names a shared package's folder, as the host path beside the project or inside
  the build context: the image installs it from a folder, not from the index (or the folder is
  not in the image and the build fails);
* :func:`uv_package_problems`: ``uv sync/run --package NAME`` where NAME is not a member of the
  uv workspace the build context holds (its ``pyproject.toml`` members/exclude, and with
  ``--frozen``/``--locked`` its ``uv.lock``): after a member moved out of its workspace, the
  build fails. ``${ARG}`` is filled from the build args of each build (compose) and the ARG
  defaults;
* :func:`copy_from_problems`: ``COPY --from=<stage> /path`` where that stage (and the stages it
  starts from) no longer produces ``/path``: nothing copies there, no RUN names it or a folder
  around it, it is no WORKDIR, and it is not a system folder of the base image.
"""

from __future__ import annotations

import glob
import os
import re
import tomllib
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path

from nexusify.errors import Problem
from nexusify.formats.dockerfile_runs import PIP_VALUE_OPTIONS, segments, unquote
from nexusify.formats.shared_code import SharedCode
from nexusify.model.paths import glob_free
from nexusify.syntax.dockerfile_parse import Dockerfile, Instruction

_PIP_COMMANDS = (("pip", "install"), ("pip", "wheel"), ("pip", "download"), ("pip3", "install"),
                 ("pip3", "wheel"), ("pip3", "download"))
_VAR = re.compile(r"\$\{(\w+)(?::?[-+]([^}]*))?\}|\$(\w+)")
# folders a base image holds: a COPY --from of them is not judged
# what tools make in their working folder without naming it (uv sync, python -m build, pip wheel)
_MADE = ("dist", "build", "wheels", "site-packages", "__pypackages__", "node_modules")
_SYSTEM = ("usr", "opt", "etc", "var", "lib", "lib64", "bin", "sbin", "root", "home", "run", "srv", "nix", "tmp")


def _pip_args(words: Sequence[str]) -> list[str] | None:
    """The arguments after ``pip install`` (``python -m pip``, ``uv pip install``) in one command."""
    plain = [unquote(w) for w in words]
    for k in range(len(plain) - 1):
        name = plain[k].rsplit("/", 1)[-1]
        if (re.fullmatch(r"pip[\d.]*", name) and plain[k + 1] in ("install", "wheel", "download")) or (
                name == "uv" and plain[k + 1] == "pip" and k + 2 < len(plain) and plain[k + 2] == "install"):
            return plain[k + (3 if name == "uv" else 2):]
    return None


def path_install_problems(path: str, df: Dockerfile, *, project_dir: Path, context: Path, shared: SharedCode,
                          handled: Iterable[tuple[int, str]] = ()) -> list[Problem]:
    """An error for every install argument that names a shared package's folder (see the module
    docstring); ``handled``: (line, word) of installs the COPY rule already turns into versions."""
    done = {(line, unquote(word)) for line, word in handled}
    out: list[Problem] = []
    for instr in df.instructions:
        if instr.keyword != "RUN" or instr.json_form:
            continue
        for seg in segments(instr.args):
            args = _pip_args(seg.words)
            skip = False
            for word in args or ():
                if skip:
                    skip = False
                    continue
                if word in PIP_VALUE_OPTIONS:
                    skip = True
                    continue
                if word.startswith("-") or (instr.start, word) in done:
                    continue
                name = _shared_folder(word, project_dir, context, shared)
                if name is not None:
                    out.append(Problem(
                        "error", "dockerfile-installs-shared-path", path, instr.start,
                        f"RUN installs `{word}`, the folder of shared package {name}: the image installs it "
                        "from a path, not from the index", "install it by name from the index (`pip install "
                        f"{name}`) and drop the path; nothing was changed"))
                    break
    return out


def _shared_folder(word: str, project_dir: Path, context: Path, shared: SharedCode) -> str | None:
    raw = re.sub(r"\[[^\]]*\]$", "", word.removeprefix("file://").removeprefix("file:"))
    if not raw or "$" in raw or "://" in raw or ("/" not in raw and not raw.startswith(".")) or raw in (".", "./"):
        return None
    raw = glob_free(raw)
    candidates = [os.path.normpath(os.path.join(str(context), raw.lstrip("/")))]
    if not raw.startswith("/"):
        candidates.append(os.path.normpath(os.path.join(str(project_dir), raw)))
    own = os.path.normpath(str(project_dir))
    for folder, name in shared.packages:
        if folder == own:
            continue
        if any(c == folder or c.startswith(folder + os.sep) for c in candidates):
            return name
    return None


# --------------------------------------------------------------------------- uv --package


def _expand(word: str, values: Mapping[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(3)
        if name in values:
            return values[name]
        return m.group(2) if m.group(2) is not None else m.group(0)

    return _VAR.sub(one, word)


def _arg_defaults(df: Dockerfile) -> dict[str, str]:
    out: dict[str, str] = {}
    for instr in df.instructions:
        if instr.keyword in ("ARG", "ENV"):
            for word in instr.words:
                if "=" in word:
                    key, _, value = word.partition("=")
                    out.setdefault(key, unquote(value))
            if instr.keyword == "ENV" and len(instr.words) == 2 and "=" not in instr.words[0]:
                out.setdefault(instr.words[0], unquote(instr.words[1]))
    return out


def workspace_members(folder: Path) -> tuple[set[str] | None, set[str] | None]:
    """(members by ``pyproject.toml``, members by ``uv.lock``) of the uv project at ``folder``
    (normalised names; None: that file is absent or unreadable)."""
    from packaging.utils import canonicalize_name

    by_py: set[str] | None = None
    try:
        data = tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        data = None
    if data is not None:
        by_py = set()
        name = data.get("project", {}).get("name")
        if isinstance(name, str):
            by_py.add(canonicalize_name(name))
        ws = data.get("tool", {}).get("uv", {}).get("workspace")
        if isinstance(ws, dict):
            excluded = {os.path.normpath(p) for pat in ws.get("exclude", []) if isinstance(pat, str)
                        for p in glob.glob(str(folder / pat))}
            for pat in ws.get("members", []):
                for member in glob.glob(str(folder / str(pat))) if isinstance(pat, str) else ():
                    if os.path.normpath(member) in excluded:
                        continue
                    try:
                        mdata = tomllib.loads((Path(member) / "pyproject.toml").read_text(encoding="utf-8"))
                    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
                        continue
                    mname = mdata.get("project", {}).get("name")
                    if isinstance(mname, str):
                        by_py.add(canonicalize_name(mname))
    by_lock: set[str] | None = None
    try:
        lock = tomllib.loads((folder / "uv.lock").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        lock = None
    if lock is not None:
        members = lock.get("manifest", {}).get("members")
        if isinstance(members, list):
            by_lock = {canonicalize_name(str(m)) for m in members}
        else:  # one project: the package whose source is the lock's own folder
            by_lock = {canonicalize_name(str(p.get("name"))) for p in lock.get("package", [])
                       if isinstance(p, dict) and isinstance(p.get("source"), dict)
                       and p["source"].get("editable", p["source"].get("virtual")) == "."}
    return by_py, by_lock


def uv_package_problems(path: str, df: Dockerfile, *, context: Path, root: Path,
                        arg_sets: Sequence[Mapping[str, str]] = ({},),
                        leaving: Mapping[Path, Collection[str]] | None = None) -> list[Problem]:
    """An error for every ``uv sync/run --package NAME`` whose NAME is not a member of the uv
    workspace in the build context (see the module docstring), once per line. ``leaving``: the
    members rewrite is about to move out of the workspace at each folder (normalised names), judged
    as already gone: rewrite refuses them up front (``dockerfile-uv-move``), before writing."""
    from packaging.utils import canonicalize_name

    defaults = _arg_defaults(df)
    out: dict[int, Problem] = {}
    for instr in df.instructions:
        if instr.keyword != "RUN" or instr.json_form or instr.start in out:
            continue
        for seg in segments(instr.args):
            words = [unquote(w) for w in seg.words]
            if "uv" not in words:
                continue
            k = words.index("uv")
            if k + 1 >= len(words) or words[k + 1] not in ("sync", "run"):
                continue
            rest = words[k + 2:]
            package = directory = None
            for j, w in enumerate(rest):
                nxt = rest[j + 1] if j + 1 < len(rest) else None
                if w == "--package" and nxt:
                    package = nxt
                elif w.startswith("--package="):
                    package = w.split("=", 1)[1]
                elif w in ("--directory", "--project") and nxt:
                    directory = nxt
                if w == "--" or (words[k + 1] == "run" and not w.startswith("-") and j and rest[j - 1] not in (
                        "--package", "--directory", "--project", "--with", "--python", "--group", "--extra")):
                    break  # `uv run cmd ...`: the command's own arguments follow
            if package is None:
                continue
            frozen = any(w in ("--frozen", "--locked") for w in rest) or any(
                defaults.get(v, "").lower() in ("1", "true") for v in ("UV_FROZEN", "UV_LOCKED"))
            for args in arg_sets:
                values = {**defaults, **args}
                name = _expand(package, values)
                folder = _uv_folder(context, _expand(directory, values) if directory else None)
                if "$" in name or folder is None:
                    continue
                by_py, by_lock = workspace_members(folder)
                norm = canonicalize_name(name)
                where = os.path.relpath(folder, root) if folder.is_relative_to(root) else str(folder)
                shown = f" (build arg {', '.join(f'{k}={v}' for k, v in sorted(args.items()))})" if args else ""
                command = f"`uv {words[k + 1]} --package {name}`{shown}"
                why = None
                if norm in (leaving or {}).get(folder, ()):
                    out[instr.start] = Problem(
                        "error", "dockerfile-uv-move", path, instr.start,
                        f"{command} builds inside the uv workspace at {where}, "
                        f"which rewrite would move {name} out of, so the build would fail",
                        "build the member from its own folder by hand (copy it, then `uv sync --frozen` in it), or "
                        "leave it out of the rewrite targets")
                    break
                if by_py is not None and norm not in by_py:
                    why = f"{where}/pyproject.toml does not make it a member"
                elif frozen and by_lock is not None and norm not in by_lock:
                    why = f"{where}/uv.lock does not have it"
                if why is not None:
                    out[instr.start] = Problem(
                        "error", "dockerfile-uv-package", path, instr.start,
                        f"{command}: {name} is not a member of the uv "
                        f"workspace the build uses ({why}), so the build fails",
                        "build it from its own folder with its own uv.lock (`uv sync --frozen` there), or make "
                        "it a member again")
                    break
            if instr.start in out:
                break
    return [out[k] for k in sorted(out)]


def _uv_folder(context: Path, directory: str | None) -> Path | None:
    """The folder of the uv project a ``uv sync`` in the image reads: ``--directory`` under the
    context (its nearest folder with a uv.lock or a uv workspace), else the context's own."""
    start = context / directory.lstrip("/") if directory and "$" not in directory else context
    for folder in [start, *start.parents]:
        if (folder / "uv.lock").is_file() or (folder / "pyproject.toml").is_file():
            return folder
        if folder == context:
            break
    return None


# --------------------------------------------------------------------------- COPY --from


def copy_from_problems(path: str, df: Dockerfile, context: Path, shared: SharedCode | None = None) -> list[Problem]:
    """An error for every ``COPY --from=<stage>`` of an absolute path the stage no longer produces.
    Below a WORKDIR where a RUN ran (a tool may make anything there without naming it), only a
    path naming shared code (a shared package's folder or distribution name) is judged."""
    marks = shared.marks if shared is not None else frozenset()
    names: dict[str, int] = {}
    parents: list[int | None] = []
    produced: list[list[str]] = []  # per stage: folders/files it makes (COPY dests, WORKDIRs, RUN words)
    out: list[Problem] = []
    for instr in df.instructions:
        if instr.keyword == "FROM":
            base = (instr.image or "").lower()
            parents.append(names.get(base))
            produced.append([])
            if instr.alias:
                names[instr.alias.lower()] = len(parents) - 1
            continue
        if not produced:
            continue
        mine = produced[-1]
        if instr.keyword == "WORKDIR" and instr.words:
            wd = instr.words[0] if instr.words[0].startswith("/") else f"{_workdir(mine)}/{instr.words[0]}"
            mine.append(os.path.normpath(wd) + "\0dir")
        elif instr.keyword in ("COPY", "ADD"):
            src_from = instr.flag("from")
            mine.extend(_copy_targets(instr, context if src_from is None else None, _workdir(produced[-1])))
            stage = names.get(src_from.lower()) if src_from else None
            if stage is not None:
                for src in instr.sources:
                    clean = glob_free(src)
                    if clean.startswith("/") and "$" not in clean and not _produced(clean, stage, parents, produced,
                                                                                      marks):
                        out.append(Problem(
                            "error", "dockerfile-copy-from-missing", path, instr.start,
                            f"COPY --from={src_from} {src}: stage {src_from} no longer produces {clean} "
                            "(nothing copies it there and no RUN makes it), so the build fails",
                            "copy what that stage now installs (the shared packages come from the index), or "
                            "drop the line"))
        elif instr.keyword == "RUN":
            wd = _workdir(mine)
            for w in re.split(r"[\s=:,;&|]+", instr.args):
                w = w.strip("'\"")
                if w.startswith("/"):
                    mine.append(w)
                elif wd and re.fullmatch(r"\.?[\w][\w.-]*(/[\w.-]+)*/?", w) and not w.startswith("-"):
                    mine.append(f"{wd}/{w}")  # a relative word: `python -m venv venv`, `-w wheels`
            if wd:
                mine.append(wd + "/\0run")  # what tools make in the WORKDIR: .venv, dist, build
    return out


def _workdir(produced: list[str]) -> str:
    dirs = [p.partition("\0")[0] for p in produced if p.endswith("\0dir")]
    return dirs[-1].rstrip("/") if dirs else ""


def _copy_targets(instr: Instruction, context: Path | None, workdir: str) -> list[str]:
    dest = instr.dest or "."
    base = dest if dest.startswith("/") else f"{workdir}/{dest}"
    base = os.path.normpath(base) if base.startswith("/") else base
    sources = instr.sources
    if context is None or len(sources) != 1:
        return [base + "/\0any"]  # a folder of things: anything below it
    src = context / glob_free(sources[0]).lstrip("/")
    if src.is_file():  # one file: the destination names it, or the folder it lands in
        return [f"{base}/{src.name}" if dest in (".", "./") or dest.endswith("/") else base]
    return [base + "/\0any"]


def _produced(target: str, stage: int | None, parents: list[int | None], produced: list[list[str]],
              marks: frozenset[str]) -> bool:
    parts = target.strip("/").split("/")
    if not parts[0] or parts[0] in _SYSTEM:
        return True
    norm = os.path.normpath(target)
    seen: set[int] = set()
    while stage is not None and stage not in seen:
        seen.add(stage)
        for p in produced[stage]:
            folder, _, mark = p.partition("\0")
            folder = os.path.normpath(folder) if folder.startswith("/") else folder
            if not folder.startswith("/"):
                continue
            inside = norm == folder or norm.startswith(folder.rstrip("/") + "/")
            if mark == "any" and inside:
                return True
            if mark == "run" and inside and norm != folder:
                first = norm[len(folder.rstrip("/")) + 1:].split("/")[0]
                if first.startswith(".") or first in _MADE or first.endswith(".egg-info") or not (
                        set(parts) & marks):
                    return True
            if mark == "dir" and (norm == folder or folder.startswith(norm + "/")):
                return True
            if not mark and (norm == folder or folder.startswith(norm + "/") or norm.startswith(folder + "/")):
                return True
        stage = parents[stage] if stage < len(parents) else None
    return False


#: problems of this module: errors even where rewrite has nothing else to change in the file
CODES = frozenset({"dockerfile-installs-shared-path", "dockerfile-uv-package", "dockerfile-copy-from-missing"})

__all__ = ["CODES", "copy_from_problems", "path_install_problems", "uv_package_problems", "workspace_members"]
