"""The Kubernetes target without a cluster: the config key and its errors at file:line, the rendered
manifests validated against the Kubernetes 1.37 schemas (kubernetes-validate), ``deploy --dry-run``,
and the kubectl runner driven against a fake kubectl on PATH that records argv and stdin."""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from nexusify.config import resolve_settings
from nexusify.credentials import Secret
from nexusify.deploy.config.load import DeployConfig, load_deploy_config
from nexusify.deploy.config.types import EnvVar, ServiceConfig
from nexusify.deploy.kubernetes import manifests as mf
from nexusify.deploy.kubernetes.runner import Kubectl
from nexusify.deploy.kubernetes.target import make_plan, run_steps
from nexusify.deploy.secrets import SecretBundle
from nexusify.errors import ConfigError, ConfigErrors, DeployError
from tests.conftest import CliResult
from tests.deploy_fixtures import APP, REPO

ALEMBIC = REPO / "fixtures" / "deploy" / "alembic-app" / "alembic.ini"
API_KEY = "sk-kube-3f9c2a7d41e8b605"
DB_URL = "postgresql://app:pw-kube-9d2e71c4@db.internal:5432/shop"
KUBE = 'kubernetes = { context = "prod-cluster", namespace = "shop" }'


def kube_project(tmp_path: Path, environment: str = KUBE, *, top: str = 'registry = "registry.example.com/team"\n',
             service: str = "") -> Path:
    root = tmp_path / "repo"
    (root / "app").mkdir(parents=True)
    for f in APP.iterdir():
        (root / "app" / f.name).write_text(f.read_text())
    (root / ".env.prod").write_text(f"API_KEY={API_KEY}\nDATABASE_URL={DB_URL}\n")
    (root / "nexusify.toml").write_text(
        "[deploy]\n" + top + "\n"
        "[deploy.services.app]\n"
        'folder = "app"\n'
        "container-port = 8000\n"
        'health-path = "/health"\n'
        f'migrations = "{ALEMBIC}"\n'
        'database-url = "secret:DATABASE_URL"\n'
        'env = { API_KEY = "secret:API_KEY", LOG_LEVEL = "info" }\n' + service + "\n"
        "[deploy.environments.prod]\n" + environment + "\n\n"
        "[deploy.environments.prod.secrets]\n"
        'provider = "env-file"\n'
        'path = ".env.prod"\n')
    return root


def _load(root: Path) -> DeployConfig:
    return load_deploy_config(resolve_settings(root, env={}), env={})


def _problems(root: Path) -> list[ConfigError]:
    with pytest.raises((ConfigError, ConfigErrors)) as info:
        _load(root)
    exc = info.value
    return list(exc.errors) if isinstance(exc, ConfigErrors) else [exc]


def _line_of(root: Path, text: str) -> int:
    return next(n for n, line in enumerate((root / "nexusify.toml").read_text().splitlines(), 1) if text in line)


# --------------------------------------------------------------------------- config


def test_the_kubernetes_key_is_read(tmp_path: Path) -> None:
    cfg = _load(kube_project(tmp_path))
    kube = cfg.environment("prod").kubernetes
    assert kube is not None and (kube.context, kube.namespace) == ("prod-cluster", "shop")
    assert cfg.environment("prod").hosts == () and cfg.environment("prod").proxy is None


@pytest.mark.parametrize(("environment", "top", "service", "words", "at"), [
    pytest.param('kubernetes = { context = "prod", namespace = "Shop_1" }', None, "",
                 "not a Kubernetes namespace name: 'Shop_1'", "kubernetes =", id="bad-namespace"),
    pytest.param('kubernetes = { namespace = "shop" }', None, "", "kubernetes.context`: is required", "kubernetes =", id="no-context"),
    pytest.param('kubernetes = { context = "p", namespace = "shop", namespce = "x" }', None, "",
                 "did you mean `namespace`?", "kubernetes =", id="unknown-key"),
    pytest.param('kubernetes = "prod"', None, "", "expected a table {context, namespace}", "kubernetes =",
                 id="not-a-table"),
    pytest.param(KUBE + '\nhosts = ["ssh://deploy@203.0.113.10"]', None, "", "`hosts` and `kubernetes` exclude",
                 "hosts =", id="with-hosts"),
    pytest.param(KUBE + "\nproxy = { listen = 80 }", None, "", "`proxy` and `kubernetes` exclude", "proxy =",
                 id="with-proxy"),
    pytest.param(KUBE, "", "", "needs [deploy] `registry`", "kubernetes =", id="no-registry"),
    pytest.param(KUBE, None, 'route = "/api"\n', "a `route` needs a proxy", 'route = "/api"', id="route"),
])
def test_kubernetes_config_errors_name_the_line(tmp_path: Path, environment: str, top: str | None, service: str,
                                                words: str, at: str) -> None:
    root = kube_project(tmp_path, environment, service=service,
                    **({"top": top} if top is not None else {}))  # type: ignore[arg-type]
    problems = _problems(root)
    found = [p for p in problems if words in str(p)]
    assert found, [str(p) for p in problems]
    assert found[0].line == _line_of(root, at), (found[0].line, str(found[0]))


