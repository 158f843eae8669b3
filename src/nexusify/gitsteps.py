"""The git steps of a transaction: a release's files, its `git commit` and its tags, done together
or settled by the next nexusify command (:mod:`nexusify.transaction` writes the files; this
module adds what follows them).

A release writes its files, commits exactly them and tags the commit. The journal's "git" record
(HEAD before, the commit message, the tags) makes the three one transaction: the files are
renamed into place with their old content kept, then `git add` + `git commit`, then each tag,
then the folder goes. A commit that fails (a pre-commit hook, no identity) undoes the files at
once; a process killed anywhere leaves a journal that the next command settles by asking git:
the commit exists (first-parent child of the recorded HEAD, with the recorded message) -> the
missing tags are made; HEAD is still the recorded one -> the files get their old content back
and their index entries HEAD's. The transaction lock is inherited by the git processes, so an
orphaned `git commit` (its hook still running after nexusify was killed) finishes before any
recovery looks; a git lock left by a killed git stops the settling until it is removed.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nexusify.errors import OperationFailed
from nexusify.files import confined, relpath
from nexusify.interrupts import Interrupted, interrupts_deferred
from nexusify.transaction import (
    _HELD,
    STEPS,
    Recovered,
    _clean,
    _commit,
    _fsync_dir,
    _locked,
    _recover_locked,
    _sha,
    _stage_journaled,
    _target,
    journal_key,
)
from nexusify.transaction import recover as transaction_recover


@dataclass(frozen=True)
class GitRecovered(Recovered):
    """What :func:`recover` did with an interrupted transaction that had git steps."""

    detail: str = ""  # what git was found to hold, and what was done

    def __str__(self) -> str:
        done = "completed" if self.action == "committed" else "undone"
        return f"an interrupted `nexusify {self.command}` was {done} first: {self.detail}"


def write_and_commit(root: Path, changes: Sequence[tuple[Path, bytes | str]], *, command: str, message: str,
                     tags: Sequence[str] = ()) -> str:
    """Write ``changes`` as :func:`write_files` does, commit exactly those files with ``message``
    and create an annotated tag per ``tags`` on the commit, all or nothing (see above).
    Returns the commit's sha."""
    root = root.resolve()
    changes = [(confined(root, path, source=relpath(Path(os.path.abspath(path)), root), what=f"`{command}` target"), data)
               for path, data in changes]
    key = journal_key()
    with _locked(root) as base:
        fd = _HELD[base]
        _recover_locked(root, base)
        head = _git_head(root)
        if head is None:
            raise OperationFailed(f"{root} has no commit yet, so a release cannot be committed; nothing was written",
                                  hint="commit the monorepo once, then re-run")
        folder, entries = _stage_journaled(root, base, changes, command, key,
                                           git={"head": head, "message": message, "tags": list(tags)})
        with interrupts_deferred() as deferred:
            _commit(root, folder, entries, clean=False)
            sha = _git_commit(root, folder, entries, head, message, fd)
            _git_tags(root, sha, tags, fd)
            _clean(folder)
        if deferred.received:
            raise Interrupted(f"the `{command}` in progress was finished first: its {len(entries)} file(s) are "
                              f"committed ({sha[:12]}) and tagged")
        return sha


def _git(root: Path, *args: str, lock_fd: int | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False,
                              pass_fds=() if lock_fd is None else (lock_fd,))
    except FileNotFoundError as exc:
        raise OperationFailed("git is not installed", hint="install git and re-run") from exc


