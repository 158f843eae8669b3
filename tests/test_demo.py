"""`nexusify demo`: the whole journey on the sample, end to end, against its embedded index.

- without a reachable engine (fast): every step up to the clean install runs for real, the
  container steps are skipped with the reason and how to enable them; re-running (with
  ``--no-engine --json``) replaces the folder; the index is stopped (its port closed); the
  clean install came from the local index alone; the password is nowhere;
- on the engine: image built from the rewritten service folder alone, deployed blue-green,
  v1 -> v2 with no failed request, everything cleaned up;
- Ctrl-C stops the index; a folder the demo did not make is refused;
- the pieces: the answer movement check, engine detection, backend wheel cache, stale servers.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from nexusify.config import resolve_settings
from nexusify.demo import run as demo
from nexusify.demo.container import ENABLE_HINT, backend_wheels, engine_unavailable
from nexusify.demo.sample import MARKER, environment_name, prepare_workdir, sample_source
from nexusify.demo.traffic import Poller
from nexusify.errors import UsageError
from nexusify.index import local as localindex
from nexusify.index.local import port_open, start_local_index, stop_stale
from nexusify.model import load_workspace
from tests.conftest import SAMPLE

SHARED = {"maestro-core-api", "maestro-core-auth", "maestro-core-config", "maestro-core-db", "maestro-core-logging",
          "maestro-core-messaging", "maestro-monitoring", "maestro-test-healer"}


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """XDG_CACHE_HOME for the demo runs of this session (build envs, backend wheels)."""
    return tmp_path_factory.mktemp("demo-cache")


@pytest.fixture
def demo_env(demo_cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NEXUS_PASSWORD", "NEXUS_URL", "NEXUS_REPOSITORY_URL",
                                                             "NEXUS_INDEX_URL", "NEXUS_USERNAME")}
    env.update({"NO_COLOR": "1", "XDG_CACHE_HOME": str(demo_cache)})
    return env


@pytest.fixture
def known_password(monkeypatch: pytest.MonkeyPatch) -> str:
    """The index password the demo will generate (so the tests can look for it everywhere)."""
    password = "demo-pw-" + uuid.uuid4().hex
    monkeypatch.setattr(localindex, "new_password", lambda: password)
    return password


def _files_holding(folder: Path, needle: str) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def _service_path_deps(root: Path) -> list[str]:
    ws = load_workspace(root)
    return [f"{s.name}: {d.name}" for s in ws.consumers() for d in s.local_deps if d.resolved is not None]


# --------------------------------------------------------------------------- end to end, no engine


@pytest.mark.slow
def test_demo_without_engine_then_rerun_with_json(tmp_path: Path, run_cli: Any, demo_env: dict[str, str],
                                                  known_password: str) -> None:
    workdir = tmp_path / "work" / "nexusify-demo"
    socket_path = tmp_path / "no-engine.sock"
    env = {**demo_env, "DOCKER_HOST": f"unix://{socket_path}"}
    assert _service_path_deps(SAMPLE)  # the sample starts with path dependencies

    first = run_cli("demo", "--workdir", str(workdir), env=env)
    assert first.exit_code == 0, first.output
    out = first.stdout
    assert "nexusify demo finished in" in out
    # roles by use (issue 19): services/reporting takes no shared package, so it is no consumer
    assert "8 shared packages and 4 services" in out
    assert "built and uploaded 8 shared packages (16 files)" in out
    assert "rewrote 4 services" in out and "no path dependency left" in out
    assert "a new virtualenv installed quality-fabric's shared packages" in out
    # verify ran after the rewrite: its table (consumer x check) and every consumer verified
    assert "verify against http://127.0.0.1:" in out and "consumer" in out and "resolve" in out
    assert "4 of 4 consumer(s) verified" in out
    # the container steps: skipped, saying why and how to enable them
    assert out.count("skipped") >= 5
    assert f"DOCKER_HOST is unix://{socket_path}, but {socket_path} does not exist" in out
    assert "bash scripts/stack.sh" in out and "set DOCKER_HOST" in out
    assert "Working folder:" in out and "rewrite.diff" in out
    # the index is stopped: its port is closed
    m = re.search(r"Local index: http://127\.0\.0\.1:(\d+)/ \(stopped\)", out)
    assert m, out
    first_port = int(m.group(1))
    assert not port_open(first_port)
    # the working folder holds the rewritten monorepo, the uploaded files, the marker
    assert _service_path_deps(workdir) == []
    assert "maestro-test-healer = {version = " in (workdir / "services/quality-fabric/pyproject.toml").read_text()
    assert "COPY ../../shared" not in (workdir / "services/quality-fabric/Dockerfile").read_text()
    assert len(list((workdir / ".demo" / "index").glob("maestro*"))) == 16
    assert "services/quality-fabric/pyproject.toml" in (workdir / ".demo" / "rewrite.diff").read_text()
    assert (workdir / MARKER).is_file()
    # the throwaway password is in no output and no file
    assert known_password not in first.output
    assert _files_holding(workdir, known_password) == []

    # re-running replaces the demo's own folder; JSON summary
    (workdir / "services" / "leftover.txt").write_text("from the first run\n")
    second = run_cli("demo", "--workdir", str(workdir), "--no-engine", "--json", "--constraint", "exact",
                     "--priority", "supplemental", env=env)
    assert second.exit_code == 0, second.output
    data = json.loads(second.stdout)
    assert known_password not in second.output
    assert not (workdir / "services" / "leftover.txt").exists()
    assert data["ok"] is True and data["workdir"] == str(workdir.resolve())
    steps = {s["name"]: s for s in data["steps"]}
    assert [s["name"] for s in data["steps"]] == ["prepare", "index", "audit", "publish", "rewrite", "install",
                                                   "verify", "build", "verify-build", "deploy-v1", "deploy-v2",
                                                   "rollback", "cleanup"]
    assert steps["prepare"]["details"]["replaced"] is True
    assert all(steps[n]["status"] == "ok" and steps[n]["seconds"] > 0 for n in
               ("prepare", "index", "audit", "publish", "rewrite", "install", "verify"))
    assert all(steps[n]["status"] == "skipped" for n in ("build", "verify-build", "deploy-v1", "deploy-v2", "rollback",
                                                         "cleanup"))
    verified = {c["name"]: {k: v["status"] for k, v in c["checks"].items()} for c in data["verify"]["consumers"]}
    assert verified == {name: {"static": "ok", "lock": "n/a", "resolve": "ok"} for name in
                        ("automation-service", "gateway", "quality-fabric", "scheduler")}, verified
    assert data["engine_skipped"] == "--no-engine was given"
    assert set(steps["audit"]["details"]["shared"]) == SHARED
    assert {p["name"] for p in steps["publish"]["details"]["packages"]} == SHARED
    # roles by use (issue 19): reporting takes no shared package, so it is no consumer and rewrite does not
    # plan it at all (it was listed as "unchanged" when every project under services/ was one)
    assert steps["rewrite"]["details"]["unchanged"] == []
    assert (workdir / "services" / "reporting" / "pyproject.toml").read_bytes() == \
        (SAMPLE / "services" / "reporting" / "pyproject.toml").read_bytes()
    # the clean install: every file came from the local index (pip's own install report)
    index = data["index"]
    assert index["stopped"] is True and index["port"] != first_port and not port_open(index["port"])
    installed = steps["install"]["details"]["installed"]
    assert {i["name"] for i in installed} >= {"maestro-core-api", "maestro-test-healer", "maestro-core-config"}
    assert all(i["url"].startswith(index["url"] + "packages/") for i in installed), installed
    served = {p.name for p in (workdir / ".demo" / "index").iterdir()}
    assert {i["url"].rsplit("/", 1)[1].split("#")[0] for i in installed} <= served
    assert steps["install"]["details"]["imported"] == ["maestro_core_api", "maestro_test_healer"]
    # the settings a user may try on the sample are honoured
    assert steps["rewrite"]["details"]["constraint"] == "exact"
    assert steps["install"]["details"]["requirements"] == ["maestro-core-api==0.1.0", "maestro-test-healer==0.1.0"]
    rewritten = (workdir / "services/quality-fabric/pyproject.toml").read_text()
    assert 'maestro-test-healer = {version = "0.1.0", source = "nexus"}' in rewritten
    assert 'priority = "supplemental"' in rewritten
    assert json.loads((workdir / MARKER).read_text())["index_stopped"] is True


def test_a_failing_verify_fails_the_demo(tmp_path: Path, demo_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The verify step on a sample nobody rewrote: static fails at file:line, the step fails with
    the findings (OperationFailed: exit 1), and the report keeps the verify table."""
    from nexusify.demo.report import DemoReport, StepRunner
    from nexusify.demo.verify_step import verify_step
    from nexusify.errors import OperationFailed

    monkeypatch.setenv("XDG_CACHE_HOME", str(demo_cache))
    root = tmp_path / "sample"
    prepare_workdir(root, sample_source())
    (tmp_path / "index").mkdir()
    settings = resolve_settings(root, {"index_url": "http://127.0.0.1:9/simple/"}, {})
    report = DemoReport(root)
    with pytest.raises(OperationFailed) as failed:
        verify_step(StepRunner(report, lambda e: None, []), settings, dict(os.environ), tmp_path / "index", demo_cache)
    assert failed.value.exit_code == 1
    assert "quality-fabric static: services/quality-fabric/pyproject.toml:" in failed.value.message
    assert report.step("verify").status == "failed"
    assert report.verify is not None and report.verify.failed
    assert report.to_dict()["verify"]["consumers"][0]["ok"] is False


