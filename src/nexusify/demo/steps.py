"""The demo's steps through the core: audit, publish, rewrite (each checked: the rewritten
sample has no path dependency left), and the clean install that proves a brand-new virtualenv
gets the shared packages from the local index alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nexusify.config import Settings
from nexusify.demo.report import StepRunner
from nexusify.demo.sample import SERVICE
from nexusify.errors import OperationFailed
from nexusify.files import write_atomic
from nexusify.index.local import LocalIndex


def audit_step(run: StepRunner, settings: Settings, env: Mapping[str, str]) -> dict[str, Any]:
    from nexusify.audit.report import run_audit

    with run.step("audit") as step:
        report = run_audit(settings, env=env, index=True)
        if report.errors:
            raise OperationFailed("audit found errors in the sample:\n" + "\n".join(f"  {p}" for p in report.errors))
        ws = report.workspace
        copies = sorted({p.path for p in report.problems if p.code == "dockerfile-copies-shared" and p.path})
        path_deps = sum(1 for s in ws.consumers() for d in s.local_deps if d.resolved is not None)
        published = [p for p in report.index.get("packages", []) if p.get("published")]
        step.summary = (f"{len(ws.shared())} shared packages and {len(ws.consumers())} services; "
                        f"{path_deps} path dependencies of services; {len(copies)} Dockerfiles copy shared code "
                        "from outside their build context (the build failure nexusify fixes)")
        step.details = {
            "shared": sorted(p.name or p.rel(ws.root) for p in ws.shared()),
            "services": sorted(p.name or p.rel(ws.root) for p in ws.consumers()),
            "publish_order": report.publish_order,
            "service_path_dependencies": path_deps,
            "dockerfiles_copying_shared_code": copies,
            "already_on_index": len(published),
            "warnings": len(report.warnings),
        }
        return step.details


def publish_step(run: StepRunner, settings: Settings, env: Mapping[str, str]) -> None:
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


def rewrite_step(run: StepRunner, settings: Settings, env: Mapping[str, str]) -> dict[str, Any]:
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
        left = [f"{s.name}: {d.name} ({d.raw_path})" for s in ws.consumers() for d in s.local_deps if d.resolved is not None]
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


def install_step(run: StepRunner, settings: Settings, index: LocalIndex, rewritten: Mapping[str, Any]) -> None:
    from nexusify.syntax.constraints import pep440_specifier

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
