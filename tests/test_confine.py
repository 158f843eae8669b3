"""Nothing a repository contains makes nexusify write outside it (issue 21, items 1-3).

A shipped transaction journal is never recovered (tracked by git, unsigned, signed with another
key, or naming a target outside the root or in ``.git/``: reported in one line, left alone);
``state-dir`` and a repository's ``build-env-dir`` must stay inside the root; index URLs are one
http(s) line, so none can add a ``RUN`` line to a Dockerfile.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from nexusify.errors import ConfigError
from nexusify.files import confined
from nexusify.transaction import TXN_DIR, _mac, journal_key, recover

URL = "http://127.0.0.1:9/simple/"
ENV = {"HOME": "/nonexistent", "NO_COLOR": "1"}


def listing(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` (not following symlinks) with its content: a write anywhere shows."""
    out: dict[str, bytes | None] = {}
    for dirpath, dirs, files in os.walk(folder):
        for name in dirs + files:
            p = Path(dirpath) / name
            out[p.relative_to(folder).as_posix()] = p.read_bytes() if p.is_file() and not p.is_symlink() else None
    return out


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                   check=True, capture_output=True)


def hostile_journal(root: Path, targets: list[str], *, key: bytes | None = None, name: str = "20260101T000000-deadbeef") -> Path:
    """A journal folder the way an attacker ships it: every target absent (``old`` null), the
    staged content a hook script; signed with ``key`` when given."""
    folder = root / TXN_DIR / name
    folder.mkdir(parents=True)
    payload = b"#!/bin/sh\ntouch /tmp/pwned\n"
    import hashlib
    entries = []
    for n, t in enumerate(targets):
        (folder / f"{n}.new").write_bytes(payload)
        os.chmod(folder / f"{n}.new", 0o755)
        entries.append({"target": t, "n": n, "old": None, "new": hashlib.sha256(payload).hexdigest()})
    data: dict[str, object] = {"version": 2, "command": "rewrite", "root": str(root.resolve()), "pid": 1,
                               "started": 0.0, "files": entries}
    if key is not None:
        data["mac"] = _mac(key, data)
    (folder / "journal.json").write_text(json.dumps(data))
    (folder / "command").write_text("rewrite")
    return folder


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    return tmp_path / "abs-target"


def hostile_targets(outside: Path) -> list[str]:
    return ["../outside", str(outside), ".git/hooks/pre-commit", "services/new-file"]


def test_a_journal_shipped_in_git_is_reported_and_left_alone(run_cli: Callable[..., object], monorepo: Path,
                                                             tmp_path: Path, outside: Path) -> None:
    git(monorepo, "init", "-q")
    folder = hostile_journal(monorepo, hostile_targets(outside), key=journal_key())  # even a valid signature
    git(monorepo, "add", "-A")
    git(monorepo, "add", "-f", str(folder))
    git(monorepo, "commit", "-qm", "hostile")
    before = listing(tmp_path)
    for argv in (["audit", "--offline"], ["rewrite", "--check", "--index-url", URL], ["rewrite", "--index-url", URL],
                 ["publish", "--repository-url", "http://127.0.0.1:9/", "--timeout", "1"]):
        r = run_cli(*argv, "--root", str(monorepo), env=ENV)
        line = f"nexusify: {TXN_DIR.as_posix()}/{folder.name}: left alone, not recovered: it is tracked by git"
        assert line in r.stderr, (argv, r.output)  # type: ignore[attr-defined]
    after = listing(tmp_path)
    assert not (tmp_path / "outside").exists() and not outside.exists()
    assert not (monorepo / ".git/hooks/pre-commit").exists()
    assert not (monorepo / "services/new-file").exists()
    assert folder.is_dir() and (folder / "journal.json").is_file()
    # outside the monorepo nothing changed; inside, only the rewrite (and publish's state folder)
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert {k for k in changed if not k.startswith("monorepo/")} == set()
    assert not [k for k in changed if k.startswith("monorepo/.git/hooks")]


