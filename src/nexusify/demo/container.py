"""The demo's container part: is an engine there (and nginx, the base image, the service's
build backend for the index), then build the image from the rewritten folder alone, deploy v1,
deploy v2 under load, roll back, and remove everything the demo made in the engine."""

from __future__ import annotations

import contextlib
import re
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from nexusify.config import Settings
from nexusify.credentials import without_index_credentials
from nexusify.demo.backends import backend_wheels
from nexusify.demo.report import ENGINE_STEPS, StepRunner
from nexusify.demo.sample import SERVICE, environment_name
from nexusify.demo.traffic import Poller, get_json
from nexusify.errors import NexusifyError, OperationFailed
from nexusify.index.local import LocalIndex


def engine_unavailable(env: Mapping[str, str]) -> tuple[Any | None, str | None]:
    """(connected engine, None), or (None, why the container steps are skipped)."""
    from nexusify.deploy.runtime.engine import DEFAULT_HOST, connect, engine_url

    url = engine_url(None, env)
    if url.startswith("unix://") and not Path(url[len("unix://"):]).exists():
        where = "DOCKER_HOST is not set and" if url == DEFAULT_HOST and not env.get("DOCKER_HOST") else \
            f"DOCKER_HOST is {url}, but"
        return None, f"no container engine: {where} {url[len('unix://'):]} does not exist"
    try:
        engine = connect(None, env, timeout=600)
    except NexusifyError as exc:
        return None, exc.message.splitlines()[0][:240]
    return engine, None


ENABLE_HINT = ("start Docker or Podman's Docker API and set DOCKER_HOST (in a nexusify checkout: "
               "`bash scripts/stack.sh && . ~/.cache/nexusify-stack/env.sh`), then run `nexusify demo` again")


def _base_image(dockerfile: Path) -> str | None:
    for line in dockerfile.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\s*FROM\s+(?:--\S+\s+)*(\S+)", line, re.IGNORECASE)
        if m:
            return m.group(1)
    return None


def _has_image(client: Any, name: str) -> bool:
    from nexusify.deploy.runtime.sdk import (
        EngineError,  # the engine's client raises these (deploy.sdk.guard)
    )

    candidates = [name]
    if "/" not in name.split(":", 1)[0]:
        candidates += [f"localhost/{name}", f"docker.io/library/{name}"]
    for ref in candidates:
        try:
            client.images.get(ref)
            return True
        except EngineError:  # NotFound, or an engine that cannot say
            continue
    return False


def engine_steps(run: StepRunner, settings: Settings, index: LocalIndex, env: Mapping[str, str], cache: Path) -> None:
    report = run.report
    from nexusify.deploy.traffic.switch import find_nginx

    engine, why = engine_unavailable(env)
    hint = ENABLE_HINT
    notes: list[str] = []
    if engine is None:
        pass
    else:
        service = settings.root / "services" / SERVICE
        base = _base_image(service / "Dockerfile")
        try:
            find_nginx()
        except NexusifyError:
            why, hint = "nginx is not installed (the blue-green switch needs it)", \
                "install nginx (e.g. `apt-get install nginx-light`), then run `nexusify demo` again"
        if why is None and base and not _has_image(engine.client, base):
            why = f"the base image {base} of services/{SERVICE}/Dockerfile is not in the engine"
            hint = (f"pull it (`docker pull {base}`; in a nexusify checkout `bash scripts/stack.sh` builds it), "
                    "then run `nexusify demo` again")
        if why is None:
            from nexusify.dists.backend import backend_of
            from nexusify.files import read_toml

            _backend, requires, _path = backend_of(read_toml(service / "pyproject.toml"))
            wheels, problem = backend_wheels(requires, cache / "wheels", env)
            if problem:
                why = (f"the image build installs {SERVICE} with pip, which needs its build backend "
                       f"({', '.join(requires)}) on the index, and {problem}")
                hint = "let pip reach PyPI (or your mirror) once: the wheel is cached in " + str(cache / "wheels")
            else:
                for wheel in wheels:
                    shutil.copy2(wheel, index.packages / wheel.name)
                notes.append(f"put {', '.join(w.name for w in wheels)} (the service's build backend, cached in "
                             f"{cache / 'wheels'}) on the index, as a Nexus group proxying PyPI would serve it")
    if why is not None:
        if engine is not None:
            engine.close()
        report.engine_skipped = f"{why}; to enable: {hint}"
        for name in ENGINE_STEPS:
            run.skip(name, f"skipped: {why}")
        return
    assert engine is not None
    try:
        _deploy_steps(run, settings, env, engine, notes)
    finally:
        engine.close()


def _deploy_env(env: Mapping[str, str]) -> dict[str, str]:
    return without_index_credentials(env, also=("PYPIRC",))


