"""Proving a publish: resolve ``name==version`` from the install index afresh and download every file.

A package is verified when each of its files is listed on the install index and downloads with
the sha256 that was uploaded (or that the index held). Checked: every package that uploaded a
file, and every package whose last upload was not verified, whatever this run did with it: the
index page's hash is no proof for those, only a download is.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from packaging.utils import canonicalize_name

from nexusify.credentials import mask_url
from nexusify.errors import IndexServerError, NexusifyError
from nexusify.index.client import index_client
from nexusify.index.pages import IndexFile, SimpleIndex, parse_filename, same_version
from nexusify.publish.plan import PackagePlan, PublishPlan
from nexusify.publish.report import FileOutcome, PackageOutcome, Reporter

WAITS = (0.0, 0.5, 1.0, 2.0)  # a listing may lag behind an upload (a Nexus group's cache)


def needs_verify(pl: PackagePlan, outcome: PackageOutcome) -> list[FileOutcome]:
    """The files of ``outcome`` a download must prove (none for a failed or blocked package)."""
    if not outcome.ok or not outcome.files:
        return []
    if pl.unverified and outcome.status != "unchanged":
        return list(outcome.files)
    if outcome.status != "uploaded":
        return []
    return [f for f in outcome.files if f.action == "uploaded"]


def verify_package(index: SimpleIndex, pl: PackagePlan, files: list[FileOutcome],
                   sleep: Callable[[float], None] = time.sleep) -> list[str]:
    """Problems found resolving and downloading ``files`` of ``pl`` from ``index`` (none: verified)."""
    problems: list[str] = []
    listed: dict[str, IndexFile] = {}
    for wait in WAITS:
        sleep(wait)
        try:
            found = index.project_files(pl.name)
        except NexusifyError as exc:
            problems = [exc.message]
            continue
        listed = {f.filename: f for f in found if (p := parse_filename(f.filename))
                  and p[0] == pl.normalized and same_version(p[1], pl.version)}
        if all(f.filename in listed for f in files):
            problems = []
            break
        problems = [f"{f.filename} is not listed on {mask_url(index.project_url(pl.name))}"
                    for f in files if f.filename not in listed]
    if problems:
        return problems
    for f in files:
        try:
            data = index.download(listed[f.filename])
        except NexusifyError as exc:
            problems.append(exc.message)
            continue
        got = hashlib.sha256(data).hexdigest()
        if got != f.sha256:
            problems.append(f"{f.filename} downloads with sha256 {got[:12]}..., not the {f.sha256[:12]}... "
                            "that was uploaded")
    return problems


def verify(plan: PublishPlan, outcomes: list[PackageOutcome], emit: Reporter) -> None:
    """Verify what needs it (see the module docstring); a package that fails is marked failed,
    with ``verified`` False and the reason in its error."""
    by_name = plan.by_name()
    with index_client(plan.settings, plan.credentials, extra_urls=(plan.verify_url,)) as fresh:
        index = SimpleIndex(fresh, plan.verify_url)
        for outcome in outcomes:
            pl = by_name[canonicalize_name(outcome.name)]
            files = needs_verify(pl, outcome)
            if not files:
                continue
            problems = verify_package(index, pl, files)
            outcome.verified = not problems
            if problems:
                outcome.status = "failed"
                outcome.error = IndexServerError(
                    f"{pl.name} {pl.version} was uploaded but does not resolve from {mask_url(plan.verify_url)}: "
                    + "; ".join(problems),
                    hint="check that the install index (index-repository / --index-url) includes the hosted "
                         "repository, and what serves its files (a proxy or cache in front of it); "
                         "until a download matches, every publish checks this package again")
                outcome.reason = "uploaded, but verification failed"
            emit("verified", pl.name, {"ok": not problems})
