"""The demo's proof: ``nexusify verify`` on the rewritten sample, against the local index.

After the rewrite, every consumer is verified (static, lock, resolve); with the engine, the
demo's service is verified with ``--build`` as well (its image builds from its folder and imports
the shared packages from the index). A failing check fails the demo (exit 1), with the findings.

pip resolves a service by building its metadata, so the services' build backends must be on the
index, as a Nexus group proxying PyPI would serve them: they are put there from the demo's wheel
cache (downloaded once). When they cannot be had, the step is skipped and says why.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

from nexusify.config import Settings
from nexusify.demo.backends import backend_closure
from nexusify.demo.report import StepRunner
from nexusify.errors import OperationFailed
from nexusify.verify import Check, VerifyReport, run_verify


def _failures(report: VerifyReport) -> list[str]:
    return [f"{c.name} {name}: {finding}" for c in report.consumers for name, check in c.checks.items()
            if check.status == "fail" for finding in ([str(f) for f in check.findings] or [check.detail])]


def _backends(settings: Settings, packages: Path, cache: Path, env: Mapping[str, str]) -> tuple[list[str], str | None]:
    """Put every consumer's build backend on the index: (the wheels, or why they could not be had)."""
    from nexusify.model import workspace_for

    ws = workspace_for(settings)
    requires = sorted({r for p in ws.consumers() if not ws.is_shared(p) and not p.is_virtual for r in p.build_requires})
    wheels, problem = backend_closure(requires, cache / "wheels", env)
    for wheel in wheels:
        if not (packages / wheel.name).exists():
            shutil.copy2(wheel, packages / wheel.name)
    return [w.name for w in wheels], problem


def verify_step(run: StepRunner, settings: Settings, env: Mapping[str, str], packages: Path, cache: Path) -> None:
    with run.step("verify") as step:
        wheels, problem = _backends(settings, packages, cache, env)
        if problem is not None:
            step.status = "skipped"
            step.summary = (f"skipped: pip resolves each service with its build backend, which the index must serve, "
                            f"and {problem}; let pip reach PyPI (or your mirror) once: the wheels are cached")
            return
        report = run_verify(settings, env=env)
        run.report.verify = report
        failed = _failures(report)
        if failed:
            raise OperationFailed("verify failed on the rewritten sample:\n" + "\n".join(f"  {f}" for f in failed),
                                  hint="see the verify table above; the working folder holds the rewritten sample")
        step.summary = (f"{len(report.consumers)} of {len(report.consumers)} consumers verified: no path to a shared "
                        f"package left, locks accepted, every shared package resolves from {settings.install_index_url('verify')} alone")
        step.details = {"consumers": [c.name for c in report.consumers], "backends_on_index": wheels}


def verify_build_step(run: StepRunner, settings: Settings, env: Mapping[str, str], service: str) -> None:
    """``verify --build`` of the demo's service; its row replaces the one of the verify step."""
    with run.step("verify-build") as step:
        built = run_verify(settings, [f"services/{service}"], env=env, build=True)
        report = run.report.verify
        if report is None:
            report = run.report.verify = built
        else:
            row = built.consumers[0]
            report.build = True
            report.consumers = [row if c.path == row.path else c for c in report.consumers]
            for c in report.consumers:
                c.checks.setdefault("build", Check.na("build", f"the demo builds {service} only"))
        failed = _failures(built)
        if failed:
            raise OperationFailed("verify --build failed:\n" + "\n".join(f"  {f}" for f in failed))
        step.summary = f"verify --build: {built.consumers[0].checks['build'].detail}"
        step.details = {"build": built.consumers[0].checks["build"].to_dict()}


__all__ = ["verify_build_step", "verify_step"]
