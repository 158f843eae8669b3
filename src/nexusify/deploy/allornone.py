"""All or none: blue-green for several services of one deploy. Every green is started and healthy
before any traffic moves; if one is unhealthy the others' greens are removed, and if a switch fails
the services already switched are switched back."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from nexusify.deploy.bluegreen import BlueGreen, Prepared, SwitchResult
from nexusify.deploy.config.load import DeployConfig, EnvironmentConfig, ServiceConfig
from nexusify.deploy.migrations import local as mig
from nexusify.deploy.plan import secret_tag
from nexusify.deploy.result import DeployResult, Event, EventSink, NotSwitched
from nexusify.deploy.runtime.engine import Engine
from nexusify.deploy.runtime.images import BuiltImage, image_ref
from nexusify.deploy.runtime.sdk import NotFound
from nexusify.deploy.secrets import SecretBundle, container_env
from nexusify.deploy.sites import Site
from nexusify.deploy.state import history as hist
from nexusify.errors import DeployError, NexusifyError


@dataclass
class _Step:
    svc: ServiceConfig
    bg: BlueGreen
    img: BuiltImage | None
    previous: str | None
    host: str = ""
    prepared: Prepared | None = None
    switched: SwitchResult | None = None


def switch_all(sites: list[Site], build_engine: Engine | None, config: DeployConfig, env_cfg: EnvironmentConfig,
               chosen: list[ServiceConfig], version: str, bundle: SecretBundle | None,
               built: Mapping[str, BuiltImage], migrated: Mapping[str, mig.MigrationResult],
               result: DeployResult, sink: EventSink, records: list[hist.ServiceRecord]) -> None:
    """Blue-green for every chosen service on every site (host), all or none: every green is started
    and health-checked before any traffic moves; if one is unhealthy, the others' greens are removed
    and nothing switches. If a switch itself fails, the services (and hosts) already switched in this
    deploy are switched back to the version they had."""
    tag = secret_tag(bundle)
    redact = bundle.redact if bundle else (lambda s: s)
    secrets = bundle or SecretBundle()
    images = {svc.name: built.get(svc.name) or existing_image(build_engine or sites[0].engine, config, svc, version)
              for svc in chosen}
    steps: list[_Step] = []
    for site in sites:
        for svc in chosen:
            bg = site.bluegreen(env_cfg, svc, sink, redact)
            live = bg.live()
            steps.append(_Step(svc, bg, images[svc.name], live.version if live else None, site.name))

    def start(step: _Step) -> Prepared:
        assert step.img is not None
        return step.bg.prepare(step.img.ref, step.img.image_id, version, container_env(step.svc, secrets), tag)

    def record(step: _Step, outcome: str | None) -> None:
        previous = step.switched.previous_version if step.switched else step.previous
        records.append(service_record(step.svc.name, version, step.img, migrated.get(step.svc.name),
                                      previous, outcome))

    _all_or_none(steps, start, record, secrets, tag, result, sink)


def rollback_all(sites: list[Site], env_cfg: EnvironmentConfig, chosen: list[ServiceConfig], to_version: str | None,
                 bundle: SecretBundle | None, result: DeployResult, sink: EventSink,
                 records: list[hist.ServiceRecord]) -> None:
    """Bring back a kept version of every chosen service on every site, all or none (as a deploy:
    every kept container restarted and healthy before any traffic moves)."""
    tag = secret_tag(bundle)
    secrets = bundle or SecretBundle()
    redact = bundle.redact if bundle else None
    steps: list[_Step] = []
    for site in sites:
        for svc in chosen:
            entry = site.store.service(svc.name)
            if entry.get("live") or entry.get("transition"):
                bg = site.bluegreen(env_cfg, svc, sink, redact)
                live = bg.live()
                steps.append(_Step(svc, bg, None, live.version if live else None, site.name))
    if not steps:
        raise DeployError("nothing has been deployed to roll back", hint="deploy first")

    def start(step: _Step) -> Prepared:
        return step.bg.prepare_rollback(to_version, container_env(step.svc, secrets) if bundle else None,
                                        tag if bundle else None)

    def record(step: _Step, outcome: str | None) -> None:
        if step.switched is not None:
            r = step.switched
            records.append(hist.ServiceRecord(name=step.svc.name, version=r.version, image=r.image, digest=r.image_id,
                                              previous_version=r.previous_version, outcome=outcome))
        else:
            records.append(hist.ServiceRecord(name=step.svc.name, version=to_version or "", previous_version=step.previous,
                                              outcome=outcome))

    _all_or_none(steps, start, record, secrets, tag, result, sink)


def _all_or_none(steps: list[_Step], start: Callable[[_Step], Prepared], record: Callable[[_Step, str | None], None],
                 secrets: SecretBundle, tag: str, result: DeployResult, sink: EventSink) -> None:
    several_hosts = len({s.host for s in steps}) > 1
    failed: _Step | None = None
    try:
        def prepare(step: _Step) -> None:  # 1. start every green and wait until it is healthy
            step.prepared = start(step)

        def commit(step: _Step) -> None:  # 2. switch each service on each host
            assert step.prepared is not None
            step.switched = step.bg.commit(step.prepared)
            step.prepared = None

        for phase in (prepare, commit):
            failed, error = _per_host(steps, phase)
            if error is not None:
                raise error
    except BaseException as exc:
        others = [s for s in steps if s is not failed]
        removed = [s for s in others if s.prepared is not None]
        for s in removed:
            with contextlib.suppress(NexusifyError):
                s.bg.abandon(s.prepared)  # type: ignore[arg-type]
            s.prepared = None
        switched = [s for s in others if s.switched is not None]
        undone, stuck = _switch_back(switched, secrets, tag, sink)
        outcomes: list[tuple[_Step, str | None]] = []
        if failed is not None:
            outcomes.append((failed, "unhealthy" if isinstance(exc, DeployError) else "aborted"))
        outcomes += [(s, "not switched") for s in removed] + [(s, "switched back") for s in undone]
        for s in stuck:
            result.services.append(_service_dict(s, several_hosts))
            outcomes.append((s, None))
        _record_once(outcomes, record)
        if isinstance(exc, DeployError):
            raise NotSwitched(exc.message + _aftermath(removed, undone, stuck), hint=exc.hint, path=exc.path,
                              line=exc.line, column=exc.column) from exc
        raise
    for step in steps:
        assert step.switched is not None
        result.services.append(_service_dict(step, several_hosts))
        if step.switched.recovered:
            result.recovered.append(f"{step.svc.name}: {step.switched.recovered}")
    _record_once([(s, None) for s in steps], record)


def _per_host(steps: list[_Step], phase: Callable[[_Step], None]) -> tuple[_Step | None, BaseException | None]:
    """Run ``phase`` on every step: hosts in parallel (a rollback is judged in seconds), each host's
    services in order, a host stopping at its first failure. Returns the first failure (host order)."""
    groups: dict[str, list[_Step]] = {}
    for step in steps:
        groups.setdefault(step.host, []).append(step)

    def run(group: list[_Step]) -> tuple[_Step | None, BaseException | None]:
        for step in group:
            try:
                phase(step)
            except BaseException as exc:  # handed to the caller, which undoes the other hosts' work
                return step, exc
        return None, None

    if len(groups) == 1:
        return run(steps)
    with ThreadPoolExecutor(max_workers=len(groups)) as pool:
        outcomes = list(pool.map(run, groups.values()))
    return next((o for o in outcomes if o[1] is not None), (None, None))


def _service_dict(step: _Step, several_hosts: bool) -> dict[str, object]:
    assert step.switched is not None
    data = step.switched.to_dict()
    if several_hosts:
        data["host"] = step.host
    return data


def _record_once(outcomes: list[tuple[_Step, str | None]], record: Callable[[_Step, str | None], None]) -> None:
    """One history entry per service, whatever the number of hosts: the first outcome that says
    something went wrong (the failing host's), else the service's first step."""
    chosen: dict[str, tuple[_Step, str | None]] = {}
    for step, outcome in outcomes:
        if step.svc.name not in chosen or (chosen[step.svc.name][1] is None and outcome is not None):
            chosen[step.svc.name] = (step, outcome)
    for step, outcome in chosen.values():
        record(step, outcome)


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
        sink(Event("info", "switch", f"{_who(s)}: switching back to {prev}"))
        try:
            s.bg.rollback(prev, container_env(s.svc, secrets), tag)
        except NexusifyError as exc:
            sink(Event("info", "switch", f"{_who(s)}: could not switch back to {prev}: {exc.message}"))
            stuck.append(s)
            continue
        undone.append(s)
    return undone, stuck


def _aftermath(removed: list[_Step], undone: list[_Step], stuck: list[_Step]) -> str:
    """What the all-or-none switch did about the other services, for the error message."""
    parts = []
    if removed:
        parts.append("not switched: " + ", ".join(f"{_who(s)} (its new container was removed)" for s in removed))
    if undone:
        parts.append("switched back: " + ", ".join(f"{_who(s)} to {s.switched.previous_version}"  # type: ignore[union-attr]
                                                  for s in undone))
    if stuck:
        parts.append("left on the new version: " + ", ".join(
            f"{_who(s)} ({'first deploy, nothing to go back to' if s.switched and s.switched.previous_version is None else 'the switch back failed; run `nexusify rollback`'})"
            for s in stuck))
    return "".join(f"\n  {p}" for p in parts)


def _who(step: _Step) -> str:
    return f"{step.svc.name} on {step.host}" if step.host else step.svc.name


def service_record(name: str, version: str, img: BuiltImage | None, m: mig.MigrationResult | None,
                    previous: str | None, outcome: str | None) -> hist.ServiceRecord:
    return hist.ServiceRecord(
        name=name, version=version, image=img.ref if img else None,
        digest=(img.digest or img.image_id) if img else None, previous_version=previous,
        migration_before=m.before if m else None, migration_after=m.after if m else None, outcome=outcome,
    )


def existing_image(engine: Engine, config: DeployConfig, svc: ServiceConfig, version: str) -> BuiltImage:
    ref = image_ref(config.registry, svc.image_name, version)
    try:
        image = engine.client.images.get(ref)
    except NotFound:
        raise DeployError(f"{svc.name}: no image {ref} in the engine to switch to",
                          hint="run the build stage first (`--stages build,switch`), or give --tag of a built version") from None
    return BuiltImage(svc.name, ref, version, str(image.id))



__all__ = ["existing_image", "rollback_all", "service_record", "switch_all"]
