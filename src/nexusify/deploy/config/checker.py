"""Reading the deploy table: the TOML key locator and a checker that collects every problem with its
file:line (and a did-you-mean for unknown keys) so they are reported together."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from nexusify.config import ConfigFile, suggest
from nexusify.errors import ConfigError, ConfigErrors


def raise_all(errors: list[ConfigError]) -> None:
    """Raise the collected problems: one as ConfigError, several as ConfigErrors, none: nothing."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ConfigErrors(errors)


def _seg(part: str) -> str:
    p = re.escape(part)
    return rf"(?:{p}|\"{p}\"|'{p}')"


def _split_key(dotted: str) -> list[str]:
    """Split a TOML dotted key (``a."b.c".d``) into its parts, unquoted."""
    parts: list[str] = []
    buf = ""
    quote: str | None = None
    for ch in dotted:
        if quote:
            if ch == quote:
                quote = None
            else:
                buf += ch
        elif ch in "\"'":
            quote = ch
        elif ch == ".":
            parts.append(buf.strip())
            buf = ""
        else:
            buf += ch
    parts.append(buf.strip())
    return parts


def locate(text: str, parts: list[str]) -> int | None:
    """1-based line where the TOML key ``parts`` (full dotted path) is written, best effort.

    Handles ``[a.b] c = 1``, dotted keys ``[a] b.c = 1`` and inline tables ``b = {c = 1}``
    (the line of the inline table). None when the text does not show it.
    """
    if not text or not parts:
        return None
    lines = text.splitlines()
    header_rx = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")

    def header_at(i: int) -> list[str] | None:
        m = header_rx.match(lines[i])
        if not m:
            return None
        return _split_key(m.group(1))

    # Walk the file tracking the current table; match key lines against the remaining parts.
    current: list[str] = []
    best: int | None = None
    best_depth = -1
    for i in range(len(lines)):
        h = header_at(i)
        if h is not None:
            current = h
            if parts[: len(h)] == h:
                if len(h) == len(parts):
                    return i + 1
                if len(h) > best_depth:
                    best, best_depth = i + 1, len(h)
            continue
        if parts[: len(current)] != current:
            continue
        rest = parts[len(current):]
        for n in range(len(rest), 0, -1):
            rx = r"^\s*" + r"\s*\.\s*".join(_seg(p) for p in rest[:n]) + r"\s*="
            if re.match(rx, lines[i]):
                depth = len(current) + n
                if n == len(rest):
                    return i + 1
                if depth > best_depth:
                    best, best_depth = i + 1, depth
                # an inline table: look for the inner key on the same line
                inner = rest[n:]
                if inner and re.search(r"[{,]\s*" + _seg(inner[-1]) + r"\s*=", lines[i]):
                    return i + 1
                break
    return best


class Checker:
    """Collects problems with their locations while reading the deploy table."""

    def __init__(self, cfg: ConfigFile) -> None:
        self.cfg = cfg
        self.errors: list[ConfigError] = []
        base = cfg.prefix.rstrip(".").split(".") if cfg.prefix else []
        self.base = [*base, "deploy"]

    def label(self, path: list[str]) -> str:
        return ".".join([*self.base, *path])

    def error(self, path: list[str], message: str, hint: str | None = None) -> None:
        line = locate(self.cfg.text, [*self.base, *path])
        self.errors.append(ConfigError(f"`{self.label(path)}`: {message}", path=self.cfg.path, line=line, hint=hint))

    def table(self, value: Any, path: list[str], known: tuple[str, ...], what: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.error(path, f"expected a table ({what}), got {kind_of(value)}")
            return {}
        for key in value:
            if key not in known:
                near = suggest(key, list(known))
                self.error(
                    [*path, key],
                    f"unknown key in {what}" + (f"; did you mean `{near}`?" if near else ""),
                    hint=f"known keys: {', '.join(known)}",
                )
        return value

    def string(self, table: Mapping[str, Any], key: str, path: list[str], *, required: bool = False) -> str | None:
        if key not in table:
            if required:
                self.error([*path, key], "is required", hint=f"add `{key} = ...` to [{self.label(path)}]")
            return None
        value = table[key]
        if not isinstance(value, str) or not value.strip():
            self.error([*path, key], f"expected a non-empty string, got {kind_of(value)}")
            return None
        return value.strip()

    def port(self, table: Mapping[str, Any], key: str, path: list[str], *, required: bool = False) -> int | None:
        if key not in table:
            if required:
                self.error([*path, key], "is required", hint=f"add `{key} = 8000` (a TCP port) to [{self.label(path)}]")
            return None
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
            self.error([*path, key], f"expected a TCP port 1-65535, got {value!r}")
            return None
        return value

    def number(self, table: Mapping[str, Any], key: str, path: list[str], default: float, *, minimum: float = 0.0,
               positive: bool = False) -> float:
        if key not in table:
            return default
        value = table[key]
        ok = not isinstance(value, bool) and isinstance(value, int | float)
        if ok and (value <= minimum if positive else value < minimum):
            ok = False
        if not ok:
            bound = f"> {minimum:g}" if positive else f">= {minimum:g}"
            self.error([*path, key], f"expected a number of seconds {bound}, got {value!r}")
            return default
        return float(value)

    def whole(self, table: Mapping[str, Any], key: str, path: list[str], default: int, minimum: int) -> int:
        if key not in table:
            return default
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.error([*path, key], f"expected a whole number >= {minimum}, got {value!r}")
            return default
        return value

    def file(self, root: Path, value: str | None, path: list[str], *, kind: str = "file") -> Path | None:
        if value is None:
            return None
        p = Path(value)
        p = p if p.is_absolute() else root / p
        exists = p.is_file() if kind == "file" else p.is_dir()
        if not exists:
            self.error(path, f"no such {kind}: {value} (looked at {p})",
                       hint="paths in the deploy table are relative to the monorepo root")
            return None
        return p


def closest(value: str, choices: tuple[str, ...]) -> str | None:
    """did-you-mean for a choice: a close spelling, or a choice the value contains (``aws-secrets``)."""
    return suggest(value, list(choices)) or next((c for c in choices if c in value.lower()), None)


def kind_of(value: Any) -> str:
    return {dict: "a table", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number"}.get(type(value), type(value).__name__)


def has_password(url: str) -> bool:
    try:
        return bool(urlsplit(url).password)
    except ValueError:
        return False



__all__ = ["Checker", "closest", "has_password", "kind_of", "locate", "raise_all"]
