"""The deploy pipeline: a plan as plain data, then its execution stage by stage.

Stages, in order: ``secrets`` (fetch the environment's secrets) -> ``migrate`` (Alembic
``upgrade head`` per service, under a PostgreSQL advisory lock) -> ``build`` (image build, tag,
push) -> ``switch`` (blue-green per service behind the traffic switch) -> ``record`` (append
to the environment's history). A failure stops the pipeline where it is: a failing migration
means nothing is built or switched; an unhealthy green means traffic never moves.

:func:`plan_deploy` computes the plan without changing anything (``--dry-run`` prints it with
the migration SQL of Alembic's offline mode); :func:`run_deploy` executes it under the
environment's deploy lock. :func:`run_rollback` switches back to kept versions (no build, no
migration: a rollback never downgrades the database).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nexusify.config import Settings
from nexusify.credentials import mask_url, resolve_credentials
from nexusify.deploy import history as hist
from nexusify.deploy import migrations as mig
from nexusify.deploy.bluegreen import BlueGreen, Prepared, ServiceRuntime, StateStore, SwitchResult
from nexusify.deploy.config import DeployConfig, EnvironmentConfig, ProxyConfig, ServiceConfig
from nexusify.deploy.engine import Engine, connect, engine_url
from nexusify.deploy.images import (
    BuildRequest,
    BuiltImage,
    build_image,
    check_version,
    image_ref,
    push_image,
    registry_auth,
    source_version,
)
from nexusify.deploy.lock import DeployLock, LockHolder
from nexusify.deploy.secrets import (
    SecretBundle,
    container_env,
    database_url,
    fetch_secrets,
    provider_for,
)
from nexusify.deploy.switch import NginxProxy, Route
from nexusify.errors import DeployError, NexusifyError, UsageError

STAGES: tuple[str, ...] = ("secrets", "migrate", "build", "switch", "record")
NEEDS_SECRETS = ("migrate", "switch")

EventSink = Callable[["Event"], None]


@dataclass(frozen=True)
class Event:
    """Progress of the pipeline: ``kind`` is start, done, skip, info or fail."""

    kind: str
    stage: str
    message: str = ""
    seconds: float | None = None


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


@dataclass
class DeployResult:
    environment: str
    action: str
    version: str | None
    outcome: str = "success"
    stages: dict[str, float] = field(default_factory=dict)
    services: list[dict[str, Any]] = field(default_factory=list)
    migrations: list[dict[str, Any]] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    secret_versions: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    record_id: str | None = None
    recovered: list[str] = field(default_factory=list)
    duration: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment, "action": self.action, "version": self.version,
            "outcome": self.outcome, "duration": round(self.duration, 3),
            "stages": {k: round(v, 3) for k, v in self.stages.items()},
            "services": self.services, "migrations": self.migrations, "images": self.images,
            "secret_versions": self.secret_versions, "record_id": self.record_id,
            "recovered": self.recovered, "error": self.error,
        }


# --------------------------------------------------------------------------- helpers


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
    ver = resolve_version(chosen, settings.root, version)
    store = StateStore(settings.state_path, environment)
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
            steps.append(PlanStep("migrate", svc.name,
                                  f"alembic upgrade head ({_rel(svc.migrations, settings.root)}) under a PostgreSQL advisory lock",
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
                f"{head}, wait for {svc.health_path} (<= {svc.health_timeout:g}s), point nginx {where} at it{tail}",
                {"from": now, "to": ver, "listen": where}))
    if "record" in stages:
        steps.append(PlanStep("record", None,
                              f"append to {_rel(hist.history_path(settings.state_path, environment), settings.root)}",
                              {}))
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


# --------------------------------------------------------------------------- run


class _Stage:
    """Times one stage and reports it."""

    def __init__(self, result: DeployResult, sink: EventSink, name: str) -> None:
        self.result, self.sink, self.name = result, sink, name

    def __enter__(self) -> _Stage:
        self.t0 = time.monotonic()
        self.sink(Event("start", self.name))
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        took = time.monotonic() - self.t0
        self.result.stages[self.name] = took
        if exc is None:
            self.sink(Event("done", self.name, seconds=took))
        elif isinstance(exc, Exception):
            self.sink(Event("fail", self.name, str(exc).splitlines()[0] if str(exc) else type(exc).__name__, took))


def _noop(_e: Event) -> None:
    return None


def run_deploy(
    config: DeployConfig,
    settings: Settings,
    environment: str,
    *,
    services: list[str] | None = None,
    stages: Sequence[str] = STAGES,
    version: str | None = None,
    env: Mapping[str, str] | None = None,
    build_args: Mapping[str, str] | None = None,
    lock_wait: float | None = None,
    on_event: EventSink | None = None,
    engine: Engine | None = None,
) -> DeployResult:
    """Run the deploy under the environment's lock; DeployError (exit 1) when a stage fails.

    The result is returned on success; on failure the error carries ``.result`` (the partial
    DeployResult, already recorded in the history when ``record`` is a selected stage).
    """
    env = env or {}
    sink = on_event or _noop
    plan = plan_deploy(config, settings, environment, services=services, stages=stages, version=version, env=env)
    env_cfg = config.environment(environment)
    chosen = config.select_services(environment, services)
    wait = env_cfg.lock_wait if lock_wait is None else lock_wait
    result = DeployResult(environment=environment, action="deploy", version=plan.version)
    started, t0 = hist.utc_now(), time.monotonic()

    def on_wait(holder: LockHolder | None) -> None:
        sink(Event("info", "lock", f"waiting up to {wait:g}s for the deploy lock of {environment}"
                   + (f", held by {holder.describe()}" if holder else "")))

    with DeployLock(settings.state_path, environment, wait=wait, action="deploy", on_wait=on_wait):
        bundle: SecretBundle | None = None
        error: BaseException | None = None
        outcome = "success"
        records: list[hist.ServiceRecord] = []
        needs_engine = "build" in plan.stages or "switch" in plan.stages
        eng: Engine | None = engine
        holder: list[SecretBundle] = []
        try:
            try:
                if eng is None and needs_engine:
                    eng = connect(config.engine, env)
                _execute(plan, config, settings, env_cfg, chosen, env, build_args or {}, result, sink,
                         eng, records, holder)
            finally:
                bundle = holder[0] if holder else None
                if engine is None and eng is not None:
                    eng.close()
        except NexusifyError as exc:
            error = exc
            outcome = "unhealthy" if getattr(exc, "unhealthy", False) else "failed"
        except BaseException as exc:  # KeyboardInterrupt: record that it was aborted, then re-raise
            error = exc
            outcome = "aborted"
        result.outcome = outcome
        result.duration = time.monotonic() - t0
        redact = bundle.redact if bundle is not None else (lambda s: s)
        if error is not None:
            result.error = redact(str(error.message if isinstance(error, NexusifyError) else error))
        if "record" in plan.stages and (result.services or error is not None):
            with _Stage(result, sink, "record"):
                rec = hist.append_record(settings.state_path, hist.DeploymentRecord(
                    environment=environment, action="deploy", outcome=outcome, started_at=started,
                    finished_at=hist.utc_now(), duration=round(result.duration, 3), who=hist.who(env),
                    services=tuple(records), secret_versions=dict(bundle.versions) if bundle else {},
                    stages={k: round(v, 3) for k, v in result.stages.items()}, error=result.error,
                ), secrets=bundle)
                result.record_id = rec.id
        if error is not None:
            if isinstance(error, NexusifyError):
                error.result = result  # type: ignore[attr-defined]
                if bundle is not None:
                    error.message = bundle.redact(error.message)
                    error.args = (error.message,)
            raise error
    return result


def _execute(plan: DeployPlan, config: DeployConfig, settings: Settings, env_cfg: EnvironmentConfig,
             chosen: list[ServiceConfig], env: Mapping[str, str], build_args: Mapping[str, str],
             result: DeployResult, sink: EventSink, engine: Engine | None,
             records: list[hist.ServiceRecord], holder: list[SecretBundle]) -> None:
    stages = plan.stages
    bundle: SecretBundle | None = None
    migrated: dict[str, mig.MigrationResult] = {}
    if "secrets" in stages:
        with _Stage(result, sink, "secrets"):
            bundle = fetch_secrets(env_cfg, chosen, env)
            holder.append(bundle)
            result.secret_versions = dict(bundle.versions)
    if "migrate" in stages:
        with _Stage(result, sink, "migrate"):
            for svc in chosen:
                if svc.migrations is None:
                    continue
                url = database_url(svc, bundle or SecretBundle())
                if url is None:
                    raise DeployError(f"{svc.name}: `migrations` is set but `database-url` is not",
                                      path=config.config_path)

                def waiting(message: str, _svc: str = svc.name) -> None:
                    sink(Event("info", "migrate", f"{_svc}: {message}"))

                try:
                    res = mig.upgrade(svc.name, svc.migrations, url, on_wait=waiting)
                except NexusifyError:
                    raise
                except Exception as exc:
                    raise DeployError(f"{svc.name}: migration failed: {type(exc).__name__}: "
                                      f"{(bundle or SecretBundle()).redact(str(exc))}", path=svc.migrations,
                                      hint="nothing was built or switched; fix the migration and deploy again") from None
                migrated[svc.name] = res
                result.migrations.append(res.to_dict())
                sink(Event("info", "migrate", f"{svc.name}: {res.before or 'empty'} -> {res.after or 'empty'}"
                           f" ({len(res.applied)} applied)"))
    built: dict[str, BuiltImage] = {}
    if "build" in stages:
        assert engine is not None
        creds = resolve_credentials(settings.username, settings.simple_url, env, url_password=settings.url_password)
        push_auth = registry_auth(env) if config.registry else None
        secret_values = list(bundle.values.values()) if bundle else []
        with _Stage(result, sink, "build"):
            for svc in chosen:
                ref = image_ref(config.registry, svc.image_name, plan.version)
                sink(Event("info", "build", f"{svc.name}: building {ref}"))
                img = build_image(engine, BuildRequest(
                    service=svc.name, context=svc.folder, dockerfile=svc.dockerfile, ref=ref, version=plan.version,
                    environment=env_cfg.name, build_args=build_args, index_url=settings.simple_url,
                    credentials=creds if creds.present else None,
                ), secret_values=secret_values)
                if config.registry:
                    sink(Event("info", "build", f"{svc.name}: pushing {ref}"))
                    img = push_image(engine, img, auth=push_auth)
                built[svc.name] = img
                result.images.append(img.to_dict())
    if "switch" in stages:
        assert engine is not None
        with _Stage(result, sink, "switch"):
            _switch_all(engine, config, settings, env_cfg, chosen, plan.version, bundle, built, migrated,
                        result, sink, records)
    elif built or migrated:
        for svc in chosen:
            if svc.name in built or svc.name in migrated:
                img_opt = built.get(svc.name)
                records.append(_service_record(svc.name, plan.version, img_opt, migrated.get(svc.name), None, None))
                result.services.append({"service": svc.name, "version": plan.version, "switched": False})


@dataclass
class _Step:
    svc: ServiceConfig
    bg: BlueGreen
    img: BuiltImage
    previous: str | None
    prepared: Prepared | None = None
    switched: SwitchResult | None = None


def _switch_all(engine: Engine, config: DeployConfig, settings: Settings, env_cfg: EnvironmentConfig,
                chosen: list[ServiceConfig], version: str, bundle: SecretBundle | None,
                built: Mapping[str, BuiltImage], migrated: Mapping[str, mig.MigrationResult],
                result: DeployResult, sink: EventSink, records: list[hist.ServiceRecord]) -> None:
    """Blue-green for every chosen service, all or none: every green is started and health-checked
    before any traffic moves; if one is unhealthy, the others' greens are removed and nothing
    switches. If a switch itself fails, the services already switched in this deploy are switched
    back to the version they had."""
    proxy = make_proxy(env_cfg, settings)
    store = StateStore(settings.state_path, env_cfg.name)
    tag = secret_tag(bundle)
    redact = bundle.redact if bundle else (lambda s: s)
    secrets = bundle or SecretBundle()
    steps: list[_Step] = []
    for svc in chosen:
        img = built.get(svc.name) or _existing_image(engine, config, svc, version)
        bg = BlueGreen(engine, proxy.switch(svc.name), runtime_of(env_cfg, svc), store,
                       on_event=lambda m: sink(Event("info", "switch", m)), redact=redact)
        live = bg.live()
        steps.append(_Step(svc, bg, img, live.version if live else None))

    def record(step: _Step, outcome: str | None) -> None:
        previous = step.switched.previous_version if step.switched else step.previous
        records.append(_service_record(step.svc.name, version, step.img, migrated.get(step.svc.name),
                                       previous, outcome))

    current: _Step | None = None
    try:
        for step in steps:  # 1. start every green and wait until it is healthy; no traffic moves
            current = step
            step.prepared = step.bg.prepare(step.img.ref, step.img.image_id, version,
                                            container_env(step.svc, secrets), tag)
        for step in steps:  # 2. switch each service
            current = step
            assert step.prepared is not None
            step.switched = step.bg.commit(step.prepared)
            step.prepared = None
            current = None
    except BaseException as exc:
        failed = current
        others = [s for s in steps if s is not failed]
        removed = [s for s in others if s.prepared is not None]
        for s in removed:
            with contextlib.suppress(NexusifyError):
                s.bg.abandon(s.prepared)  # type: ignore[arg-type]
            s.prepared = None
        switched = [s for s in others if s.switched is not None]
        undone, stuck = _switch_back(switched, secrets, tag, sink)
        if isinstance(exc, DeployError):
            exc.unhealthy = True  # type: ignore[attr-defined]
            exc.message += _aftermath(removed, undone, stuck)
            exc.args = (exc.message,)
        if failed is not None:
            record(failed, "unhealthy" if isinstance(exc, DeployError) else "aborted")
        for s in removed:
            record(s, "not switched")
        for s in undone:
            record(s, "switched back")
        for s in stuck:
            result.services.append(s.switched.to_dict())  # type: ignore[union-attr]
            record(s, None)
        raise
    for step in steps:
        assert step.switched is not None
        result.services.append(step.switched.to_dict())
        if step.switched.recovered:
            result.recovered.append(f"{step.svc.name}: {step.switched.recovered}")
        record(step, None)


def _switch_back(switched: list[_Step], secrets: SecretBundle, tag: str,
                 sink: EventSink) -> tuple[list[_Step], list[_Step]]:
    """Roll the services this deploy already switched back to their previous version (last first).
    Returns (switched back, left on the new version: no previous version, or the switch back failed)."""
    undone: list[_Step] = []
    stuck: list[_Step] = []
    for s in reversed(switched):
        assert s.switched is not None
        prev = s.switched.previous_version
        if prev is None:
            stuck.append(s)
            continue
        sink(Event("info", "switch", f"{s.svc.name}: switching back to {prev}"))
        try:
            s.bg.rollback(prev, container_env(s.svc, secrets), tag)
        except NexusifyError as exc:
            sink(Event("info", "switch", f"{s.svc.name}: could not switch back to {prev}: {exc.message}"))
            stuck.append(s)
            continue
        undone.append(s)
    return undone, stuck


def _aftermath(removed: list[_Step], undone: list[_Step], stuck: list[_Step]) -> str:
    """What the all-or-none switch did about the other services, for the error message."""
    parts = []
    if removed:
        parts.append("not switched: " + ", ".join(f"{s.svc.name} (its new container was removed)" for s in removed))
    if undone:
        parts.append("switched back: " + ", ".join(f"{s.svc.name} to {s.switched.previous_version}"  # type: ignore[union-attr]
                                                  for s in undone))
    if stuck:
        parts.append("left on the new version: " + ", ".join(
            f"{s.svc.name} ({'first deploy, nothing to go back to' if s.switched and s.switched.previous_version is None else 'the switch back failed; run `nexusify rollback`'})"
            for s in stuck))
    return "".join(f"\n  {p}" for p in parts)


def _service_record(name: str, version: str, img: BuiltImage | None, m: mig.MigrationResult | None,
                    previous: str | None, outcome: str | None) -> hist.ServiceRecord:
    return hist.ServiceRecord(
        name=name, version=version, image=img.ref if img else None,
        digest=(img.digest or img.image_id) if img else None, previous_version=previous,
        migration_before=m.before if m else None, migration_after=m.after if m else None, outcome=outcome,
    )


def _existing_image(engine: Engine, config: DeployConfig, svc: ServiceConfig, version: str) -> BuiltImage:
    import docker.errors

    ref = image_ref(config.registry, svc.image_name, version)
    try:
        image = engine.client.images.get(ref)
    except docker.errors.ImageNotFound:
        raise DeployError(f"{svc.name}: no image {ref} in the engine to switch to",
                          hint="run the build stage first (`--stages build,switch`), or give --tag of a built version") from None
    return BuiltImage(svc.name, ref, version, str(image.id))


# --------------------------------------------------------------------------- rollback


def run_rollback(
    config: DeployConfig,
    settings: Settings,
    environment: str,
    *,
    services: list[str] | None = None,
    to_version: str | None = None,
    env: Mapping[str, str] | None = None,
    lock_wait: float | None = None,
    on_event: EventSink | None = None,
    engine: Engine | None = None,
) -> DeployResult:
    """Switch services back to a kept version: health check, switch, drain; never touches the database."""
    env = env or {}
    sink = on_event or _noop
    env_cfg = config.environment(environment)
    chosen = config.select_services(environment, services)
    wait = env_cfg.lock_wait if lock_wait is None else lock_wait
    result = DeployResult(environment=environment, action="rollback", version=to_version)
    started, t0 = hist.utc_now(), time.monotonic()
    records: list[hist.ServiceRecord] = []
    with DeployLock(settings.state_path, environment, wait=wait, action="rollback"):
        own = engine is None
        eng = engine or connect(config.engine, env)
        bundle: SecretBundle | None = None
        error: NexusifyError | None = None
        try:
            if provider_for(env_cfg, env) is not None:
                with _Stage(result, sink, "secrets"):
                    bundle = fetch_secrets(env_cfg, chosen, env)
                    result.secret_versions = dict(bundle.versions)
            proxy = make_proxy(env_cfg, settings)
            store = StateStore(settings.state_path, environment)
            tag = secret_tag(bundle)
            with _Stage(result, sink, "switch"):
                for svc in _rollback_order(chosen, store):
                    bg = BlueGreen(eng, proxy.switch(svc.name), runtime_of(env_cfg, svc), store,
                                   on_event=lambda m: sink(Event("info", "switch", m)),
                                   redact=bundle.redact if bundle else None)
                    rres: SwitchResult = bg.rollback(
                        to_version, container_env(svc, bundle) if bundle else None, tag if bundle else None)
                    result.services.append(rres.to_dict())
                    if rres.recovered:
                        result.recovered.append(f"{svc.name}: {rres.recovered}")
                    records.append(hist.ServiceRecord(name=svc.name, version=rres.version, image=rres.image,
                                                      digest=rres.image_id, previous_version=rres.previous_version))
        except NexusifyError as exc:
            error = exc
        finally:
            if own:
                eng.close()
        result.outcome = "success" if error is None else "failed"
        result.duration = time.monotonic() - t0
        if error is not None:
            result.error = bundle.redact(error.message) if bundle else error.message
        if result.services or error is not None:
            rec = hist.append_record(settings.state_path, hist.DeploymentRecord(
                environment=environment, action="rollback", outcome=result.outcome, started_at=started,
                finished_at=hist.utc_now(), duration=round(result.duration, 3), who=hist.who(env),
                services=tuple(records), secret_versions=dict(bundle.versions) if bundle else {},
                stages={k: round(v, 3) for k, v in result.stages.items()}, error=result.error,
            ), secrets=bundle)
            result.record_id = rec.id
        if len(result.services) == 1:
            result.version = result.services[0]["version"]
        if error is not None:
            error.result = result  # type: ignore[attr-defined]
            raise error
    return result


def _rollback_order(chosen: Iterable[ServiceConfig], store: StateStore) -> list[ServiceConfig]:
    """Only services that have been deployed in the environment (others have nothing to roll back)."""
    out = [s for s in chosen if store.service(s.name).get("live") or store.service(s.name).get("transition")]
    if not out:
        raise DeployError("nothing has been deployed to roll back", hint="deploy first")
    return out


__all__ = [
    "STAGES",
    "DeployPlan",
    "DeployResult",
    "Event",
    "PlanStep",
    "make_proxy",
    "parse_stages",
    "plan_deploy",
    "resolve_version",
    "run_deploy",
    "run_rollback",
]
