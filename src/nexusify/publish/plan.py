"""``nexusify publish``: build every shared package and upload it to the index in dependency order.

Plan, then execute:

1. :func:`plan_publish` reads the monorepo (audit's model), validates everything (names,
   versions, cycles, every staged ``pyproject.toml`` rewrite), fingerprints each package's
   content, asks the index what it already holds, and decides per package: *unchanged*
   (fingerprint recorded and the index holds the recorded files: nothing to build) or *build*.
   It builds nothing and writes nothing; ``--dry-run`` prints it.
2. :func:`execute_plan` builds the packages that need it in parallel (one shared build env per
   distinct ``[build-system].requires`` set), then walks the publish order: a file the index
   holds with the same hash (or the same archive contents) is skipped, a file with the same
   name but different content fails the package ("changed without a bump"), anything else is
   uploaded with twine. Dependents of a failed package are not uploaded. Uploaded files are
   then verified by resolving ``name==version`` from the index URL afresh.

The core never prints: progress goes to ``reporter`` callbacks, the result is a
:class:`PublishReport` (``to_dict()`` for ``--json``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from nexusify import __version__
from nexusify.config import Settings, suggest
from nexusify.credentials import Credentials, mask_url, redact, resolve_credentials
from nexusify.dists.build import (
    SOURCE_DATE_EPOCH,
    Artifact,
    BuildEnvs,
    BuildResult,
    backend_of,
    build_project,
    check_artifact,
    describe_difference,
    equivalent_release,
    fingerprint,
    same_contents,
    stage_project,
)
from nexusify.errors import (
    AuthError,
    BuildError,
    ConfigError,
    IndexServerError,
    NexusifyError,
    OperationFailed,
    ProblemsFound,
    UsageError,
)
from nexusify.files import find_line, write_atomic
from nexusify.index.nexus import (
    IndexClient,
    IndexFile,
    NexusRest,
    SimpleIndex,
    make_client,
    parse_filename,
    same_version,
)
from nexusify.model import CycleError, Project, Workspace, relpath, workspace_for

log = logging.getLogger(__name__)

STATE_FILE = "publish-state.json"
STATE_LAYOUT = 1
ALREADY_THERE = re.compile(r"cannot be updated|does not allow updating assets|already exists", re.I)

Reporter = Callable[[str, str | None, Mapping[str, Any]], None]


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


@dataclass
class FileOutcome:
    filename: str
    kind: str
    sha256: str
    action: str  # uploaded | present | present-same-contents | present-compatible | on-index
    md5: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"filename": self.filename, "kind": self.kind, "sha256": self.sha256, "action": self.action}

    def digests(self) -> dict[str, str]:
        return {k: v for k, v in (("sha256", self.sha256), ("md5", self.md5)) if v}


@dataclass
class PackageOutcome:
    name: str
    version: str
    path: str
    status: str  # uploaded | present | unchanged | failed | blocked | would-build | would-skip
    reason: str = ""
    files: list[FileOutcome] = field(default_factory=list)
    error: NexusifyError | None = None
    verified: bool | None = None
    build_seconds: float | None = None

    @property
    def ok(self) -> bool:
        return self.status not in ("failed", "blocked")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "version": self.version, "path": self.path, "status": self.status,
            "reason": self.reason, "files": [f.to_dict() for f in self.files],
            "error": self.error.to_dict() if self.error else None, "verified": self.verified,
            "build_seconds": round(self.build_seconds, 3) if self.build_seconds is not None else None,
        }


@dataclass
class PublishReport:
    upload_url: str
    index_url: str
    dry_run: bool
    packages: list[PackageOutcome]
    seconds: float = 0.0
    build_envs_created: int = 0

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.packages)

    @property
    def uploaded(self) -> list[str]:
        return [f.filename for p in self.packages for f in p.files if f.action == "uploaded"]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.packages:
            out[p.status] = out.get(p.status, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "dry_run": self.dry_run, "upload_url": mask_url(self.upload_url),
            "index_url": mask_url(self.index_url), "seconds": round(self.seconds, 3),
            "counts": self.counts(), "uploaded_files": self.uploaded,
            "build_envs_created": self.build_envs_created,
            "packages": [p.to_dict() for p in self.packages],
        }


def _select(ws: Workspace, order: list[str], wanted: Sequence[str]) -> list[str]:
    if not wanted:
        return order
    chosen: set[str] = set()
    for raw in wanted:
        norm = canonicalize_name(raw)
        project = ws.by_name.get(norm)
        if project is None or project.role != "shared":
            near = suggest(norm, order)
            raise UsageError(
                f"{raw!r} is not a shared package of this monorepo" + (f"; did you mean {near!r}?" if near else ""),
                hint=f"shared packages: {', '.join(order) or '(none)'}",
            )
        chosen.add(norm)
        chosen.update(ws.transitive(project, runtime_only=True))
    return [n for n in order if n in chosen]


def _state_path(settings: Settings) -> Path:
    return settings.state_path / STATE_FILE


def load_state(settings: Settings) -> dict[str, Any]:
    path = _state_path(settings)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"layout": STATE_LAYOUT, "indexes": {}}
    if not isinstance(data, dict) or data.get("layout") != STATE_LAYOUT or not isinstance(data.get("indexes"), dict):
        return {"layout": STATE_LAYOUT, "indexes": {}}
    return data


def _index_key(url: str) -> str:
    return mask_url(url).rstrip("/") + "/"


def _client_for(settings: Settings, credentials: Credentials) -> IndexClient:
    origins = tuple(u for u in (settings.upload_url, settings.upload_simple_url, settings.simple_url,
                                settings.nexus_url) if u)
    return make_client(timeout=float(settings.timeout), credentials=credentials, auth_origins=origins)


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
    shared_files = {relpath(p.pyproject, ws.root) for p in ws.shared}
    blocking = [p for p in ws.problems if p.severity == "error" and p.path in shared_files]
    try:
        order = ws.publish_order()
    except CycleError as exc:
        raise ProblemsFound(
            f"shared packages depend on each other in a cycle: {' -> '.join(exc.cycle)}",
            hint="break the cycle: move the shared code both need into a package of its own",
        ) from exc
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
    versions = {p.normalized: p.version for p in ws.shared if p.normalized and p.version}
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

    credentials = resolve_credentials(settings.username, upload_url, env, url_password=settings.url_password)
    uses_rest = settings.is_nexus and not settings.repository_url
    check_url = settings.upload_simple_url or (upload_url.rstrip("/") + "/simple/")
    own_client = client is None
    http = client or _client_for(settings, credentials)
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

    state = load_state(settings)
    records = state["indexes"].get(_index_key(upload_url), {})
    for pl, files in zip(plans, found, strict=True):
        pl.existing = [f for f in files if (parsed := parse_filename(f.filename))
                       and parsed[0] == pl.normalized and same_version(parsed[1], pl.version)]
        rec = records.get(pl.normalized)
        if options.force_build:
            pl.action, pl.reason = "build", "--force-build"
        elif not rec:
            pl.action, pl.reason = "build", "no record of an earlier publish here"
        elif rec.get("fingerprint") != pl.fingerprint or rec.get("version") != pl.version:
            pl.action, pl.reason = "build", "sources or version changed since the last publish"
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


# --------------------------------------------------------------------------- execute


class _Uploader:
    """twine's Repository, uploading one file per call, quietly, with a timeout."""

    def __init__(self, url: str, credentials: Credentials, timeout: float) -> None:
        import requests_toolbelt  # type: ignore[import-untyped]
        from twine.repository import Repository

        auth = credentials.auth()
        timeout_s = timeout

        class _Repo(Repository):
            def _upload(self, package: Any) -> Any:
                data = self._convert_metadata_to_list_of_tuples(package.metadata_dictionary())
                data += [(":action", "file_upload"), ("protocol_version", "1")]
                with open(package.filename, "rb") as fp:
                    data.append(("content", (package.basefilename, fp, "application/octet-stream")))
                    encoder = requests_toolbelt.MultipartEncoder(data)
                    return self.session.post(self.url, data=encoder, allow_redirects=False,
                                             headers={"Content-Type": encoder.content_type}, timeout=timeout_s)

        self.repo = _Repo(url, auth[0] if auth else None, auth[1] if auth else None, disable_progress_bar=True)

    def upload(self, path: Path) -> Any:
        from twine.package import PackageFile

        return self.repo._upload(PackageFile.from_filename(str(path), None))

    def close(self) -> None:
        self.repo.close()


