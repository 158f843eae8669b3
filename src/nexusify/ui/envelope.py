"""The one shape of every verb's ``--json`` output, documented in ``docs/schema/output.schema.json``.

``{"command", "ok", "exit_code", "errors", "warnings", ...the verb's data}``: ``ok`` is true
exactly when the exit code is 0 (warnings included, unless ``--strict``); ``errors`` and
``warnings`` are lists of messages (``message``, and where known ``code``, ``path``, ``line``,
``column``, ``hint``), the same problems the verb shows on a terminal. A run that ends in an
error (usage, configuration, a failed operation) prints the same envelope with that error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

MESSAGE_KEYS = ("message", "code", "path", "line", "column", "hint")


def message(item: Any) -> dict[str, Any]:
    """One error or warning as an object: a string, a dict (a Problem's, a Finding's, an
    error's ``to_dict()``) or an object with ``to_dict()``."""
    if isinstance(item, str):
        return {"message": item}
    data = item.to_dict() if hasattr(item, "to_dict") else item
    if not isinstance(data, Mapping):
        return {"message": str(item)}
    out = {k: data[k] for k in MESSAGE_KEYS if data.get(k) is not None}
    if "code" not in out and isinstance(data.get("error"), str):  # a NexusifyError: its class names it
        out["code"] = data["error"]
    out.setdefault("message", str(item))
    return out


def split_problems(problems: Iterable[Any]) -> tuple[list[Any], list[Any]]:
    """(errors, warnings) of a list of problems: dicts with a ``severity`` (anything but
    "warning" is an error, a string too)."""
    errors: list[Any] = []
    warnings: list[Any] = []
    for p in problems:
        severity = p.get("severity") if isinstance(p, Mapping) else getattr(p, "severity", "error")
        (warnings if severity == "warning" else errors).append(p)
    return errors, warnings


def envelope(command: str | None, data: Mapping[str, Any], *, exit_code: int,
             errors: Iterable[Any] | None = None, warnings: Iterable[Any] | None = None) -> dict[str, Any]:
    """The verb's ``data`` in the envelope. Without ``errors``/``warnings``, they are the
    ``problems`` of ``data``, split by severity."""
    if errors is None or warnings is None:
        found_errors, found_warnings = split_problems(data.get("problems") or [])
        errors = found_errors if errors is None else errors
        warnings = found_warnings if warnings is None else warnings
    head = {"command": command, "ok": exit_code == 0, "exit_code": exit_code,
            "errors": [message(e) for e in errors], "warnings": [message(w) for w in warnings]}
    return {**head, **{k: v for k, v in data.items() if k not in head}}
