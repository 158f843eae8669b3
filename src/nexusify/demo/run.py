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
7. With a container engine (``DOCKER_HOST`` or the default socket) and nginx: ``build`` the
   service's image from its rewritten folder alone, ``deploy`` it blue-green behind a private
   nginx (v1), deploy v2 while a client keeps asking, and show the answers move from v1 to v2;
   then ``cleanup`` removes the demo's containers, images and nginx. Without an engine these
   steps are skipped, and the report says why and how to enable them.

The index is stopped at the end, also on errors and Ctrl-C. The working folder is kept.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nexusify import __version__
from nexusify.config import Settings, resolve_settings
from nexusify.credentials import redact
from nexusify.errors import NexusifyError, OperationFailed, UsageError
from nexusify.files import write_atomic
from nexusify.index.local import LocalIndex, free_port, start_local_index, stop_stale

MARKER = ".nexusify-demo.json"
SERVICE = "quality-fabric"
ENVIRONMENT_PREFIX = "demo-"
IMAGE = "nexusify-demo/quality-fabric"
DEFAULT_WORKDIR = "nexusify-demo"
_COPY_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".nexusify", "dist", "build",
                                      ".venv", ".mypy_cache", ".pytest_cache", ".ruff_cache")

STEP_TITLES: dict[str, str] = {
    "prepare": "copy the sample monorepo",
    "index": "start the local index",
    "audit": "audit",
    "publish": "publish",
    "rewrite": "rewrite",
    "install": "clean install",
    "build": "build image",
    "deploy-v1": "deploy v1",
    "deploy-v2": "deploy v2",
    "rollback": "roll back",
    "cleanup": "clean up",
}
STEP_DOING: dict[str, str] = {
    "prepare": "copying the sample monorepo to the working folder",
    "index": "starting a local PyPI index (pypiserver) on a free loopback port",
    "audit": "finding the shared packages, the services and their path dependencies",
    "publish": "building every shared package and uploading it in dependency order",
    "rewrite": "making the services depend on the shared packages by version from the index",
    "install": "installing a rewritten service's shared packages into a new virtualenv from the index alone",
    "build": "building the service's image with its rewritten folder as the only build context",
    "deploy-v1": "deploying v1 behind a private nginx",
    "deploy-v2": "deploying v2 blue-green while a client keeps asking",
    "rollback": "rolling back to v1 (its kept container; no build)",
    "cleanup": "removing the demo's containers, images and nginx",
}
ENGINE_STEPS = ("build", "deploy-v1", "deploy-v2", "rollback", "cleanup")
# settings a user may try on the sample (`nexusify demo --constraint exact --priority supplemental`)
TUNABLE = ("constraint", "priority", "source_name", "jobs")


@dataclass(frozen=True)
class DemoEvent:
    """Progress: ``kind`` is start, done, skip, fail or info."""

    kind: str
    step: str
    message: str = ""
    seconds: float | None = None


EventSink = Callable[[DemoEvent], None]


@dataclass
class DemoOptions:
    workdir: Path
    engine: bool = True  # False: --no-engine
    env: Mapping[str, str] | None = None  # DOCKER_HOST, PATH, HOME... (default: os.environ)
    cache_dir: Path | None = None  # build envs and backend wheels (default: user cache dir)
    settings: Mapping[str, Any] = field(default_factory=dict)  # constraint, priority, source_name, jobs


@dataclass
class Step:
    name: str
    status: str = "pending"  # ok | skipped | failed | pending
    seconds: float = 0.0
    summary: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return STEP_TITLES.get(self.name, self.name)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "status": self.status, "seconds": round(self.seconds, 3),
                "summary": self.summary, "details": self.details}