def test_demo_refuses_index_flags(tmp_path: Path, run_cli: Any, demo_env: dict[str, str]) -> None:
    result = run_cli("demo", "--workdir", str(tmp_path / "d"), "--repository-url", "http://127.0.0.1:1/", env=demo_env)
    assert result.exit_code == 2
    assert "--repository-url: the demo publishes to its own local index" in result.stderr
    assert not (tmp_path / "d").exists()


def test_demo_refuses_a_folder_it_did_not_make(tmp_path: Path, run_cli: Any, demo_env: dict[str, str]) -> None:
    precious = tmp_path / "mine"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me\n")
    result = run_cli("demo", "--workdir", str(precious), "--no-engine", env=demo_env)
    assert result.exit_code == 2, result.output
    assert "is not empty and was not made by `nexusify demo`" in result.output
    assert "Local index" not in result.output  # refused before anything started
    assert (precious / "notes.txt").read_text() == "keep me\n"
    assert sorted(p.name for p in precious.iterdir()) == ["notes.txt"]


# --------------------------------------------------------------------------- Ctrl-C


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupting_the_demo_stops_the_index(tmp_path: Path, demo_env: dict[str, str], signum: int) -> None:
    workdir = tmp_path / "demo"
    proc = subprocess.Popen([sys.executable, "-m", "nexusify", "demo", "--workdir", str(workdir), "--no-engine"],
                            env=demo_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        marker: dict[str, Any] = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "index_pid" not in marker:
            try:
                marker = json.loads((workdir / MARKER).read_text())
            except (OSError, ValueError):
                marker = {}
            time.sleep(0.05)
        assert "index_pid" in marker, proc.communicate(timeout=60)
        port = int(marker["index_url"].rsplit(":", 1)[1].strip("/"))
        assert port_open(port)
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stdout + stderr
    assert "interrupted" in stderr
    assert not port_open(port)
    try:
        cmdline = Path(f"/proc/{marker['index_pid']}/cmdline").read_bytes()
    except OSError:
        cmdline = b""
    assert b"pypiserver" not in cmdline


# --------------------------------------------------------------------------- on the engine


@pytest.mark.engine
@pytest.mark.slow
def test_demo_builds_and_deploys_blue_green_on_the_engine(docker_client: Any, tmp_path: Path, run_cli: Any,
                                                           demo_env: dict[str, str], known_password: str) -> None:
    workdir = tmp_path / "nexusify-demo"
    env = {**demo_env, "DOCKER_HOST": os.environ["DOCKER_HOST"]}
    result = run_cli("demo", "--workdir", str(workdir), "--json", env=env)
    assert result.stdout.strip(), f"exit {result.exit_code}, no JSON; stderr:\n{result.stderr[-3000:]}"
    data = json.loads(result.stdout)
    steps = {s["name"]: s for s in data["steps"]}
    assert result.exit_code == 0, json.dumps(data, indent=2)[-4000:] + result.stderr
    assert data["ok"] and data["engine_skipped"] is None
    assert all(s["status"] == "ok" for s in data["steps"]), [(s["name"], s["status"]) for s in data["steps"]]

    build = steps["build"]["details"]
    assert build["context"] == "services/quality-fabric" and build["image"].endswith(":v1")
    # verify --build of the service: its row in the verify table, the others n/a for build
    assert steps["verify-build"]["details"]["build"]["status"] == "ok"
    checks = {c["name"]: c["checks"] for c in data["verify"]["consumers"]}
    assert {k: v["status"] for k, v in checks["quality-fabric"].items()} == {
        "static": "ok", "lock": "n/a", "resolve": "ok", "build": "ok"}
    assert checks["gateway"]["build"]["status"] == "n/a"
    v1 = steps["deploy-v1"]["details"]["answer"]
    assert v1["service"] == "quality-fabric" and v1["version"] == "v1"
    assert v1["shared"] == {"maestro-core-api": "maestro-core-api 0.1.0",
                            "maestro-test-healer": "maestro-test-healer 0.1.0"}
    v2 = steps["deploy-v2"]["details"]
    assert v2["failed"] == 0 and v2["v1"] > 0 and v2["v2"] > 0 and v2["after"] > 0
    assert "answered v1" in steps["deploy-v2"]["summary"] and "then v2" in steps["deploy-v2"]["summary"]
    assert steps["rollback"]["details"]["answer"]["version"] == "v1"

    # cleaned up: no container or image of the demo's environment, nginx and the index stopped
    environment = environment_name(workdir.resolve())
    assert steps["cleanup"]["details"]["environment"] == environment == data["environment"]
    history = run_cli("history", "--root", str(workdir), "-e", environment, "--json", env=env)
    assert history.exit_code == 0, history.output
    assert sorted(r["action"] for r in json.loads(history.stdout)["records"]) == ["deploy", "deploy", "rollback"]
    flt = {"label": f"io.nexusify.environment={environment}"}
    assert docker_client.containers.list(all=True, filters=flt) == []
    assert docker_client.images.list(filters=flt) == []
    public = int(steps["deploy-v1"]["details"]["url"].rsplit(":", 1)[1].strip("/"))
    assert not port_open(public)
    assert not port_open(data["index"]["port"])
    # the password: nowhere in output, files, or the deploy history
    assert known_password not in result.output
    assert _files_holding(workdir, known_password) == []


# --------------------------------------------------------------------------- the pieces


def _poller(answers: list[tuple[float, str]], failures: list[str] | None = None) -> Poller:
    p = Poller(1)
    p.answers = answers
    p.failures = failures or []
    return p


@pytest.mark.parametrize(("answers", "failures", "switched", "problem", "overlap"), [
    pytest.param([(0.0, "v1"), (0.1, "v1"), (0.2, "v2"), (0.3, "v2")], [], 0.25, None, 0.0, id="clean-move"),
    pytest.param([(0.0, "v1"), (0.1, "v2"), (0.15, "v1"), (0.2, "v2"), (0.4, "v2")], [], 0.3, None, 0.05,
                 id="reload-overlap-is-fine"),
    pytest.param([(0.0, "v1"), (0.1, "v2"), (0.5, "v1"), (0.6, "v2")], [], 0.3, "1 answers still came from v1", 0.4,
                 id="old-after-the-deploy-returned"),
    pytest.param([(0.0, "v1"), (0.2, "v2")], ["ConnectionRefusedError: refused"], 0.1, "1 of 3 requests failed",
                 0.0, id="a-failed-request"),
    pytest.param([(0.0, "v1"), (0.1, "v1")], [], 0.1, "answers went v1, not v1 -> v2", 0.0, id="never-moved"),
    pytest.param([(0.0, "v2"), (0.1, "v2")], [], 0.1, "answers went v2, not v1 -> v2", 0.0, id="never-saw-v1"),
    pytest.param([(0.0, "v1"), (0.1, "dev"), (0.2, "v2")], [], 0.15, "unexpected answers from dev", 0.0,
                 id="another-version"),
    pytest.param([], [], 0.0, "answers went (none)", 0.0, id="no-answers"),
])
def test_answer_movement(answers: list[tuple[float, str]], failures: list[str], switched: float,
                         problem: str | None, overlap: float) -> None:
    move = _poller(answers, failures).movement(switched)
    if problem is None:
        assert move.ok, move.problem
    else:
        assert move.problem is not None and move.problem.startswith(problem), move.problem
    assert move.overlap == pytest.approx(overlap)
    assert move.total == len(answers)


def test_engine_detection_names_the_missing_socket_and_the_fix(tmp_path: Path) -> None:
    engine, why = engine_unavailable({"DOCKER_HOST": f"unix://{tmp_path}/none.sock"})
    assert engine is None and why == f"no container engine: DOCKER_HOST is unix://{tmp_path}/none.sock, " \
                                      f"but {tmp_path}/none.sock does not exist"
    engine, why = engine_unavailable({})
    if engine is not None:  # this machine has a Docker socket at the default place
        engine.close()
    else:
        assert why is not None and ("DOCKER_HOST is not set" in why or "does not answer" in why)
    assert "bash scripts/stack.sh" in ENABLE_HINT and "DOCKER_HOST" in ENABLE_HINT


def test_backend_wheels_come_from_the_cache_or_say_why_not(tmp_path: Path) -> None:
    cache = tmp_path / "wheels"
    cache.mkdir()
    wheel = cache / "poetry_core-2.1.0-py3-none-any.whl"
    wheel.write_bytes(b"not really a wheel")
    offline = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "PIP_CONFIG_FILE": os.devnull,
               "PIP_NO_INDEX": "1"}
    assert backend_wheels(["poetry-core>=1.0.0"], cache, offline) == ([wheel], None)
    wheels, why = backend_wheels(["poetry-core>=3"], cache, offline)
    assert wheels == [] and why is not None
    assert why.startswith("`pip download poetry-core>=3` failed:")
    assert backend_wheels(["not a requirement ["], cache, offline) == ([], "cannot read the build requirement 'not a requirement ['")


