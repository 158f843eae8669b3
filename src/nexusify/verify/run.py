"""``verify``: which projects are consumers, the gate, and every check for each of them."""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from nexusify.config import Settings
from nexusify.errors import ConfigError, ProblemsFound, UsageError
from nexusify.extras import require
from nexusify.formats.dockerfile_rules import JudgedDockerfile, judge_project
from nexusify.formats.shared_code import SharedCode
from nexusify.formats.workspace_stay import stay_problems
from nexusify.model import STAYS, Project, Workspace, stays_in_workspace, workspace_for
from nexusify.model.staying import workspace_of
from nexusify.rewrite.targets import select_services
from nexusify.tools import Which
from nexusify.verify.build import Builder
from nexusify.verify.dockerfiles import unowned_dockerfiles
from nexusify.verify.gate import broken_builds
from nexusify.verify.lock import LockChecker
from nexusify.verify.lock_index import lock_index_findings
from nexusify.verify.report import Check, ConsumerResult, Finding, VerifyReport
from nexusify.verify.resolve import resolve_check
from nexusify.verify.sources import source_findings
from nexusify.verify.static import dockerfile_findings, static_check


def select_consumers(ws: Workspace, targets: Sequence[str], cwd: Path | None = None) -> list[Project]:
    """Every consumer (:meth:`Workspace.consumers`: the root project too), or the ones ``targets``
    name (folders, files, globs)."""
    if not targets:
        return ws.consumers()
    chosen = select_services(ws, targets, cwd)
    others = [p.rel(ws.root) for p in chosen if not ws.is_consumer(p)]
    if others:
        raise UsageError(f"{', '.join(others)}: depends on no shared package, so there is nothing to verify",
                         hint="give consumers (projects that depend on shared packages), or no target for all")
    return chosen


