"""The few git questions day-two verbs ask: files changed since a ref, commits touching a folder
since a tag, tags, and committing a release. Every call is ``git -C ROOT ...``; a failure
becomes a :class:`~nexusify.errors.NexusifyError` naming the command and what to do."""

from __future__ import annotations

import os
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
        raise UsageError("git is not installed", hint="install git, or run without the option that needs it "
                                                       "(affected --since, release --commit)") from exc
    if check and proc.returncode != 0:
        raise OperationFailed(f"`git {' '.join(args)}` failed in {root}: {proc.stderr.strip()[-500:]}",
                              hint="check that the monorepo is a git repository and the ref exists")
    return proc


def top_level(root: Path, *, why: str = "", hint: str = "run `git init` and commit, then re-run") -> Path:
    """The repository's top folder; a usage error saying ``why`` git is needed when there is none."""
    proc = git(root, "rev-parse", "--show-toplevel", check=False)
    if proc.returncode != 0:
        raise UsageError(f"{root} is not inside a git repository" + (f", and {why}" if why else ""), hint=hint)
    return Path(proc.stdout.strip()).resolve()


def changed_files(root: Path, ref: str) -> list[Path]:
    """Files that differ between ``ref`` and the working tree (committed or not), and untracked
    files that git does not ignore, as absolute paths."""
    top = top_level(root, why=f"--since {ref} compares with a git commit",
                    hint="run it in a git checkout, or drop --since to compare with the index instead")
    if git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False).returncode != 0:
        raise UsageError(f"--since {ref}: no such commit in {root}",
                         hint="give a branch, tag or commit (e.g. origin/main); in CI fetch enough history "
                              "(fetch-depth: 0)")
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


def can_commit(root: Path, tags: Sequence[str], files: Sequence[Path] = ()) -> None:
    """Everything a release commit needs, checked before anything is written: a first commit,
    an identity for the commit and the annotated tags, valid tag names not taken, ``files`` not
    ignored by git (the commit could not hold them), no git command at work. (A pre-commit hook can only be judged by running it: a failing one undoes
    the release, see :func:`nexusify.transaction.write_and_commit`.)"""
    top_level(root, why="--commit commits the release", hint="run it in a git checkout, or drop --commit")
    if git(root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}", check=False).returncode != 0:
        raise UsageError(f"{root} has no commit yet, so a release cannot be committed; nothing was written",
                         hint="commit the monorepo once, then re-run")
    for who in ("GIT_AUTHOR_IDENT", "GIT_COMMITTER_IDENT"):
        proc = git(root, "var", who, check=False)
        if proc.returncode != 0:
            said = proc.stderr.strip().splitlines()
            raise UsageError(f"git has no identity to commit the release with ({who}: "
                             f"{said[-1] if said else 'unknown'}); nothing was written",
                             hint='set it: git config user.name "Your Name" && git config user.email you@example.com '
                                  "(or GIT_AUTHOR_NAME/GIT_AUTHOR_EMAIL and GIT_COMMITTER_*), then re-run")
    for tag in tags:
        if git(root, "check-ref-format", f"refs/tags/{tag}", check=False).returncode != 0:
            raise UsageError(f"{tag!r} is not a valid git tag name; nothing was written",
                             hint="rename the package, or release without --commit")
        if tag_exists(root, tag):
            raise OperationFailed(f"tag {tag} exists already; nothing was written", hint="delete the tag, or bump past it")
    ignored = git(root, "check-ignore", "--", *[str(f) for f in files], check=False).stdout.split("\n") if files else []
    if any(ignored):
        shown = ", ".join(os.path.relpath(i, root) for i in ignored if i)
        raise UsageError(f"git ignores {shown}, so the release commit could not hold it; "
                         "nothing was written", hint="remove the pattern from .gitignore (git check-ignore -v names "
                                                     "it), or release without --commit")
    lock = git(root, "rev-parse", "--git-path", "index.lock").stdout.strip()
    if lock and (root / lock).exists():
        raise OperationFailed(f"git is at work in {root} ({lock} exists); nothing was written",
                              hint=f"wait for that git command to end (or, if none runs, remove {lock}), then re-run")


def is_shallow(root: Path) -> bool:
    """True in a shallow clone (its oldest commit is grafted: it looks as if it added every file)."""
    proc = git(root, "rev-parse", "--is-shallow-repository", check=False)
    return proc.returncode == 0 and proc.stdout.strip() == "true"


def dirty(root: Path, paths: Sequence[Path]) -> list[Path]:
    """Files under ``paths`` that differ from HEAD (staged or not) or are untracked and not
    ignored (``git status --porcelain``), as absolute paths."""
    if not paths:
        return []
    top = top_level(root)
    out = git(root, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--",
              *[str(p) for p in paths]).stdout
    names: list[Path] = []
    records = iter(out.split("\0"))
    for rec in records:
        if len(rec) < 4:
            continue
        names.append(top / rec[3:])  # porcelain paths are relative to the repository's top
        if rec[0] in "RC":
            next(records, None)  # a rename's source path follows
    return sorted(names)