def test_prepare_workdir_replaces_only_its_own_folder(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    assert prepare_workdir(target, SAMPLE) == ""
    assert (target / "services" / "quality-fabric" / "pyproject.toml").is_file() and (target / MARKER).is_file()
    (target / "extra.txt").write_text("x")
    assert prepare_workdir(target, SAMPLE) == "replaced the previous demo folder"
    assert not (target / "extra.txt").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    prepare_workdir(empty, SAMPLE)
    assert (empty / MARKER).is_file()
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(UsageError, match="exists and is not a folder"):
        prepare_workdir(a_file, SAMPLE)
    foreign = tmp_path / "foreign"
    (foreign / "sub").mkdir(parents=True)
    (foreign / MARKER).write_text('{"created_by": "someone else"}')
    with pytest.raises(UsageError, match="was not made by `nexusify demo`"):
        prepare_workdir(foreign, SAMPLE)
    assert (foreign / "sub").is_dir()
    copy = tmp_path / "sample"
    prepare_workdir(copy, SAMPLE)
    with pytest.raises(UsageError, match="is inside the sample"):
        prepare_workdir(copy / "services" / "x", copy)
    with pytest.raises(UsageError, match="holds the sample itself"):
        prepare_workdir(tmp_path, copy)


def test_sample_ships_with_the_package() -> None:
    source = sample_source()
    assert (source / "services" / "quality-fabric" / "Dockerfile").is_file()
    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert '"fixtures/monorepo" = "nexusify/_sample"' in text


def test_stop_stale_only_stops_the_demos_own_server(tmp_path: Path) -> None:
    marker = str(tmp_path / "index")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "pypiserver", "elsewhere"])
    mine = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "pypiserver", marker])
    try:
        for p in (other, mine):  # until exec has replaced the forked pytest's command line
            deadline = time.monotonic() + 10
            while b"pypiserver" not in Path(f"/proc/{p.pid}/cmdline").read_bytes() and time.monotonic() < deadline:
                time.sleep(0.01)
        assert stop_stale(other.pid, marker) is False
        assert other.poll() is None
        assert stop_stale(mine.pid, marker) is True
        assert mine.wait(10) is not None
        assert stop_stale(mine.pid, marker) is False  # gone (reaped): nothing to do
    finally:
        for p in (other, mine):
            if p.poll() is None:
                p.kill()
                p.wait()


