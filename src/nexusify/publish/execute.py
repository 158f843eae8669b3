"""``nexusify publish``, step 2: carry out the plan. Build, upload in dependency order, verify, record.

:func:`execute_plan` builds the packages that need it in parallel (one shared build env per
distinct ``[build-system].requires`` set), then walks the publish order: a file the index holds
with the same hash (or the same archive contents) is skipped, a file with the same name but
different content fails the package ("changed without a bump"), anything else is uploaded
(:mod:`nexusify.publish.files`). Dependents of a failed package are not uploaded. Uploaded
files are then verified by resolving ``name==version`` from the install index afresh
(:mod:`nexusify.publish.verify`); until that download matches, the package stays "unverified"
in the state (:mod:`nexusify.publish.state`).

The core never prints: progress goes to ``reporter`` callbacks, the result is a
:class:`~nexusify.publish.report.PublishReport`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor

from nexusify.config import Settings
from nexusify.dists.artifact import BuildResult
from nexusify.dists.envs import BuildEnvs
from nexusify.errors import AuthError, NexusifyError
from nexusify.index.client import IndexClient, index_client
from nexusify.publish.builds import build_cost, build_package, cached_build, dist_dir, prune_dist
from nexusify.publish.files import FilePublisher, StopUploads
from nexusify.publish.plan import PackagePlan, PublishOptions, PublishPlan, plan_publish
from nexusify.publish.report import FileOutcome, PackageOutcome, PublishReport, Reporter, file_kind
from nexusify.publish.state import Record, new_record, publish_lock, records_for, save_records
from nexusify.publish.verify import needs_verify, verify

NOT_VERIFIED_YET = "the run stopped before its download check"


def dry_run_report(plan: PublishPlan, started: float) -> PublishReport:
    report = PublishReport(plan.upload_url, plan.verify_url, True, [])
    for pl in plan.packages:
        if pl.action == "unchanged":
            o = PackageOutcome(pl.name, pl.version, pl.rel, "would-skip", pl.reason)
        else:
            then = ("compare with the index's files of this version and upload what is missing"
                    if pl.existing else "upload sdist and wheel")
            o = PackageOutcome(pl.name, pl.version, pl.rel, "would-build", f"{pl.reason}; would build, then {then}")
        o.files = [FileOutcome(f.filename, file_kind(f.filename), f.hashes.get("sha256", ""), "on-index")
                   for f in pl.existing]
        report.packages.append(o)
    report.seconds = time.monotonic() - started
    return report


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
    if options.dry_run:
        return dry_run_report(plan, started)
    report = PublishReport(plan.upload_url, plan.verify_url, False, [])

    base_env = dict(options.env if options.env is not None else os.environ)
    _prepare_state_dir(settings)
    envs = BuildEnvs(settings.build_env_path, base_env)
    lock = publish_lock(settings)
    own_client = client is None
    http = client or index_client(settings, plan.credentials)
    files = FilePublisher(plan, http, emit)
    records = records_for(plan.state, plan.upload_url)
    outcomes: dict[str, PackageOutcome] = {}
    to_verify: list[PackageOutcome] = []
    stop: NexusifyError | None = None
    jobs = max(1, options.jobs or settings.effective_jobs)
    try:
        # build envs are created all at once, in the background: pip waits on the network
        need_envs = [pl.requires for pl in plan.packages if pl.action == "build"
                     and (options.force_build or cached_build(dist_dir(settings, pl)) is None)]
        preparing = threading.Thread(target=envs.prepare, args=(need_envs,), daemon=True)
        preparing.start()
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures: dict[str, Future[BuildResult]] = {}
            # longest builds first (uploads still go in publish order): the last build to
            # finish is then a short one, which keeps both cores busy to the end
            for pl in sorted(plan.packages, key=lambda p: -build_cost(p, records)):
                if pl.action == "build":
                    futures[pl.normalized] = pool.submit(
                        build_package, settings, pl, plan.versions, envs, base_env, options.force_build)
            for pl in plan.packages:
                if pl.action == "unchanged":
                    outcome = PackageOutcome(pl.name, pl.version, pl.rel, "unchanged", pl.reason)
                    outcome.files = [FileOutcome(f, file_kind(f), h.get("sha256", ""), "present", h.get("md5", ""))
                                     for f, h in (records.get(pl.normalized, {}).get("files") or {}).items()]
                else:
                    outcome = _one(files, pl, futures[pl.normalized], outcomes, stop)
                    if isinstance(outcome.error, AuthError) and outcome.status == "failed" and stop is None:
                        stop = outcome.error
                outcomes[pl.normalized] = outcome
                if outcome.ok and outcome.status != "unchanged":
                    check = bool(needs_verify(pl, outcome)) and (options.verify or bool(pl.unverified))
                    if check:
                        to_verify.append(outcome)
                    seconds = round(outcome.build_seconds or 0.0, 3) or records.get(pl.normalized, {}).get("build_seconds")
                    records[pl.normalized] = new_record(
                        pl.version, pl.fingerprint, {f.filename: f.digests() for f in outcome.files}, seconds,
                        unverified=(pl.unverified or NOT_VERIFIED_YET) if check else None)
                emit("done", pl.name, outcome.to_dict())
        preparing.join()
        if to_verify:
            verify(plan, to_verify, emit)
            _record_verdicts(plan, to_verify, records)
    finally:
        lock.close()  # releases the lock
        if own_client:
            http.close()
        report.packages = [outcomes[pl.normalized] for pl in plan.packages if pl.normalized in outcomes]
        save_records(settings, plan.upload_url, [pl.normalized for pl in plan.packages], records)
        prune_dist(settings, plan.packages)
    report.build_envs_created = len(envs.created)
    report.seconds = time.monotonic() - started
    return report


def _prepare_state_dir(settings: Settings) -> None:
    settings.state_path.mkdir(parents=True, exist_ok=True)
    for part in ("dist", "build-envs", "publish.lock"):
        settings.state_file(part)  # a symlink out of the monorepo is refused before anything is built
    ignore = settings.state_file(".gitignore")
    if not ignore.exists():
        ignore.write_text("# nexusify's local state and caches (fingerprints, build envs, archives)\n*\n")


def _record_verdicts(plan: PublishPlan, checked: list[PackageOutcome], records: dict[str, Record]) -> None:
    """A verified package's record loses its "unverified" mark; a failed one keeps the reason."""
    by_name = {pl.name: pl for pl in plan.packages}
    for outcome in checked:
        record = records.get(by_name[outcome.name].normalized)
        if record is None:
            continue
        if outcome.verified:
            record.pop("unverified", None)
        elif outcome.verified is False:
            record["unverified"] = outcome.error.message if outcome.error else "the download check failed"


