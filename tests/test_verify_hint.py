"""verify's re-lock hint is the command rewrite runs (issue 19): `uv lock --upgrade-package NAME`
unlocks only the shared packages, so third-party pins do not move; not a bare `uv lock`."""

from __future__ import annotations

import stat
from pathlib import Path

from nexusify.model import load_workspace
from nexusify.verify.lock import LockChecker


def test_a_refused_uv_lock_hints_the_same_relock_as_rewrite(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "libs/common").mkdir(parents=True)
    (root / "libs/common/pyproject.toml").write_text('[project]\nname = "common"\nversion = "0.1.0"\n')
    (root / "svc").mkdir()
    (root / "svc/pyproject.toml").write_text(
        '[project]\nname = "svc"\nversion = "0"\ndependencies = ["common"]\n'
        '[tool.uv.sources]\ncommon = { path = "../libs/common" }\n')
    (root / "svc/uv.lock").write_text("version = 1\n")
    fake = tmp_path / "bin/uv"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'error: The lockfile needs to be updated' >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    ws = load_workspace(root)
    svc = ws.by_name["svc"]
    checker = LockChecker(ws.root, "nexus", None, {"PATH": str(fake.parent)}, lambda tool, path=None: str(fake))
    check = checker.check(svc, ("common",))
    assert check.status == "fail"
    [finding] = check.findings
    assert finding.hint is not None and "cd svc && uv lock --upgrade-package common" in finding.hint, finding.hint