def _deploy_steps(run: StepRunner, settings: Settings, env: Mapping[str, str], engine: Any,
                  notes: Sequence[str] = ()) -> None:
    from nexusify.deploy.config.load import load_deploy_config
    from nexusify.deploy.pipeline import Event, make_proxy, run_deploy, run_rollback

    denv = _deploy_env(env)
    environment = environment_name(settings.root)
    config = load_deploy_config(settings, env=denv)
    env_cfg = config.environment(environment)
    svc = env_cfg.services[SERVICE]
    port = svc.public_port
    assert port is not None
    proxy = make_proxy(env_cfg, settings)
    removed_before = remove_demo_containers(engine.client, environment)
    if removed_before:
        notes = [*notes, f"removed {removed_before} container(s) left by an earlier demo run"]
    cleaned = False

    def sink(stage: str) -> Callable[[Event], None]:
        def on(e: Event) -> None:
            if e.kind == "info" and e.message:
                run.info(stage, e.message)
        return on

    try:
        with run.step("build") as step:
            for note in notes:
                run.info("build", note)
            res = run_deploy(config, settings, environment, stages=("build",), version="v1", env=denv,
                             on_event=sink("build"), engine=engine, lock_wait=0)
            img = res.images[0]
            step.summary = (f"built {img['image']} from services/{SERVICE} alone (its only build context); pip "
                            f"installed the shared packages from the local index")
            step.details = {"image": img["image"], "image_id": img["image_id"], "context": f"services/{SERVICE}",
                            "build_seconds": round(res.stages.get("build", 0.0), 3)}

        from nexusify.demo.verify_step import verify_build_step

        verify_build_step(run, settings, denv, SERVICE)

        with run.step("deploy-v1") as step:
            run.report.environment = environment
            res = run_deploy(config, settings, environment, stages=("switch", "record"), version="v1", env=denv,
                             on_event=sink("deploy-v1"), engine=engine, lock_wait=0)
            status, body = get_json(port)
            if status != 200 or body.get("version") != "v1":
                raise OperationFailed(f"http://127.0.0.1:{port}/ answered {status} {body} instead of version v1")
            shared = body.get("shared") or {}
            step.summary = (f"http://127.0.0.1:{port}/ (nginx) -> {SERVICE} v1, which imports "
                            + ", ".join(str(v) for v in shared.values()))
            step.details = {"url": f"http://127.0.0.1:{port}/", "answer": body,
                            "switch_seconds": res.services[0].get("switch_seconds") if res.services else None}

        with run.step("deploy-v2") as step:
            poller = Poller(port)
            poller.start()
            try:
                res = run_deploy(config, settings, environment, version="v2", env=denv,
                                 on_event=sink("deploy-v2"), engine=engine, lock_wait=0)
                switched = time.monotonic()
                time.sleep(0.3)
            finally:
                poller.stop()
            status, body = get_json(port)
            if status != 200 or body.get("version") != "v2":
                raise OperationFailed(f"after the v2 deploy http://127.0.0.1:{port}/ answered {status} {body}")
            move = poller.movement(switched)
            if not move.ok:
                raise OperationFailed(f"while v2 was deployed: {move.problem}")
            sres = res.services[0] if res.services else {}
            step.summary = (f"built v2 (same sources, a new release), started it beside v1, switched nginx: "
                            f"{move.total} requests during the deploy "
                            f"answered v1 ({move.v1}) then v2 ({move.v2}), none failed"
                            + (f"; both answered for {move.overlap * 1000:.0f} ms while nginx reloaded"
                               if move.overlap > 0 else ""))
            step.details = {"requests": move.total, "v1": move.v1, "v2": move.v2, "failed": len(poller.failures),
                            "overlap_seconds": round(move.overlap, 3), "after": move.after,
                            "switch_seconds": sres.get("switch_seconds"),
                            "stages": {k: round(v, 3) for k, v in res.stages.items()}}

        with run.step("rollback") as step:
            res = run_rollback(config, settings, environment, env=denv, on_event=sink("rollback"), engine=engine,
                               lock_wait=0)
            status, body = get_json(port)
            if status != 200 or body.get("version") != "v1":
                raise OperationFailed(f"after the rollback http://127.0.0.1:{port}/ answered {status} {body}")
            sres = res.services[0] if res.services else {}
            step.summary = (f"back to v1 in {res.duration:.1f}s: its kept container restarted, health-checked, "
                            "nginx switched; nothing rebuilt")
            step.details = {"answer": body, "switch_seconds": sres.get("switch_seconds"),
                            "duration": round(res.duration, 3)}

        with run.step("cleanup") as step:
            containers, images = _cleanup(engine.client, proxy, environment)
            cleaned = True
            step.summary = (f"removed {plural(containers, 'container')} and {plural(images, 'image')} of the demo, "
                            "stopped its nginx; kept the working folder")
            step.details = {"containers": containers, "images": images, "environment": environment}
    finally:
        if not cleaned:
            try:
                containers, images = _cleanup(engine.client, proxy, environment)
            except Exception as exc:
                run.report.notes.append(f"could not clean up the demo's containers ({type(exc).__name__}: {exc}); "
                                        f"remove those labelled io.nexusify.environment={environment}")
            else:
                run.report.notes.append(f"cleaned up after the failure: removed {plural(containers, 'container')} "
                                        f"and {plural(images, 'image')} of the demo, stopped its nginx")


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _cleanup(client: Any, proxy: Any, environment: str) -> tuple[int, int]:
    with contextlib.suppress(NexusifyError, OSError):
        proxy.stop()
    containers = remove_demo_containers(client, environment)
    images = remove_demo_images(client, environment)
    return containers, images


def _demo_filter(environment: str) -> dict[str, Any]:
    from nexusify.deploy.runtime.engine import LABEL_ENVIRONMENT

    return {"label": f"{LABEL_ENVIRONMENT}={environment}"}


def remove_demo_containers(client: Any, environment: str) -> int:
    """Remove the containers of the demo's environment (and only those)."""
    n = 0
    for c in client.containers.list(all=True, filters=_demo_filter(environment)):
        with contextlib.suppress(Exception):
            c.remove(force=True)
            n += 1
    return n


def remove_demo_images(client: Any, environment: str) -> int:
    """Remove the images the demo built for its environment (and only those)."""
    n = 0
    for img in client.images.list(filters=_demo_filter(environment)):
        with contextlib.suppress(Exception):
            client.images.remove(img.id, force=True)
            n += 1
    return n