@pytest.mark.parametrize("key", [None, b"0" * 64], ids=["unsigned", "another-key"])
def test_an_untracked_journal_not_signed_with_the_users_key_is_left_alone(monorepo: Path, outside: Path,
                                                                          key: bytes | None) -> None:
    folder = hostile_journal(monorepo, hostile_targets(outside), key=key)
    done = recover(monorepo)
    assert [d.action for d in done] == ["left-alone"]
    assert "not written by nexusify as you" in str(done[0]) if key else "not a journal" in str(done[0]) or \
        "no journal key" in str(done[0]) or "signature" in str(done[0])
    assert str(done[0]).startswith(f"{TXN_DIR.as_posix()}/{folder.name}/journal.json: left alone")
    assert not outside.exists() and not (monorepo.parent / "outside").exists()
    assert not (monorepo / "services/new-file").exists()
    assert (folder / "journal.json").is_file()


@pytest.mark.parametrize("target", ["../outside", "ABS", ".git/hooks/pre-commit", "services/link/x"],
                         ids=["dotdot", "absolute", "git-hooks", "symlink-out"])
def test_a_signed_journal_naming_an_unconfined_target_is_left_alone(monorepo: Path, outside: Path, target: str) -> None:
    (monorepo / ".git/hooks").mkdir(parents=True)
    outside.mkdir()
    (monorepo / "services/link").symlink_to(outside)
    target = str(outside / "x") if target == "ABS" else target
    hostile_journal(monorepo, [target], key=journal_key())
    done = recover(monorepo)
    assert [d.action for d in done] == ["left-alone"], done
    assert not (monorepo.parent / "outside").exists() and list(outside.iterdir()) == []
    assert not (monorepo / ".git/hooks/pre-commit").exists()


def test_a_signed_journal_whose_staged_file_was_swapped_is_not_rolled_forward(monorepo: Path) -> None:
    folder = hostile_journal(monorepo, ["services/new-file"], key=journal_key())
    (folder / "0.new").write_bytes(b"swapped\n")
    with pytest.raises(Exception, match="changed after an interrupted"):
        recover(monorepo)
    assert not (monorepo / "services/new-file").exists()


def test_a_signed_journal_of_this_root_is_recovered(monorepo: Path) -> None:
    """The guarantee kept: a journal nexusify wrote here (a kill after the commit point) is completed."""
    hostile_journal(monorepo, ["services/new-file"], key=journal_key())
    done = recover(monorepo)
    assert [d.action for d in done] == ["completed"]
    assert (monorepo / "services/new-file").read_bytes().startswith(b"#!/bin/sh")
    assert not (monorepo / TXN_DIR).exists() or list((monorepo / TXN_DIR).iterdir()) == []


def test_the_journal_key_is_created_private_outside_the_repository(tmp_path: Path) -> None:
    path = tmp_path / "state" / "nexusify" / "journal.key"
    key = journal_key({"XDG_STATE_HOME": str(tmp_path / "state")})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(key) >= 32
    assert journal_key({"XDG_STATE_HOME": str(tmp_path / "state")}) == key  # kept, not remade
    path.chmod(0o644)
    with pytest.raises(Exception, match="readable by you only"):
        journal_key({"XDG_STATE_HOME": str(tmp_path / "state")})


def test_a_transaction_folder_that_is_a_symlink_out_is_refused(run_cli: Callable[..., object], monorepo: Path,
                                                               outside: Path) -> None:
    outside.mkdir()
    (monorepo / ".nexusify").mkdir()
    (monorepo / TXN_DIR).symlink_to(outside)
    r = run_cli("rewrite", "--root", str(monorepo), "--index-url", URL, env=ENV)
    assert r.exit_code == 2, r.output  # type: ignore[attr-defined]
    assert "the transaction folder '.nexusify/txn' resolves to" in r.output  # type: ignore[attr-defined]
    assert list(outside.iterdir()) == []


