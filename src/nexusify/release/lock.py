"""Refreshing the lockfiles of re-pinned consumers, once the new versions are on the index.

A lock resolves against the index, so it can only be refreshed after ``--publish``; this is
``rewrite``'s re-lock (:func:`nexusify.rewrite.lock.relock`: a scratch copy of the consumer's
folder, its tool updating only the re-pinned shared packages, the index credentials in the tool's
environment variables). A lock that cannot be refreshed (no publish, the tool is missing, the tool
fails) is a warning with the exact command to run.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

from nexusify.config import Settings
from nexusify.errors import Problem
from nexusify.rewrite.lock import LockJob

#: a re-pinned consumer's lockfile (``names``: the re-pinned shared packages)
StaleLock = LockJob


def refresh(settings: Settings, stale: list[StaleLock], env: Mapping[str, str],
            which: Callable[[str], str | None] = shutil.which) -> tuple[list[tuple[Path, bytes]], list[Problem]]:
    """New contents for each stale lockfile ([(path, bytes)] of those that changed), and a warning
    for each one that could not be refreshed."""
    from nexusify.rewrite.lock import relock

    root = settings.root
    url = settings.simple_url or ""
    problems: list[Problem] = []
    jobs: list[LockJob] = []
    for s in stale:
        if s.lockfile.parent != s.folder:  # a uv workspace root's lock: not this consumer's alone
            problems.append(s.warning(root, "it is the uv workspace's lock"))
            continue
        jobs.append(s)
    creds = settings.credentials(env) if url else None
    changes, warnings = relock(jobs, root, settings.source_name, env,
                               creds if creds is not None and creds.present else None, which=which)
    problems.extend(warnings)
    return [(job.lockfile, new) for job, new in changes], problems
