"""The deploy plan as plain data, computed without changing anything (``--dry-run`` prints it with
the migration SQL of Alembic's offline mode), and the helpers that turn config into runtime pieces
(version, proxy, routes, per-service runtime)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nexusify.config import Settings
from nexusify.credentials import mask_url
from nexusify.deploy.config.load import DeployConfig, EnvironmentConfig, ProxyConfig, ServiceConfig
from nexusify.deploy.config.placement import placement_of
from nexusify.deploy.migrations import local as mig
from nexusify.deploy.readiness import check_rewritten
from nexusify.deploy.runtime.containers import ServiceRuntime
from nexusify.deploy.runtime.engine import engine_url
from nexusify.deploy.runtime.images import check_version, image_ref, registry_auth, source_version
from nexusify.deploy.runtime.objects import history_volume, lock_name
from nexusify.deploy.secrets import SecretBundle, database_url, fetch_secrets, provider_for
from nexusify.deploy.state import history as hist
from nexusify.deploy.state.backend import state_backend
from nexusify.deploy.traffic.switch import NginxProxy, Route
from nexusify.errors import DeployError, NexusifyError, UsageError

STAGES: tuple[str, ...] = ("secrets", "migrate", "build", "switch", "record")
NEEDS_SECRETS = ("migrate", "switch")


@dataclass(frozen=True)
class PlanStep:
    stage: str
    service: str | None
    action: str  # what will happen, in words (never a secret value)
    detail: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "service": self.service, "action": self.action, **dict(self.detail)}


@dataclass
class DeployPlan:
    """What a deploy will do, computed without changing anything."""

    environment: str
    version: str
    services: list[str]
    stages: tuple[str, ...]
    steps: list[PlanStep]
    engine: str
    registry: str | None
    live: dict[str, str | None]  # service -> version serving now
    migration_sql: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment, "version": self.version, "services": self.services,
            "stages": list(self.stages), "engine": self.engine, "registry": self.registry,
            "live": self.live, "steps": [s.to_dict() for s in self.steps],
            "migration_sql": self.migration_sql,
        }

    def lines(self) -> list[str]:
        out = [f"Deploy plan: environment {self.environment}, version {self.version}, "
               f"services {', '.join(self.services)}; stages {' -> '.join(self.stages)}"]
        for n, step in enumerate(self.steps, 1):
            who = f"{step.service}: " if step.service else ""
            out.append(f"  {n:>2}. {step.stage:<8} {who}{step.action}")
        return out



def parse_stages(text: str | None) -> tuple[str, ...]:
    """``--stages build,switch`` -> the selected stages in pipeline order (UsageError if unknown)."""
    if not text:
        return STAGES
    chosen = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in STAGES]
    if unknown:
        raise UsageError(f"unknown stage(s): {', '.join(unknown)}", hint=f"stages are: {', '.join(STAGES)}")
    return tuple(s for s in STAGES if s in chosen)


def effective_stages(selected: Sequence[str]) -> tuple[str, ...]:
    """The selected stages, plus ``secrets`` when a selected stage needs secret values."""
    if any(s in selected for s in NEEDS_SECRETS) and "secrets" not in selected:
        return ("secrets", *selected)
    return tuple(selected)


def secret_tag(bundle: SecretBundle | None) -> str:
    """A fingerprint of the secret *version ids* (never values), stored as a container label."""
    if bundle is None or not bundle.versions:
        return ""
    raw = json.dumps(sorted(bundle.versions.items()))
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def proxy_of(env_cfg: EnvironmentConfig, settings: Settings) -> ProxyConfig:
    """The environment's proxy; without a [proxy] table, a private nginx nexusify manages."""
    if env_cfg.proxy is not None:
        return env_cfg.proxy
    return ProxyConfig(conf_dir=settings.state_path / "deploy" / env_cfg.name / "nginx")


