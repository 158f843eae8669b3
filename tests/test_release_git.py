"""A release is one transaction with git: its files, `git commit` and the tags are done together,
or the next nexusify command completes them (the commit exists: the missing tags are made) or
undoes them (no commit: every file gets its old content back), and says which. Real git
repositories in tmp folders: failing pre-commit hooks, no identity, SIGKILL before the commit,
between commit and tags, between two tags, and while a hook runs; dirty trees and shallow
clones are refused before anything is written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from nexusify.transaction import TXN_DIR

from .conftest import REPO
from .helpers import snapshot
from .test_affected import GIT_ENV, commit_all, git

ALPHA_INIT = "shared/packages/alpha/acme_alpha/__init__.py"
BETA_INIT = "shared/packages/beta/src/acme_beta/__init__.py"
TAGS = ["acme-alpha-v0.1.1", "acme-beta-v0.3.1"]

FILES = {
    "shared/packages/alpha/pyproject.toml": """\
        [project]
        name = "acme-alpha"
        version = "0.1.0"  # bumped by nexusify release
        requires-python = ">=3.11"

        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"
        """,
    ALPHA_INIT: "VALUE = 1\n",
    "shared/packages/beta/pyproject.toml": """\
        [project]
        name = "acme-beta"
        dynamic = ["version"]
        requires-python = ">=3.11"
        dependencies = ["acme-alpha>=0.1.0,<0.2.0"]

        [tool.setuptools.dynamic]
        version = {attr = "acme_beta.__version__"}

        [tool.setuptools.packages.find]
        where = ["src"]

        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"
        """,
    BETA_INIT: '"""acme beta.\n\nExample::\n\n__version__ = "0.0.1"\n"""\n\n__version__ = "0.3.0"\n',
    "services/svc/pyproject.toml": """\
        [project]
        name = "svc"
        version = "1.0.0"
        requires-python = ">=3.11"
        dependencies = ["acme-alpha>=0.1.0,<0.2.0", "acme-beta>=0.3.0,<0.4.0"]
        """,
}


def make_tiny(root: Path) -> Path:
    """Two shared packages (alpha static, beta dynamic and depending on alpha) and a service,
    in a git repository whose last commit is a `fix:` in alpha."""
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text))
    git(root, "init", "-q", "-b", "main")
    commit_all(root, "initial")
    (root / ALPHA_INIT).write_text("VALUE = 1\nX = 2\n")
    commit_all(root, "fix: alpha gets X")
    return root


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for k, v in GIT_ENV.items():
        monkeypatch.setenv(k, v)
    return make_tiny(tmp_path / "mono")


def state(root: Path) -> tuple[str, list[str], dict[str, bytes], str]:
    """HEAD, tags, the working tree (without .git and .nexusify) and `git status`."""
    return (git(root, "rev-parse", "HEAD").strip(), git(root, "tag").split(), snapshot(root, skip=(".git", ".nexusify")),
            git(root, "status", "--porcelain", "--untracked-files=all"))


def assert_released(root: Path, before_head: str) -> None:
    """Fully released: one commit on the old HEAD with every file, every tag on it, a clean tree."""
    head = git(root, "rev-parse", "HEAD").strip()
    assert git(root, "rev-parse", "HEAD^").strip() == before_head
    assert git(root, "log", "-1", "--format=%s").strip() == "release: acme-alpha 0.1.1, acme-beta 0.3.1"
    for tag in TAGS:
        assert git(root, "rev-parse", f"{tag}^{{commit}}").strip() == head, tag
    assert git(root, "status", "--porcelain", "--untracked-files=all") == ""
    assert 'version = "0.1.1"' in git(root, "show", "HEAD:shared/packages/alpha/pyproject.toml")
    beta = git(root, "show", f"HEAD:{BETA_INIT}")
    assert '\n__version__ = "0.3.1"\n' in beta and '__version__ = "0.0.1"\n"""' in beta  # not the docstring's
    assert not list((root / TXN_DIR).iterdir())


def release(run_cli, root: Path, *args: str):  # type: ignore[no-untyped-def]
    return run_cli("release", "acme-alpha", "--root", str(root), *args, env={"HOME": str(Path.home()), "NO_COLOR": "1"})


def test_commit_release_is_one_commit_with_every_tag(run_cli, tiny: Path) -> None:  # type: ignore[no-untyped-def]
    head = git(tiny, "rev-parse", "HEAD").strip()
    r = release(run_cli, tiny, "--commit")
    assert r.exit_code == 0, r.output
    assert_released(tiny, head)