def twine_check(artifact: Artifact) -> list[str]:
    """twine's own check (metadata parses, the long description renders): problems found."""
    from twine.commands.check import _check_file, _WarningStream
    from twine.exceptions import InvalidDistribution

    try:
        _warnings, ok = _check_file(str(artifact.path), _WarningStream())
    except InvalidDistribution as exc:
        return [f"{artifact.filename}: {exc}"]
    return [] if ok else [f"{artifact.filename}: the long description has markup errors and would not render"]


def _dist_dir(settings: Settings, pl: PackagePlan) -> Path:
    return settings.state_path / "dist" / f"{pl.normalized}-{pl.fingerprint[:16]}"


def _cached_build(folder: Path) -> BuildResult | None:
    try:
        meta = json.loads((folder / "artifacts.json").read_text())
        sdist = Artifact.from_path(folder / meta["sdist"], "sdist")
        wheel = Artifact.from_path(folder / meta["wheel"], "wheel")
    except (OSError, ValueError, KeyError):
        return None
    return BuildResult(sdist, wheel, 0.0, "(reused from the cache)")


def build_package(settings: Settings, pl: PackagePlan, versions: Mapping[str, str], envs: BuildEnvs,
                  base_env: Mapping[str, str], force: bool = False) -> BuildResult:
    """Stage, build, and check one package (or reuse the archives built for this fingerprint)."""
    out = _dist_dir(settings, pl)
    if not force:
        cached = _cached_build(out)
        if cached is not None:
            return cached
    if out.exists():
        shutil.rmtree(out)
    env = envs.get(pl.requires)
    with tempfile.TemporaryDirectory(prefix="nexusify-stage-") as tmp:
        staged = stage_project(pl.project.path, pl.staged_text, Path(tmp) / pl.project.path.name)
        build_env = dict(base_env)
        if pl.project.version_dynamic:
            # a VCS-derived version (setuptools-scm, hatch-vcs, pdm-backend's scm source) cannot be
            # read from the staged copy, which has no .git: pin it to the version the audit resolved
            build_env.update(scm_version_env(pl.name, pl.version))
        result = build_project(staged, out, env, backend=pl.backend, backend_path=pl.backend_path,
                               base_env=build_env, timeout=max(600.0, float(settings.timeout)), name=pl.name)
    internal = {d.normalized: versions[d.normalized] for d in pl.project.local_deps
                if d.resolved is not None and d.runtime and d.normalized in versions and d.kind != "requirements"}
    problems = [msg for a in result.artifacts for msg in check_artifact(a, internal)]
    problems += [msg for a in result.artifacts for msg in twine_check(a)]
    if problems:
        shutil.rmtree(out, ignore_errors=True)
        raise BuildError(
            f"{pl.name} {pl.version}: the built archives are not fit to publish:\n" + "\n".join(f"  {m}" for m in problems),
            path=relpath(pl.project.pyproject, settings.root),
            hint="nothing of this package was uploaded; fix the dependency declarations in its pyproject.toml",
        )
    (out / "artifacts.json").write_text(json.dumps({"sdist": result.sdist.filename, "wheel": result.wheel.filename}))
    return result


