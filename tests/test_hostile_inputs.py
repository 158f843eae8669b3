"""Bad input of every kind keeps the rule (issue 21, items 11-17): a clear error at the file
(exit 1 or 2), nothing written, no traceback, never a false "ok"."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from nexusify.errors import TomlError
from nexusify.files import parse_toml

URL = "http://127.0.0.1:9/simple/"
ENV = {"HOME": "/nonexistent", "NO_COLOR": "1"}
Run = Callable[..., "object"]


def test_a_toml_file_nested_thousands_deep_is_an_error_at_the_file() -> None:
    with pytest.raises(TomlError, match="nested too deeply") as err:
        parse_toml("x = " + "[" * 5000 + "]" * 5000 + "\n", Path("deep.toml"))
    assert err.value.path == "deep.toml"


@pytest.mark.parametrize("argv", [["audit", "--offline"], ["rewrite", "--check", "--index-url", URL],
                                  ["publish", "--repository-url", "http://127.0.0.1:9/"]])
def test_every_verb_reports_deep_nesting_at_the_file(run_cli: Run, monorepo: Path, argv: list[str]) -> None:
    pp = monorepo / "shared/packages/monitoring/pyproject.toml"
    pp.write_text(pp.read_text() + "\nx = " + "[" * 5000 + "]" * 5000 + "\n")
    r = run_cli(*argv, "--root", str(monorepo), env=ENV)
    assert r.exit_code == 1, r.output  # type: ignore[attr-defined]
    assert "shared/packages/monitoring/pyproject.toml" in r.output and "nested too deeply" in r.output  # type: ignore[attr-defined]
    assert "internal error" not in r.output and "Traceback" not in r.output  # type: ignore[attr-defined]


def test_rewrite_is_linear_in_a_files_repeated_lines() -> None:
    """Thousands of identical lines between the edits (issue 21 item 13: difflib took 5.3 s for
    8,000 comment lines, 27 s here for 4,000 + 4,000): the edits found are the real ones, and
    finding them takes well under a second (what is left is tomlkit's own parse)."""
    from nexusify.formats.edits import changed_blocks

    from .test_pyproject_edit import NEXUS, POETRY, deps_of, edit_pyproject
    from .test_pyproject_edit import VERSIONS as V

    head, _, tail = POETRY.partition("[tool.poetry.group.test.dependencies]")
    text = head + "# a comment\n" * 4000 + "\n[tool.poetry.group.test.dependencies]" + tail + "#\n" * 4000
    started = time.perf_counter()
    result = edit_pyproject(text, deps_of(text), V, source=NEXUS)
    assert time.perf_counter() - started < 8.0
    assert [e.line for e in result.edits] == [8, 4014, 4018]  # shared-a/b, shared-c, the source: nothing bogus
    assert all("# a comment" not in e.before + e.after for e in result.edits)
    old, new = text.splitlines(), result.text.splitlines()
    started = time.perf_counter()
    assert len(changed_blocks(old, new)) == 3
    assert time.perf_counter() - started < 0.5
    old, new = ["#"] * 20_000 + ["a"], ["#"] * 10_000 + ["b"] + ["#"] * 10_000 + ["a"]
    started = time.perf_counter()
    assert changed_blocks(old, new) == [(10_000, 10_000, 10_000, 10_001)]
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(("slot", "words"), [
    pytest.param({"container": "nx-api", "version": "v1", "port": "abc"}, "services.api.live.port: expected int, found 'abc'",
                 id="port-string"),
    pytest.param({"container": "nx-api", "version": "v1", "port": True}, "services.api.live.port: expected int", id="port-bool"),
    pytest.param({"container": "nx-api", "version": "v1", "port": 70000}, "services.api.live.port: 70000 is not a port",
                 id="port-range"),
    pytest.param({"container": ["x"], "version": "v1", "port": 31000}, "services.api.live.container: expected str",
                 id="container-list"),
    pytest.param({"container": "nx-api", "version": "v1", "port": 31000, "created": "yesterday"},
                 "services.api.live.created: expected a number", id="created"),
])
def test_a_deploy_state_with_a_wrong_type_is_an_error_naming_the_key(tmp_path: Path, run_cli: Run,
                                                                     slot: dict[str, object], words: str) -> None:
    import json

    from tests.deploy_fixtures import make_project

    p = make_project(tmp_path)
    state = p.state / "state.json"
    state.parent.mkdir(parents=True)
    text = json.dumps({"version": 1, "services": {"api": {"live": slot, "transition": None}}})
    state.write_text(text)
    r = run_cli("deploy", "--root", str(p.root), "--environment", p.environment, "--dry-run", "--tag", "v1", env=p.env)
    assert r.exit_code == 1, r.output  # type: ignore[attr-defined]
    assert f"{state}: the deploy state is damaged: {words}" in r.output, r.output  # type: ignore[attr-defined]
    assert "internal error" not in r.output  # type: ignore[attr-defined]
    assert state.read_text() == text


def test_a_transitions_green_with_a_wrong_type_is_an_error(tmp_path: Path) -> None:
    from nexusify.deploy.state import DamagedState, StateStore

    store = StateStore(tmp_path, "production")
    store.path.parent.mkdir(parents=True)
    green = {"container": "nx-api-2", "version": "v2", "port": "31001"}
    store.path.write_text('{"version": 1, "services": {"api": {"live": null, "transition": {"phase": "start", "green": '
                          + __import__("json").dumps(green) + "}}}}")
    with pytest.raises(DamagedState, match=r"services\.api\.transition\.green\.port: expected int"):
        store.load()


@pytest.mark.parametrize("dry", [True, False], ids=["dry-run", "real"])
def test_publish_stops_on_a_shared_package_without_a_name(run_cli: Run, monorepo: Path, dry: bool) -> None:
    pp = monorepo / "shared/packages/monitoring/pyproject.toml"
    pp.write_text(pp.read_text().replace('name = "maestro-monitoring"\n', ""))
    r = run_cli("publish", "--root", str(monorepo), "--repository-url", "http://127.0.0.1:9/",
                *(["--dry-run"] if dry else []), env=ENV)
    assert r.exit_code == 1, r.output  # type: ignore[attr-defined]
    assert "shared/packages/monitoring/pyproject.toml: error[name-missing]" in r.output  # type: ignore[attr-defined]
    assert "could not be reached" not in r.output  # type: ignore[attr-defined]  # stopped before any request
    assert not (monorepo / ".nexusify").exists()


def test_a_service_folder_symlinked_out_of_the_repository_is_an_error(run_cli: Run, monorepo: Path, tmp_path: Path) -> None:
    """Was skipped without a word, and rewrite --check/verify said ok for the rest (item 11)."""
    out = tmp_path / "elsewhere"
    out.mkdir()
    (monorepo / "services/gateway").rename(out / "gateway")
    (monorepo / "services/gateway").symlink_to(out / "gateway")
    before = (out / "gateway/pyproject.toml").read_bytes(), (out / "gateway/Dockerfile").read_bytes()
    for argv, code in ((["audit", "--offline"], 1), (["rewrite", "--check", "--index-url", URL], 1),
                       (["rewrite", "--index-url", URL], 1), (["verify", "--index-url", URL], 1)):
        r = run_cli(*argv, "--root", str(monorepo), env=ENV)
        assert r.exit_code == code, (argv, r.output)  # type: ignore[attr-defined]
        assert "services/gateway/pyproject.toml" in r.output and "outside the monorepo" in r.output, (argv, r.output)  # type: ignore[attr-defined]
    assert ((out / "gateway/pyproject.toml").read_bytes(), (out / "gateway/Dockerfile").read_bytes()) == before


def test_a_symlinked_pyproject_inside_the_repository_is_written_through(run_cli: Run, monorepo: Path) -> None:
    """The symlink stays a symlink, its target gets the rewrite (was replaced by a regular file)."""
    svc = monorepo / "services/scheduler"
    (monorepo / "configs").mkdir()
    (svc / "pyproject.toml").rename(monorepo / "configs/scheduler.toml")
    (svc / "pyproject.toml").symlink_to("../../configs/scheduler.toml")
    r = run_cli("rewrite", "--root", str(monorepo), "--index-url", URL, env=ENV)
    assert r.exit_code == 0, r.output  # type: ignore[attr-defined]
    assert "services/scheduler/pyproject.toml" in r.output  # type: ignore[attr-defined]
    assert (svc / "pyproject.toml").is_symlink()
    assert "[[tool.pdm.source]]" in (monorepo / "configs/scheduler.toml").read_text()


def test_a_symlinked_pyproject_pointing_out_is_neither_read_nor_replaced(run_cli: Run, monorepo: Path, tmp_path: Path) -> None:
    svc = monorepo / "services/gateway"
    (svc / "pyproject.toml").rename(tmp_path / "gateway.toml")
    (svc / "pyproject.toml").symlink_to(tmp_path / "gateway.toml")
    before = (tmp_path / "gateway.toml").read_bytes()
    r = run_cli("rewrite", "--root", str(monorepo), "--index-url", URL, env=ENV)
    assert r.exit_code == 1, r.output  # type: ignore[attr-defined]
    assert "services/gateway/pyproject.toml: error[outside-root]" in r.output  # type: ignore[attr-defined]
    assert (svc / "pyproject.toml").is_symlink() and (tmp_path / "gateway.toml").read_bytes() == before


@pytest.mark.parametrize("password", ["index", "nexus", "e"])
def test_a_password_that_is_a_common_word_does_not_garble_json(run_cli: Run, monorepo: Path, password: str) -> None:
    """Item 17: NEXUS_PASSWORD=index turned `[[tool.uv.index]]` into `[[tool.uv.<hidden>]]` (and every
    place hidden told the password). The word stays a word; where it stands as a secret it is hidden."""
    import json

    env = {**ENV, "NEXUS_USERNAME": "ci", "NEXUS_PASSWORD": password}
    r = run_cli("rewrite", "--check", "--json", "--index-url", URL, "--root", str(monorepo), env=env)
    data = json.loads(r.stdout)  # type: ignore[attr-defined]
    assert "<hidden>" not in r.output  # type: ignore[attr-defined]
    if password == "index":
        assert "[[tool.uv.index]]" in r.stdout and data  # type: ignore[attr-defined]


@pytest.mark.parametrize("text", [
    "NEXUS_PASSWORD=index", "password: index", '{"password": "index"}', "netrc machine h login ci password index",
    "GET http://ci:index@127.0.0.1/simple/", "Authorization: Basic Y2k6aW5kZXg=", "TOKEN = 'index'",
])
def test_a_common_word_password_is_still_hidden_where_it_stands_as_a_secret(text: str) -> None:
    from nexusify.credentials import Redactor

    out = Redactor(["index"])(text)
    assert "index" not in out.replace("<hidden>", "") and ("<hidden>" in out or "****@" in out), out


def test_a_distinctive_short_password_is_hidden_as_a_whole_token_anywhere() -> None:
    from nexusify.credentials import Redactor

    assert Redactor(["s3cr3t"])("rejected s3cr3t for ci") == "rejected <hidden> for ci"
    assert Redactor(["index"])("[[tool.uv.index]] index-url") == "[[tool.uv.index]] index-url"


class _FakeContainer:
    def __init__(self, name: str, version: str, status: str) -> None:
        from nexusify.deploy.engine import LABEL_VERSION

        self.name, self.status = name, status
        self.labels = {LABEL_VERSION: version}
        self.attrs = {"State": {"Status": status}}


@pytest.mark.parametrize(("record", "states", "live", "kept"), [
    pytest.param("nx-app-v1", ("running", "running"), ("v1",), ("v2 (running, not serving)",), id="killed-in-health-wait"),
    pytest.param("nx-app-v2", ("running", "exited"), ("v2",), ("v1",), id="switched"),
    pytest.param(None, ("running",), (), ("v2 (running, not serving)",), id="first-deploy-killed"),
])
def test_status_lists_as_live_only_the_container_the_switch_record_names(
        monkeypatch: pytest.MonkeyPatch, record: str | None, states: tuple[str, ...], live: tuple[str, ...],
        kept: tuple[str, ...]) -> None:
    """Item 15: after `kill -9` during a deploy's health wait, the green runs but never took
    traffic: the private nginx's upstream file (the record of the switch) still names the blue."""
    from types import SimpleNamespace

    from nexusify.deploy import status

    containers = [_FakeContainer(f"nx-app-{v}", v, st) for v, st in zip(("v2", "v1"), states, strict=False)]

    class Box:
        def __init__(self, engine: object, runtime: object, probe: object = None) -> None:
            self.rt = runtime

        def containers(self) -> list[_FakeContainer]:
            return containers

    monkeypatch.setattr(status, "ServiceContainers", Box)
    monkeypatch.setattr(status, "probe", lambda *a, **k: (True, "healthy (HTTP 200)"))
    row = status.service_on_host("", SimpleNamespace(url="unix:///x"), SimpleNamespace(service="app"),  # type: ignore[arg-type]
                                 None, switched_to=lambda service: record)
    assert (row.live, row.kept) == (live, kept)
    if not live:
        assert row.healthy is False and "no container of it took traffic yet" in row.health
    else:
        assert row.healthy is True


@pytest.mark.engine
@pytest.mark.stack
@pytest.mark.slow
def test_status_after_kill_9_during_the_health_wait_does_not_call_the_green_live(tmp_path: Path, run_cli: Run,
                                                                                docker_client: object) -> None:
    """The real thing: deploy v1, start a v2 whose health never passes, SIGKILL it while it waits:
    status shows v1 live and v2 running but not serving (it never took traffic), exit 1."""
    import json
    import os
    import signal
    import subprocess
    import sys

    from tests.deploy_fixtures import make_project
    from tests.test_deploy_runtime import containers

    p = make_project(tmp_path, health_timeout=60)
    try:
        cmd = [sys.executable, "-m", "nexusify", "deploy", "--root", str(p.root), "--environment", p.environment]
        first = subprocess.run([*cmd, "--tag", "v1", "--build-arg", "BUILT_VERSION=v1"], env=p.env,
                               capture_output=True, text=True, timeout=300)
        assert first.returncode == 0, first.stdout + first.stderr
        proc = subprocess.Popen([*cmd, "--tag", "v2", "--build-arg", "BUILT_VERSION=v2", "--build-arg", "UNHEALTHY=1"],
                                env=p.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not any(
                    c.status == "running" for c in containers(docker_client, p, version="v2")):
                assert proc.poll() is None, proc.communicate()
                time.sleep(0.1)
            time.sleep(0.5)  # inside the health wait
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert [c.status for c in containers(docker_client, p, version="v2")] == ["running"]
        assert p.served()["built"] == "v1"
        r = run_cli("status", "--root", str(p.root), "--environment", p.environment, "--json", env=p.env)
        [row] = json.loads(r.stdout)["services"]  # type: ignore[attr-defined]
        assert row["live"] == ["v1"], r.output  # type: ignore[attr-defined]
        assert row["kept"] == ["v2 (running, not serving)"], row
    finally:
        p.cleanup(docker_client)  # type: ignore[attr-defined]