def test_a_service_name_kubernetes_refuses(tmp_path: Path) -> None:
    root = kube_project(tmp_path)
    toml = root / "nexusify.toml"
    toml.write_text(toml.read_text().replace("[deploy.services.app]", "[deploy.services.App_1]"))
    (problem,) = [p for p in _problems(root) if "names Kubernetes objects" in str(p)]
    assert problem.line == _line_of(root, "[deploy.services.App_1]")


# --------------------------------------------------------------------------- manifests


def _service(**over: Any) -> ServiceConfig:
    fields: dict[str, Any] = {
        "name": "app", "folder": APP, "container_port": 8000, "health_path": "/ready", "health_timeout": 45.0,
        "migrations": ALEMBIC, "database_url": "secret:DATABASE_URL",
        "env": (EnvVar("API_KEY", secret="API_KEY"), EnvVar("LOG_LEVEL", value="info")),
    }
    return ServiceConfig(**{**fields, **over})


def _target(color: str = "green", **over: Any) -> mf.Target:
    return mf.Target(environment="prod", namespace="shop", service=_service(**over),
                     image="registry.example.com/team/app:v1.2.3", version="v1.2.3", color=color)


def test_manifests_validate_against_the_kubernetes_1_37_schemas() -> None:
    import kubernetes_validate

    objects = [*mf.service_objects(_target()), mf.secret_manifest(_target(), {"API_KEY": "x", "DATABASE_URL": "y"})]
    assert [o["kind"] for o in objects] == ["ConfigMap", "Job", "Deployment", "Service", "Secret"]
    for obj in objects:
        # strict: additionalProperties are refused too (a misspelt field fails)
        assert kubernetes_validate.validate(obj, "1.37", strict=True) == "1.37", obj["kind"]


def test_the_schema_check_can_fail() -> None:
    import kubernetes_validate

    dep = mf.deployment_manifest(_target())
    dep["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["pth"] = "/ready"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(dep, "1.37", strict=True)


def test_deployment_service_and_job_carry_the_rules() -> None:
    t = _target()
    dep = mf.deployment_manifest(t)
    pod = dep["spec"]["template"]
    assert dep["metadata"]["name"] == "app-green"
    assert dep["spec"]["selector"]["matchLabels"] == {"app": "app", "color": "green"}
    assert pod["metadata"]["labels"]["io.nexusify.version"] == "v1.2.3"
    (c,) = pod["spec"]["containers"]
    assert c["image"] == "registry.example.com/team/app:v1.2.3"
    for probe in ("readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"] == {"path": "/ready", "port": 8000}
    assert {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "app-green-env", "key": "API_KEY"}}} in c["env"]
    assert {"name": "LOG_LEVEL", "value": "info"} in c["env"]
    svc = mf.service_manifest(t)
    assert svc["spec"]["selector"] == {"app": "app", "color": "green"}
    config_map, job = mf.migration_manifests(t)
    (jc,) = job["spec"]["template"]["spec"]["containers"]
    assert jc["image"] == t.image and "-" in jc["command"]  # the lock key is derived in the pod
    assert {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "app-green-env", "key": "DATABASE_URL"}}} \
        in jc["env"]
    paths = {i["path"] for i in job["spec"]["template"]["spec"]["volumes"][0]["configMap"]["items"]}
    assert {"alembic.ini", "migrations/env.py", "migrations/versions/0001_create_items.py"} <= paths
    assert set(config_map["data"]) == {i["key"] for i in job["spec"]["template"]["spec"]["volumes"][0]["configMap"]["items"]}
    assert mf.migration_manifests(_target(migrations=None, database_url=None)) == []


