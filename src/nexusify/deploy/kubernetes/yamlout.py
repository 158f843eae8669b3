"""Manifests as YAML documents (what ``deploy --dry-run`` prints); multi-line text as literal blocks."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml  # type: ignore[import-untyped]


class _Dumper(yaml.SafeDumper):  # type: ignore[misc]
    """SafeDumper writing multi-line strings (scripts in a ConfigMap) as ``|`` blocks."""


def _text(dumper: Any, data: str) -> Any:
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|" if "\n" in data else None)


_Dumper.add_representer(str, _text)


def dump_all(manifests: Iterable[dict[str, Any]]) -> str:
    return str(yaml.dump_all(list(manifests), Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                             explicit_start=True))


__all__ = ["dump_all"]