def test_a_dockerfile_symlinked_out_is_refused_and_nothing_is_written(run_cli: Callable[..., object], monorepo: Path,
                                                                       outside: Path) -> None:
    outside.mkdir()
    dockerfile = monorepo / "services/scheduler/Dockerfile"
    dockerfile.rename(outside / "Dockerfile")
    dockerfile.symlink_to(outside / "Dockerfile")
    before = listing(monorepo), (outside / "Dockerfile").read_bytes()
    r = run_cli("rewrite", "--root", str(monorepo), "--index-url", URL, env=ENV)
    assert r.exit_code == 2, r.output  # type: ignore[attr-defined]
    assert f"services/scheduler/Dockerfile: `rewrite` target '{dockerfile}' resolves to" in r.output  # type: ignore[attr-defined]
    assert (listing(monorepo), (outside / "Dockerfile").read_bytes()) == before  # not even the other 7 files


# --------------------------------------------------------------------------- confined paths


@pytest.mark.parametrize(("path", "ok"), [
    pytest.param("services/x", True, id="inside"),
    pytest.param("services/../shared/x", True, id="dotdot-inside"),
    pytest.param("../x", False, id="dotdot-out"),
    pytest.param("/etc/passwd", False, id="absolute-out"),
    pytest.param(".git/config", False, id="git"),
    pytest.param(".git", False, id="git-itself"),
    pytest.param("link-out/x", False, id="symlink-out"),
    pytest.param("link-in/x", True, id="symlink-in"),
])
def test_confined(tmp_path: Path, path: str, ok: bool) -> None:
    root = tmp_path / "root"
    (root / "services").mkdir(parents=True)
    (root / "link-out").symlink_to(tmp_path)
    (root / "link-in").symlink_to(root / "services")
    if ok:
        assert confined(root, path, source="test").is_relative_to(root.resolve())
    else:
        with pytest.raises(ConfigError) as err:
            confined(root, path, source="nexusify.toml", line=3)
        assert err.value.location == "nexusify.toml:3"


def test_a_state_dir_outside_the_root_is_a_configuration_error(run_cli: Callable[..., object], monorepo: Path,
                                                                tmp_path: Path) -> None:
    (monorepo / "nexusify.toml").write_text('# settings\nstate-dir = "../escape-state"\n')
    before = listing(tmp_path)
    r = run_cli("publish", "--root", str(monorepo), "--repository-url", "http://127.0.0.1:9/", env=ENV)
    assert r.exit_code == 2, r.output  # type: ignore[attr-defined]
    assert f"{monorepo / 'nexusify.toml'}:2: state-dir = '../escape-state' resolves to" in r.output  # type: ignore[attr-defined]
    assert listing(tmp_path) == before
    env = {**ENV, "NEXUSIFY_STATE_DIR": "/tmp"}
    (monorepo / "nexusify.toml").unlink()
    r = run_cli("audit", "--offline", "--root", str(monorepo), env=env)
    assert r.exit_code == 2 and "NEXUSIFY_STATE_DIR: state-dir = '/tmp'" in r.output, r.output  # type: ignore[attr-defined]


def test_a_state_dir_symlinked_out_is_refused_at_use(run_cli: Callable[..., object], monorepo: Path, outside: Path) -> None:
    outside.mkdir()
    (monorepo / ".nexusify").symlink_to(outside)
    r = run_cli("publish", "--root", str(monorepo), "--repository-url", "http://127.0.0.1:9/", env=ENV)
    assert r.exit_code == 2, r.output  # type: ignore[attr-defined]
    assert "outside the monorepo" in r.output  # type: ignore[attr-defined]
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("link", ["dist", "publish-state.json", "deploy"])
def test_a_state_subfolder_shipped_as_a_symlink_out_is_refused(monorepo: Path, outside: Path, link: str) -> None:
    from nexusify.config import resolve_settings
    from nexusify.deploy.history import history_path
    from nexusify.deploy.state import StateStore
    from nexusify.publish.builds import prune_dist
    from nexusify.publish.state import save_records

    outside.mkdir()
    (monorepo / ".nexusify").mkdir()
    (monorepo / ".nexusify" / link).symlink_to(outside / link)
    settings = resolve_settings(monorepo, {}, {})
    with pytest.raises(ConfigError, match="outside the monorepo"):
        if link == "dist":
            prune_dist(settings, [])
        elif link == "deploy":
            StateStore(settings.state_path, "prod")
        else:
            save_records(settings, "http://127.0.0.1:9/", [], {})
    if link == "deploy":
        with pytest.raises(ConfigError, match="outside the monorepo"):
            history_path(settings.state_path, "prod")
    assert list(outside.iterdir()) == []