# --------------------------------------------------------------------------- failures git reports


def test_a_failing_pre_commit_hook_undoes_the_release(run_cli, tiny: Path) -> None:  # type: ignore[no-untyped-def]
    hook = tiny / ".git/hooks/pre-commit"
    hook.write_text("#!/bin/sh\necho 'lint: trailing whitespace' >&2\nexit 1\n")
    hook.chmod(0o755)
    before = state(tiny)
    r = release(run_cli, tiny, "--commit")
    assert r.exit_code == 1, r.output
    assert "`git commit` failed, so 'release: acme-alpha 0.1.1, acme-beta 0.3.1' was undone: the 4 file(s)" in r.output
    assert "lint: trailing whitespace" in r.output
    assert state(tiny) == before  # files, index, HEAD and tags as they were
    # the next release starts from the right base: not "already bumped", and the same bumps
    hook.unlink()
    again = release(run_cli, tiny, "--commit")
    assert again.exit_code == 0, again.output
    assert "already bumped" not in again.output
    assert_released(tiny, before[0])
    log = (tiny / "shared/packages/alpha/CHANGELOG.md").read_text()
    assert log.count("## [0.1.1]") == 1 and log.count("alpha gets X") == 1


def test_no_git_identity_is_refused_before_anything_is_written(run_cli, tiny: Path, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    for k in GIT_ENV:
        monkeypatch.delenv(k)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.gitconfig
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    git(tiny, "config", "user.useConfigOnly", "true")  # never a guessed user@hostname
    before = state(tiny)
    r = release(run_cli, tiny, "--commit")
    assert r.exit_code == 2, r.output
    assert "git has no identity to commit the release with" in r.output and "git config user.email" in r.output
    assert state(tiny) == before


def test_a_file_git_ignores_is_refused_before_anything_is_written(run_cli, tiny: Path) -> None:  # type: ignore[no-untyped-def]
    (tiny / ".gitignore").write_text("CHANGELOG.md\n")
    git(tiny, "add", ".gitignore")
    git(tiny, "commit", "-qm", "chore: no changelogs")
    before = state(tiny)
    r = release(run_cli, tiny, "--commit")
    assert r.exit_code == 2, r.output
    assert "git ignores shared/packages/alpha/CHANGELOG.md" in r.output and "git check-ignore -v" in r.output
    assert state(tiny) == before


# --------------------------------------------------------------------------- kills

# a child nexusify that SIGKILLs itself just before the `nth` git command `step` (commit, tag...)
CHILD = textwrap.dedent("""
    import os, signal, subprocess, sys
    from nexusify import cli
    real, real_replace = subprocess.run, os.replace
    seen = []
    def replace(src, dst, *a, **k):  # a staged file renamed over its target
        if str(src).endswith(".new"):
            seen.append("rename")
            if {step!r} == "rename" and seen.count("rename") == {nth}:
                os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(src, dst, *a, **k)
    os.replace = replace
    def run(argv, *a, **k):
        if list(argv[:1]) == ["git"] and len(argv) > 3:
            seen.append(argv[3])
            if argv[3] == {step!r} and seen.count(argv[3]) == {nth}:
                os.kill(os.getpid(), signal.SIGKILL)
        return real(argv, *a, **k)
    subprocess.run = run
    raise SystemExit(cli.main(sys.argv[1:], env=dict(os.environ)))
""")


def child_env() -> dict[str, str]:
    return {**os.environ, **GIT_ENV, "PYTHONPATH": str(REPO / "src"), "NO_COLOR": "1"}


def run_child(root: Path, step: str, nth: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CHILD.format(step=step, nth=nth), "release", "acme-alpha",
                           "--commit", "--root", str(root)], env=child_env(), capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize(("step", "nth"), [("rename", 3), ("add", 1)], ids=["halfway-through-the-files", "before-git-add"])
def test_killed_before_the_commit_is_undone(run_cli, tiny: Path, step: str, nth: int) -> None:  # type: ignore[no-untyped-def]
    before = state(tiny)
    proc = run_child(tiny, step, nth)
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    assert state(tiny)[2] != before[2]  # the files were written, nothing committed
    nxt = run_cli("audit", "--offline", "--root", str(tiny))
    assert "an interrupted `nexusify release` was undone first: its commit had not been made" in nxt.stderr
    assert state(tiny) == before
    assert not list((tiny / TXN_DIR).iterdir())


def test_killed_after_git_add_before_the_commit_is_undone_index_included(run_cli, tiny: Path) -> None:  # type: ignore[no-untyped-def]
    before = state(tiny)
    proc = run_child(tiny, "commit", 1)
    assert proc.returncode == -signal.SIGKILL
    assert git(tiny, "diff", "--cached", "--name-only")  # staged, not committed
    nxt = release(run_cli, tiny, "--dry-run")
    assert "was undone first" in nxt.stderr and nxt.exit_code == 0
    assert state(tiny) == before  # `git status` clean: the index entries are HEAD's again


def test_sigterm_during_the_git_steps_finishes_them_first(tiny: Path) -> None:
    head = git(tiny, "rev-parse", "HEAD").strip()
    code = CHILD.format(step="never", nth=0).replace(
        "def run(argv, *a, **k):",
        "def run(argv, *a, **k):\n    if list(argv[3:4]) == ['tag'] and 'tag' not in seen: os.kill(os.getpid(), signal.SIGTERM)")
    proc = subprocess.run([sys.executable, "-c", code, "release", "acme-alpha", "--commit", "--root", str(tiny)],
                          env=child_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 130, proc.stdout + proc.stderr
    assert "the `release` in progress was finished first" in proc.stderr and "committed" in proc.stderr
    assert_released(tiny, head)


def test_a_journal_naming_a_bad_tag_is_left_alone(run_cli, tiny: Path) -> None:  # type: ignore[no-untyped-def]
    proc = run_child(tiny, "tag", 1)
    assert proc.returncode == -signal.SIGKILL
    journal = next((tiny / TXN_DIR).iterdir()) / "journal.json"
    import json

    data = json.loads(journal.read_text())
    data["git"]["tags"] = ["--delete", "acme-alpha-v0.1.1"]
    journal.write_text(json.dumps(data))
    r = run_cli("audit", "--offline", "--root", str(tiny))
    assert "journal" in r.output  # reported (unreadable git steps; or untrusted, once journals are signed)
    assert git(tiny, "tag") == "" and journal.exists()  # no git command run from it, left alone


@pytest.mark.parametrize("nth", [1, 2], ids=["before-the-first-tag", "between-the-tags"])
def test_killed_after_the_commit_is_completed_with_the_missing_tags(run_cli, tiny: Path, nth: int) -> None:  # type: ignore[no-untyped-def]
    head = git(tiny, "rev-parse", "HEAD").strip()
    proc = run_child(tiny, "tag", nth)
    assert proc.returncode == -signal.SIGKILL
    assert git(tiny, "tag").split() == TAGS[:nth - 1]
    nxt = run_cli("audit", "--offline", "--root", str(tiny))
    assert "an interrupted `nexusify release` was completed first: its commit" in nxt.stderr
    assert f"tags made now: {', '.join(TAGS[nth - 1:])}" in nxt.stderr
    assert_released(tiny, head)


def test_a_git_lock_left_by_a_killed_git_stops_recovery_until_removed(run_cli, tiny: Path) -> None:  # type: ignore[no-untyped-def]
    before = state(tiny)
    proc = run_child(tiny, "commit", 1)
    assert proc.returncode == -signal.SIGKILL
    lock = tiny / ".git/index.lock"  # what a `git commit` killed with the whole process group leaves
    lock.write_bytes(b"")
    stopped = run_cli("audit", "--offline", "--root", str(tiny))
    assert stopped.exit_code == 1 and "cannot be settled while git is at work" in stopped.output
    assert "remove .git/index.lock" in stopped.output
    assert next((tiny / TXN_DIR).iterdir()).is_dir()  # left for later: nothing guessed
    lock.unlink()
    nxt = run_cli("audit", "--offline", "--root", str(tiny))
    assert "was undone first" in nxt.stderr
    assert state(tiny) == before


def test_killed_while_a_hook_runs_the_orphaned_commit_is_waited_for_and_completed(run_cli, tiny: Path,  # type: ignore[no-untyped-def]
                                                                                   tmp_path: Path) -> None:
    marker = tmp_path / "hook-started"
    hook = tiny / ".git/hooks/pre-commit"
    hook.write_text(f"#!/bin/sh\ntouch '{marker}'\nsleep 2\nexit 0\n")
    hook.chmod(0o755)
    head = git(tiny, "rev-parse", "HEAD").strip()
    proc = subprocess.Popen([sys.executable, "-m", "nexusify", "release", "acme-alpha", "--commit", "--root", str(tiny)],
                            env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert marker.exists(), "the pre-commit hook never ran"
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(10) == -signal.SIGKILL
    # git and its hook live on: the next command waits for them (they hold the transaction lock)
    # instead of restoring files under a commit that is about to land
    nxt = run_cli("audit", "--offline", "--root", str(tiny))
    assert "was completed first: its commit" in nxt.stderr, nxt.output
    assert_released(tiny, head)


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("flag", ["--commit", "--publish"])
@pytest.mark.parametrize("dirt", ["untracked", "modified", "staged"])
def test_a_dirty_released_package_is_refused(run_cli, tiny: Path, flag: str, dirt: str,  # type: ignore[no-untyped-def]
                                             pypi_server_factory) -> None:
    if dirt == "untracked":
        (tiny / "shared/packages/alpha/acme_alpha/scratch.py").write_text("SECRET_EXPERIMENT = 1\n")
        name = "shared/packages/alpha/acme_alpha/scratch.py"
    else:
        (tiny / ALPHA_INIT).write_text("VALUE = 1\nX = 3\n")
        name = ALPHA_INIT
        if dirt == "staged":
            git(tiny, "add", ALPHA_INIT)
    before = state(tiny)
    extra: tuple[str, ...] = ()
    if flag == "--publish":  # what would be uploaded: a real (empty) index, nothing may reach it
        server = pypi_server_factory(auth=None)
        extra = ("--repository-url", server.url, "--index-url", server.simple_url)
    r = release(run_cli, tiny, flag, *extra)
    assert r.exit_code == 1, r.output
    if flag == "--publish":
        assert list(server.packages.iterdir()) == []
    assert "error[git-dirty]" in r.output and name in r.output and "git stash -u" in r.output
    assert "dry run" not in r.output and "stopped: nothing written" in r.output
    assert state(tiny) == before


def test_dirt_the_release_never_takes_does_not_block(run_cli, tiny: Path) -> None:  # type: ignore[no-untyped-def]
    (tiny / "notes.txt").write_text("todo\n")  # outside every released package
    cache = tiny / "shared/packages/alpha/acme_alpha/__pycache__/x.cpython-311.pyc"  # never built nor uploaded
    cache.parent.mkdir()
    cache.write_bytes(b"\0")
    r = release(run_cli, tiny, "--commit")
    assert r.exit_code == 0, r.output
    assert git(tiny, "status", "--porcelain", "--untracked-files=all").splitlines() == [
        "?? notes.txt", "?? shared/packages/alpha/acme_alpha/__pycache__/x.cpython-311.pyc"]


def test_a_shallow_clone_is_refused(run_cli, tiny: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{tiny}", str(clone)], check=True, env={**os.environ, **GIT_ENV})
    before = state(clone)
    r = release(run_cli, clone, "--commit")
    assert r.exit_code == 1, r.output
    assert "error[git-shallow]" in r.output and "git fetch --unshallow" in r.output
    assert state(clone) == before
    dry = release(run_cli, clone, "--dry-run")
    assert dry.exit_code == 0 and "warning[git-shallow]" in dry.output


def test_a_detached_head_is_warned_about(run_cli, tiny: Path) -> None:  # type: ignore[no-untyped-def]
    git(tiny, "checkout", "-q", "--detach")
    r = release(run_cli, tiny, "--dry-run")
    assert r.exit_code == 0 and "warning[git-detached]" in r.output


def test_a_lock_held_too_long_is_an_error_naming_it(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fcntl

    from nexusify import transaction
    from nexusify.errors import OperationFailed

    (tiny / TXN_DIR).mkdir(parents=True)
    holder = os.open(tiny / TXN_DIR, os.O_RDONLY)  # as a git child holding the inherited lock would
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        monkeypatch.setattr(transaction, "LOCK_WAIT", 0.3)
        with pytest.raises(OperationFailed, match=r"stayed locked for 0\.3 s: another nexusify, or a git command"):
            transaction.write_files(tiny, [(tiny / "x.txt", "x")], command="test")
        assert not (tiny / "x.txt").exists()
    finally:
        os.close(holder)
    transaction.write_files(tiny, [(tiny / "x.txt", "x")], command="test")
    assert (tiny / "x.txt").read_text() == "x"
