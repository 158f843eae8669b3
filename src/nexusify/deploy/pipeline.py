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

import time
from collections.abc import Callable, Mapping, Sequence

from nexusify.config import Settings
from nexusify.deploy.allornone import existing_image, rollback_all, service_record, switch_all
from nexusify.deploy.config.load import DeployConfig, EnvironmentConfig, ServiceConfig
from nexusify.deploy.config.placement import placement_of
from nexusify.deploy.migrations import local as mig
from nexusify.deploy.migrations.container import ContainerMigrations
from nexusify.deploy.plan import (
    STAGES,
    DeployPlan,
    PlanStep,
    make_proxy,
    parse_stages,
    plan_deploy,
    resolve_version,
)
from nexusify.deploy.protocols import ImageTransport, MigrationRunner, StateBackend
from nexusify.deploy.result import (
    DeployFailed,
    DeployResult,
    Event,
    EventSink,
    NotSwitched,
    Stage,
    no_events,
)
from nexusify.deploy.runtime.engine import Engine, connect
from nexusify.deploy.runtime.images import (
    BuildRequest,
    BuiltImage,
    build_image,
    image_ref,
    push_image,
    registry_auth,
)
from nexusify.deploy.runtime.transport import EngineTransport
from nexusify.deploy.secrets import (
    SecretBundle,
    container_env,
    database_url,
    fetch_secrets,
    provider_for,
)
from nexusify.deploy.sites import Site, open_sites
from nexusify.deploy.state import history as hist
from nexusify.deploy.state.backend import Held, held_environment
from nexusify.deploy.state.hostlock import took_over
from nexusify.deploy.state.lock import LockHolder
from nexusify.errors import DeployError, NexusifyError


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

    The result is returned on success; on failure :class:`DeployFailed` carries ``.result`` (the
    partial DeployResult, already recorded in the history when ``record`` is a selected stage).
    """
    env = env or {}
    sink = on_event or no_events
    plan = plan_deploy(config, settings, environment, services=services, stages=stages, version=version, env=env)
    env_cfg = config.environment(environment)
    chosen = config.select_services(environment, services)
    wait = env_cfg.lock_wait if lock_wait is None else lock_wait
    result = DeployResult(environment=environment, action="deploy", version=plan.version)
    started, t0 = hist.utc_now(), time.monotonic()

    def on_wait(holder: LockHolder | None) -> None:
        sink(Event("info", "lock", f"waiting up to {wait:g}s for the deploy lock of {environment}"
                   + (f", held by {holder.describe()}" if holder else "")))

    placement = placement_of(config, env_cfg, env)
    with held_environment(placement, settings, env, wait=wait, action="deploy", on_wait=on_wait,
                          on_recovered=lambda h: result.recovered.append(took_over(h))) as held:
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
                _execute(plan, config, settings, held, env_cfg, chosen, env, build_args or {}, result, sink,
                         eng, records, holder)
            finally:
                bundle = holder[0] if holder else None
                if engine is None and eng is not None:
                    eng.close()
        except BaseException as exc:  # KeyboardInterrupt too: record that it was aborted, then re-raise
            error = exc
            outcome = _outcome(exc)
        redact = _finish(result, outcome, error, bundle, t0)
        if "record" in plan.stages and (result.services or error is not None):
            with Stage(result, sink, "record"):
                _record(held.state, env, result, started, records, bundle, sink)
        if isinstance(error, NexusifyError):
            raise DeployFailed(error, result, message=redact(error.message)) from error
        if error is not None:
            raise error
    return result


def _outcome(error: BaseException) -> str:
    """What a deploy or rollback that raised ``error`` records: unhealthy, failed or aborted (Ctrl-C)."""
    if isinstance(error, NotSwitched):
        return "unhealthy"
    return "failed" if isinstance(error, NexusifyError) else "aborted"


def _finish(result: DeployResult, outcome: str, error: BaseException | None, bundle: SecretBundle | None,
            t0: float) -> Callable[[str], str]:
    """Set the result's outcome, duration and (redacted) error; returns the redaction used."""
    result.outcome = outcome
    result.duration = time.monotonic() - t0
    redact = bundle.redact if bundle is not None else (lambda s: s)
    if error is not None:
        result.error = redact(str(error.message if isinstance(error, NexusifyError) else error) or type(error).__name__)
    return redact