def _one(files: FilePublisher, pl: PackagePlan, future: Future[BuildResult], outcomes: Mapping[str, PackageOutcome],
         stop: NexusifyError | None) -> PackageOutcome:
    failed = [d for d in pl.deps if d in outcomes and not outcomes[d].ok]
    if stop is not None or failed:
        future.cancel()
        reason = (f"not uploaded: the index rejected the credentials ({stop.message.splitlines()[0]})" if stop
                  else f"not uploaded: it depends on {', '.join(failed)}, which did not publish")
        return PackageOutcome(pl.name, pl.version, pl.rel, "blocked", reason)
    try:
        result = future.result()
        files.emit("built", pl.name, {"seconds": result.seconds})
        outcome = files.publish_package(pl, result)
        outcome.build_seconds = result.seconds
        return outcome
    except StopUploads as exc:
        return PackageOutcome(pl.name, pl.version, pl.rel, "failed", exc.error.message, error=exc.error)
    except NexusifyError as exc:
        return PackageOutcome(pl.name, pl.version, pl.rel, "failed", _short(exc.message), error=exc)


def _short(message: str, limit: int = 70) -> str:
    first = message.splitlines()[0].split(": the index's")[0]
    return first if len(first) <= limit else first[: limit - 3] + "..."


def run_publish(settings: Settings, options: PublishOptions | None = None,
                reporter: Reporter | None = None) -> PublishReport:
    """Plan and execute a publish (the Python API the CLI, the demo and other tests use)."""
    options = options or PublishOptions()
    plan = plan_publish(settings, options)
    if reporter:
        reporter("planned", None, {"packages": [
            {"name": p.name, "version": p.version, "action": p.action, "reason": p.reason} for p in plan.packages]})
    return execute_plan(plan, options, reporter)