def routes_of(env_cfg: EnvironmentConfig, proxy: ProxyConfig) -> dict[str, Route]:
    routes: dict[str, Route] = {}
    host = proxy.listen_host
    for svc in env_cfg.services.values():
        if svc.public_port is not None:
            routes[svc.name] = Route(listen=f"{host}:{svc.public_port}")
        elif svc.route is not None and proxy.listen_port is not None:
            routes[svc.name] = Route(listen=f"{host}:{proxy.listen_port}", path=svc.route.rstrip("/") + "/")
    return routes


def make_proxy(env_cfg: EnvironmentConfig, settings: Settings) -> NginxProxy:
    proxy = proxy_of(env_cfg, settings)
    conf_dir = proxy.conf_dir or settings.state_path / "deploy" / env_cfg.name / "nginx"
    drain = max((s.drain_timeout for s in env_cfg.services.values()), default=5.0)
    return NginxProxy(conf_dir, routes_of(env_cfg, proxy), conf=proxy.conf, prefix=proxy.prefix,
                      nginx=proxy.binary if proxy.binary != "nginx" else None, drain_timeout=max(drain, 1.0))


def runtime_of(env_cfg: EnvironmentConfig, svc: ServiceConfig) -> ServiceRuntime:
    return ServiceRuntime(
        environment=env_cfg.name, service=svc.name, container_port=svc.container_port,
        health_path=svc.health_path, health_timeout=svc.health_timeout, health_interval=svc.health_interval,
        drain_timeout=svc.drain_timeout, keep=env_cfg.keep,
    )


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def resolve_version(services: Sequence[ServiceConfig], root: Path, explicit: str | None) -> str:
    """``--tag`` wins; else the git short SHA (``-dirty`` when any deployed service folder is dirty)."""
    if explicit:
        return check_version(explicit)
    versions = [source_version(s.folder) for s in services]
    if not versions:
        return source_version(root)
    if all(v.startswith("c") and not v.endswith("-dirty") and len(v) == 13 for v in versions) and len(set(versions)) > 1:
        return "c" + hashlib.sha256("".join(versions).encode()).hexdigest()[:12]
    dirty = any(v.endswith("-dirty") for v in versions)
    base = versions[0].removesuffix("-dirty")
    return f"{base}-dirty" if dirty else base


# --------------------------------------------------------------------------- plan


