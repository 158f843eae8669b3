"""Reading TOML with precise error locations, writing files atomically, and the one confinement rule.

Confinement: every path nexusify writes (transaction targets, the state folder with its dist,
locks and deploy state, build environments named by the repository) goes through
:func:`confined`: it must resolve (symlinks followed) inside the monorepo root and outside its
``.git/``. Anything else is a :class:`~nexusify.errors.ConfigError` naming where the path came
from, so nothing a repository contains can make nexusify write outside it.
"""

from __future__ import annotations

import os
import re
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from nexusify.errors import ConfigError, OperationFailed, TomlError

_TOML_POS = re.compile(r"\(at line (\d+), column (\d+)\)")


def relpath(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` in POSIX form ("." for the root itself); ``path`` unchanged
    when it is outside. String arithmetic: called for every project, dependency and problem."""
    p, r = str(path), str(root)
    if p == r:
        return "."
    if p.startswith(r) and p[len(r):len(r) + 1] == os.sep:
        rel = p[len(r) + 1:]
    elif r == os.sep and p.startswith(r):
        rel = p[1:]
    else:
        return path.as_posix()
    return rel if os.sep == "/" else rel.replace(os.sep, "/")


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; a syntax error names the file, line and column."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise TomlError(f"cannot read: {exc.strerror}", path=path) from exc
    except UnicodeDecodeError as exc:
        raise TomlError("not UTF-8 text", path=path, hint="save the file as UTF-8") from exc
    return parse_toml(text, path)


def parse_toml(text: str, path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except RecursionError as exc:  # `x = [[[[...` thousands deep: the parser recurses per level
        raise TomlError("invalid TOML: arrays or inline tables nested too deeply to be read", path=path,
                        hint="flatten the nesting (TOML files here never need more than a few levels)") from exc
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        line = column = None
        m = _TOML_POS.search(msg)
        if m:
            line, column = int(m.group(1)), int(m.group(2))
            msg = _TOML_POS.sub("", msg).strip()
        raise TomlError(
            f"invalid TOML: {msg}",
            path=path,
            line=line,
            column=column,
            hint="fix the syntax at that position (see https://toml.io)",
        ) from exc


def confined(root: Path, path: Path | str, *, source: str, line: int | None = None,
             what: str = "path", plain: bool = False) -> Path:
    """``path`` (relative to ``root``, or absolute) as an absolute path nexusify may write: it
    resolves, every symlink followed, inside ``root`` and outside ``root/.git``. Otherwise a
    ConfigError naming ``source`` (a config key and file, a variable, a journal) and ``line``.
    ``plain``: no symlink at all below ``root`` either, for nexusify's own folders (state,
    transactions), where it also removes things: a link there could lead it to the sources."""
    base = Path(root).resolve()
    given = Path(path)
    joined = given if given.is_absolute() else base / given
    try:
        real = joined.resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise ConfigError(f"{what} {str(given)!r} cannot be resolved ({exc})", path=source, line=line,
                          hint="nexusify only writes inside the monorepo") from exc
    if not real.is_relative_to(base):
        raise ConfigError(f"{what} {str(given)!r} resolves to {real}, outside the monorepo {base}",
                          path=source, line=line,
                          hint="nexusify only writes inside the monorepo: give a path inside it "
                               "(and no symlink leading out of it)")
    if real.relative_to(base).parts[:1] == (".git",):
        raise ConfigError(f"{what} {str(given)!r} resolves into the repository's .git folder",
                          path=source, line=line, hint="nexusify never writes into .git/")
    if plain and real != Path(os.path.normpath(joined if given.is_absolute() else base / given)):
        raise ConfigError(f"{what} {str(given)!r} leads through a symlink to {real}", path=source, line=line,
                          hint="nexusify keeps its own folders plain: remove the symlink")
    return real


def find_line(text: str, pattern: str, start_line: int = 1) -> int | None:
    """1-based line of the first line at or after ``start_line`` matching ``pattern`` (regex)."""
    rx = re.compile(pattern)
    for number, line in enumerate(text.splitlines(), start=1):
        if number >= start_line and rx.search(line):
            return number
    return None


def write_atomic(path: Path, data: bytes | str) -> None:
    """Replace one file with ``data`` atomically, keeping its mode (temp file + os.replace).

    For nexusify's own state files. Files of the monorepo, and any write of several files, go
    through :func:`nexusify.transaction.write_files` (all or nothing, recovered after a kill).
    """
    path = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o644
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OperationFailed(f"{path}: cannot write it ({exc.strerror or exc})", path=path,
                              hint="nothing was written; fix the cause and re-run") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OperationFailed(f"{path}: cannot write it ({exc.strerror or exc})", path=path,
                                  hint="nothing was written; fix the cause and re-run") from exc
        raise


__all__ = ["confined", "find_line", "parse_toml", "read_toml", "write_atomic"]