def test_no_manifest_but_the_secret_holds_a_value() -> None:
    t = _target()
    text = json.dumps(mf.service_objects(t))
    secret = mf.secret_manifest(t, {"API_KEY": API_KEY, "DATABASE_URL": DB_URL})
    assert API_KEY not in text and DB_URL not in text
    assert secret["stringData"] == {"API_KEY": API_KEY, "DATABASE_URL": DB_URL}


# --------------------------------------------------------------------------- dry run


def test_dry_run_prints_valid_manifests_and_the_kubectl_steps(
        tmp_path: Path, run_cli: Callable[..., CliResult]) -> None:
    import kubernetes_validate

    root = kube_project(tmp_path)
    before = sorted(p for p in tmp_path.rglob("*"))
    env = {"HOME": str(tmp_path), "NO_COLOR": "1", "PATH": os.environ.get("PATH", ""),
           "DOCKER_HOST": "unix:///nonexistent.sock"}  # a dry run never talks to the engine
    r = run_cli("deploy", "--root", str(root), "-e", "prod", "--tag", "v1.2.3", "--dry-run", env=env)
    assert r.exit_code == 0, r.output
    assert API_KEY not in r.output and DB_URL not in r.output and "pw-kube" not in r.output
    text = r.stdout.split("# manifests\n", 1)[1].split("\n# kubectl steps", 1)[0]
    docs = [d for d in yaml.safe_load_all(text) if d]
    assert [d["kind"] for d in docs] == ["ConfigMap", "Job", "Deployment", "Service"]
    for d in docs:
        assert kubernetes_validate.validate(d, "1.37", strict=True) == "1.37"
    steps = r.stdout.split("# kubectl steps\n", 1)[1]
    order = ["Secret app-green-env (values elided)", "< ConfigMap app-mig-", "< Job app-mig-",
             "get job/app-mig-", "until Complete or Failed", "< Deployment app-green", "rollout status deployment/app-green",
             "patch service/app --type=merge"]
    at = [steps.index(s) for s in order]
    assert at == sorted(at), steps
    assert "kubectl --context=prod-cluster --namespace=shop" in steps
    assert "app-blue is kept for rollback" in steps
    assert sorted(p for p in tmp_path.rglob("*")) == before  # nothing written

    j = run_cli("deploy", "--root", str(root), "-e", "prod", "--tag", "v1.2.3", "--dry-run", "--json", env=env)
    assert j.exit_code == 0, j.output
    plan = json.loads(j.stdout)
    assert plan["dry_run"] is True and plan["kubernetes"] == {"context": "prod-cluster", "namespace": "shop"}
    assert [s["stage"] for s in plan["steps"]] == ["secrets", "migrate", "migrate", "migrate", "start", "start",
                                                   "switch"]
    import jsonschema

    schema = json.loads((REPO / "docs" / "schema" / "output.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(plan, schema)
    assert API_KEY not in j.stdout and DB_URL not in j.stdout


# --------------------------------------------------------------------------- the runner, against a fake kubectl


FAKE = """\
import json, os, sys
args = sys.argv[1:]
stdin = sys.stdin.read()
with open(os.environ["FAKE_KUBECTL_LOG"], "a") as f:
    f.write(json.dumps({"argv": args, "stdin": stdin}) + "\\n")
fail = os.environ.get("FAKE_KUBECTL_FAIL")
if fail and fail in args:
    sys.stderr.write("error: deployment exceeded its progress deadline; env was " + os.environ.get("LEAK", "") + "\\n")
    sys.exit(1)
# a tiny cluster: objects by "kind/name" in a JSON file; get, apply, create, replace, patch, rollout
path = os.environ["FAKE_KUBECTL_STATE"]
state = json.load(open(path)) if os.path.exists(path) else {"rv": 0, "objects": {}}
objects = state["objects"]
cmd = args[2:]


def stop(message):
    sys.stderr.write("Error from server " + message + "\\n")
    sys.exit(1)


def save(key, obj):
    state["rv"] += 1
    obj.setdefault("metadata", {})["resourceVersion"] = str(state["rv"])
    objects[key] = obj
    with open(path, "w") as f:
        json.dump(state, f, indent=1)


def merge(into, patch):
    for k, v in patch.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            merge(into[k], v)
        else:
            into[k] = v


if cmd[0] == "get" and cmd[1].startswith("job/") and "jsonpath" in " ".join(cmd):
    sys.stdout.write(os.environ.get("FAKE_JOB", "SuccessCriteriaMet Complete"))
elif cmd[0] == "get":
    obj = objects.get(cmd[1])
    if obj is None and "--ignore-not-found" not in cmd:
        stop("(NotFound): " + cmd[1] + " not found")
    if obj is not None:
        sys.stdout.write(json.dumps(obj))
elif cmd[0] in ("apply", "create", "replace"):
    obj = json.loads(stdin)
    key = obj["kind"].lower() + "/" + obj["metadata"]["name"]
    if cmd[0] == "create" and key in objects:
        stop("(AlreadyExists): " + key)
    race = os.environ.get("FAKE_RACE")  # another writer's line lands between this one's get and replace
    if cmd[0] == "replace" and race and not state.get("raced"):
        state["raced"] = True
        objects[key]["data"]["history.jsonl"] += race + "\\n"
        save(key, objects[key])
    if cmd[0] == "replace" and (key not in objects or obj["metadata"].get("resourceVersion")
                                != objects[key]["metadata"]["resourceVersion"]):
        stop("(Conflict): " + key + " was modified")
    if obj["kind"] == "Secret":  # a cluster keeps the values; this one keeps the keys only
        obj["stringData"] = {k: "(kept by the cluster)" for k in obj.get("stringData", {})}
    if obj["kind"] == "Deployment":
        n = obj["spec"].get("replicas", 1)
        unready = obj["metadata"]["name"] in os.environ.get("FAKE_UNREADY", "").split(",")
        obj["status"] = {"replicas": n} if unready else {"replicas": n, "readyReplicas": n, "availableReplicas": n}
    save(key, obj)
elif cmd[0] == "patch":
    if cmd[1] not in objects:
        stop("(NotFound): " + cmd[1] + " not found")
    obj = objects[cmd[1]]
    merge(obj, json.loads(cmd[cmd.index("-p") + 1]))
    save(cmd[1], obj)
elif cmd[0] == "rollout":
    obj = objects.get(cmd[2])
    if obj is None or not obj["status"].get("readyReplicas"):
        stop("(Timeout): " + cmd[2] + " is not ready")
    sys.stdout.write(cmd[2] + " successfully rolled out\\n")
elif cmd[0] == "logs":
    sys.stdout.write("sqlalchemy.exc.ProgrammingError: relation exists; url " + os.environ.get("LEAK", "") + "\\n")
"""


def fake_kubectl(tmp_path: Path, **extra: str) -> tuple[dict[str, str], Path]:
    """A kubectl on PATH that logs argv and stdin to ``kubectl.jsonl`` and keeps a small cluster in
    ``cluster.json`` (:func:`cluster`): what it applies, creates, replaces and patches is what it gets."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "kubectl"
    exe.write_text(f"#!{sys.executable}\n" + FAKE)
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "kubectl.jsonl"
    return {"PATH": f"{bin_dir}:{os.environ.get('PATH', '')}", "FAKE_KUBECTL_LOG": str(log),
            "FAKE_KUBECTL_STATE": str(tmp_path / "cluster.json"), **extra}, log


def cluster(env: dict[str, str]) -> dict[str, Any]:
    """The fake cluster's objects by ``kind/name``."""
    path = Path(env["FAKE_KUBECTL_STATE"])
    return dict(json.loads(path.read_text())["objects"]) if path.exists() else {}


def seed(env: dict[str, str], *objects: dict[str, Any]) -> None:
    """Put ``objects`` in the fake cluster, as kubectl apply would (a Deployment ready)."""
    path = Path(env["FAKE_KUBECTL_STATE"])
    state = json.loads(path.read_text()) if path.exists() else {"rv": 0, "objects": {}}
    for obj in objects:
        obj = json.loads(json.dumps(obj))
        if obj["kind"] == "Deployment":
            obj["status"] = {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1}
        state["rv"] += 1
        obj["metadata"]["resourceVersion"] = str(state["rv"])
        state["objects"][f"{obj['kind'].lower()}/{obj['metadata']['name']}"] = obj
    path.write_text(json.dumps(state))


def serving(env: dict[str, str], color: str = "blue", version: str = "v0") -> None:
    """The fake cluster with ``app`` deployed once: its Service selects ``color``, whose Deployment runs ``version``."""
    t = mf.Target(environment="prod", namespace="shop", service=_service(), image=f"registry.example.com/team/app:{version}",
                  version=version, color=color)
    seed(env, mf.deployment_manifest(t), mf.service_manifest(t))


def _calls(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _bundle() -> SecretBundle:
    return SecretBundle({"API_KEY": Secret(API_KEY), "DATABASE_URL": Secret(DB_URL)}, {"env-file": "1"})


def test_the_runner_runs_every_step_with_secret_values_on_stdin_only(tmp_path: Path) -> None:
    env, log = fake_kubectl(tmp_path)
    serving(env)
    cfg = _load(kube_project(tmp_path))
    env_cfg = cfg.environment("prod")
    kubectl = Kubectl("prod-cluster", "shop", env=env, bundle=_bundle())
    assert kubectl.binary == str(tmp_path / "bin" / "kubectl")
    assert kubectl.live_color("app") == "blue"
    plan = make_plan(cfg, env_cfg, list(env_cfg.services.values()), "v1.2.3", {"app": "blue"})
    run_steps(kubectl, plan.steps)
    calls = _calls(log)
    assert len(calls) == 1 + len(plan.steps)
    for call in calls:
        assert call["argv"][:2] == ["--context=prod-cluster", "--namespace=shop"]
        assert not any(API_KEY in a or DB_URL in a for a in call["argv"])  # never in argv (ps shows it)
    with_values = [c for c in calls if API_KEY in c["stdin"]]
    assert len(with_values) == 1
    secret = json.loads(with_values[0]["stdin"])
    assert secret["kind"] == "Secret" and secret["metadata"]["name"] == "app-green-env"
    assert secret["stringData"] == {"API_KEY": API_KEY, "DATABASE_URL": DB_URL}
    assert with_values[0]["argv"][2:] == ["apply", "--server-side", "--field-manager=nexusify", "--force-conflicts",
                                          "-f", "-"]
    kinds = [json.loads(c["stdin"])["kind"] if c["stdin"] else c["argv"][2] for c in calls[1:]]
    assert kinds == ["Secret", "ConfigMap", "Job", "get", "Deployment", "rollout", "patch"]
    assert calls[-1]["argv"][2:] == ["patch", "service/app", "--type=merge", "-p",
                                     '{"spec":{"selector":{"app":"app","color":"green"}}}']


def test_a_first_deploy_creates_the_service_on_the_new_color(tmp_path: Path) -> None:
    env, log = fake_kubectl(tmp_path)  # no Service: `get --ignore-not-found` prints nothing
    cfg = _load(kube_project(tmp_path))
    kubectl = Kubectl("prod-cluster", "shop", env=env, bundle=_bundle())
    live = kubectl.live_color("app")
    assert live is None
    env_cfg = cfg.environment("prod")
    plan = make_plan(cfg, env_cfg, list(env_cfg.services.values()), "v1", {"app": live})
    run_steps(kubectl, plan.steps)
    last = json.loads(_calls(log)[-1]["stdin"])
    assert last["kind"] == "Service" and last["spec"]["selector"] == {"app": "app", "color": "blue"}


def test_a_failed_rollout_stops_before_the_switch_and_hides_values(tmp_path: Path) -> None:
    env, log = fake_kubectl(tmp_path, FAKE_KUBECTL_FAIL="rollout", LEAK=API_KEY)
    serving(env)
    cfg = _load(kube_project(tmp_path))
    env_cfg = cfg.environment("prod")
    kubectl = Kubectl("prod-cluster", "shop", env=env, bundle=_bundle())
    plan = make_plan(cfg, env_cfg, list(env_cfg.services.values()), "v1", {"app": "blue"})
    with pytest.raises(DeployError) as info:
        run_steps(kubectl, plan.steps)
    message = str(info.value)
    assert "progress deadline" in message and API_KEY not in message and "<hidden>" in message
    assert not any(c["argv"][2] == "patch" for c in _calls(log))  # traffic never moved


def test_a_failed_migration_job_stops_at_once_with_its_logs(tmp_path: Path) -> None:
    env, log = fake_kubectl(tmp_path, FAKE_JOB="FailureTarget Failed", LEAK=DB_URL)
    serving(env)
    cfg = _load(kube_project(tmp_path))
    env_cfg = cfg.environment("prod")
    kubectl = Kubectl("prod-cluster", "shop", env=env, bundle=_bundle())
    plan = make_plan(cfg, env_cfg, list(env_cfg.services.values()), "v1", {"app": "blue"})
    with pytest.raises(DeployError) as info:
        run_steps(kubectl, plan.steps)
    message = str(info.value)
    assert "Failed" in message and "relation exists" in message and DB_URL not in message
    calls = _calls(log)
    assert calls[-1]["argv"][2:4] == ["logs", f"job/{plan.steps[2].manifest['metadata']['name']}"]  # type: ignore[index]
    assert not any(c["stdin"] and json.loads(c["stdin"])["kind"] == "Deployment" for c in calls)  # nothing started


def test_a_service_nexusify_did_not_make_is_refused(tmp_path: Path) -> None:
    env, _ = fake_kubectl(tmp_path)
    seed(env, {**mf.service_manifest(_target()), "spec": {"selector": {"app": "app", "color": "canary"}}})
    with pytest.raises(DeployError, match="not blue or green"):
        Kubectl("prod-cluster", "shop", env=env).live_color("app")


def test_no_kubectl_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DeployError, match="kubectl is not on PATH"):
        Kubectl("prod-cluster", "shop", env={"PATH": str(tmp_path)})


# --------------------------------------------------------------------------- what is not there yet is refused


def _cli_env(tmp_path: Path) -> dict[str, str]:
    return {"HOME": str(tmp_path), "NO_COLOR": "1", "PATH": os.environ.get("PATH", ""),
            "DOCKER_HOST": "unix:///nonexistent.sock"}


@pytest.mark.parametrize("argv", [
    pytest.param(("deploy", "down", "--yes"), id="down"),
    pytest.param(("deploy", "unlock"), id="unlock"),
    pytest.param(("deploy", "--stages", "build"), id="stages"),
])
def test_verbs_for_engines_refuse_a_kubernetes_environment(
        tmp_path: Path, run_cli: Callable[..., CliResult], argv: tuple[str, ...]) -> None:
    root = kube_project(tmp_path)
    r = run_cli(*argv, "--root", str(root), "-e", "prod", env=_cli_env(tmp_path))
    assert r.exit_code == 2, r.output
    assert "Kubernetes" in r.output


def test_a_tag_that_is_no_label_value_is_refused(tmp_path: Path, run_cli: Callable[..., CliResult]) -> None:
    root = kube_project(tmp_path)
    r = run_cli("deploy", "--root", str(root), "-e", "prod", "--tag", "v" * 70, "--dry-run", env=_cli_env(tmp_path))
    assert r.exit_code == 2, r.output
    assert "not a Kubernetes label value" in r.output


def test_the_migration_configmap_holds_a_runnable_migration(tmp_path: Path) -> None:
    """The Job's command, run here on the ConfigMap's files put where its volume puts them (a tmp
    folder standing for the mount point) against SQLite: everything the migration needs is in it,
    and the lock key is derived from $DATABASE_URL (the manifest holds no URL)."""
    import subprocess

    from nexusify.deploy.migrations.container import WORKDIR

    config_map, job = mf.migration_manifests(_target())
    mount = tmp_path / "mount"
    for item in job["spec"]["template"]["spec"]["volumes"][0]["configMap"]["items"]:
        dest = mount / item["path"]
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(config_map["data"][item["key"]])
    (c,) = job["spec"]["template"]["spec"]["containers"]
    argv = [sys.executable if a == "python3" else a.replace(WORKDIR, str(mount)) for a in c["command"]]
    db = tmp_path / "app.db"
    proc = subprocess.run(argv, cwd=mount, capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "DATABASE_URL": f"sqlite:///{db}"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1].split(" ", 1)[1])
    assert report["ok"] is True and report["applied"] == ["0001", "0002"]