def test_local_index_needs_the_password_for_uploads_and_stops(tmp_path: Path) -> None:
    import httpx

    index = start_local_index(tmp_path / "packages", log_file=tmp_path / "index.log")
    with index:
        assert index.running and port_open(index.port)
        with httpx.Client(trust_env=False, timeout=10) as http:
            assert http.get(index.simple_url).status_code == 200
            form = {":action": "file_upload", "name": "x", "version": "1.0"}
            files = {"content": ("x-1.0.tar.gz", b"data", "application/octet-stream")}
            assert http.post(index.upload_url, data=form, files=files).status_code in (401, 403)
            wrong = http.post(index.upload_url, data=form, files=files, auth=(index.username, "wrong"))
            assert wrong.status_code in (401, 403)
            right = http.post(index.upload_url, data=form, files=files, auth=(index.username, index.password.reveal()))
            assert right.status_code == 200, right.text
            assert "x-1.0.tar.gz" in http.get(index.simple_url + "x/").text
            # nothing falls back to PyPI: an unknown project is a 404, not a redirect
            assert http.get(index.simple_url + "requests/").status_code == 404
        pypirc = index.write_pypirc()
        assert pypirc.stat().st_mode & 0o777 == 0o600
        private = pypirc.parent
        assert (private / "htpasswd").is_file()
        assert index.password.reveal() not in (private / "htpasswd").read_text()
    assert not index.running and not port_open(index.port)
    assert not private.exists()
    assert index.password.reveal() not in (tmp_path / "index.log").read_text()


