"""Day two on a Kubernetes environment, against the fake kubectl's small cluster (it applies,
patches and answers ``get -o json`` from a JSON file): deploy -> deploy -> status -> rollback ->
status -> history through the CLI; a rollback with nothing kept (or kept but not ready) is refused
and moves nothing; no secret value reaches argv, output or the history. The image build and push
are replaced here (tests/test_deploy_kubernetes_play.py runs them for real)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from nexusify.deploy.kubernetes import history as kh
from nexusify.deploy.kubernetes import target
from nexusify.deploy.kubernetes.runner import Kubectl
from nexusify.deploy.protocols import HistoryBackend
from nexusify.deploy.runtime.images import BuiltImage
from nexusify.deploy.state.history import DeploymentRecord
from tests.conftest import CliResult
from tests.deploy_fixtures import REPO
from tests.test_deploy_kubernetes import (
    API_KEY,
    DB_URL,
    _calls,
    cluster,
    fake_kubectl,
    kube_project,
    seed,
    serving,
)

SCHEMA = json.loads((REPO / "docs" / "schema" / "output.schema.json").read_text(encoding="utf-8"))


class _Engine:
    def close(self) -> None:
        pass


@pytest.fixture
def no_build(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The build and push of ``deploy`` replaced: the refs it would have pushed."""
    pushed: list[str] = []

    def build(_engine: Any, req: Any, **_kw: Any) -> BuiltImage:
        return BuiltImage(service=req.service, ref=req.ref, version=req.version, image_id="sha256:" + "1" * 64)

    def push(_engine: Any, img: BuiltImage, **_kw: Any) -> BuiltImage:
        pushed.append(img.ref)
        return replace(img, digest="sha256:" + "2" * 64, pushed=True)

    monkeypatch.setattr(target, "connect", lambda *_a, **_k: _Engine())
    monkeypatch.setattr(target, "build_image", build)
    monkeypatch.setattr(target, "push_image", push)
    return pushed


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env, _ = fake_kubectl(tmp_path, **extra)
    return {**env, "HOME": str(tmp_path), "NO_COLOR": "1", "DOCKER_HOST": "unix:///nonexistent.sock",
            "NEXUSIFY_DEPLOYER": "ci@runner"}


def _json(r: CliResult) -> dict[str, Any]:
    data = json.loads(r.stdout)
    jsonschema.validate(data, SCHEMA)
    assert API_KEY not in r.output and DB_URL not in r.output
    return dict(data)


def _selector(env: dict[str, str]) -> str:
    return str(cluster(env)["service/app"]["spec"]["selector"]["color"])


def _no_values_anywhere(tmp_path: Path, env: dict[str, str]) -> None:
    for call in _calls(tmp_path / "kubectl.jsonl"):
        assert not any(API_KEY in a or DB_URL in a for a in call["argv"]), call["argv"]
    state = json.dumps(cluster(env))
    assert API_KEY not in state and DB_URL not in state


def test_deploy_rollback_status_history(tmp_path: Path, run_cli: Callable[..., CliResult], no_build: list[str]) -> None:
    root = kube_project(tmp_path)
    env = _env(tmp_path)
    base = ("--root", str(root), "-e", "prod")
    for tag in ("v1", "v2"):
        r = run_cli("deploy", *base, "--tag", tag, env=env)
        assert r.exit_code == 0, r.output
        assert API_KEY not in r.output and DB_URL not in r.output
    assert no_build == ["registry.example.com/team/app:v1", "registry.example.com/team/app:v2"]
    assert _selector(env) == "green"

    before = _json(run_cli("status", *base, "--json", env=env))
    (svc,) = before["services"]
    assert (svc["live_color"], svc["live"], svc["image"]) == ("green", ["v2"], "registry.example.com/team/app:v2")
    assert (svc["kept_color"], svc["kept"], svc["kept_ready"], svc["healthy"]) == ("blue", ["v1"], "1/1 ready", True)

    dry = run_cli("rollback", *base, "--dry-run", env=env)
    assert dry.exit_code == 0, dry.output
    assert "patch service/app --type=merge" in dry.stdout and "color green -> blue" in dry.stdout
    assert _selector(env) == "green"  # a dry run moves nothing
    dry_json = _json(run_cli("rollback", *base, "--dry-run", "--json", env=env))
    assert dry_json["dry_run"] is True and dry_json["steps"][0]["args"][:2] == ["patch", "service/app"]

    rb = _json(run_cli("rollback", *base, "--json", env=env))
    assert rb["ok"] is True and rb["action"] == "rollback" and rb["outcome"] == "success" and rb["version"] == "v1"
    moved = rb["services"][0]
    assert (moved["previous_version"], moved["version"], moved["from_color"], moved["to_color"], moved["switched"]) \
        == ("v2", "v1", "green", "blue", True)
    assert _selector(env) == "blue"

    after = _json(run_cli("status", *base, "--json", env=env))
    (svc,) = after["services"]
    assert (svc["live_color"], svc["live"], svc["kept_color"], svc["kept"]) == ("blue", ["v1"], "green", ["v2"])
    text = run_cli("status", *base, env=env)
    assert text.exit_code == 0 and "blue v1" in text.stdout and "green v2" in text.stdout, text.output
    table = run_cli("history", *base, env=env)
    assert table.exit_code == 0 and "app v2 → v1" in table.stdout and API_KEY not in table.output, table.output

    hist = _json(run_cli("history", *base, "--json", env=env))
    records = hist["records"]
    assert [(r["action"], r["outcome"], r["services"][0]["version"], r["services"][0]["previous_version"])
            for r in records] == [("deploy", "success", "v1", None), ("deploy", "success", "v2", "v1"),
                                  ("rollback", "success", "v1", "v2")]
    assert records[-1]["id"] == rb["record_id"] and records[0]["who"] == "ci@runner"
    assert records[1]["services"][0]["digest"] == "sha256:" + "2" * 64
    assert records[0]["secret_versions"]  # the env-file's version id, never a value
    _no_values_anywhere(tmp_path, env)

    again = run_cli("rollback", *base, env=env)  # the kept color is now green (v2): a second rollback goes forward
    assert again.exit_code == 0, again.output
    assert _selector(env) == "green"