def plan_deploy(
    config: DeployConfig,
    settings: Settings,
    environment: str,
    *,
    services: list[str] | None = None,
    stages: Sequence[str] = STAGES,
    version: str | None = None,
    env: Mapping[str, str] | None = None,
    with_sql: bool = False,
) -> DeployPlan:
    """The deploy as data; with ``with_sql``, the migration SQL of Alembic's offline mode."""
    env = env or {}
    env_cfg = config.environment(environment)
    chosen = config.select_services(environment, services)
    stages = effective_stages(stages)
    if "build" in stages:
        check_rewritten(settings, chosen)  # before anything is built: shared code comes from the index
    ver = resolve_version(chosen, settings.root, version)
    placement = placement_of(config, env_cfg, env)
    # with hosts, the first listed host's record says what is live (each host keeps its own)
    store = state_backend(settings, placement, [], env).at(placement.site_name(placement.specs[0]))
    names = [placement.display(h) for h in placement.specs]
    on_hosts = f" on {len(names)} hosts ({', '.join(names)})" if placement.has_hosts else ""
    live = {}
    for svc in chosen:
        slot = store.service(svc.name).get("live")
        live[svc.name] = slot.get("version") if isinstance(slot, dict) else None
    proxy = proxy_of(env_cfg, settings)
    routes = routes_of(env_cfg, proxy)
    steps: list[PlanStep] = []
    provider = provider_for(env_cfg, env)
    bundle: SecretBundle | None = None
    if "secrets" in stages:
        needed = sorted({n for s in chosen for n in s.secret_names})
        what = provider.description if provider else "none configured"
        steps.append(PlanStep("secrets", None, f"fetch from {what}; names: {', '.join(needed) or '(none)'} "
                                               "(values are never shown)",
                              {"provider": what, "names": needed}))
        if with_sql and provider is not None and any(s.migrations for s in chosen):
            bundle = fetch_secrets(env_cfg, chosen, env)
    sql: dict[str, str] = {}
    if "migrate" in stages:
        if not any(s.migrations for s in chosen):
            steps.append(PlanStep("migrate", None, "nothing to migrate (no service has `migrations`)"))
        for svc in chosen:
            if svc.migrations is None:
                continue
            inside = (" in a one-off container of the new image on the primary host, after the build"
                      if placement.migrations_on_host else "")
            steps.append(PlanStep("migrate", svc.name,
                                  f"alembic upgrade head ({_rel(svc.migrations, settings.root)}) under a PostgreSQL "
                                  f"advisory lock{inside}",
                                  {"alembic_ini": str(svc.migrations)}))
            if with_sql:
                sql[svc.name] = _offline_sql(svc, bundle or SecretBundle())
    if "build" in stages:
        auth = registry_auth(env) if config.registry else None  # both or neither: checked before anything runs
        for svc in chosen:
            ref = image_ref(config.registry, svc.image_name, ver)
            push = (f" and push (as {auth.username})" if auth else " and push") if config.registry else ""
            steps.append(PlanStep("build", svc.name,
                                  f"build {_rel(svc.folder / svc.dockerfile, settings.root)} -> {ref}{push}",
                                  {"image": ref, "push": bool(config.registry)}))
    if "switch" in stages:
        for svc in chosen:
            route = routes.get(svc.name)
            where = f"{route.listen}{route.path if route and route.path != '/' else ''}" if route else "?"
            now = live.get(svc.name)
            head = f"start {ver} beside {now} (live)" if now else f"start {ver} (first deploy)"
            tail = (f", drain (<= {svc.drain_timeout:g}s), stop {now} and keep it with the last {env_cfg.keep} "
                    "for rollback") if now else ""
            steps.append(PlanStep(
                "switch", svc.name,
                f"{head}{on_hosts}, wait for {svc.health_path} (<= {svc.health_timeout:g}s), point "
                f"{'the proxy container' if placement.proxy_container else 'nginx'} {where} at it{tail}",
                {"from": now, "to": ver, "listen": where}))
    if "record" in stages:
        on_hosts = (f", and on every host (volume {history_volume(environment)}); the deploy lock is "
                    f"{lock_name(environment)} on the primary host") if placement.state_on_hosts else ""
        steps.append(PlanStep("record", None,
                              f"append to {_rel(hist.history_path(settings.state_path, environment), settings.root)}"
                              + on_hosts, {}))
    return DeployPlan(environment=environment, version=ver, services=[s.name for s in chosen], stages=stages,
                      steps=steps, engine=mask_url(engine_url(config.engine, env)), registry=config.registry,
                      live=live, migration_sql=sql)


def _offline_sql(svc: ServiceConfig, bundle: SecretBundle) -> str:
    assert svc.migrations is not None
    url = database_url(svc, bundle)
    if url is None:
        return "-- no database-url configured"
    current: str | None = None
    raw = url.reveal()
    sqlite_file = raw.split(":///", 1)[1] if raw.startswith("sqlite") and ":///" in raw else None
    if sqlite_file is None or (sqlite_file and Path(sqlite_file).is_file()):  # connecting would create the file
        try:
            current = mig.migration_status(svc.name, svc.migrations, url).current
        except Exception:
            current = None  # no database reachable: SQL from the start
    try:
        return bundle.redact(mig.offline_sql(svc.name, svc.migrations, url, from_revision=current))
    except NexusifyError:
        raise
    except Exception as exc:
        raise DeployError(f"{svc.name}: could not render the migration SQL: {bundle.redact(str(exc))}",
                          path=svc.migrations) from None



__all__ = [
    "NEEDS_SECRETS", "STAGES", "DeployPlan", "PlanStep", "effective_stages", "make_proxy", "parse_stages",
    "plan_deploy", "proxy_of", "resolve_version", "routes_of", "runtime_of", "secret_tag",
]