def scm_version_env(name: str, version: str) -> dict[str, str]:
    """Variables that make VCS-version plugins report ``version`` (they read them first)."""
    upper = re.sub(r"[^A-Z0-9]", "_", canonicalize_name(name).upper())
    return {
        "SETUPTOOLS_SCM_PRETEND_VERSION": version,
        f"SETUPTOOLS_SCM_PRETEND_VERSION_FOR_{upper}": version,
        "PDM_BUILD_SCM_VERSION": version,
    }


def _find_match(existing: list[IndexFile], artifact: Artifact) -> IndexFile | None:
    for f in existing:
        if f.filename == artifact.filename:
            return f
    mine = parse_filename(artifact.filename)
    for f in existing:
        theirs = parse_filename(f.filename)
        if mine and theirs and mine[2] == "sdist" and theirs[2] == "sdist" and f.filename.endswith(".tar.gz"):
            return f  # the same version's sdist under older file naming rules
    return None


class _StopUploads(Exception):
    """The index rejected the credentials mid-run: every later upload is pointless."""

    def __init__(self, error: NexusifyError) -> None:
        super().__init__(error.message)
        self.error = error


def _kind(filename: str) -> str:
    parsed = parse_filename(filename)
    return parsed[2] if parsed else "?"


class _Run:
    """One execution of a plan: owns the HTTP client, the twine uploader, and the outcomes."""

    def __init__(self, plan: PublishPlan, options: PublishOptions, emit: Reporter, http: IndexClient) -> None:
        self.plan = plan
        self.settings = plan.settings
        self.options = options
        self.emit = emit
        self.http = http
        self.index = SimpleIndex(http, self.settings.upload_simple_url or plan.upload_url.rstrip("/") + "/simple/")
        self._uploader: _Uploader | None = None
        self._lock = threading.Lock()

    @property
    def uploader(self) -> _Uploader:
        if self._uploader is None:
            self._uploader = _Uploader(self.plan.upload_url, self.plan.credentials, float(self.settings.timeout))
        return self._uploader

    def close(self) -> None:
        if self._uploader is not None:
            self._uploader.close()

    def _redact(self, text: str) -> str:
        return redact(text, self.plan.credentials.password)

    def _lookup(self, pl: PackagePlan) -> list[IndexFile]:
        if self.plan.uses_rest:
            assert self.settings.nexus_url is not None
            files = NexusRest(self.http, self.settings.nexus_url, self.settings.repository).project_files(pl.name)
        else:
            files = self.index.project_files(pl.name)
        return [f for f in files if (p := parse_filename(f.filename)) and p[0] == pl.normalized and same_version(p[1], pl.version)]

    def _download(self, f: IndexFile) -> bytes:
        return self.index.download(f)

    def _compare(self, pl: PackagePlan, artifact: Artifact, match: IndexFile) -> FileOutcome:
        """The index holds a file for this artifact: the same release (skip) or a change
        without a version bump (raise). Outcomes name the index's file and its hashes, which is
        what the next run checks the index against."""
        verdict = match.hash_matches(artifact.digests)
        if verdict is True:
            return FileOutcome(match.filename, artifact.kind, artifact.sha256, "present", artifact.md5)
        theirs = self._download(match)
        mine = artifact.path.read_bytes()

        def present(action: str) -> FileOutcome:
            return FileOutcome(match.filename, artifact.kind, hashlib.sha256(theirs).hexdigest(), action,
                               hashlib.md5(theirs, usedforsecurity=False).hexdigest())

        if mine == theirs:
            return present("present")
        if same_contents(mine, theirs, artifact.filename):
            return present("present-same-contents")
        internal = {d: self.plan.versions[d] for d in pl.deps if d in self.plan.versions}
        if equivalent_release(mine, theirs, artifact.filename, internal):
            return present("present-compatible")
        line = find_line(pl.project.text, r"^\s*version\s*=")
        raise IndexServerError(
            f"version {pl.version} of {pl.name} changed without a bump: the index's {match.filename} differs "
            f"from the one built now ({describe_difference(mine, theirs, artifact.filename)})",
            path=relpath(pl.project.pyproject, self.settings.root), line=line,
            hint=f"bump the version of {pl.name} (e.g. {_next_version(pl.version)}) and re-run; a published "
                 "version is immutable, and installs of it must not change under anyone's feet",
        )

    def _upload_file(self, pl: PackagePlan, artifact: Artifact) -> FileOutcome:
        attempts = 3
        for attempt in range(1, attempts + 1):
            try:
                response = self.uploader.upload(artifact.path)
                status, body = response.status_code, self._redact(f"{response.reason or ''} {response.text[:300]}".strip())
            except Exception as exc:  # requests' connection errors: check before retrying
                if isinstance(exc, NexusifyError):
                    raise
                status, body = None, self._redact(f"{type(exc).__name__}: {exc}")
            if status in (200, 201):
                return FileOutcome(artifact.filename, artifact.kind, artifact.sha256, "uploaded", artifact.md5)
            if (status == 400 and ALREADY_THERE.search(body)) or status == 409:
                match = _find_match(self._lookup(pl), artifact)
                if match is None:
                    raise IndexServerError(
                        f"uploading {artifact.filename}: the index says it exists ({body}) but does not list it",
                        hint="the index's listing may lag behind; re-run in a minute")
                return self._compare(pl, artifact, match)
            if status in (401, 403):
                what = "401 Unauthorized" if status == 401 else "403 Forbidden"
                raise _StopUploads(AuthError(
                    f"uploading {artifact.filename} to {mask_url(self.plan.upload_url)}: {what}",
                    hint=("set NEXUS_USERNAME/--username and NEXUS_PASSWORD (or .pypirc/keyring)" if status == 401
                          else "the user needs the nx-repository-view-pypi-<repo>-add privilege on this repository"),
                ))
            if status == 413:
                raise IndexServerError(
                    f"uploading {artifact.filename} ({artifact.size} bytes): 413 Request Entity Too Large",
                    hint="a reverse proxy in front of the index limits upload size: raise nginx client_max_body_size")
            if status in (301, 302, 303, 307, 308):
                raise IndexServerError(
                    f"uploading {artifact.filename}: the upload URL {mask_url(self.plan.upload_url)} redirects (HTTP {status})",
                    hint="use the hosted repository's URL exactly, with its trailing slash; group/proxy repositories are read-only")
            if status == 503 and self.plan.uses_rest:
                raise IndexServerError(f"uploading {artifact.filename}: 503 from Nexus ({body})",
                                       hint="Nexus may have become read-only; check GET /service/rest/v1/status/writable")
            if status is not None and status < 500:
                raise IndexServerError(f"uploading {artifact.filename}: HTTP {status} {body}",
                                       hint="check the upload URL points at a hosted PyPI repository: group and "
                                            "proxy repositories are read-only (install from the group with "
                                            "--index-repository, upload to its hosted member with --repository)")
            # 5xx or a connection error: the file may have arrived; look before retrying
            match = _find_match(self._lookup(pl), artifact)
            if match is not None and match.hash_matches(artifact.digests):
                return FileOutcome(artifact.filename, artifact.kind, artifact.sha256, "uploaded", artifact.md5)
            if attempt < attempts:
                time.sleep(0.5 * 2 ** (attempt - 1))
                continue
            raise IndexServerError(
                f"uploading {artifact.filename} failed after {attempts} attempts: "
                + (f"HTTP {status} {body}" if status else body),
                hint="check the index server's health and log, then re-run (published files are skipped)")
        raise AssertionError("unreachable")  # pragma: no cover

    def publish_package(self, pl: PackagePlan, result: BuildResult) -> PackageOutcome:
        outcome = PackageOutcome(pl.name, pl.version, pl.rel, "present", "already on the index")
        # compare everything first: a changed-without-a-bump file stops the package before any upload
        pending: list[Artifact] = []
        for artifact in result.artifacts:
            match = _find_match(pl.existing, artifact)
            if match is None:
                pending.append(artifact)
            else:
                outcome.files.append(self._compare(pl, artifact, match))
        for artifact in pending:
            self.emit("uploading", pl.name, {"file": artifact.filename})
            outcome.files.append(self._upload_file(pl, artifact))
        if any(f.action == "uploaded" for f in outcome.files):
            outcome.status, outcome.reason = "uploaded", pl.reason
        elif any(f.action == "present-compatible" for f in outcome.files):
            outcome.reason = ("already on the index: the same release (its metadata differs only in form, "
                              "or in ranges that admit the current versions of the packages it needs)")
        elif any(f.action == "present-same-contents" for f in outcome.files):
            outcome.reason = "already on the index (same archive contents)"
        return outcome

    def verify(self, report: PublishReport) -> None:
        """A fresh resolver query for name==version on the install index: every uploaded file is
        listed and downloads with the hash that was uploaded."""
        with make_client(timeout=float(self.settings.timeout), credentials=self.plan.credentials,
                         auth_origins=tuple(u for u in (self.plan.verify_url, self.plan.upload_url,
                                                        self.settings.nexus_url) if u)) as fresh:
            index = SimpleIndex(fresh, self.plan.verify_url)
            by_name = self.plan.by_name()
            for outcome in report.packages:
                uploaded = [f for f in outcome.files if f.action == "uploaded"]
                if outcome.status != "uploaded" or not uploaded:
                    continue
                pl = by_name[canonicalize_name(outcome.name)]
                problems: list[str] = []
                listed: dict[str, IndexFile] = {}
                for wait in (0.0, 0.5, 1.0, 2.0):
                    time.sleep(wait)
                    try:
                        files = index.project_files(pl.name)
                    except NexusifyError as exc:
                        problems = [exc.message]
                        continue
                    listed = {f.filename: f for f in files if (p := parse_filename(f.filename))
                              and p[0] == pl.normalized and same_version(p[1], pl.version)}
                    if all(f.filename in listed for f in uploaded):
                        problems = []
                        break
                    problems = [f"{f.filename} is not listed on {mask_url(index.project_url(pl.name))}"
                                for f in uploaded if f.filename not in listed]
                if not problems:
                    for f in uploaded:
                        try:
                            data = index.download(listed[f.filename])
                        except NexusifyError as exc:
                            problems.append(exc.message)
                            continue
                        if hashlib.sha256(data).hexdigest() != f.sha256:
                            problems.append(f"{f.filename} downloads with a different sha256 than was uploaded")
                outcome.verified = not problems
                if problems:
                    outcome.status = "failed"
                    outcome.error = IndexServerError(
                        f"{pl.name} {pl.version} was uploaded but does not resolve from {mask_url(self.plan.verify_url)}: "
                        + "; ".join(problems),
                        hint="check that the install index (index-repository / --index-url) includes the hosted "
                             "repository; a Nexus group may serve a cached listing for a while")
                    outcome.reason = "uploaded, but verification failed"
                self.emit("verified", pl.name, {"ok": not problems})