@dataclass
class DemoReport:
    workdir: Path
    steps: list[Step] = field(default_factory=list)
    index_url: str | None = None
    index_port: int | None = None
    index_stopped: bool = False
    engine_skipped: str | None = None  # why the container steps were skipped
    notes: list[str] = field(default_factory=list)
    environment: str | None = None  # the deploy environment, once something was deployed
    seconds: float = 0.0
    error: NexusifyError | None = None

    def step(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)

    @property
    def ok(self) -> bool:
        return self.error is None and all(s.status in ("ok", "skipped") for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "workdir": str(self.workdir), "seconds": round(self.seconds, 3),
            "index": {"url": self.index_url, "port": self.index_port, "stopped": self.index_stopped},
            "engine_skipped": self.engine_skipped, "notes": self.notes, "environment": self.environment,
            "steps": [s.to_dict() for s in self.steps],
            "error": self.error.to_dict() if self.error else None,
        }


# --------------------------------------------------------------------------- the sample


def sample_source() -> Path:
    """The sample monorepo: ``nexusify/_sample`` in an installed wheel, else the checkout's
    ``fixtures/monorepo`` (editable installs)."""
    import nexusify

    package = Path(nexusify.__file__).resolve().parent
    for candidate in (package / "_sample", package.parents[1] / "fixtures" / "monorepo"):
        if (candidate / "services").is_dir() and (candidate / "shared").is_dir():
            return candidate
    raise OperationFailed("the sample monorepo is not part of this installation",
                          hint="reinstall nexusify (the wheel ships it as nexusify/_sample)")


def environment_name(workdir: Path) -> str:
    """The deploy environment of a working folder: its containers and images carry this label,
    so a demo only ever removes what a demo in the same folder made."""
    import hashlib

    return ENVIRONMENT_PREFIX + hashlib.sha256(str(workdir).encode()).hexdigest()[:8]


