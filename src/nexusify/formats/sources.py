"""The package source a rewritten service resolves shared packages from, and the TOML source
tables that name it: ``[[tool.poetry.source]]``, ``[[tool.uv.index]]``, ``[[tool.pdm.source]]``.

Pure functions over parsed data and text (no tomlkit): whether the tables carrying the source's
name are up to date, and where a new table block goes in a file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nexusify.credentials import url_with_env_userinfo


@dataclass(frozen=True)
class SourceSpec:
    """The package source a rewritten service resolves shared packages from."""

    name: str
    url: str
    priority: str = "explicit"
    tool: str = "auto"  # which source table(s) to write; "auto" = the ones the file's tools read
    auth: bool = False  # the index needs credentials to download

    @property
    def explicit(self) -> bool:
        return self.priority == "explicit"

    @property
    def pdm_url(self) -> str:
        """The URL a ``[[tool.pdm.source]]`` holds: PDM reads source credentials only from ``${VAR}``
        in the URL's userinfo (or its own config), so an index that needs them gets
        ``${NEXUS_USERNAME}:${NEXUS_PASSWORD}@``: variable names, never a secret."""
        return url_with_env_userinfo(self.url) if self.auth else self.url


def wanted_fields(source: SourceSpec) -> dict[str, dict[str, Any]]:
    wanted: dict[str, dict[str, Any]] = {
        "poetry": {"url": source.url, "priority": source.priority},
        "uv": {"url": source.url},
        "pdm": {"url": source.pdm_url},
    }
    if source.explicit:
        wanted["uv"]["explicit"] = True
    return wanted


def outdated_tables(data: Mapping[str, Any], source: SourceSpec) -> set[str]:
    """The tools ("poetry", "uv", "pdm") whose source entry named like ``source`` exists and
    differs from it (url, Poetry priority, uv explicit)."""
    tool = data.get("tool", {})
    tables = {"poetry": tool.get("poetry", {}).get("source"), "uv": tool.get("uv", {}).get("index"),
              "pdm": tool.get("pdm", {}).get("source")}
    out: set[str] = set()
    for name, fields in wanted_fields(source).items():
        entries = tables[name]
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and entry.get("name") == source.name and any(
                    entry.get(k) != v for k, v in fields.items()):
                out.add(name)
    return out


def sources_outdated(data: Mapping[str, Any], source: SourceSpec) -> bool:
    """Whether a source table carrying ``source.name`` differs from ``source`` (cheap: no
    tomlkit), i.e. whether ``edit_pyproject(..., reconcile=True)`` would change something."""
    return bool(outdated_tables(data, source))


# --------------------------------------------------------------------------- text blocks

_HEADER = re.compile(r"^\s*\[\[?\s*([^\[\]]+?)\s*\]\]?\s*(?:#.*)?$")


def header_key(line: str) -> str | None:
    m = _HEADER.match(line)
    if not m:
        return None
    return ".".join(part.strip().strip("\"'") for part in m.group(1).split("."))


def header_line(text: str, key: str) -> int | None:
    for n, line in enumerate(text.splitlines(), 1):
        if header_key(line) == key:
            return n
    return None


def insert_block(text: str, prefix: str, block: list[str], nl: str) -> str:
    """Insert ``block`` (lines) after the last table whose header starts with ``prefix``
    (before the comments that introduce the next table), or at the end of the file."""
    lines = text.splitlines(keepends=True)
    keys = [header_key(line) for line in lines]
    last = max((i for i, k in enumerate(keys) if k and (k == prefix or k.startswith(prefix + "."))), default=None)
    at = len(lines)
    if last is not None:
        nxt = next((i for i in range(last + 1, len(lines)) if keys[i]), None)
        if nxt is not None:
            at = nxt
            while at > last + 1 and (lines[at - 1].strip() == "" or lines[at - 1].lstrip().startswith("#")):
                at -= 1
    head, tail = lines[:at], lines[at:]
    if head and not head[-1].endswith(("\n", "\r")):
        head[-1] += nl
    out = list(head)
    if out and out[-1].strip():
        out.append(nl)
    out += [b + nl for b in block]
    if tail and tail[0].strip():
        out.append(nl)
    return "".join(out + tail)




__all__ = ["SourceSpec", "header_key", "header_line", "insert_block", "outdated_tables", "sources_outdated",
           "wanted_fields"]
