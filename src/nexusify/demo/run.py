"""``nexusify demo``: the whole journey on the sample monorepo, against an embedded local index.

Steps (each timed, each proving what it did; the core never prints, it emits events):

1. ``prepare``: copy the sample monorepo (shipped inside the package as ``nexusify/_sample``,
   or ``fixtures/monorepo`` of a source checkout) to the working folder, with a marker file that
   makes re-running safe: a folder is only ever replaced when it carries that marker.
2. ``index``: start a real PyPI server (pypiserver) on a free loopback port; uploads need a
   throwaway user whose password is generated for this run and never printed.
3. ``audit``: the shared packages, the services, the publish order, the Dockerfiles that copy
   shared code from outside their build context (the failure the sample reproduces).
4. ``publish``: build every shared package and upload it; each upload is then resolved afresh
   from the index.
5. ``rewrite``: services depend on the shared packages by version (taken from the index); proof:
   the rewritten monorepo has no path dependency and no Dockerfile copying shared code.
6. ``install``: a brand-new virtualenv installs the shared packages one service needs from the
   local index alone (pip with no configuration at all: ``PIP_CONFIG_FILE=/dev/null``,
   ``--isolated``, one ``--index-url``) and imports them; pip's install report shows where every
   file came from.
   ``verify``: ``nexusify verify`` on every consumer (static, lock, resolve; :mod:`.verify_step`);
   a failing check fails the demo. With the engine, ``verify-build`` runs ``verify --build`` on
   the service after its image is built.
7. With a container engine (``DOCKER_HOST`` or the default socket) and nginx: ``build`` the
   service's image from its rewritten folder alone, ``deploy`` it blue-green behind a private
   nginx (v1), deploy v2 while a client keeps asking, and show the answers move from v1 to v2;
   then ``cleanup`` removes the demo's containers, images and nginx. Without an engine these
   steps are skipped, and the report says why and how to enable them.

The index is stopped at the end, also on errors and Ctrl-C. The working folder is kept.

This module runs the steps in order; the pieces live beside it: :mod:`.report` (steps, events,
the report), :mod:`.sample` (the sample and the working folder), :mod:`.steps` (audit,
publish, rewrite, clean install), :mod:`.container` (image build, deploy, rollback, cleanup),
:mod:`.traffic` (watching the answers move from v1 to v2).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping
from pathlib import Path

from nexusify.config import resolve_settings
from nexusify.credentials import without_index_credentials
from nexusify.demo.container import engine_steps
from nexusify.demo.report import (
    ENGINE_STEPS,
    DemoEvent,
    DemoOptions,
    DemoReport,
    EventSink,
    StepRunner,
)
from nexusify.demo.sample import (
    default_cache_dir,
    demo_config,
    environment_name,
    prepare_workdir,
    read_marker,
    sample_source,
    write_marker,
)
from nexusify.demo.steps import audit_step, install_step, publish_step, rewrite_step
from nexusify.demo.tunable import TUNABLE
from nexusify.demo.verify_step import verify_step
from nexusify.errors import NexusifyError
from nexusify.files import write_atomic
from nexusify.index.local import LocalIndex, free_port, start_local_index


def _noop(_e: DemoEvent) -> None:
    return None


def run_demo(options: DemoOptions, on_event: EventSink | None = None) -> DemoReport:
    """Run the demo; returns its report. Step failures are in the report (``report.error``);
    KeyboardInterrupt and unexpected errors propagate after cleaning up."""
    env = dict(options.env if options.env is not None else os.environ)
    sink = on_event or _noop
    workdir = options.workdir.expanduser().resolve()
    cache = options.cache_dir or default_cache_dir(env)
    report = DemoReport(workdir)
    started = time.monotonic()
    hide: list[str] = []
    run = StepRunner(report, sink, hide)
    index: LocalIndex | None = None
    try:
        with run.step("prepare") as step:
            source = sample_source()
            replaced = prepare_workdir(workdir, source)
            public_port = free_port()
            write_atomic(workdir / "nexusify.toml", demo_config(public_port, environment_name(workdir)))
            step.summary = f"copied the sample monorepo to {workdir}" + (f" ({replaced})" if replaced else "")
            step.details = {"source": str(source), "workdir": str(workdir), "replaced": bool(replaced)}

        with run.step("index") as step:
            state = workdir / ".demo"
            index = start_local_index(state / "index", log_file=state / "index.log")
            hide.append(index.password.reveal())
            write_marker(workdir, index_pid=index.pid, index_url=index.base_url)
            report.index_url, report.index_port = index.base_url, index.port
            step.summary = (f"pypiserver on {index.base_url} (uploads need user {index.username} and a "
                            "password made for this run, never shown)")
            step.details = {"url": index.base_url, "simple_url": index.simple_url, "packages": str(index.packages),
                            "log": str(index.log_file), "username": index.username}

        pypirc = index.write_pypirc()  # the password never goes into an environment variable
        settings = resolve_settings(workdir, {
            **{k: v for k, v in options.settings.items() if k in TUNABLE},
            "repository_url": index.upload_url, "index_url": index.simple_url, "username": index.username,
            "build_env_dir": str(cache / "build-envs"),
        }, {})
        core_env = _core_env(env, pypirc)

        audit_step(run, settings, core_env)
        publish_step(run, settings, core_env)
        plan_versions = rewrite_step(run, settings, core_env)
        install_step(run, settings, index, plan_versions)
        verify_step(run, settings, core_env, index.packages, cache)
        if options.engine:
            engine_steps(run, settings, index, env, cache)
        else:
            report.engine_skipped = "--no-engine was given"
            for name in ENGINE_STEPS:
                run.skip(name, "--no-engine: no image built, nothing deployed")
    except NexusifyError as exc:
        report.error = exc
    finally:
        if index is not None:
            index.stop()
            report.index_stopped = not index.running
            with contextlib.suppress(OSError, NexusifyError):
                if workdir.is_dir() and read_marker(workdir) is not None:
                    write_marker(workdir, index_url=index.base_url, index_stopped=True)
        report.seconds = time.monotonic() - started
    return report


def _core_env(env: Mapping[str, str], pypirc: Path) -> dict[str, str]:
    """The environment for publish/rewrite: the user's (build tools need PATH, pip settings),
    without index credentials of their own, with the demo's pypirc."""
    out = without_index_credentials(env, also=("NEXUS_URL", "NEXUS_REPOSITORY_URL", "NEXUS_INDEX_URL"))
    out["PYPIRC"] = str(pypirc)
    return out

