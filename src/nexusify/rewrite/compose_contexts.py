"""A compose ``additional_contexts`` entry that only served shared code: once rewrite drops every
``COPY --from=<name>`` of it from the Dockerfile, the entry goes too (the image takes the shared
packages from the index; a named context left behind would still ship the shared folder to the
builder, and read as if the build still needed it).

Only an entry whose folder is, holds or lies inside a shared package, that the Dockerfile used
before the rewrite and no longer names after it (``--from=<name>`` anywhere, ``RUN --mount`` too),
and only when removing its line (and the emptied ``additional_contexts:`` key) is proven by reading
the edited compose file back: anything else leaves the compose file as it is.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from nexusify.formats.edits import Edit
from nexusify.model import Workspace, relpath
from nexusify.rewrite.plan_data import FilePlan, RewritePlan


def _uses(text: str, name: str) -> bool:
    return re.search(rf"(?i)\bfrom={re.escape(name)}(?![\w.-])", text) is not None


def _holds_shared(folder: Path, ws: Workspace) -> bool:
    here = os.path.normpath(str(folder))
    for p in ws.shared():
        there = os.path.normpath(str(p.path))
        if there == here or there.startswith(here + os.sep) or here.startswith(there + os.sep):
            return True
    return False


def drop_unused_contexts(plan: RewritePlan, ws: Workspace) -> None:
    """Remove, in the plan, every compose named context the rewritten Dockerfiles no longer use
    (see the module docstring): a new compose FilePlan, or more edits of the one already planned."""
    composes = {f.path: f for sp in plan.services for f in sp.files if f.kind == "compose"}
    for sp in plan.services:
        project = ws.project_at(sp.path)
        if project is None:
            continue
        for f in [f for f in sp.files if f.kind == "dockerfile" and f.changed]:
            old, new = f.old.decode("utf-8", "replace"), f.new.decode("utf-8", "replace")
            for b in project.docker_builds:
                if b.dockerfile != f.path or not b.origin.startswith("compose:"):
                    continue
                _, file_rel, service = b.origin.split(":", 2)
                compose = ws.root / file_rel
                for name, folder in b.additional_contexts:
                    if not (_holds_shared(folder, ws) and _uses(old, name) and not _uses(new, name)):
                        continue
                    planned = composes.get(compose)
                    try:
                        text = planned.new.decode("utf-8") if planned else compose.read_text(encoding="utf-8")
                    except (OSError, UnicodeDecodeError):
                        continue
                    done = _without_context(text, service, name)
                    if done is None:
                        continue
                    new_text, edits = done
                    if planned is None:
                        planned = FilePlan(compose, relpath(compose, ws.root), "compose", sp.name,
                                           text.encode("utf-8"), new_text.encode("utf-8"), edits)
                        composes[compose] = planned
                        sp.files.append(planned)
                    else:
                        planned.new = new_text.encode("utf-8")
                        planned.edits = planned.edits + edits


def _without_context(text: str, service: str, name: str) -> tuple[str, list[Edit]] | None:
    """``text`` without the named context ``name`` of ``service``'s build (and without an emptied
    ``additional_contexts:``), with its edits; None when that cannot be proven."""
    import yaml  # type: ignore[import-untyped]

    lines = text.splitlines(keepends=True)

    def indent(i: int) -> int:
        return len(lines[i]) - len(lines[i].lstrip())

    def block(start: int) -> range:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].strip() and
                    not lines[i].lstrip().startswith("#") and indent(i) <= indent(start)), len(lines))
        return range(start + 1, end)

    top = next((i for i, ln in enumerate(lines) if re.match(rf"^\s+{re.escape(service)}:\s*$", ln)), None)
    if top is None:
        return None
    key = next((i for i in block(top) if re.match(r"^\s*additional_contexts:\s*$", lines[i])), None)
    if key is None:
        return None
    children = [i for i in block(key) if lines[i].strip() and not lines[i].lstrip().startswith("#")]
    entry = next((i for i in children if re.match(rf"^\s*(?:-\s*)?{re.escape(name)}\s*[:=]", lines[i])), None)
    if entry is None:
        return None
    drop = [key, *block(key)] if children == [entry] else [entry]
    new_text = "".join(ln for i, ln in enumerate(lines) if i not in drop)
    try:
        before: Any = yaml.safe_load(text)
        after: Any = yaml.safe_load(new_text)
        build = before["services"][service]["build"]
        contexts = build["additional_contexts"]
        if isinstance(contexts, dict):
            contexts.pop(name)
        else:
            contexts[:] = [c for c in contexts if not str(c).startswith(f"{name}=")]
        if not contexts:
            del build["additional_contexts"]
    except (yaml.YAMLError, KeyError, TypeError):
        return None
    if after != before:
        return None
    edits = [Edit(i + 1, lines[i].rstrip("\r\n"), "", f"drop the named context {name}: the image no longer copies "
                                                       "shared code from it") for i in sorted(drop)]
    return new_text, edits


__all__ = ["drop_unused_contexts"]