def _record(state: StateBackend, env: Mapping[str, str], result: DeployResult, started: str,
            records: list[hist.ServiceRecord], bundle: SecretBundle | None, sink: EventSink) -> None:
    """The one record of a deploy or rollback, in the environment's history (and its copies)."""
    rec, warnings = state.append(hist.DeploymentRecord(
        environment=result.environment, action=result.action, outcome=result.outcome, started_at=started,
        finished_at=hist.utc_now(), duration=round(result.duration, 3), who=hist.who(env),
        services=tuple(records), secret_versions=dict(bundle.versions) if bundle else {},
        stages={k: round(v, 3) for k, v in result.stages.items()}, error=result.error,
    ), bundle)
    result.record_id = rec.id
    for warning in warnings:
        sink(Event("info", "record", f"warning: {warning}"))


def _execute(plan: DeployPlan, config: DeployConfig, settings: Settings, held: Held, env_cfg: EnvironmentConfig,
             chosen: list[ServiceConfig], env: Mapping[str, str], build_args: Mapping[str, str],
             result: DeployResult, sink: EventSink, engine: Engine | None,
             records: list[hist.ServiceRecord], holder: list[SecretBundle]) -> None:
    stages = plan.stages
    bundle: SecretBundle | None = None
    migrated: dict[str, mig.MigrationResult] = {}
    if "secrets" in stages:
        with Stage(result, sink, "secrets"):
            bundle = fetch_secrets(env_cfg, chosen, env)
            holder.append(bundle)
            result.secret_versions = dict(bundle.versions)
    # With hosts, migrations run on the primary host from the new image, after the build (below).
    remote_migrations = held.placement.migrations_on_host and any(s.migrations for s in chosen)
    if "migrate" in stages and not remote_migrations:
        local: MigrationRunner = mig.LocalMigrations(on_wait=lambda s, m: sink(Event("info", "migrate", f"{s}: {m}")))
        with Stage(result, sink, "migrate"):
            for svc in chosen:
                if svc.migrations is None:
                    continue
                url = database_url(svc, bundle or SecretBundle())
                if url is None:
                    raise DeployError(f"{svc.name}: `migrations` is set but `database-url` is not",
                                      path=config.config_path)
                try:
                    res = local.run(svc, None, url, env)
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
        creds = settings.credentials(env)
        push_auth = registry_auth(env) if config.registry else None
        secret_values = list(bundle.values.values()) if bundle else []
        with Stage(result, sink, "build"):
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
    if "switch" in stages or (remote_migrations and "migrate" in stages):
        assert engine is not None
        with open_sites(held.placement, settings, env_cfg, env, engine, sink, held.state,
                        connected=held.hosts) as sites:
            images = {svc.name: built.get(svc.name) or existing_image(engine, config, svc, plan.version)
                      for svc in chosen}
            if any(site.engine is not engine for site in sites):  # hosts: images reach each of them
                with Stage(result, sink, "ship"):
                    _ship(engine, sites, images, config.registry, env, sink)
            if remote_migrations and "migrate" in stages:
                with Stage(result, sink, "migrate"):
                    _migrate_on_host(sites[0], chosen, images, env_cfg.name, bundle or SecretBundle(), migrated,
                                     result, sink)
            if "switch" in stages:
                with Stage(result, sink, "switch"):
                    switch_all(sites, engine, config, env_cfg, chosen, plan.version, bundle, images, migrated,
                               result, sink, records)
    if "switch" not in stages and (built or migrated):
        for svc in chosen:
            if svc.name in built or svc.name in migrated:
                img_opt = built.get(svc.name)
                records.append(service_record(svc.name, plan.version, img_opt, migrated.get(svc.name), None, None))
                result.services.append({"service": svc.name, "version": plan.version, "switched": False})


