"""A deploy to a Kubernetes environment: the plan (``--dry-run`` prints its manifests and kubectl
steps) and its execution (secrets -> build and push -> the kubectl steps of :mod:`.steps`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nexusify.config import Settings
from nexusify.credentials import resolve_credentials
from nexusify.deploy.config.types import (
    DeployConfig,
    EnvironmentConfig,
    KubernetesConfig,
    ServiceConfig,
)
from nexusify.deploy.kubernetes import manifests as mf
from nexusify.deploy.kubernetes import names
from nexusify.deploy.kubernetes.cluster import ColorState, read_service
from nexusify.deploy.kubernetes.history import ConfigMapHistory
from nexusify.deploy.kubernetes.runner import Kubectl
from nexusify.deploy.kubernetes.steps import Step, Switch, plan_steps
from nexusify.deploy.kubernetes.yamlout import dump_all
from nexusify.deploy.plan import resolve_version
from nexusify.deploy.readiness import check_rewritten
from nexusify.deploy.runtime.engine import connect
from nexusify.deploy.runtime.images import (
    BuildRequest,
    BuiltImage,
    build_image,
    image_ref,
    push_image,
    registry_auth,
)
from nexusify.deploy.secrets import SecretBundle, fetch_secrets, provider_for
from nexusify.deploy.state.history import DeploymentRecord, ServiceRecord, utc_now, who
from nexusify.errors import ConfigError, DeployError, NexusifyError

#: what a dry run assumes the Service selects (the runner asks the cluster)
ASSUMED_LIVE = "blue"


@dataclass
class KubePlan:
    """The deploy to a Kubernetes environment as data: the objects it applies and the kubectl steps."""

    environment: str
    cluster: KubernetesConfig
    version: str
    services: list[str]
    secrets: str  # where the values come from (never the values)
    switches: list[Switch]
    steps: list[Step]
    manifests: list[mf.Manifest] = field(default_factory=list)
    record_id: str | None = None  # the history record of a deploy that ran

    def to_dict(self) -> dict[str, Any]:
        return {"environment": self.environment, "kubernetes": {"context": self.cluster.context,
                                                                "namespace": self.cluster.namespace},
                "version": self.version, "services": self.services, "secrets": self.secrets,
                "live": {s.target.service.name: s.live for s in self.switches},
                "manifests": self.manifests, "steps": [s.to_dict() for s in self.steps],
                "record_id": self.record_id}

    def lines(self) -> list[str]:
        live = ", ".join(f"{s.target.service.name} {s.live or 'none'} -> {s.target.color}" for s in self.switches)
        out = [f"Deploy plan: environment {self.environment} (Kubernetes: context {self.cluster.context}, "
               f"namespace {self.cluster.namespace}), version {self.version}, services {', '.join(self.services)}",
               f"colors: {live} (a dry run assumes {ASSUMED_LIVE} is live; a deploy asks the cluster which color "
               "each Service selects)",
               f"secrets: {self.secrets}; each color's Secret is made at apply time and sent on kubectl's stdin "
               "(values never in a file, a manifest on disk or output)",
               "", "# manifests", dump_all(self.manifests).rstrip(), "", "# kubectl steps"]
        for n, step in enumerate(self.steps, 1):
            out.append(f"{n:>3}. [{step.stage}] {step.what}")
            out.append(f"     {step.command(self.cluster.context, self.cluster.namespace)}")
        return out


def _cluster(env_cfg: EnvironmentConfig, config: DeployConfig) -> KubernetesConfig:
    if env_cfg.kubernetes is None:
        raise ConfigError(f"environment `{env_cfg.name}` is not a Kubernetes environment", path=config.config_path)
    return env_cfg.kubernetes


def make_plan(config: DeployConfig, env_cfg: EnvironmentConfig, chosen: Sequence[ServiceConfig], version: str,
              live: Mapping[str, str | None], env: Mapping[str, str] | None = None) -> KubePlan:
    """The plan for ``chosen`` at ``version``, each service starting the color its Service does not
    select (``live``)."""
    cluster = _cluster(env_cfg, config)
    switches = []
    for svc in chosen:
        color = names.next_color(live.get(svc.name))
        target = mf.Target(environment=env_cfg.name, namespace=cluster.namespace, service=svc,
                           image=image_ref(config.registry, svc.image_name, version), version=version, color=color)
        switches.append(Switch(target, live.get(svc.name)))
    provider = provider_for(env_cfg, env)
    needed = sorted({n for s in chosen for n in s.secret_names})
    secrets = (f"{provider.description if provider else 'no provider configured'}; "
               f"names: {', '.join(needed) or '(none)'}")
    objects = [o for sw in switches for o in mf.service_objects(sw.target)]
    return KubePlan(environment=env_cfg.name, cluster=cluster, version=version, services=[s.name for s in chosen],
                    secrets=secrets, switches=switches, steps=plan_steps(switches), manifests=objects)


def plan_kubernetes(config: DeployConfig, settings: Settings, environment: str, *,
                    services: list[str] | None = None, version: str | None = None,
                    env: Mapping[str, str] | None = None) -> KubePlan:
    """``deploy --dry-run`` of a Kubernetes environment: nothing is fetched, built or applied."""
    env_cfg = config.environment(environment)
    chosen = config.select_services(environment, services)
    check_rewritten(settings, chosen)
    ver = resolve_version(chosen, settings.root, version)
    return make_plan(config, env_cfg, chosen, ver, {s.name: ASSUMED_LIVE for s in chosen}, env)


def deploy_kubernetes(config: DeployConfig, settings: Settings, environment: str, *,
                      services: list[str] | None = None, version: str | None = None,
                      env: Mapping[str, str] | None = None, build_args: Mapping[str, str] | None = None,
                      on_step: Callable[[str], None] = lambda _m: None) -> KubePlan:
    """Fetch the secrets, build and push each image, then run the kubectl steps in order; the first
    failing step stops the deploy (DeployError), before any Service moved if it is not a switch."""
    env = env or {}
    env_cfg = config.environment(environment)
    cluster = _cluster(env_cfg, config)
    chosen = config.select_services(environment, services)
    check_rewritten(settings, chosen)
    ver = resolve_version(chosen, settings.root, version)
    needs = any(s.secret_names for s in chosen)
    bundle = fetch_secrets(env_cfg, chosen, env) if needs else SecretBundle()
    kubectl = Kubectl(cluster.context, cluster.namespace, env=env, bundle=bundle)
    states = {s.name: read_service(kubectl, s.name) for s in chosen}
    plan = make_plan(config, env_cfg, chosen, ver, {n: st.live for n, st in states.items()}, env)
    creds = resolve_credentials(settings.username, settings.simple_url, env, url_password=settings.url_password)
    auth = registry_auth(env)
    start, started_at = time.monotonic(), utc_now()
    images: dict[str, BuiltImage] = {}
    outcome, error = "failed", None
    try:
        engine = connect(config.engine, env)
        try:
            for sw in plan.switches:
                svc = sw.target.service
                on_step(f"[build] {svc.name}: {sw.target.image}")
                img = build_image(engine, BuildRequest(
                    service=svc.name, context=svc.folder, dockerfile=svc.dockerfile, ref=sw.target.image,
                    version=ver, environment=env_cfg.name, build_args=dict(build_args or {}),
                    index_url=settings.simple_url, credentials=creds if creds.present else None),
                    secret_values=list(bundle.values.values()))
                images[svc.name] = push_image(engine, img, auth=auth)
        finally:
            engine.close()
        run_steps(kubectl, plan.steps, on_step)
        outcome = "success"
    except KeyboardInterrupt:
        outcome, error = "aborted", "interrupted"
        raise
    except NexusifyError as exc:
        error = exc.message
        raise
    finally:
        record = DeploymentRecord(
            environment=env_cfg.name, action="deploy", outcome=outcome, started_at=started_at, finished_at=utc_now(),
            duration=time.monotonic() - start, who=who(env),
            services=tuple(_service_record(sw, states[sw.target.service.name].live_state,
                                           images.get(sw.target.service.name)) for sw in plan.switches),
            secret_versions=dict(bundle.versions), error=error)
        plan.record_id = _record(ConfigMapHistory(kubectl, env_cfg.name), record, bundle, outcome == "success")
    return plan


def _service_record(sw: Switch, live: ColorState | None, image: BuiltImage | None) -> ServiceRecord:
    """What the history keeps of one service: versions, image and digest (never a value)."""
    return ServiceRecord(sw.target.service.name, sw.target.version, image=sw.target.image,
                         digest=image.digest if image is not None else None,
                         previous_version=live.version if live is not None else None)


def _record(history: ConfigMapHistory, record: DeploymentRecord, bundle: SecretBundle, raise_: bool) -> str | None:
    """Append ``record``; a failure to record a deploy that worked fails it (exit 1: never a false
    green), one beside the deploy's own error is left out (that error says more)."""
    try:
        return history.append(record, bundle)[0].id
    except DeployError as exc:
        if raise_:
            raise DeployError(f"the deploy switched, but was not recorded in {history.where()}: {exc.message}",
                              hint=exc.hint) from None
        return None


def run_steps(kubectl: Kubectl, steps: Sequence[Step], on_step: Callable[[str], None] = lambda _m: None) -> None:
    """Run the steps in order; the first that fails stops the rest (DeployError, values redacted)."""
    for step in steps:
        on_step(f"[{step.stage}] {step.what}")
        kubectl.execute(step)


__all__ = ["ASSUMED_LIVE", "KubePlan", "deploy_kubernetes", "make_plan", "plan_kubernetes", "run_steps"]
