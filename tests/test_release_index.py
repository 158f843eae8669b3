"""What a release asks the index (a real pypiserver on loopback): a named release refuses a
version the index holds (the same check as the unnamed form), and an index lost during
`release --commit --publish` leaves an answer that says what was done and how to resume."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from .helpers import make_sdist, make_wheel, snapshot
from .test_affected import GIT_ENV, git
from .test_release_git import ALPHA_INIT, BETA_INIT, FILES, TAGS, make_tiny, state

ENV = {"HOME": str(Path.home()), "NO_COLOR": "1"}


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for k, v in GIT_ENV.items():
        monkeypatch.setenv(k, v)
    return make_tiny(tmp_path / "mono")


def index_args(server) -> tuple[str, ...]:  # type: ignore[no-untyped-def]
    return ("--repository-url", server.url, "--index-url", server.simple_url)


def test_a_named_release_refuses_a_version_the_index_holds(run_cli, tiny: Path, pypi_server_factory,  # type: ignore[no-untyped-def]
                                                           tmp_path: Path) -> None:
    server = pypi_server_factory(auth=None)
    for version in ("0.1.0", "0.1.1"):  # the local 0.1.0 is behind the index (a reset, a lost commit)
        make_wheel(server.packages, tiny / "shared/packages/alpha", "acme-alpha", version, "acme_alpha")
    (tiny / ALPHA_INIT).write_text("VALUE = 1\nX = 2\nY = 3\n")  # differs from the published 0.1.0
    git(tiny, "commit", "-qam", "fix: alpha gets Y")
    before = state(tiny)
    for form in (("acme-alpha",), ()):
        r = run_cli("release", *form, "--bump", "patch", "--commit", "--root", str(tiny), *index_args(server), env=ENV)
        assert r.exit_code == 1, r.output
        assert "error[version-taken]" in r.output and "acme-alpha 0.1.1 is on the index already" in r.output
        assert state(tiny) == before  # nothing written, committed or tagged


def test_index_lost_during_publish_says_what_was_done_and_how_to_resume(run_cli, tiny: Path,  # type: ignore[no-untyped-def]
                                                                        pypi_server_factory, build_env_dir: Path) -> None:
    server = pypi_server_factory(auth=None)
    pid = subprocess.run(["pgrep", "-f", str(server.packages)], capture_output=True, text=True, check=True).stdout.split()
    assert len(pid) == 1
    hook = tiny / ".git/hooks/post-commit"  # the index goes away once the release is committed
    hook.write_text(f"#!/bin/sh\nkill -KILL {pid[0]}\n")  # its socket closes at once (a zombie until reaped)
    hook.chmod(0o755)
    head = git(tiny, "rev-parse", "HEAD").strip()
    r = run_cli("release", "acme-alpha", "--commit", "--publish", "--root", str(tiny), *index_args(server), env=ENV)
    assert r.exit_code == 1, r.output
    sha = git(tiny, "rev-parse", "HEAD").strip()
    assert sha != head and git(tiny, "tag").split() == TAGS
    assert (f"the release's 4 file(s) were written, committed ({sha[:12]}) and tagged "
            f"({', '.join(TAGS)}), but publishing failed") in r.output
    assert (f"resume with: nexusify publish acme-alpha acme-beta --root {tiny} --repository-url {server.url} "
            f"--index-url {server.simple_url}") in r.output
    assert "could not be reached" in r.output
    assert git(tiny, "status", "--porcelain") == ""
    assert os.listdir(server.packages) == []
    # the index is back (here: a new one); the command given resumes exactly that publish
    back = pypi_server_factory(auth=None)
    resume = r.output.split("resume with: ")[1].split("\n")[0].replace(server.url, back.url)
    argv = resume.split()[1:]
    done = run_cli(*argv, env={**ENV, "NEXUSIFY_BUILD_ENV_DIR": str(build_env_dir), "PATH": os.environ["PATH"]})
    assert done.exit_code == 0, done.output
    assert sorted(os.listdir(back.packages)) == sorted(
        f"acme_{n}-{v}{ext}" for n, v in (("alpha", "0.1.1"), ("beta", "0.3.1"))
        for ext in ("-py3-none-any.whl", ".tar.gz"))


def test_release_of_a_package_whose_version_cannot_be_read(run_cli, tiny: Path) -> None:  # type: ignore[no-untyped-def]
    (tiny / BETA_INIT).write_text('from importlib.metadata import version\n\n__version__ = version("acme-beta")\n')
    git(tiny, "commit", "-qam", "fix: beta reads its version from its metadata")
    before = snapshot(tiny, skip=(".git",))
    r = run_cli("release", "acme-beta", "--root", str(tiny), env=ENV)
    assert r.exit_code == 1, r.output
    assert "error[version-unknown]" in r.output and "acme-beta: no version nexusify can read" in r.output
    assert "AssertionError" not in r.output and "Traceback" not in r.output
    assert "nothing to release" not in r.output and "dry run" not in r.output
    assert snapshot(tiny, skip=(".git",)) == before
    audit = run_cli("audit", "--offline", "--root", str(tiny), env=ENV)
    assert "version-unresolved" in audit.output and "Traceback" not in audit.output and 'File "' not in audit.output
    shown = next(p["message"] for p in json.loads(run_cli("audit", "--offline", "--json", "--root", str(tiny),
                                                          env=ENV).stdout)["problems"]
                 if p["code"] == "version-unresolved")
    assert "(PackageNotFoundError: No package metadata was found for acme-beta;" in shown  # no module path


@pytest.mark.parametrize("args", [("--since", "HEAD~1"), ("--since", "main")])
def test_affected_since_outside_git_says_so(run_cli, tmp_path: Path, args: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    for rel, text in FILES.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(textwrap.dedent(text))
    r = run_cli("affected", *args, "--root", str(tmp_path), env=ENV)
    assert r.exit_code == 2, r.output
    assert "is not inside a git repository" in r.output and "no such commit" not in r.output
    rel = run_cli("release", "--bump", "auto", "--root", str(tmp_path), "--repository-url", "http://127.0.0.1:9/",
                  env=ENV)
    assert rel.exit_code == 2 and "--bump patch|minor|major" in rel.output
    assert "--since" not in rel.output  # release has no --since


def test_a_named_release_without_a_readable_index(run_cli, tiny: Path) -> None:  # type: ignore[no-untyped-def]
    dead = ("--repository-url", "http://127.0.0.1:9/", "--index-url", "http://127.0.0.1:9/simple/")
    before = state(tiny)
    publish = run_cli("release", "acme-alpha", "--commit", "--publish", "--root", str(tiny), *dead, env=ENV)
    assert publish.exit_code == 1 and "could not be read" in publish.output
    assert state(tiny) == before  # publishing needs the index: refused before anything is written
    unset = run_cli("release", "acme-alpha", "--commit", "--publish", "--root", str(tiny), env=ENV)
    assert unset.exit_code == 2 and "no index to publish to; nothing was written" in unset.output
    assert state(tiny) == before
    offline = run_cli("release", "acme-alpha", "--commit", "--root", str(tiny), *dead, env=ENV)
    assert offline.exit_code == 0, offline.output  # no publish: allowed, saying the check was not made
    assert "warning[index-unchecked]" in offline.output and "was not checked" in offline.output
    assert git(tiny, "tag").split() == TAGS


def test_unnamed_release_after_a_failing_hook_starts_again_from_the_right_base(run_cli, tiny: Path,  # type: ignore[no-untyped-def]
                                                                                pypi_server_factory) -> None:
    """The report: a hook failed after the bumps were written; the next `release --commit` said
    "already bumped, not on the index yet", exit 0, and a later fix bumped from the wrong base."""
    server = pypi_server_factory(auth=None)
    make_sdist(server.packages, tiny / "shared/packages/alpha", "acme-alpha", "0.1.0",
               changes={"acme_alpha/__init__.py": b"VALUE = 1\n"})  # what was published before the fix
    make_sdist(server.packages, tiny / "shared/packages/beta", "acme-beta", "0.3.0")
    hook = tiny / ".git/hooks/pre-commit"
    hook.write_text("#!/bin/sh\nexit 1\n")
    hook.chmod(0o755)
    before = state(tiny)
    failed = run_cli("release", "--commit", "--root", str(tiny), *index_args(server), env=ENV)
    assert failed.exit_code == 1 and "was undone" in failed.output
    assert state(tiny) == before
    hook.unlink()
    again = run_cli("release", "--commit", "--json", "--root", str(tiny), *index_args(server), env=ENV)
    assert again.exit_code == 0, again.output
    result = json.loads(again.stdout)
    assert result["pending"] == []  # not "already bumped, not on the index yet"
    assert {b["name"]: (b["from"], b["to"]) for b in result["bumps"]} == {
        "acme-alpha": ("0.1.0", "0.1.1"), "acme-beta": ("0.3.0", "0.3.1")}
    assert git(tiny, "tag").split() == TAGS
