"""Reading TOML with precise error locations, and writing files atomically."""

from __future__ import annotations

import os
import re
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from nexusify.errors import OperationFailed, TomlError

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


__all__ = ["find_line", "parse_toml", "read_toml", "write_atomic"]