def default_cache_dir(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return Path(base) / "nexusify" / "demo"


def read_marker(workdir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((workdir / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("created_by") == "nexusify demo" else None


def _write_marker(workdir: Path, **extra: Any) -> None:
    data = {"created_by": "nexusify demo", "nexusify": __version__,
            "note": "this folder was made by `nexusify demo`; re-running the demo replaces it", **extra}
    write_atomic(workdir / MARKER, json.dumps(data, indent=2) + "\n")


def prepare_workdir(workdir: Path, source: Path) -> str:
    """Copy ``source`` to ``workdir``. An existing folder is replaced only when it carries the
    demo's marker (after stopping what an interrupted run may have left running); a non-empty
    folder without it is refused. Returns what happened (for the report)."""
    replaced = ""
    for inner, outer, what in ((source, workdir, "holds the sample itself"), (workdir, source, "is inside the sample")):
        try:
            inner.resolve().relative_to(outer.resolve())
        except ValueError:
            continue
        raise UsageError(f"--workdir {workdir} {what}", hint="give a folder outside the sample monorepo")
    if workdir.exists() or workdir.is_symlink():
        if not workdir.is_dir() or workdir.is_symlink():
            raise UsageError(f"--workdir {workdir} exists and is not a folder",
                             hint="give another --workdir (the demo copies the sample monorepo there)")
        marker = read_marker(workdir)
        if marker is not None:
            _stop_leftovers(workdir, marker)
            shutil.rmtree(workdir)
            replaced = "replaced the previous demo folder"
        elif any(workdir.iterdir()):
            raise UsageError(
                f"--workdir {workdir} is not empty and was not made by `nexusify demo` (no {MARKER} in it)",
                hint="give a new or empty folder with --workdir; the demo only ever replaces its own folder",
            )
        else:
            workdir.rmdir()
    workdir.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, workdir, ignore=_COPY_IGNORE)
    _write_marker(workdir)
    return replaced


def _stop_leftovers(workdir: Path, marker: Mapping[str, Any]) -> None:
    """An interrupted run (killed, not Ctrl-C) may have left its index server or nginx running."""
    pid = marker.get("index_pid")
    if isinstance(pid, int) and pid > 1:
        stop_stale(pid, str(workdir / ".demo" / "index"))
    conf_dir = workdir / ".nexusify" / "deploy" / environment_name(workdir) / "nginx"
    if (conf_dir / "nginx.pid").is_file():
        from nexusify.deploy.switch import NginxProxy

        with contextlib.suppress(NexusifyError, OSError):
            NginxProxy(conf_dir, {}).stop()


def demo_config(public_port: int, environment: str) -> str:
    """The ``nexusify.toml`` the demo writes into the working folder (its deploy settings)."""
    return (
        "# Written by `nexusify demo`. The demo passes the index URLs itself: its local index runs\n"
        "# only while the demo runs. On your own monorepo, `nexusify init` writes this file.\n"
        "\n"
        "[deploy]\n"
        "keep = 2\n"
        "lock-wait = 0\n"
        "\n"
        f"[deploy.services.{SERVICE}]\n"
        f'folder = "services/{SERVICE}"\n'
        "container-port = 8000\n"
        f'image = "{IMAGE}"\n'
        f"public-port = {public_port}       # the private nginx listens here (127.0.0.1)\n"
        'health-path = "/health"\n'
        "health-timeout = 90\n"
        "health-interval = 0.2\n"
        "drain-timeout = 1\n"
        "\n"
        f"[deploy.environments.{environment}]   # no secrets, a private nginx nexusify manages\n"
    )


# --------------------------------------------------------------------------- running steps


class _Runner:
    def __init__(self, report: DemoReport, sink: EventSink, hide: list[str]) -> None:
        self.report = report
        self.sink = sink
        self.hide = hide

    def clean(self, text: str) -> str:
        return redact(text, *self.hide)

    def info(self, step: str, message: str) -> None:
        self.sink(DemoEvent("info", step, self.clean(message)))

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[Step]:
        step = Step(name)
        self.report.steps.append(step)
        self.sink(DemoEvent("start", name, STEP_DOING.get(name, step.title)))
        t0 = time.monotonic()
        try:
            yield step
        except NexusifyError as exc:
            step.seconds = time.monotonic() - t0
            step.status = "failed"
            exc.message = self.clean(exc.message)
            exc.args = (exc.message,)
            if name in ENGINE_STEPS:
                skip = "`nexusify demo --no-engine` runs the rest without the container steps"
                exc.hint = f"{exc.hint}; {skip}" if exc.hint else skip
            step.summary = exc.message.splitlines()[0]
            self.sink(DemoEvent("fail", name, step.summary, step.seconds))
            raise
        except BaseException as exc:
            step.seconds = time.monotonic() - t0
            step.status = "failed"
            step.summary = "internal error" if isinstance(exc, Exception) else "interrupted"
            raise
        step.seconds = time.monotonic() - t0
        if step.status == "pending":
            step.status = "ok"
        step.summary = self.clean(step.summary)
        self.sink(DemoEvent("done" if step.status == "ok" else "skip", name, step.summary, step.seconds))

    def skip(self, name: str, why: str) -> None:
        step = Step(name, "skipped", 0.0, why)
        self.report.steps.append(step)
        self.sink(DemoEvent("skip", name, why, 0.0))


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
    run = _Runner(report, sink, hide)
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
            _write_marker(workdir, index_pid=index.pid, index_url=index.base_url)
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

        _audit(run, settings, core_env)
        _publish(run, settings, core_env)
        plan_versions = _rewrite(run, settings, core_env)
        _install(run, settings, index, plan_versions)
        if options.engine:
            _engine_steps(run, settings, index, env, cache)
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
                    _write_marker(workdir, index_url=index.base_url, index_stopped=True)
        report.seconds = time.monotonic() - started
    return report


def _core_env(env: Mapping[str, str], pypirc: Path) -> dict[str, str]:
    """The environment for publish/rewrite: the user's (build tools need PATH, pip settings),
    without index credentials of their own, with the demo's pypirc."""
    drop = {"NEXUS_PASSWORD", "NEXUS_USERNAME", "TWINE_PASSWORD", "TWINE_USERNAME", "NEXUS_URL",
            "NEXUS_REPOSITORY_URL", "NEXUS_INDEX_URL"}
    out = {k: v for k, v in env.items() if k not in drop}
    out["PYPIRC"] = str(pypirc)
    return out


# --------------------------------------------------------------------------- audit, publish, rewrite


def _audit(run: _Runner, settings: Settings, env: Mapping[str, str]) -> dict[str, Any]:
    from nexusify.audit.report import run_audit

    with run.step("audit") as step:
        report = run_audit(settings, env=env, index=True)
        if report.errors:
            raise OperationFailed("audit found errors in the sample:\n" + "\n".join(f"  {p}" for p in report.errors))
        ws = report.workspace
        copies = sorted({p.path for p in report.problems if p.code == "dockerfile-copies-shared" and p.path})
        path_deps = sum(1 for s in ws.services for d in s.local_deps if d.resolved is not None)
        published = [p for p in report.index.get("packages", []) if p.get("published")]
        step.summary = (f"{len(ws.shared)} shared packages and {len(ws.services)} services; "
                        f"{path_deps} path dependencies of services; {len(copies)} Dockerfiles copy shared code "
                        "from outside their build context (the build failure nexusify fixes)")
        step.details = {
            "shared": sorted(p.name or p.rel(ws.root) for p in ws.shared),
            "services": sorted(p.name or p.rel(ws.root) for p in ws.services),
            "publish_order": report.publish_order,
            "service_path_dependencies": path_deps,
            "dockerfiles_copying_shared_code": copies,
            "already_on_index": len(published),
            "warnings": len(report.warnings),
        }
        return step.details


def _publish(run: _Runner, settings: Settings, env: Mapping[str, str]) -> None:
    from nexusify.publish import PublishOptions, run_publish

    with run.step("publish") as step:
        def reporter(event: str, name: str | None, data: Mapping[str, Any]) -> None:
            if event == "done" and name:
                run.info("publish", f"{name}: {data.get('status')}")

        result = run_publish(settings, PublishOptions(env=env, verify=True), reporter)
        failed = [p for p in result.packages if p.status != "uploaded" or p.verified is not True]
        if failed:
            first = next((p.error for p in failed if p.error is not None), None)
            raise OperationFailed(
                "publish did not upload every shared package: "
                + ", ".join(f"{p.name} ({p.status}: {p.reason})" for p in failed)
                + (f"\n{first}" if first else ""),
                hint="see the index log in .demo/index.log of the working folder")
        step.summary = (f"built and uploaded {len(result.packages)} shared packages ({len(result.uploaded)} files) "
                        "in dependency order; each resolved afresh from the index")
        step.details = {
            "packages": [{"name": p.name, "version": p.version, "files": [f.filename for f in p.files],
                          "build_seconds": p.build_seconds} for p in result.packages],
            "uploaded_files": len(result.uploaded), "build_envs_created": result.build_envs_created,
        }


def _rewrite(run: _Runner, settings: Settings, env: Mapping[str, str]) -> dict[str, Any]:
    from nexusify.audit.report import run_audit
    from nexusify.rewrite.plan import apply_plan, plan_rewrite

    with run.step("rewrite") as step:
        plan = plan_rewrite(settings, env=env, from_index=True, index_auth=False)
        diff = plan.diff()
        written = apply_plan(plan)
        diff_file = settings.root / ".demo" / "rewrite.diff"
        write_atomic(diff_file, diff)
        after = run_audit(settings, env=env, index=False)
        ws = after.workspace
        left = [f"{s.name}: {d.name} ({d.raw_path})" for s in ws.services for d in s.local_deps if d.resolved is not None]
        copies = [str(p) for p in after.problems if p.code == "dockerfile-copies-shared"]
        if left or copies:
            raise OperationFailed("the rewritten monorepo still depends on shared code by path:\n"
                                  + "\n".join(f"  {x}" for x in [*left, *copies]))
        again = plan_rewrite(settings, env=env, from_index=True, index_auth=False)
        if again.changed:
            raise OperationFailed("a second rewrite would still change " + ", ".join(f.rel for f in again.files))
        changed = [s for s in plan.services if s.changed]
        unchanged = [s.name for s in plan.services if not s.changed]
        svc = next((s for s in plan.services if s.name == SERVICE), None)
        if svc is None or not svc.changed:
            raise OperationFailed(f"rewrite did not change {SERVICE}, the service the demo installs and deploys")
        step.summary = (f"rewrote {len(changed)} services ({len(written)} files: pyproject.toml and Dockerfile); "
                        f"versions from the index; no path dependency left; a second run changes nothing"
                        + (f"; unchanged: {', '.join(unchanged)} (no shared dependency)" if unchanged else ""))
        step.details = {
            "services": {s.name: [f.rel for f in s.files if f.changed] for s in changed},
            "unchanged": unchanged, "versions": plan.versions, "source": plan.source.name,
            "constraint": plan.constraint, "path_dependencies_left": 0, "diff": str(diff_file),
        }
        return {"versions": dict(plan.versions), "shared": list(svc.shared), "added": list(svc.added)}


# --------------------------------------------------------------------------- clean install


def _clean_pip_env(home: Path) -> dict[str, str]:
    """No configuration at all: no pip.conf (global, user, site), no PIP_* variables."""
    return {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(home), "PIP_CONFIG_FILE": os.devnull,
            "PYTHONNOUSERSITE": "1", "LC_ALL": "C.UTF-8"}


def _run(cmd: Sequence[str], env: Mapping[str, str], what: str, timeout: float = 300.0,
         cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(list(cmd), env=dict(env), capture_output=True, text=True, timeout=timeout, check=False,
                              cwd=cwd)
    except subprocess.TimeoutExpired as exc:
        raise OperationFailed(f"{what}: timed out after {timeout:.0f}s") from exc
    except OSError as exc:
        raise OperationFailed(f"{what}: {exc}") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-12:])
        raise OperationFailed(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return proc


def _host_pip() -> bool:
    """True when this Python has a pip that can install into another environment (``--python``,
    pip >= 22.3)."""
    try:
        from importlib.metadata import version

        from packaging.version import Version

        return Version(version("pip")) >= Version("22.3")
    except Exception:
        return False


def _install(run: _Runner, settings: Settings, index: LocalIndex, rewritten: Mapping[str, Any]) -> None:
    from nexusify.formats.constraints import pep440_specifier

    with run.step("install") as step:
        versions: Mapping[str, str] = rewritten["versions"]
        names = sorted(rewritten["shared"])
        reqs = [f"{n}{pep440_specifier(versions[n], settings.constraint)}" for n in names]
        modules = [n.replace("-", "_") for n in names]
        with tempfile.TemporaryDirectory(prefix="nexusify-demo-venv-") as tmp:
            venv, home = Path(tmp) / "venv", Path(tmp) / "home"
            home.mkdir()
            env = _clean_pip_env(home)
            pip = _host_pip()
            _run([sys.executable, "-m", "venv", *(["--without-pip"] if pip else []), str(venv)], env,
                 "python -m venv (a clean virtualenv)", cwd=Path(tmp))
            python = venv / "bin" / "python"
            report_file = Path(tmp) / "pip-report.json"
            # this Python's pip installs into the venv (--python) when it can: the same isolation,
            # without the seconds ensurepip takes to put a pip into the venv
            prefix = [sys.executable, "-m", "pip", "--python", str(python)] if pip else [str(python), "-m", "pip"]
            cmd = [*prefix, "--isolated", "install", "--disable-pip-version-check", "--no-input",
                   "--no-cache-dir", "--progress-bar", "off", "--index-url", index.simple_url,
                   "--report", str(report_file), *reqs]
            run.info("install", "clean virtualenv: pip --isolated install --index-url "
                     f"{index.simple_url} {' '.join(reqs)} (PIP_CONFIG_FILE={os.devnull})")
            _run(cmd, env, "pip install into the clean virtualenv", cwd=Path(tmp))
            pip_report = json.loads(report_file.read_text(encoding="utf-8"))
            installed = [{"name": i["metadata"]["name"], "version": i["metadata"]["version"],
                          "url": (i.get("download_info") or {}).get("url", "")} for i in pip_report.get("install", [])]
            foreign = [i for i in installed if not i["url"].startswith(index.base_url)]
            if foreign or not installed:
                raise OperationFailed("the clean install did not come from the local index alone: "
                                      + ", ".join(f"{i['name']} from {i['url'] or '?'}" for i in foreign))
            probe = ("import importlib, importlib.metadata as md, json, sys\n"
                     f"mods = {modules!r}\n"
                     "files = {m: importlib.import_module(m).__file__ for m in mods}\n"
                     "print(json.dumps({'prefix': sys.prefix, 'files': files,\n"
                     f"                  'versions': {{d: md.version(d) for d in {names!r}}}}}))\n")
            out = _run([str(python), "-I", "-c", probe], env, "importing the installed packages", cwd=Path(tmp))
            imported = json.loads(out.stdout.strip().splitlines()[-1])
            outside = [f for f in imported["files"].values() if not str(f).startswith(str(venv))]
            if outside:
                raise OperationFailed(f"imported from outside the clean virtualenv: {', '.join(outside)}")
        shown = ", ".join(f"{n} {imported['versions'][n]}" for n in names)
        others = len(installed) - len(names)
        step.summary = (f"a new virtualenv installed {SERVICE}'s shared packages ({shown}"
                        + (f", +{others} they need" if others > 0 else "")
                        + f") from {index.simple_url} alone (pip with no config) and imported them")
        step.details = {"requirements": reqs, "installed": installed, "imported": sorted(imported["files"]),
                        "index_url": index.simple_url, "pip": "--isolated, PIP_CONFIG_FILE=/dev/null, --no-cache-dir"}


# --------------------------------------------------------------------------- engine steps


def engine_unavailable(env: Mapping[str, str]) -> tuple[Any | None, str | None]:
    """(connected engine, None), or (None, why the container steps are skipped)."""
    from nexusify.deploy.engine import DEFAULT_HOST, connect, engine_url

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
    import docker.errors

    candidates = [name]
    if "/" not in name.split(":", 1)[0]:
        candidates += [f"localhost/{name}", f"docker.io/library/{name}"]
    for ref in candidates:
        try:
            client.images.get(ref)
            return True
        except docker.errors.ImageNotFound:
            continue
        except docker.errors.APIError:
            continue
    return False


def backend_wheels(requires: Sequence[str], cache: Path, env: Mapping[str, str]) -> tuple[list[Path], str | None]:
    """Wheels of a service's build backend (what a Nexus group proxying PyPI would serve), cached
    in ``cache``: (wheels, None) or ([], why they could not be had)."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

    cache.mkdir(parents=True, exist_ok=True)
    found: list[Path] = []
    missing: list[str] = []
    for raw in requires:
        try:
            req = Requirement(raw)
        except InvalidRequirement:
            return [], f"cannot read the build requirement {raw!r}"
        have = None
        for wheel in sorted(cache.glob("*.whl"), reverse=True):
            try:
                name, version, _b, _t = parse_wheel_filename(wheel.name)
            except InvalidWheelFilename:
                continue
            if name == canonicalize_name(req.name) and req.specifier.contains(version, prereleases=True):
                have = wheel
                break
        if have is not None:
            found.append(have)
        else:
            missing.append(raw)
    if missing:
        pip_env = {k: v for k, v in env.items() if k not in ("NEXUS_PASSWORD", "TWINE_PASSWORD")}
        before = set(cache.glob("*.whl"))
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-input",
             "--no-deps", "--only-binary=:all:", "-d", str(cache), *missing],
            env=pip_env, capture_output=True, text=True, timeout=300, check=False)
        if proc.returncode != 0:
            last = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ["(no output)"]
            return [], f"`pip download {' '.join(missing)}` failed: {last[0][:200]}"
        found += sorted(set(cache.glob("*.whl")) - before)
    return found, None


def _engine_steps(run: _Runner, settings: Settings, index: LocalIndex, env: Mapping[str, str], cache: Path) -> None:
    report = run.report
    from nexusify.deploy.switch import find_nginx

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
    drop = {"NEXUS_PASSWORD", "TWINE_PASSWORD", "NEXUS_USERNAME", "PYPIRC"}
    return {k: v for k, v in env.items() if k not in drop}


def _deploy_steps(run: _Runner, settings: Settings, env: Mapping[str, str], engine: Any,
                  notes: Sequence[str] = ()) -> None:
    from nexusify.deploy.config import load_deploy_config
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
    from nexusify.deploy.engine import LABEL_ENVIRONMENT

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


def get_json(port: int, path: str = "/", timeout: float = 5.0) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        resp = conn.getresponse()
        raw = resp.read()
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"raw": raw.decode("utf-8", "replace")[:200]}
        return resp.status, body if isinstance(body, dict) else {"raw": body}
    finally:
        conn.close()


class Poller:
    """A client asking ``/`` through nginx every few milliseconds (a new connection each time,
    bounded in time), recording which version answered and every failure."""

    def __init__(self, port: int, pause: float = 0.02, max_seconds: float = 600.0) -> None:
        self.port, self.pause, self.max_seconds = port, pause, max_seconds
        self.answers: list[tuple[float, str]] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="nexusify-demo-poller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _loop(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            t = time.monotonic()
            try:
                status, body = get_json(self.port)
                if status != 200:
                    raise OperationFailed(f"HTTP {status}")
                self.answers.append((t, str(body.get("version"))))
            except Exception as exc:
                self.failures.append(f"{type(exc).__name__}: {exc}")
            self._stop.wait(self.pause)

    def sequence(self) -> list[str]:
        return [v for _, v in sorted(self.answers)]

    def movement(self, switched: float, old: str = "v1", new: str = "v2") -> Movement:
        """How the answers moved from ``old`` to ``new``; ``switched``: when the deploy returned.

        While nginx reloads, its old and new workers both accept connections for a moment (the
        old ones until they see the reload), so answers may alternate briefly; after the deploy
        returns, every answer must come from ``new``, and no request may fail.
        """
        answers = sorted(self.answers)
        versions = [v for _, v in answers]
        m = Movement(total=len(answers), v1=versions.count(old), v2=versions.count(new),
                     after=sum(1 for t, _ in answers if t >= switched))
        first_new = next((t for t, v in answers if v == new), None)
        last_old = max((t for t, v in answers if v == old), default=None)
        if first_new is not None and last_old is not None and last_old > first_new:
            m.overlap = last_old - first_new
        others = sorted(set(versions) - {old, new})
        late = [v for t, v in answers if t >= switched and v != new]
        if self.failures:
            m.problem = f"{len(self.failures)} of {len(answers) + len(self.failures)} requests failed: {self.failures[0]}"
        elif others:
            m.problem = f"unexpected answers from {', '.join(others)}"
        elif not versions or versions[0] != old or versions[-1] != new:
            m.problem = f"answers went {' -> '.join(dict.fromkeys(versions)) or '(none)'}, not {old} -> {new}"
        elif late:
            m.problem = f"{len(late)} answers still came from {old} after the deploy returned"
        elif m.overlap > 5.0:
            m.problem = f"{old} and {new} both answered for {m.overlap:.1f}s"
        return m


@dataclass
class Movement:
    total: int
    v1: int
    v2: int
    after: int  # answers sent after the deploy returned (all from the new version)
    overlap: float = 0.0  # seconds between the first new and the last old answer (nginx reload)
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


__all__ = [
    "DEFAULT_WORKDIR", "MARKER", "SERVICE", "DemoEvent", "DemoOptions", "DemoReport", "Poller",
    "Step", "backend_wheels", "demo_config", "engine_unavailable", "environment_name", "prepare_workdir", "run_demo", "sample_source",
]