def test_a_build_env_dir_from_the_repository_must_stay_inside(run_cli: Callable[..., object], monorepo: Path) -> None:
    (monorepo / "nexusify.toml").write_text('build-env-dir = "~/.cache/x"\n')
    r = run_cli("audit", "--offline", "--root", str(monorepo), env=ENV)
    assert r.exit_code == 2 and "build-env-dir" in r.output, r.output  # type: ignore[attr-defined]
    (monorepo / "nexusify.toml").unlink()  # the user's own variable may name a shared cache
    r = run_cli("audit", "--offline", "--root", str(monorepo), env={**ENV, "NEXUSIFY_BUILD_ENV_DIR": "/tmp/cache"})
    assert r.exit_code == 0, r.output  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- URLs


@pytest.mark.parametrize(("where", "value"), [
    pytest.param("file", "http://127.0.0.1:9/simple/\nRUN touch /pwned #", id="file-newline"),
    pytest.param("env", "http://127.0.0.1:9/simple/\nRUN touch /pwned #", id="env-newline"),
    pytest.param("flag", "http://127.0.0.1:9/simple/\rRUN x", id="flag-cr"),
    pytest.param("flag", "http://127.0.0.1:9/ simple/", id="space"),
    pytest.param("flag", "file:///etc/simple/", id="scheme"),
    pytest.param("flag", "127.0.0.1:9/simple/", id="no-scheme"),
    pytest.param("flag", "http:///simple/", id="no-host"),
])
def test_an_index_url_is_validated_before_any_use(run_cli: Callable[..., object], monorepo: Path,
                                                   where: str, value: str) -> None:
    before = listing(monorepo)
    env, argv = dict(ENV), ["rewrite", "--root", str(monorepo)]
    if where == "file":
        (monorepo / "nexusify.toml").write_text(f"# x\nindex-url = {json.dumps(value)}\n")
        before = listing(monorepo)
    elif where == "env":
        env["NEXUS_INDEX_URL"] = value
    else:
        argv += ["--index-url", value]
    r = run_cli(*argv, env=env)
    assert r.exit_code == 2, r.output  # type: ignore[attr-defined]
    label = {"file": f"{monorepo / 'nexusify.toml'}:2: index-url:", "env": "NEXUS_INDEX_URL:",
             "flag": "--index-url:"}[where]
    assert label in r.output  # type: ignore[attr-defined]
    assert listing(monorepo) == before
    assert "RUN touch" not in "".join(p.read_text() for p in monorepo.rglob("Dockerfile*"))


def test_the_dockerfile_writer_never_writes_a_url_with_a_newline() -> None:
    from nexusify.rewrite.dockerfile_patch import one_line_url

    assert one_line_url(URL) == URL
    with pytest.raises(ConfigError, match="control character"):
        one_line_url(URL + "\nRUN touch /pwned")


# --------------------------------------------------------------------------- all together


