"""``nexusify publish``, step 1: the plan. Reads the monorepo, validates, asks the index; builds nothing.

:func:`plan_publish` reads the monorepo (the model), validates everything (names, versions,
cycles, every staged ``pyproject.toml`` rewrite), fingerprints each package's content, asks the
index what it already holds, and decides per package: *unchanged* (fingerprint recorded, the
index holds the recorded files, and the last upload was verified by a download: nothing to
build) or *build*. It writes nothing; ``--dry-run`` prints it. :mod:`nexusify.publish.execute`
carries it out.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from packaging.utils import canonicalize_name

from nexusify import __version__
from nexusify.config import Settings, suggest
from nexusify.credentials import Credentials
from nexusify.dists.backend import backend_of
from nexusify.dists.staging import SOURCE_DATE_EPOCH, fingerprint
from nexusify.errors import ConfigError, NexusifyError, ProblemsFound, UsageError
from nexusify.index.client import IndexClient, index_client
from nexusify.index.nexus_rest import NexusRest
from nexusify.index.pages import IndexFile, SimpleIndex, parse_filename, same_version
from nexusify.model import CycleError, Project, Workspace, relpath, workspace_for
from nexusify.publish.state import STATE_LAYOUT, load_state, records_for, unverified_reason


@dataclass
class PublishOptions:
    dry_run: bool = False
    force_build: bool = False
    verify: bool = True
    jobs: int | None = None  # None: settings.effective_jobs
    packages: Sequence[str] = ()  # only these (and the shared packages they need)
    env: Mapping[str, str] | None = None  # for credentials and build tools; default os.environ


# --------------------------------------------------------------------------- plan


@dataclass
class PackagePlan:
    project: Project
    name: str
    normalized: str
    version: str
    rel: str
    backend: str
    requires: list[str]
    backend_path: list[str]
    deps: list[str]  # runtime internal dependencies (normalised names)
    staged_text: str
    fingerprint: str
    existing: list[IndexFile] = field(default_factory=list)  # the index's files of this version
    action: str = "build"  # "build" or "unchanged"
    reason: str = ""
    unverified: str | None = None  # the last upload did not verify: why (downloads decide, not page hashes)


@dataclass
class PublishPlan:
    settings: Settings
    workspace: Workspace
    packages: list[PackagePlan]
    upload_url: str
    check_url: str  # where existing files are looked up (simple page or Nexus REST)
    verify_url: str
    credentials: Credentials
    versions: dict[str, str]
    state: dict[str, Any]
    uses_rest: bool
    seconds: float = 0.0  # time spent planning (reading the monorepo, asking the index)

    def by_name(self) -> dict[str, PackagePlan]:
        return {p.normalized: p for p in self.packages}


def _select(ws: Workspace, order: list[str], wanted: Sequence[str]) -> list[str]:
    if not wanted:
        return order
    chosen: set[str] = set()
    for raw in wanted:
        norm = canonicalize_name(raw)
        project = ws.by_name.get(norm)
        if project is None or not ws.is_shared(project):
            near = suggest(norm, order)
            raise UsageError(
                f"{raw!r} is not a shared package of this monorepo" + (f"; did you mean {near!r}?" if near else ""),
                hint=f"shared packages: {', '.join(order) or '(none)'}",
            )
        chosen.add(norm)
        chosen.update(ws.closure([project]))
    return [n for n in order if n in chosen]


def plan_publish(
    settings: Settings,
    options: PublishOptions | None = None,
    *,
    client: IndexClient | None = None,
) -> PublishPlan:
    """Validate the monorepo and decide what each shared package needs. Builds and writes nothing."""
    options = options or PublishOptions()
    started = time.monotonic()
    env = options.env if options.env is not None else os.environ
    ws = workspace_for(settings)
    try:
        order = ws.publish_order()
    except CycleError as exc:
        raise ProblemsFound(
            f"shared packages depend on each other in a cycle: {' -> '.join(exc.cycle)}",
            hint="break the cycle: move the shared code both need into a package of its own",
        ) from exc
    selected = [ws.by_name[n] for n in _select(ws, order, options.packages)]
    # the one gate: errors in anything the packages reach (an unreadable one included); publishing
    # everything also stops on a folder whose manifest cannot be read (it may be a shared package)
    blocking = ws.errors_reaching(selected)
    if not options.packages:
        blocking += [p for p in ws.unreadable_errors() + ws.unnamed_shared_errors() if p not in blocking]
    if blocking:
        raise ProblemsFound(
            f"{len(blocking)} problem(s) in shared packages stop publishing:\n"
            + "\n".join(f"  {p}" for p in blocking),
            hint="fix them (`nexusify audit` lists every problem), then re-run",
        )
    names = _select(ws, order, options.packages)
    if not names:
        raise ProblemsFound("no shared packages found to publish",
                            hint="check `nexusify audit`; set `shared` globs in nexusify.toml if discovery missed them")
    upload_url = settings.upload_url
    if not upload_url:
        raise ConfigError(
            "no index to publish to",
            hint="set --nexus-url (with --repository) or NEXUS_URL, or --repository-url for another PyPI server",
        )
    versions = {p.normalized: p.version for p in ws.shared() if p.normalized and p.version}
    from nexusify.formats.pyproject_edit import versionize

    plans: list[PackagePlan] = []
    errors: list[str] = []
    for norm in names:
        p = ws.by_name[norm]
        rel = p.rel(ws.root)
        if not p.version or not p.name:
            errors.append(f"{rel}: no resolvable name/version")
            continue
        # a requirements file is no part of the package's metadata: its lines never reach the wheel
        local = [d for d in p.local_deps if d.resolved is not None and d.kind != "requirements"]
        not_shared = sorted({d.normalized for d in local if d.runtime and d.normalized not in versions})
        if not_shared:
            errors.append(f"{relpath(p.pyproject, ws.root)}: depends at runtime on {', '.join(not_shared)}, "
                          "which is not a shared package with a version (it would not be on the index)")
            continue
        try:
            # dev-only path dependencies on unpublished projects stay as they are: they never
            # reach the wheel's metadata, and are no business of the index
            staged = versionize(p.text, [d for d in local if d.normalized in versions], versions,
                                mode=settings.constraint, path=p.pyproject)
        except NexusifyError as exc:
            errors.append(str(exc))
            continue
        backend, requires, backend_path = backend_of(p.data)
        fp = fingerprint(p.path, staged, {
            "backend": backend, "requires": sorted(requires), "backend_path": backend_path,
            "epoch": SOURCE_DATE_EPOCH, "nexusify": __version__, "layout": STATE_LAYOUT,
        })
        plans.append(PackagePlan(
            project=p, name=p.name, normalized=norm, version=p.version, rel=rel, backend=backend,
            requires=requires, backend_path=backend_path,
            deps=[d for d in ws.dependencies_of(norm, True) if d in versions], staged_text=staged, fingerprint=fp,
        ))
    if errors:
        raise ProblemsFound(f"{len(errors)} shared package(s) cannot be staged:\n" + "\n".join(f"  {e}" for e in errors),
                            hint="nothing was built or uploaded; fix these and re-run")

    state = load_state(settings)  # a damaged state stops here, before the network
    credentials = settings.credentials(env)
    uses_rest = settings.is_nexus and not settings.repository_url
    check_url = settings.upload_simple_url or (upload_url.rstrip("/") + "/simple/")
    own_client = client is None
    http = client or index_client(settings, credentials)
    try:
        if uses_rest:
            assert settings.nexus_url is not None
            rest = NexusRest(http, settings.nexus_url, settings.repository)
            rest.check_writable()
            lookup: Callable[[str], list[IndexFile]] = rest.project_files
            check_url = f"{settings.nexus_url.rstrip('/')}/service/rest/v1/search?repository={settings.repository}"
        else:
            lookup = SimpleIndex(http, check_url).project_files
        jobs = max(1, min(options.jobs or settings.effective_jobs, 8, len(plans)))
        with ThreadPoolExecutor(jobs) as pool:
            found = list(pool.map(lambda pl: lookup(pl.name), plans))
    finally:
        if own_client:
            http.close()

    records = records_for(state, upload_url)
    for pl, files in zip(plans, found, strict=True):
        pl.existing = [f for f in files if (parsed := parse_filename(f.filename))
                       and parsed[0] == pl.normalized and same_version(parsed[1], pl.version)]
        rec = records.get(pl.normalized)
        pl.unverified = unverified_reason(rec)
        if options.force_build:
            pl.action, pl.reason = "build", "--force-build"
        elif not rec:
            pl.action, pl.reason = "build", "no record of an earlier publish here"
        elif rec.get("fingerprint") != pl.fingerprint or rec.get("version") != pl.version:
            pl.action, pl.reason = "build", "sources or version changed since the last publish"
        elif pl.unverified:
            pl.action, pl.reason = "build", f"the last upload was not verified ({pl.unverified})"
        elif not _index_holds(pl.existing, rec.get("files") or {}):
            pl.action, pl.reason = "build", "the index does not hold the files published last time"
        else:
            pl.action, pl.reason = "unchanged", "unchanged since the last publish, and on the index"
    return PublishPlan(
        settings=settings, workspace=ws, packages=plans, upload_url=upload_url, check_url=check_url,
        verify_url=settings.simple_url or check_url, credentials=credentials, versions=versions,
        state=state, uses_rest=uses_rest, seconds=time.monotonic() - started,
    )


def _index_holds(existing: list[IndexFile], files: Mapping[str, Any]) -> bool:
    if not files:
        return False
    by_name = {f.filename: f for f in existing}
    for filename, digests in files.items():
        f = by_name.get(filename)
        if f is None or not isinstance(digests, dict) or f.hash_matches(digests) is not True:
            return False
    return True
