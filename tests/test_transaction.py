"""A multi-file write (rewrite) is one transaction: a process killed at any rename leaves a tree
that the next nexusify command completes (or, before the journal, rolls back), saying which;
no temp file is ever left in the tree; SIGINT/SIGTERM during the commit finish it first."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from nexusify.errors import OperationFailed
from nexusify.transaction import TXN_DIR, recover, write_files

from .conftest import REPO

URL = "http://127.0.0.1:9/simple/"
ENV = {"HOME": "/nonexistent", "NO_COLOR": "1"}

# a child nexusify whose os.replace sends itself `sig` at the `at`-th rename of kind `kind`
# ("target": a staged file renamed over a monorepo file; "journal": the journal's own rename)
CHILD = textwrap.dedent("""
    import os, signal, sys
    from nexusify import cli
    real = os.replace
    count = 0
    def replace(src, dst, *a, **k):
        global count
        src = str(src)
        kind = "journal" if src.endswith("journal.json.tmp") else "target" if "/.nexusify/txn/" in src else None
        if kind == {kind!r}:
            count += 1
            if count == {at}:
                os.kill(os.getpid(), {sig})
        return real(src, dst, *a, **k)
    os.replace = replace
    raise SystemExit(cli.main(sys.argv[1:], env={{"HOME": "/nonexistent", "NO_COLOR": "1"}}))
""")


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def leftovers(root: Path) -> list[str]:
    """Anything a write could leave behind: temp files, staged copies, journals."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() and (p.name.endswith((".tmp", ".new", ".old")) or TXN_DIR.as_posix() in p.as_posix()))


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """The sample before and after a complete rewrite."""
    from .conftest import SAMPLE
    root = tmp_path_factory.mktemp("ref") / "monorepo"
    shutil.copytree(SAMPLE, root, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", ".nexusify"))
    before = snapshot(root)
    from nexusify import cli
    assert cli.main(["rewrite", "--root", str(root), "--index-url", URL], env=ENV) == 0
    return before, snapshot(root)


def run_child(root: Path, kind: str, at: int, sig: int, *args: str) -> subprocess.CompletedProcess[str]:
    code = CHILD.format(kind=kind, at=at, sig=int(sig))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run([sys.executable, "-c", code, "rewrite", "--root", str(root), "--index-url", URL, *args],
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("at", [1, 4, 8], ids=["first", "fourth", "last"])
def test_sigkill_at_the_nth_rename_is_completed_by_the_next_command(run_cli, monorepo: Path, expected, at: int) -> None:  # type: ignore[no-untyped-def]
    _, after = expected
    proc = run_child(monorepo, "target", at, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    half = snapshot(monorepo)
    still_old = [k for k in after if half.get(k) != after[k]]
    assert len(still_old) == 8 - at + 1  # killed just before the at-th of 8 renames: the tree is half-migrated
    assert leftovers(monorepo), "the killed run left its transaction behind"
    assert not [p for p in monorepo.rglob("*.tmp")], "nothing staged next to the targets (COPY . . would take it)"

    check = run_cli("rewrite", "--check", "--root", str(monorepo), "--index-url", URL, env=ENV)
    assert "an interrupted `nexusify rewrite` was completed first" in check.stderr
    assert check.exit_code == 0, check.output  # fully new: nothing left to rewrite
    assert "nothing to rewrite" in check.stdout
    assert snapshot(monorepo) == after
    assert leftovers(monorepo) == []


def test_sigkill_before_the_journal_rolls_back(run_cli, monorepo: Path, expected) -> None:  # type: ignore[no-untyped-def]
    before, _ = expected
    proc = run_child(monorepo, "journal", 1, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    assert leftovers(monorepo)  # staged copies, but no journal
    audit = run_cli("audit", "--offline", "--root", str(monorepo), env=ENV)
    assert "an interrupted `nexusify rewrite` was rolled back first" in audit.stderr
    assert audit.exit_code == 0, audit.output
    assert snapshot(monorepo) == before
    assert leftovers(monorepo) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupt_during_the_commit_finishes_it_first(monorepo: Path, expected, sig: int) -> None:  # type: ignore[no-untyped-def]
    _, after = expected
    proc = run_child(monorepo, "target", 2, sig)
    assert proc.returncode == 130, proc.stdout + proc.stderr
    assert "interrupted: the `rewrite` write in progress was finished first: all 8 file(s)" in proc.stderr
    assert snapshot(monorepo) == after
    assert leftovers(monorepo) == []


def test_a_failing_rename_undoes_the_renames_before_it(monorepo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = [monorepo / f"services/{s}/pyproject.toml" for s in ("gateway", "scheduler", "reporting")]
    before = snapshot(monorepo)
    real, calls = os.replace, []

    def replace(src: str, dst: str) -> None:
        if str(src).endswith(".new"):
            calls.append(dst)
            if len(calls) == 3:
                raise PermissionError(13, "Permission denied")
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OperationFailed, match="the files already replaced were restored"):
        write_files(monorepo, [(f, "new\n") for f in files] + [(monorepo / "services/new.txt", "x")], command="test")
    monkeypatch.undo()
    assert snapshot(monorepo) == before
    assert leftovers(monorepo) == []


def test_recovery_never_overwrites_a_file_changed_by_hand(run_cli, monorepo: Path, expected) -> None:  # type: ignore[no-untyped-def]
    proc = run_child(monorepo, "target", 2, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    txn = next((monorepo / TXN_DIR).iterdir())
    import json
    journal = json.loads((txn / "journal.json").read_text())
    pending = next(e for e in journal["files"] if (txn / f"{e['n']}.new").exists())
    (monorepo / pending["target"]).write_text("edited by hand\n")
    r = run_cli("audit", "--offline", "--root", str(monorepo), env=ENV)
    assert r.exit_code == 1
    assert f"{pending['target']}: {pending['target']} changed after an interrupted `nexusify rewrite`" in r.output
    assert (monorepo / pending["target"]).read_text() == "edited by hand\n"
    shutil.rmtree(txn)
    assert recover(monorepo) == []