def test_a_hostile_repository_writes_nothing_outside(run_cli: Callable[..., object], monorepo: Path, tmp_path: Path,
                                                     outside: Path) -> None:
    """A copy of the sample with a shipped journal (``git add -f``) aimed out of the root and into
    ``.git/hooks``, ``state-dir = "../escape"`` and a URL with a newline: every verb refuses with a
    configuration error, and nothing outside the monorepo (nor in ``.git``) changes."""
    git(monorepo, "init", "-q")
    (monorepo / "nexusify.toml").write_text('state-dir = "../escape"\nindex-url = "http://127.0.0.1:9/simple/\\nRUN touch /pwned #"\n')
    folder = hostile_journal(monorepo, hostile_targets(outside), key=journal_key())
    git(monorepo, "add", "-A")
    git(monorepo, "add", "-f", str(folder))
    git(monorepo, "commit", "-qm", "hostile")
    before = listing(tmp_path)
    for argv in (["audit", "--offline"], ["rewrite", "--check"], ["publish"], ["rewrite"]):
        r = run_cli(*argv, "--root", str(monorepo), env=ENV)
        assert r.exit_code == 2, (argv, r.output)  # type: ignore[attr-defined]
        assert "left alone, not recovered" in r.stderr  # type: ignore[attr-defined]
        assert "state-dir" in r.output and "index-url" in r.output  # type: ignore[attr-defined]
    assert listing(tmp_path) == before
    shutil.rmtree(monorepo / ".git")


@pytest.mark.parametrize("link", [".nexusify/txn", ".nexusify"])
def test_a_transaction_folder_symlinked_into_the_repository_never_clears_it(run_cli: Callable[..., object],
                                                                           monorepo: Path, link: str) -> None:
    """`.nexusify/txn -> ../services` shipped in a repository: a folder there without a journal
    looks like a rolled-back transaction; recovery must not remove the services."""
    before = listing(monorepo / "services")
    (monorepo / link).parent.mkdir(parents=True, exist_ok=True)
    (monorepo / link).symlink_to(monorepo / ("services" if link.endswith("txn") else "shared"))
    if link == ".nexusify":
        (monorepo / "shared/txn").symlink_to(monorepo / "services")
    r = run_cli("audit", "--offline", "--root", str(monorepo), env=ENV)
    assert r.exit_code == 2, r.output  # type: ignore[attr-defined]
    assert "leads through a symlink" in r.output  # type: ignore[attr-defined]
    assert listing(monorepo / "services") == before


def test_a_journal_less_folder_holding_anything_else_is_not_removed(monorepo: Path) -> None:
    folder = monorepo / TXN_DIR / "20260101T000000-cafe"
    (folder / "src").mkdir(parents=True)
    (folder / "src/app.py").write_text("print(1)\n")
    (folder / "0.new").write_text("x")
    done = recover(monorepo)
    assert [d.action for d in done] == ["left-alone"] and "holds 'src'" in str(done[0])
    assert (folder / "src/app.py").is_file()
    ours = monorepo / TXN_DIR / "20260101T000001-beef"
    ours.mkdir()
    (ours / "0.new").write_text("x")
    (ours / "command").write_text("rewrite")
    assert [d.action for d in recover(monorepo)] == ["left-alone", "rolled-back"] and not ours.exists()


@pytest.mark.parametrize("link", ["dist", "deploy"])
def test_a_state_subfolder_symlinked_into_the_repository_is_refused(monorepo: Path, link: str) -> None:
    """``.nexusify/dist -> ../shared/packages``: pruning old builds would remove package folders."""
    from nexusify.config import resolve_settings
    from nexusify.deploy.lock import DeployLock
    from nexusify.publish.builds import prune_dist

    before = listing(monorepo / "shared")
    (monorepo / ".nexusify").mkdir()
    (monorepo / ".nexusify" / link).symlink_to(monorepo / "shared/packages")
    settings = resolve_settings(monorepo, {}, {})
    with pytest.raises(ConfigError, match=r"leads through a symlink|resolves to .*shared/packages"):
        if link == "dist":
            prune_dist(settings, [])
        else:
            DeployLock(settings.state_path, "core-auth")
    assert listing(monorepo / "shared") == before
