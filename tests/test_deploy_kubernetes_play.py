"""The rendered pod spec runs: nexusify's Deployment of the test app under ``podman kube play``
(no Kubernetes API server runs here; Podman plays the pod spec): the app answers on its port, its
health path (the probes' path) answers, and it received its secret through the Secret reference."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from nexusify.deploy.config.types import EnvVar, ServiceConfig
from nexusify.deploy.kubernetes import manifests as mf
from nexusify.deploy.kubernetes import names
from nexusify.deploy.kubernetes.yamlout import dump_all
from tests.conftest import CliResult, missing
from tests.deploy_fixtures import APP, start_registry
from tests.helpers import free_port
from tests.test_deploy_kubernetes import API_KEY, DB_URL, fake_kubectl, kube_project

pytestmark = [pytest.mark.engine]


def _podman(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def app_image(docker_client: Any) -> Iterator[str]:
    """The test app built from the local base image, removed afterwards."""
    if shutil.which("podman") is None:
        missing("podman CLI", "podman is not on PATH (scripts/stack.sh installs it)")
    ref = f"localhost/nx-kube-{secrets.token_hex(4)}:v1"
    docker_client.images.build(path=str(APP), tag=ref, rm=True, network_mode="host")
    yield ref
    _podman("rmi", "-f", ref, check=False)


def _get(url: str) -> tuple[int, dict[str, Any]]:
    with urllib.request.urlopen(url, timeout=3) as r:
        return r.status, json.loads(r.read())


def test_the_rendered_pod_spec_runs_under_podman_kube_play(tmp_path: Path, app_image: str) -> None:
    name = f"kp{secrets.token_hex(3)}"
    port = free_port()  # podman 4 publishes a containerPort on the host: a free one, not 8000
    value = "sk-" + secrets.token_hex(16)
    svc = ServiceConfig(name=name, folder=APP, container_port=port, health_path="/health", health_timeout=20,
                        env=(EnvVar("API_KEY", secret="API_KEY"), EnvVar("PORT", value=str(port))))
    t = mf.Target(environment="kubeplay", namespace="default", service=svc, image=app_image, version="v1",
                  color="green")
    deployment = tmp_path / "deployment.yaml"
    deployment.write_text(dump_all([mf.deployment_manifest(t)]))
    assert value not in deployment.read_text()  # nexusify's file references the Secret, never holds it

    # The Secret: a temporary one from test values, in the shape Podman's secretKeyRef reads
    # (a JSON object of base64 values under the Secret's name); nexusify's Secret gives name and keys.
    secret = mf.secret_manifest(t, {"API_KEY": value})
    secret_file = tmp_path / "secret.json"
    secret_file.write_text(json.dumps({k: base64.b64encode(v.encode()).decode()
                                       for k, v in secret["stringData"].items()}))
    secret_name = secret["metadata"]["name"]
    assert secret_name == names.secret(name, "green")
    _podman("secret", "create", secret_name, str(secret_file))
    try:
        _podman("kube", "play", str(deployment))
        pods = json.loads(_podman("pod", "ps", "--format", "json").stdout)
        (pod,) = [p for p in pods if p["Name"].startswith(names.deployment(name, "green") + "-pod")]
        assert pod["Labels"].get("color") == "green" and pod["Labels"].get("app") == name
        ctrs = [c for c in json.loads(_podman("ps", "--filter", f"pod={pod['Id']}", "--format", "json").stdout)
                if not c.get("IsInfra")]
        (ctr,) = ctrs
        cname = ctr["Names"][0]
        info = json.loads(_podman("inspect", cname).stdout)[0]
        ips = [n["IPAddress"] for n in info["NetworkSettings"]["Networks"].values() if n.get("IPAddress")]
        assert ips, info["NetworkSettings"]
        base = f"http://{ips[0]}:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                status, body = _get(base + svc.health_path)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        assert (status, body) == (200, {"status": "ok"})
        status, body = _get(base + "/")
        assert status == 200 and body["service"] == "app"
        assert _get(base + "/secret-check") == (200, {"api_key_present": True})
        assert _podman("exec", cname, "printenv", "API_KEY").stdout.strip() == value  # this exact value
        # the liveness probe became the container's health check, on the service's health path
        check = json.dumps(info["Config"].get("Healthcheck") or {})
        assert svc.health_path in check and str(port) in check, check
    finally:
        _podman("kube", "down", str(deployment), check=False)
        _podman("secret", "rm", secret_name, check=False)


def test_a_deploy_builds_pushes_and_runs_the_kubectl_steps(tmp_path: Path, docker_client: Any,
                                                          run_cli: Callable[..., CliResult]) -> None:
    """``nexusify deploy`` to a Kubernetes environment for real up to the cluster: the image is built
    and pushed to a registry, then every kubectl step runs through the runner (a fake kubectl on
    PATH that records argv and stdin; no API server can run here)."""
    try:
        registry_cm = start_registry(tmp_path / "registry")
        registry = registry_cm.__enter__()
    except (FileNotFoundError, RuntimeError) as exc:
        missing("registry", str(exc))
    tag = "k" + secrets.token_hex(4)
    ref = f"{registry}/team/app:{tag}"
    try:
        root = kube_project(tmp_path, top=f'registry = "{registry}/team"\n')
        env, log = fake_kubectl(tmp_path)  # no Service yet: a first deploy
        env = {**env, "HOME": str(tmp_path), "NO_COLOR": "1", "DOCKER_HOST": os.environ["DOCKER_HOST"]}
        r = run_cli("deploy", "--root", str(root), "-e", "prod", "--tag", tag, env=env)
        assert r.exit_code == 0, r.output
        assert API_KEY not in r.output and DB_URL not in r.output
        with urllib.request.urlopen(f"http://{registry}/v2/team/app/tags/list", timeout=5) as resp:
            assert tag in json.loads(resp.read())["tags"]  # pushed before any kubectl step
        calls = [json.loads(line) for line in log.read_text().splitlines()]
        kinds = [json.loads(c["stdin"])["kind"] if c["stdin"] else c["argv"][2] for c in calls]
        # the Service and both colors' Deployments read, the steps, then the record in the history ConfigMap
        assert kinds == ["get", "get", "get", "Secret", "ConfigMap", "Job", "get", "Deployment", "rollout", "Service",
                         "get", "ConfigMap"]
        assert calls[-1]["argv"][2] == "create"
        assert all(API_KEY not in " ".join(c["argv"]) for c in calls)
        (with_values,) = [c for c in calls if API_KEY in c["stdin"]]
        assert json.loads(with_values["stdin"])["metadata"]["name"] == "app-blue-env"
        deployment = next(json.loads(c["stdin"]) for c in calls if '"Deployment"' in c["stdin"])
        assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == ref
        assert "deployed" in r.stdout and "app none -> blue" in r.stdout
        # a second deploy starts green; the rollback patches the Service back to blue and both are recorded
        r2 = run_cli("deploy", "--root", str(root), "-e", "prod", "--tag", tag + "b", env=env)
        assert r2.exit_code == 0 and "app blue -> green" in r2.stdout, r2.output
        rb = run_cli("rollback", "--root", str(root), "-e", "prod", env=env)
        assert rb.exit_code == 0, rb.output
        st = json.loads(run_cli("status", "--root", str(root), "-e", "prod", "--json", env=env).stdout)
        assert (st["services"][0]["live_color"], st["services"][0]["live"]) == ("blue", [tag])
        hist = json.loads(run_cli("history", "--root", str(root), "-e", "prod", "--json", env=env).stdout)
        assert [(h["action"], h["services"][0]["version"]) for h in hist["records"]] == [
            ("deploy", tag), ("deploy", tag + "b"), ("rollback", tag)]
        assert API_KEY not in json.dumps(hist) and DB_URL not in json.dumps(hist)
        for f in tmp_path.rglob("*"):  # no value in any file but the env-file it came from
            if f.is_file() and f.name not in (".env.prod", "kubectl.jsonl"):
                data = f.read_bytes()
                assert API_KEY.encode() not in data and DB_URL.encode() not in data, f
    finally:
        registry_cm.__exit__(None, None, None)
        with contextlib.suppress(Exception):
            docker_client.images.remove(ref, force=True)
        with contextlib.suppress(Exception):
            docker_client.images.remove(ref + "b", force=True)