def test_a_rollback_with_nothing_kept_is_refused(tmp_path: Path, run_cli: Callable[..., CliResult]) -> None:
    root = kube_project(tmp_path)
    env = _env(tmp_path)
    serving(env, "blue", "v1")  # one deploy: no green Deployment
    r = run_cli("rollback", "--root", str(root), "-e", "prod", "--json", env=env)
    data = _json(r)
    assert r.exit_code == 1 and data["ok"] is False
    assert "nothing kept to roll back to: Deployment app-green does not exist" in data["message"]
    assert "app-blue (v1)" in data["message"]
    assert _selector(env) == "blue"
    assert not any(c["argv"][2] == "patch" for c in _calls(tmp_path / "kubectl.jsonl"))
    assert "configmap/nexusify-history" not in cluster(env)  # nothing happened: nothing recorded


def test_a_rollback_to_a_kept_color_that_is_not_ready_is_refused(
        tmp_path: Path, run_cli: Callable[..., CliResult]) -> None:
    root = kube_project(tmp_path)
    env = _env(tmp_path)
    serving(env, "blue", "v1")
    serving(env, "green", "v2")
    state = json.loads(Path(env["FAKE_KUBECTL_STATE"]).read_text())
    state["objects"]["deployment/app-blue"]["status"] = {"replicas": 1}  # green serves; blue's pod is not ready
    Path(env["FAKE_KUBECTL_STATE"]).write_text(json.dumps(state))
    r = run_cli("rollback", "--root", str(root), "-e", "prod", env=env)
    assert r.exit_code == 1, r.output
    assert "the kept Deployment app-blue (v1) is not available (0/1 ready)" in r.output
    assert _selector(env) == "green"
    to = run_cli("rollback", "--root", str(root), "-e", "prod", "--to", "v0", env=env)
    assert to.exit_code == 1 and "--to v0" in to.output


def test_a_rollback_of_nothing_deployed_and_a_status_of_a_live_color_not_ready(
        tmp_path: Path, run_cli: Callable[..., CliResult]) -> None:
    root = kube_project(tmp_path)
    env = _env(tmp_path)
    r = run_cli("rollback", "--root", str(root), "-e", "prod", env=env)
    assert r.exit_code == 1 and "nothing is deployed to prod" in r.output, r.output
    s = run_cli("status", "--root", str(root), "-e", "prod", env=env)
    assert s.exit_code == 0 and "nothing is deployed to prod yet" in s.output, s.output
    serving(env, "blue", "v1")
    state = json.loads(Path(env["FAKE_KUBECTL_STATE"]).read_text())
    state["objects"]["deployment/app-blue"]["status"] = {"replicas": 1}
    Path(env["FAKE_KUBECTL_STATE"]).write_text(json.dumps(state))
    data = _json(run_cli("status", "--root", str(root), "-e", "prod", "--json", env=env))
    assert data["exit_code"] == 1 and data["services"][0]["health"] == "NOT READY: 0/1 ready"
    assert data["services"][0]["kept_color"] is None