def _next_version(version: str) -> str:
    from packaging.version import InvalidVersion, Version

    try:
        v = Version(version)
    except InvalidVersion:
        return "a higher version"
    major, minor, micro = [*v.release, 0, 0, 0][:3]
    return f"{major}.{minor}.{micro + 1}"


def execute_plan(
    plan: PublishPlan,
    options: PublishOptions | None = None,
    reporter: Reporter | None = None,
    *,
    client: IndexClient | None = None,
) -> PublishReport:
    """Build what the plan says, upload in publish order, verify; see the module docstring."""
    options = options or PublishOptions()
    settings = plan.settings
    started = time.monotonic() - plan.seconds
    emit: Reporter = reporter or (lambda _e, _n, _d: None)
    report = PublishReport(plan.upload_url, plan.verify_url, options.dry_run, [])
    if options.dry_run:
        for pl in plan.packages:
            if pl.action == "unchanged":
                o = PackageOutcome(pl.name, pl.version, pl.rel, "would-skip", pl.reason)
            else:
                then = ("compare with the index's files of this version and upload what is missing"
                        if pl.existing else "upload sdist and wheel")
                o = PackageOutcome(pl.name, pl.version, pl.rel, "would-build", f"{pl.reason}; would build, then {then}")
            o.files = [FileOutcome(f.filename, _kind(f.filename), f.hashes.get("sha256", ""), "on-index") for f in pl.existing]
            report.packages.append(o)
        report.seconds = time.monotonic() - started
        return report

    base_env = dict(options.env if options.env is not None else os.environ)
    settings.state_path.mkdir(parents=True, exist_ok=True)
    ignore = settings.state_path / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# nexusify's local state and caches (fingerprints, build envs, archives)\n*\n")
    envs = BuildEnvs(settings.build_env_path, base_env)
    lock = _publish_lock(settings)
    own_client = client is None
    http = client or _client_for(settings, plan.credentials)
    run = _Run(plan, options, emit, http)
    records = plan.state["indexes"].setdefault(_index_key(plan.upload_url), {})
    outcomes: dict[str, PackageOutcome] = {}
    stop: NexusifyError | None = None
    jobs = max(1, options.jobs or settings.effective_jobs)
    try:
        # build envs are created all at once, in the background: pip waits on the network
        need_envs = [pl.requires for pl in plan.packages if pl.action == "build"
                     and (options.force_build or _cached_build(_dist_dir(settings, pl)) is None)]
        preparing = threading.Thread(target=envs.prepare, args=(need_envs,), daemon=True)
        preparing.start()
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures: dict[str, Future[BuildResult]] = {}
            # longest builds first (uploads still go in publish order): the last build to
            # finish is then a short one, which keeps both cores busy to the end
            for pl in sorted(plan.packages, key=lambda p: -_build_cost(p, records)):
                if pl.action == "build":
                    futures[pl.normalized] = pool.submit(
                        build_package, settings, pl, plan.versions, envs, base_env, options.force_build)
            for pl in plan.packages:
                if pl.action == "unchanged":
                    outcome = PackageOutcome(pl.name, pl.version, pl.rel, "unchanged", pl.reason)
                    outcome.files = [FileOutcome(f, _kind(f), h.get("sha256", ""), "present", h.get("md5", ""))
                                     for f, h in (records.get(pl.normalized, {}).get("files") or {}).items()]
                else:
                    outcome = _one(run, pl, futures[pl.normalized], outcomes, stop)
                    if isinstance(outcome.error, AuthError) and outcome.status == "failed" and stop is None:
                        stop = outcome.error
                outcomes[pl.normalized] = outcome
                if outcome.ok and outcome.status != "unchanged":
                    records[pl.normalized] = {
                        "version": pl.version, "fingerprint": pl.fingerprint,
                        "files": {f.filename: f.digests() for f in outcome.files},
                        "published": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        "build_seconds": round(outcome.build_seconds or 0.0, 3) or
                        records.get(pl.normalized, {}).get("build_seconds"),
                    }
                emit("done", pl.name, outcome.to_dict())
        preparing.join()
        report.packages = [outcomes[pl.normalized] for pl in plan.packages]
        if options.verify:
            run.verify(report)
            for o in report.packages:
                if o.verified is False:
                    records.pop(canonicalize_name(o.name), None)
    finally:
        run.close()
        lock.close()  # releases the lock
        if own_client:
            http.close()
        report.packages = [outcomes[pl.normalized] for pl in plan.packages if pl.normalized in outcomes]
        _save_records(settings, plan, records)
        _prune_dist(settings, plan)
    report.build_envs_created = len(envs.created)
    report.seconds = time.monotonic() - started
    return report


