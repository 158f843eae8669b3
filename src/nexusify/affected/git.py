"""The few git questions day-two verbs ask: files changed since a ref, commits touching a folder
since a tag, tags, and committing a release. Every call is ``git -C ROOT ...``; a failure
becomes a :class:`~nexusify.errors.NexusifyError` naming the command and what to do."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nexusify.errors import OperationFailed, UsageError

_SEP = "\x1f"
_END = "\x1e"


@dataclass(frozen=True)
class Commit:
    sha: str
    subject: str
    body: str


def git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False,
                              timeout=120)
    except FileNotFoundError as exc:
        raise UsageError("git is not installed", hint="install git, or run without --since/--commit") from exc
    if check and proc.returncode != 0:
        raise OperationFailed(f"`git {' '.join(args)}` failed in {root}: {proc.stderr.strip()[-500:]}",
                              hint="check that the monorepo is a git repository and the ref exists")
    return proc


def top_level(root: Path) -> Path:
    proc = git(root, "rev-parse", "--show-toplevel", check=False)
    if proc.returncode != 0:
        raise UsageError(f"{root} is not inside a git repository",
                         hint="run `git init` and commit, or drop --since (compare with the index instead)")
    return Path(proc.stdout.strip()).resolve()


def changed_files(root: Path, ref: str) -> list[Path]:
    """Files that differ between ``ref`` and the working tree (committed or not), and untracked
    files that git does not ignore, as absolute paths."""
    if git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False).returncode != 0:
        raise UsageError(f"--since {ref}: no such commit in {root}",
                         hint="give a branch, tag or commit (e.g. origin/main); in CI fetch enough history "
                              "(fetch-depth: 0)")
    top = top_level(root)
    names = git(root, "diff", "--name-only", "-z", ref, "--").stdout.split("\0")
    names += git(root, "ls-files", "--others", "--exclude-standard", "-z", "--full-name").stdout.split("\0")
    return sorted({(top / n).resolve() for n in names if n})


def commits_touching(root: Path, folder: Path, since: str | None) -> list[Commit]:
    """Commits (newest first) that changed ``folder``, after ``since`` (a ref) or all of them."""
    rng = [f"{since}..HEAD"] if since else ["HEAD"]
    if git(root, "rev-parse", "--verify", "--quiet", "HEAD", check=False).returncode != 0:
        return []  # no commit yet
    out = git(root, "log", f"--format=%H{_SEP}%s{_SEP}%b{_END}", *rng, "--", str(folder)).stdout
    commits = []
    for record in out.split(_END):
        record = record.strip("\n")
        if not record:
            continue
        sha, subject, body = [*record.split(_SEP), "", ""][:3]
        commits.append(Commit(sha, subject.strip(), body.strip()))
    return commits


def tag_exists(root: Path, tag: str) -> bool:
    return git(root, "rev-parse", "--verify", "--quiet", f"refs/tags/{tag}", check=False).returncode == 0


def commit_and_tag(root: Path, files: Sequence[Path], message: str, tags: Sequence[str]) -> str:
    """Commit exactly ``files`` and create each annotated tag on that commit; the commit's sha."""
    for tag in tags:
        if tag_exists(root, tag):
            raise OperationFailed(f"tag {tag} exists already", hint="delete it or bump past it, then re-run")
    git(root, "add", "--", *[str(f) for f in files])
    git(root, "commit", "--quiet", "-m", message, "--", *[str(f) for f in files])
    sha = git(root, "rev-parse", "HEAD").stdout.strip()
    for tag in tags:
        git(root, "tag", "-a", tag, "-m", tag, sha)
    return sha