def _migrate_on_host(site: Site, chosen: list[ServiceConfig], images: Mapping[str, BuiltImage], environment: str,
                     bundle: SecretBundle, migrated: dict[str, mig.MigrationResult], result: DeployResult,
                     sink: EventSink) -> None:
    """Each service's migrations once, in a one-off container of its new image on the primary host."""
    runner: MigrationRunner = ContainerMigrations(site.engine, environment, redact=bundle.redact, host=site.name)
    for svc in chosen:
        if svc.migrations is None:
            continue
        url = database_url(svc, bundle)
        if url is None:
            raise DeployError(f"{svc.name}: `migrations` is set but `database-url` is not")
        sink(Event("info", "migrate", f"{site.name}: {svc.name}: alembic upgrade heads in a container of "
                   f"{images[svc.name].ref}"))
        res = runner.run(svc, images[svc.name], url, container_env(svc, bundle))
        migrated[svc.name] = res
        result.migrations.append(res.to_dict())
        sink(Event("info", "migrate", f"{svc.name}: {res.before or 'empty'} -> {res.after or 'empty'}"
                   f" ({len(res.applied)} applied)"))


def _ship(engine: Engine, sites: list[Site], images: Mapping[str, BuiltImage], registry: str | None,
          env: Mapping[str, str], sink: EventSink) -> None:
    """Every image reaches every host (pulled from the registry, or streamed from the build engine)."""
    transport: ImageTransport = EngineTransport(engine, registry, registry_auth(env) if registry else None,
                                                on_log=lambda m: sink(Event("info", "ship", m)))
    for site in sites:
        for img in images.values():
            how = transport.deliver(img, site.engine, host=site.name)
            if how != "present":
                sink(Event("info", "ship", f"{site.name}: {img.ref} {how}"))


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
    sink = on_event or no_events
    env_cfg = config.environment(environment)
    chosen = config.select_services(environment, services)
    wait = env_cfg.lock_wait if lock_wait is None else lock_wait
    result = DeployResult(environment=environment, action="rollback", version=to_version)
    started, t0 = hist.utc_now(), time.monotonic()
    records: list[hist.ServiceRecord] = []
    placement = placement_of(config, env_cfg, env)
    with held_environment(placement, settings, env, wait=wait, action="rollback",
                          on_recovered=lambda h: result.recovered.append(took_over(h))) as held:
        own = engine is None
        eng = engine if engine is not None or placement.has_hosts else connect(config.engine, env)
        bundle: SecretBundle | None = None
        error: BaseException | None = None
        try:
            if provider_for(env_cfg, env) is not None:
                with Stage(result, sink, "secrets"):
                    bundle = fetch_secrets(env_cfg, chosen, env)
                    result.secret_versions = dict(bundle.versions)
            with Stage(result, sink, "switch"), open_sites(placement, settings, env_cfg, env, eng, sink, held.state,
                                                           connected=held.hosts) as sites:
                rollback_all(sites, env_cfg, chosen, to_version, bundle, result, sink, records)
        except BaseException as exc:  # an engine failure or Ctrl-C is recorded as a deploy's is, then re-raised
            error = exc
        finally:
            if own and eng is not None:
                eng.close()
        outcome = "success" if error is None else "failed" if isinstance(error, NexusifyError) else "aborted"
        redact = _finish(result, outcome, error, bundle, t0)
        if result.services or error is not None:
            _record(held.state, env, result, started, records, bundle, sink)
        if len({s["version"] for s in result.services}) == 1:
            result.version = result.services[0]["version"]
        if isinstance(error, NexusifyError):
            raise DeployFailed(error, result, message=redact(error.message)) from error
        if error is not None:
            raise error
    return result


__all__ = [
    "STAGES", "DeployFailed", "DeployPlan", "DeployResult", "Event", "PlanStep", "make_proxy", "parse_stages",
    "plan_deploy", "resolve_version", "run_deploy", "run_rollback",
]