def run_verify(settings: Settings, targets: Sequence[str] = (), *, env: Mapping[str, str] | None = None,
               build: bool = False, cwd: Path | None = None, which: Which = shutil.which,
               index_auth: bool | None = None) -> VerifyReport:
    """Every check for every target consumer; raises before checking when the model has errors
    in anything they reach (ProblemsFound) or the index is not configured (ConfigError).
    ``index_auth``: log in to the index (True: credentials required), install anonymously
    (False, as services rewritten with ``--no-index-auth`` do), or when credentials are configured (None)."""
    env = env or {}
    url = settings.install_index_url("verify proves that consumers install shared packages from it")
    if build:
        require("deploy", "docker")  # the engine's SDK: `--build` needs nexusify's deploy extra
    ws = workspace_for(settings)
    consumers = select_consumers(ws, targets, cwd)
    # every consumer: one may take a folder that cannot be read, or a shared package with no name
    everything = [p for p in ws.unreadable_errors() + ws.unnamed_shared_errors()] if not targets else []
    if not consumers and everything:
        raise ProblemsFound(f"{len(everything)} problem(s) in what the consumers may reach; nothing was verified:\n  "
                            + "\n  ".join(str(p) for p in everything), hint="fix them (`nexusify audit`) and re-run")
    if not consumers:
        raise UsageError(f"no project under {ws.root} depends on a shared package: nothing to verify",
                         hint="`nexusify audit` lists the shared packages and their consumers")
    errors = ws.errors_reaching(consumers)
    errors += [p for p in everything if p not in errors]
    if errors:
        raise ProblemsFound(f"{len(errors)} problem(s) in what the consumers reach; nothing was verified:\n  "
                            + "\n  ".join(str(p) for p in errors), hint="fix them (`nexusify audit`) and re-run")
    creds = settings.credentials(env)
    if index_auth and not creds.present:
        raise ConfigError("--index-auth: no credentials for the index are configured",
                          hint="set NEXUS_USERNAME and NEXUS_PASSWORD (or use .pypirc/keyring), "
                               "or drop --index-auth")
    present = creds if creds.present and index_auth is not False else None
    shared = SharedCode.from_workspace(ws, settings.path_aliases)
    judged = {c.path: judge_project(c, ws.root, shared) for c in consumers}
    report = VerifyReport(str(ws.root), url, build=build)
    locks = LockChecker(ws.root, settings.source_name, present, env, which)
    shared_names = {p.normalized for p in ws.shared() if p.normalized}

    def check(consumer: Project) -> ConsumerResult:
        result = ConsumerResult(consumer.name or consumer.rel(ws.root), consumer.rel(ws.root), consumer.tool)
        wroot = workspace_of(consumer)
        if wroot is not None and stays_in_workspace(consumer, ws):  # keeps working as is: nothing to prove
            lost = stay_problems(result.name, wroot, judged[consumer.path]) + broken_builds(judged[consumer.path])
            result.checks["static"] = Check.failed("static", [Finding(p.message, p.path, p.line, p.hint)
                                                              for p in lost]) if lost else Check.na("static", STAYS)
            result.checks["lock"] = Check.na("lock", STAYS)
            result.checks["resolve"] = Check.na("resolve", STAYS)
            return result
        resolved = resolve_check(consumer, ws, url, present, env, settings.timeout)
        reached = ws.closure([consumer], runtime=False)
        # what it installs: what pip resolved (exact, extras honoured), else all it may reach
        installed = set(resolved.packages) if resolved.status == "ok" else set(reached)
        static = static_check(consumer, ws, judged[consumer.path])
        result.checks["static"] = _with(static, source_findings(consumer, ws, url, judged[consumer.path], installed,
                                                                         settings.priority == "explicit"))
        lock = locks.check(consumer, tuple(n for n in reached if ws.is_shared(n)))
        if lock.status != "n/a":
            needed = (installed | set(consumer.internal_names())) & shared_names
            lock = _with(lock, lock_index_findings(consumer, ws.root, needed, url, present, float(settings.timeout)))
        result.checks["lock"] = lock
        result.checks["resolve"] = resolved
        return result

    # the tools mostly wait on the index: a few consumers at a time, reported in order
    with ThreadPoolExecutor(max_workers=max(1, min(4, settings.effective_jobs * 2, len(consumers)))) as pool:
        report.consumers = list(pool.map(check, consumers))
    # what no consumer owns is judged too: a root Dockerfile built per app, one the model left unmatched
    for jd in unowned_dockerfiles(ws, shared, ws.consumers()):
        findings = dockerfile_findings(jd) + source_findings_of_dockerfile(jd, url)
        entry = ConsumerResult(jd.rel, jd.rel, "docker")
        entry.checks["static"] = Check.of("static", findings, "builds no consumer; no shared code by path")
        for name in ("lock", "resolve", "build"):
            entry.checks[name] = Check.na(name, "a Dockerfile no consumer owns")
        report.consumers.append(entry)
    if build:
        builder = Builder(env, url, present)
        try:
            for consumer, result in zip(consumers, report.consumers[:len(consumers)], strict=True):
                if stays_in_workspace(consumer, ws):
                    result.checks["build"] = Check.na("build", STAYS)
                    continue
                resolved = result.checks["resolve"]
                result.checks["build"] = builder.check(consumer, ws, judged[consumer.path],
                                                       resolved.packages if resolved.status == "ok" else None)
        finally:
            builder.close()
    return report


def _with(check: Check, findings: list[Finding]) -> Check:
    """``check`` with more findings (failed when there are any)."""
    if not findings:
        return check
    return Check.failed(check.name, [*check.findings, *findings], check.detail)


def source_findings_of_dockerfile(jd: JudgedDockerfile, url: str) -> list[Finding]:
    from nexusify.verify.sources import dockerfile_index_findings

    return dockerfile_index_findings(jd.rel, jd.content.decode("utf-8", "replace"), url) if jd.content else []
