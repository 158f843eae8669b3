"""All or none: blue-green for several services of one deploy. Every green is started and healthy
before any traffic moves; if one is unhealthy the others' greens are removed, and if a switch fails
the services already switched are switched back."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass

from nexusify.config import Settings
from nexusify.deploy import history as hist
from nexusify.deploy import migrations as mig
from nexusify.deploy.bluegreen import BlueGreen, Prepared, SwitchResult
from nexusify.deploy.config import DeployConfig, EnvironmentConfig, ServiceConfig
from nexusify.deploy.engine import Engine
from nexusify.deploy.images import BuiltImage, image_ref
from nexusify.deploy.plan import make_proxy, runtime_of, secret_tag
from nexusify.deploy.result import DeployResult, Event, EventSink, NotSwitched
from nexusify.deploy.secrets import SecretBundle, container_env
from nexusify.deploy.state import StateStore
from nexusify.errors import DeployError, NexusifyError
from nexusify.extras import require


@dataclass
class _Step:
    svc: ServiceConfig
    bg: BlueGreen
    img: BuiltImage
    previous: str | None
    prepared: Prepared | None = None
    switched: SwitchResult | None = None


def switch_all(engine: Engine, config: DeployConfig, settings: Settings, env_cfg: EnvironmentConfig,
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
        img = built.get(svc.name) or existing_image(engine, config, svc, version)
        bg = BlueGreen(engine, proxy.switch(svc.name), runtime_of(env_cfg, svc), store,
                       on_event=lambda m: sink(Event("info", "switch", m)), redact=redact)
        live = bg.live()
        steps.append(_Step(svc, bg, img, live.version if live else None))

    def record(step: _Step, outcome: str | None) -> None:
        previous = step.switched.previous_version if step.switched else step.previous
        records.append(service_record(step.svc.name, version, step.img, migrated.get(step.svc.name),
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
        if failed is not None:
            record(failed, "unhealthy" if isinstance(exc, DeployError) else "aborted")
        for s in removed:
            record(s, "not switched")
        for s in undone:
            record(s, "switched back")
        for s in stuck:
            result.services.append(s.switched.to_dict())  # type: ignore[union-attr]
            record(s, None)
        if isinstance(exc, DeployError):
            raise NotSwitched(exc.message + _aftermath(removed, undone, stuck), hint=exc.hint, path=exc.path,
                              line=exc.line, column=exc.column) from exc
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


def service_record(name: str, version: str, img: BuiltImage | None, m: mig.MigrationResult | None,
                    previous: str | None, outcome: str | None) -> hist.ServiceRecord:
    return hist.ServiceRecord(
        name=name, version=version, image=img.ref if img else None,
        digest=(img.digest or img.image_id) if img else None, previous_version=previous,
        migration_before=m.before if m else None, migration_after=m.after if m else None, outcome=outcome,
    )


def existing_image(engine: Engine, config: DeployConfig, svc: ServiceConfig, version: str) -> BuiltImage:
    docker_errors = require("deploy", "docker.errors")

    ref = image_ref(config.registry, svc.image_name, version)
    try:
        image = engine.client.images.get(ref)
    except docker_errors.ImageNotFound:
        raise DeployError(f"{svc.name}: no image {ref} in the engine to switch to",
                          hint="run the build stage first (`--stages build,switch`), or give --tag of a built version") from None
    return BuiltImage(svc.name, ref, version, str(image.id))



__all__ = ["existing_image", "service_record", "switch_all"]