def _git_head(root: Path) -> str | None:
    proc = _git(root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    return proc.stdout.strip() if proc.returncode == 0 else None


def _git_commit(root: Path, folder: Path, entries: list[dict[str, object]], head: str, message: str, fd: int) -> str:
    paths = [str(_target(root, e)) for e in entries]
    proc = _git(root, "add", "--", *paths, lock_fd=fd)
    step = "add"
    if proc.returncode == 0:
        proc = _git(root, "commit", "--quiet", "-m", message, "--", *paths, lock_fd=fd)
        step = "commit"
    now = _git_head(root)
    if proc.returncode == 0 and now is not None and now != head:
        return now
    reason = (proc.stderr.strip() or proc.stdout.strip())[-800:] or f"exit status {proc.returncode}"
    if now != head:  # pragma: no cover - git failed yet HEAD moved: the next command decides from the journal
        raise OperationFailed(f"`git {step}` failed after HEAD moved: {reason}",
                              hint="re-run nexusify: it completes or undoes the release from its journal")
    _undo_git(root, folder, entries, "release")
    _clean(folder)
    raise OperationFailed(f"`git {step}` failed, so {message!r} was undone: the {len(entries)} file(s) it wrote hold "
                          f"their old content again, nothing was committed or tagged. git said: {reason}",
                          hint="fix the cause (a pre-commit hook, user.name/user.email), then re-run the release")


def _git_tags(root: Path, sha: str, tags: Sequence[str], fd: int | None) -> list[str]:
    """Create each missing annotated tag on ``sha``; the ones created."""
    made: list[str] = []
    for tag in tags:
        have = _git(root, "rev-parse", "--verify", "--quiet", f"refs/tags/{tag}^{{commit}}")
        if have.returncode == 0:
            if have.stdout.strip() == sha:
                continue
            raise OperationFailed(
                f"tag {tag} exists already on another commit ({have.stdout.strip()[:12]}), so the release commit "
                f"{sha[:12]} cannot get it", hint=f"delete or move the tag by hand (git tag -f -a {tag} {sha[:12]}), "
                "then re-run: the remaining tags are made then")
        proc = _git(root, "tag", "-a", tag, "-m", tag, sha, lock_fd=fd)
        if proc.returncode != 0:
            raise OperationFailed(f"`git tag {tag}` failed after the release commit {sha[:12]}: "
                                  f"{proc.stderr.strip()[-500:]}",
                                  hint="fix the cause and re-run any nexusify command: it makes the missing tags")
        made.append(tag)
    return made


def _undo_git(root: Path, folder: Path, entries: list[dict[str, object]], command: str) -> None:
    """Every target back to its old content (never one changed by hand) and its index entry to HEAD's."""
    current = {str(e["target"]): (_sha(_target(root, e).read_bytes()) if _target(root, e).is_file() else None)
               for e in entries}
    for e in entries:
        if current[str(e["target"])] not in (e["old"], e["new"]):
            raise OperationFailed(
                f"{e['target']} changed after an interrupted `nexusify {command}`: it holds neither its old nor "
                "its new content, so it was left alone", path=str(e["target"]),
                hint=f"check it by hand (git diff), then delete {relpath(folder, root)} and re-run")
    for e in entries:
        target = _target(root, e)
        if current[str(e["target"])] == e["old"]:
            continue
        if e["old"] is None:
            target.unlink(missing_ok=True)
        else:
            os.replace(folder / f"{e['n']}.old", target)
    for parent in {_target(root, e).parent for e in entries}:
        _fsync_dir(parent)
    _git(root, "reset", "--quiet", "--", *[str(_target(root, e)) for e in entries])


def _is_sha(text: str) -> bool:
    return len(text) in (40, 64) and all(c in "0123456789abcdef" for c in text)


def _tag_name_ok(root: Path, tag: str) -> bool:
    return not tag.startswith("-") and _git(root, "check-ref-format", f"refs/tags/{tag}").returncode == 0


def _release_commit(root: Path, head: str, message: str) -> str | None:
    """The commit the git steps made on ``head``: its first-parent child with ``message``, if any."""
    proc = _git(root, "rev-list", "--first-parent", "--reverse", f"{head}..HEAD")
    first = proc.stdout.split()[0] if proc.returncode == 0 and proc.stdout.split() else None
    if first is None:
        return None
    info = _git(root, "show", "-s", "--format=%P%x00%B", first).stdout
    parents, _, body = info.partition("\0")
    return first if parents.split()[:1] == [head] and body.strip() == message.strip() else None


def _recover_git(root: Path, folder: Path, command: str, entries: list[dict[str, object]],
                 record: object) -> GitRecovered:
    tags = record.get("tags") if isinstance(record, dict) else None
    head = str(record.get("head")) if isinstance(record, dict) else ""
    if (not isinstance(record, dict) or not isinstance(tags, list) or not _is_sha(head)
            or not all(isinstance(t, str) and _tag_name_ok(root, t) for t in tags)):
        raise OperationFailed(f"{relpath(folder, root)}: unreadable git steps in its journal",
                              hint="check the files it names by hand (git status, git log, git tag), then delete "
                                   "its folder")
    message = str(record.get("message"))
    lock = _git(root, "rev-parse", "--git-path", "index.lock").stdout.strip()
    if lock and (root / lock).exists():
        raise OperationFailed(
            f"an interrupted `nexusify {command}` cannot be settled while git is at work in {root} "
            f"({lock} exists)", hint=f"wait for that git command to end (or, if none runs, remove {lock}), then re-run")
    files = tuple(str(e["target"]) for e in entries)
    commit = _release_commit(root, head, message)
    if commit is None:
        if _git_head(root) != head:
            raise OperationFailed(
                f"an interrupted `nexusify {command}` cannot be settled: HEAD moved since it started ({head[:12]}), "
                f"and no commit {message!r} follows that one, so its files were left alone",
                hint=f"check them by hand (git status, git log), then delete {relpath(folder, root)} and re-run")
        _undo_git(root, folder, entries, command)
        _clean(folder)
        return GitRecovered(command, "undone", files, detail=
                            f"its commit had not been made, so its {len(files)} file(s) hold their old content again "
                            f"({', '.join(files)}); nothing was committed or tagged")
    made = _git_tags(root, commit, tags, None)
    _clean(folder)
    tagged = (f"; tags made now: {', '.join(made)}" if made else "; every tag was there") if tags else ""
    return GitRecovered(command, "committed", files, detail=f"its commit {commit[:12]} exists{tagged}"
                        + (f" (all of {', '.join(tags)})" if tags else "; it needs no tag"))


STEPS["git"] = _recover_git


def recover(root: Path) -> list[Recovered]:
    """:func:`nexusify.transaction.recover`, with the git steps of an interrupted release settled
    too (the CLI runs this before every command)."""
    return transaction_recover(root)


__all__ = ["GitRecovered", "recover", "write_and_commit"]