def test_settings_of_the_demo_ignore_the_users_nexus_environment(tmp_path: Path) -> None:
    # the demo resolves its settings with an empty environment and its own flags
    settings = resolve_settings(SAMPLE, {"repository_url": "http://127.0.0.1:1/", "index_url": "http://127.0.0.1:1/simple/"},
                                {})
    assert settings.upload_url == "http://127.0.0.1:1/" and settings.simple_url == "http://127.0.0.1:1/simple/"
    env = demo._core_env({"NEXUS_PASSWORD": "users", "NEXUS_URL": "https://nexus.example", "PATH": "/bin"},
                         tmp_path / "pypirc")
    assert env == {"PATH": "/bin", "PYPIRC": str(tmp_path / "pypirc")}


@pytest.mark.engine
@pytest.mark.slow
def test_a_failing_engine_step_still_cleans_up(docker_client: Any, tmp_path: Path, run_cli: Any,
                                               demo_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    original = demo.demo_config

    def unhealthy(public_port: int, environment: str) -> str:
        return original(public_port, environment).replace('health-path = "/health"', 'health-path = "/nope"') \
            .replace("health-timeout = 90", "health-timeout = 2")

    monkeypatch.setattr(demo, "demo_config", unhealthy)
    workdir = tmp_path / "nexusify-demo"
    env = {**demo_env, "DOCKER_HOST": os.environ["DOCKER_HOST"]}
    result = run_cli("demo", "--workdir", str(workdir), env=env)
    assert result.exit_code == 1, result.output
    assert re.search(r"deploy v1\s+│\s+[\d.]+s(?: of [\d.]+s)?\s+│\s+FAILED", result.stdout), result.stdout
    assert "nexusify demo stopped in" in result.stdout
    assert "`nexusify demo --no-engine` runs the rest without the container steps" in result.stderr
    assert re.search(r"Cleaned up after the failure: removed \d+ containers? and 1 image of the demo", result.stdout)
    environment = environment_name(workdir.resolve())
    flt = {"label": f"io.nexusify.environment={environment}"}
    assert docker_client.containers.list(all=True, filters=flt) == []
    assert docker_client.images.list(filters=flt) == []
    m = re.search(r"Local index: http://127\.0\.0\.1:(\d+)/ \(stopped\)", result.stdout)
    assert m and not port_open(int(m.group(1)))
    nginx_pid = workdir / ".nexusify" / "deploy" / environment / "nginx" / "nginx.pid"
    assert not nginx_pid.exists() or not Path(f"/proc/{nginx_pid.read_text().strip()}").exists()


def test_a_passlib_broken_by_bcrypt_5_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """passlib 1.7 raises ValueError on import when bcrypt >= 5 is installed; the demo's index
    must say what to do instead of an internal error."""
    import importlib.abc

    from nexusify.errors import IndexServerError

    class BrokenPasslib(importlib.abc.MetaPathFinder):
        def find_spec(self, name: str, path: Any, target: Any = None) -> None:
            if name == "passlib.apache":
                raise ValueError("password cannot be longer than 72 bytes, truncate manually if necessary")
            return None

    monkeypatch.delitem(sys.modules, "passlib.apache", raising=False)
    monkeypatch.setattr(sys, "meta_path", [BrokenPasslib(), *sys.meta_path])
    with pytest.raises(IndexServerError) as info:
        start_local_index(tmp_path / "index", log_file=tmp_path / "index.log")
    assert "passlib" in info.value.message and "bcrypt<5" in (info.value.hint or "")


def test_summary_shows_each_engine_step_against_its_budget(tmp_path: Path) -> None:
    """The engine steps' time budgets are in the report (JSON) and in the summary table: a step
    that grew past its budget is marked, steps without a budget show their time alone."""
    import io

    from nexusify.commands import Context
    from nexusify.commands.demo import render
    from nexusify.demo.report import ENGINE_STEPS, STEP_BUDGET, DemoReport, Step
    from nexusify.ui.output import Output

    assert set(STEP_BUDGET) == set(ENGINE_STEPS) and sum(STEP_BUDGET.values()) < 20
    build, rollback = STEP_BUDGET["build"], STEP_BUDGET["rollback"]
    report = DemoReport(tmp_path, [Step("audit", "ok", 0.4), Step("build", "ok", build / 2),
                                   Step("rollback", "ok", rollback + 1.0), Step("cleanup", "skipped")])
    steps = {s["name"]: s for s in report.to_dict()["steps"]}
    assert steps["audit"]["budget"] is None and not steps["audit"]["over_budget"]
    assert steps["build"]["budget"] == build and not steps["build"]["over_budget"]
    assert steps["rollback"]["over_budget"]
    out = io.StringIO()
    ctx = Context(tmp_path, resolve_settings(tmp_path, env={}), {}, Output(env={"NO_COLOR": "1"}, stdout=out))
    render(ctx, report)
    rows = {line.split("│")[1].strip(): line for line in out.getvalue().splitlines() if line.count("│") >= 4}
    assert f"{build / 2:.1f}s of {build:g}s" in rows["build image"] and "(over)" not in rows["build image"]
    assert f"of {rollback:g}s (over)" in rows["roll back"]
    assert "0.4s " in rows["audit"] and " of " not in rows["audit"].split("│")[2]