def test_a_failed_deploy_is_recorded_with_its_error_redacted(
        tmp_path: Path, run_cli: Callable[..., CliResult], no_build: list[str]) -> None:
    root = kube_project(tmp_path)
    env = _env(tmp_path, FAKE_KUBECTL_FAIL="rollout", LEAK=API_KEY)
    serving(env, "blue", "v1")
    r = run_cli("deploy", "--root", str(root), "-e", "prod", "--tag", "v2", env=env)
    assert r.exit_code == 1 and API_KEY not in r.output, r.output
    assert _selector(env) == "blue"
    data = cluster(env)["configmap/nexusify-history"]["data"][kh.KEY]
    assert API_KEY not in data and DB_URL not in data
    (rec,) = [json.loads(line) for line in data.splitlines()]
    assert rec["action"] == "deploy" and rec["outcome"] == "failed" and "<hidden>" in rec["error"]
    assert rec["services"][0]["previous_version"] == "v1"
    _no_values_anywhere(tmp_path, {k: v for k, v in env.items()})


def test_the_history_keeps_the_last_records_and_only_its_environment(tmp_path: Path) -> None:
    env = _env(tmp_path)
    kubectl = Kubectl("prod-cluster", "shop", env=env)
    prod, other = kh.ConfigMapHistory(kubectl, "prod", keep=3), kh.ConfigMapHistory(kubectl, "staging", keep=3)
    assert isinstance(prod, HistoryBackend)
    for n in range(4):
        prod.append(DeploymentRecord("prod", "deploy", "success", f"t{n}", f"t{n}", 1.0, "me"))
    other.append(DeploymentRecord("staging", "deploy", "success", "t9", "t9", 1.0, "me"))
    assert [r.started_at for r in prod.records()[0]] == ["t2", "t3"]  # 3 kept in all, the oldest dropped
    assert [r.started_at for r in other.records()[0]] == ["t9"]
    calls = _calls(tmp_path / "kubectl.jsonl")
    writes = [c["argv"][2] for c in calls if c["argv"][2] in ("create", "replace")]
    assert writes == ["create", "replace", "replace", "replace", "replace"]
    seed(env, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": kh.NAME}, "data": {kh.KEY: "{not json\n"}})
    with pytest.raises(Exception, match="record 1 is damaged"):
        prod.records()


def test_rollback_dry_run_is_for_kubernetes_environments(tmp_path: Path, run_cli: Callable[..., CliResult]) -> None:
    root = kube_project(tmp_path, environment="keep = 2", service="public-port = 18080\n")  # an engine environment
    r = run_cli("rollback", "--root", str(root), "-e", "prod", "--dry-run", env=_env(tmp_path))
    assert r.exit_code == 2 and "`rollback --dry-run` is for Kubernetes environments" in r.output, r.output


def test_an_interrupted_rollback_is_recorded_as_aborted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nexusify.config import resolve_settings
    from nexusify.deploy.config.load import load_deploy_config
    from nexusify.deploy.kubernetes import rollback as kr

    root = kube_project(tmp_path)
    env = _env(tmp_path)
    serving(env, "blue", "v1")
    serving(env, "green", "v2")
    config = load_deploy_config(resolve_settings(root, env={}), env={})
    kubectl = Kubectl("prod-cluster", "shop", env=env)
    plan = kr.plan_rollback(config, "prod", kubectl)
    real = Kubectl.execute

    def interrupted(self: Kubectl, step: Any) -> str:
        if step.stage == "switch":
            raise KeyboardInterrupt
        return real(self, step)

    monkeypatch.setattr(Kubectl, "execute", interrupted)
    with pytest.raises(KeyboardInterrupt):
        kr.run_rollback(plan, kubectl, env=env)
    (rec,), _ = kh.ConfigMapHistory(kubectl, "prod").records()
    assert (rec.action, rec.outcome, rec.services[0].outcome) == ("rollback", "aborted", "failed")
    assert _selector(env) == "green"


def test_a_history_write_that_loses_a_race_reads_again_and_keeps_both(tmp_path: Path) -> None:
    theirs = DeploymentRecord("prod", "deploy", "success", "t-theirs", "t-theirs", 1.0, "them", id="theirs")
    env = _env(tmp_path, FAKE_RACE=json.dumps(theirs.to_dict()))
    history = kh.ConfigMapHistory(Kubectl("prod-cluster", "shop", env=env), "prod")
    history.append(DeploymentRecord("prod", "deploy", "success", "t0", "t0", 1.0, "me"))
    history.append(DeploymentRecord("prod", "rollback", "success", "t1", "t1", 1.0, "me"))
    assert [r.started_at for r in history.records()[0]] == ["t0", "t-theirs", "t1"]
    writes = [c["argv"][2] for c in _calls(tmp_path / "kubectl.jsonl") if c["argv"][2] in ("create", "replace")]
    assert writes == ["create", "replace", "replace"]  # the first replace was refused (Conflict), then retried