def _save_records(settings: Settings, plan: PublishPlan, records: Mapping[str, Any]) -> None:
    """Write this run's records over the state on disk (re-read under the lock, so records of
    packages this run did not touch, e.g. from a run with other PACKAGE arguments, are kept)."""
    state = load_state(settings)
    mine = state["indexes"].setdefault(_index_key(plan.upload_url), {})
    for pl in plan.packages:
        if pl.normalized in records:
            mine[pl.normalized] = records[pl.normalized]
        else:
            mine.pop(pl.normalized, None)
    write_atomic(_state_path(settings), json.dumps(state, indent=2, sort_keys=True) + "\n")


def _publish_lock(settings: Settings) -> Any:
    """An exclusive lock on the monorepo's publish state: two runs at once would race on it."""
    import fcntl

    fh = (settings.state_path / "publish.lock").open("a")
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise OperationFailed(
            f"another `nexusify publish` is running on {settings.root}",
            hint="wait for it to finish (its lock is .nexusify/publish.lock), then re-run",
        ) from None
    return fh


_BACKEND_COST = (("setuptools", 1.0), ("pdm", 0.6), ("hatchling", 0.5), ("poetry", 0.4), ("flit", 0.3))


def _build_cost(pl: PackagePlan, records: Mapping[str, Any]) -> float:
    """Expected build time: the last measured one, else a guess from the backend."""
    seconds = records.get(pl.normalized, {}).get("build_seconds")
    if isinstance(seconds, int | float) and seconds > 0:
        return float(seconds)
    return next((cost for key, cost in _BACKEND_COST if key in pl.backend), 0.8)


def _one(run: _Run, pl: PackagePlan, future: Future[BuildResult], outcomes: Mapping[str, PackageOutcome],
         stop: NexusifyError | None) -> PackageOutcome:
    failed = [d for d in pl.deps if d in outcomes and not outcomes[d].ok]
    if stop is not None or failed:
        future.cancel()
        reason = (f"not uploaded: the index rejected the credentials ({stop.message.splitlines()[0]})" if stop
                  else f"not uploaded: it depends on {', '.join(failed)}, which did not publish")
        return PackageOutcome(pl.name, pl.version, pl.rel, "blocked", reason)
    try:
        result = future.result()
        run.emit("built", pl.name, {"seconds": result.seconds})
        outcome = run.publish_package(pl, result)
        outcome.build_seconds = result.seconds
        return outcome
    except _StopUploads as exc:
        return PackageOutcome(pl.name, pl.version, pl.rel, "failed", exc.error.message, error=exc.error)
    except NexusifyError as exc:
        return PackageOutcome(pl.name, pl.version, pl.rel, "failed", _short(exc.message), error=exc)


def _short(message: str, limit: int = 70) -> str:
    first = message.splitlines()[0].split(": the index's")[0]
    return first if len(first) <= limit else first[: limit - 3] + "..."


def _prune_dist(settings: Settings, plan: PublishPlan) -> None:
    """Keep only the archives of the current fingerprints (older builds are just a cache)."""
    dist = settings.state_path / "dist"
    if not dist.is_dir():
        return
    keep = {_dist_dir(settings, pl).name for pl in plan.packages}
    mine = {pl.normalized for pl in plan.packages}
    for d in dist.iterdir():
        prefix = d.name.rsplit("-", 1)[0]
        if d.name not in keep and prefix in mine:
            shutil.rmtree(d, ignore_errors=True)


def run_publish(settings: Settings, options: PublishOptions | None = None,
                reporter: Reporter | None = None) -> PublishReport:
    """Plan and execute a publish (the Python API the CLI, the demo and other tests use)."""
    options = options or PublishOptions()
    plan = plan_publish(settings, options)
    if reporter:
        reporter("planned", None, {"packages": [
            {"name": p.name, "version": p.version, "action": p.action, "reason": p.reason} for p in plan.packages]})
    return execute_plan(plan, options, reporter)
