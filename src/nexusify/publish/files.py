"""Publishing one package's files: compare with what the index holds, upload the rest.

A file the index already holds is compared by content (:func:`nexusify.dists.archives.compare_release`):
the same release is skipped, anything else is "changed without a bump". An upload the index
refuses with any 4xx is not judged by the answer's text (pypiserver's 409 page, Nexus' 400
reasons, a proxy's own page): the index is read again and the content decides; only when the
file is not there does the refusal become an error. A 5xx or a lost connection is retried,
after looking whether the file arrived anyway.
"""

from __future__ import annotations

import hashlib
import re
import time
from typing import Any

from nexusify.dists.archives import compare_release, describe_difference
from nexusify.dists.artifact import Artifact, BuildResult
from nexusify.dists.checks import metadata_text
from nexusify.errors import AuthError, IndexServerError, NexusifyError
from nexusify.files import find_line
from nexusify.index.client import IndexClient
from nexusify.index.nexus_rest import NexusRest
from nexusify.index.pages import IndexFile, SimpleIndex, parse_filename, same_version
from nexusify.index.upload import upload_file
from nexusify.model import relpath
from nexusify.publish.plan import PackagePlan, PublishPlan
from nexusify.publish.report import FileOutcome, PackageOutcome, Reporter

# what indexes answer when a file exists (Nexus 3.70-, 3.71+, pypiserver): used only to word the
# error when the index then does not list the file
ALREADY_THERE = re.compile(r"cannot be updated|does not allow updating assets|already exists", re.I)
_ACTION = {"same-bytes": "present", "same-contents": "present-same-contents", "compatible": "present-compatible"}


class StopUploads(Exception):
    """The index rejected the credentials mid-run: every later upload is pointless."""

    def __init__(self, error: NexusifyError) -> None:
        super().__init__(error.message)
        self.error = error


def find_match(existing: list[IndexFile], artifact: Artifact) -> IndexFile | None:
    """The index's file that stands for ``artifact``: the same name, or the same version's sdist
    under older file naming rules."""
    for f in existing:
        if f.filename == artifact.filename:
            return f
    mine = parse_filename(artifact.filename)
    for f in existing:
        theirs = parse_filename(f.filename)
        if mine and theirs and mine[2] == "sdist" and theirs[2] == "sdist" and f.filename.endswith(".tar.gz"):
            return f
    return None


def next_version(version: str) -> str:
    from packaging.version import InvalidVersion, Version

    try:
        v = Version(version)
    except InvalidVersion:
        return "a higher version"
    major, minor, micro = [*v.release, 0, 0, 0][:3]
    return f"{major}.{minor}.{micro + 1}"


class FilePublisher:
    """One run's uploads and comparisons, through one index client."""

    def __init__(self, plan: PublishPlan, http: IndexClient, emit: Reporter, *,
                 sleep: Any = time.sleep) -> None:
        self.plan = plan
        self.settings = plan.settings
        self.http = http
        self.emit = emit
        self._sleep = sleep
        self.index = SimpleIndex(http, self.settings.upload_simple_url or plan.upload_url.rstrip("/") + "/simple/")

    def lookup(self, pl: PackagePlan) -> list[IndexFile]:
        """The index's files of this package version, read afresh."""
        if self.plan.uses_rest:
            assert self.settings.nexus_url is not None
            files = NexusRest(self.http, self.settings.nexus_url, self.settings.repository).project_files(pl.name)
        else:
            files = self.index.project_files(pl.name)
        return [f for f in files if (p := parse_filename(f.filename)) and p[0] == pl.normalized
                and same_version(p[1], pl.version)]

    def compare(self, pl: PackagePlan, artifact: Artifact, match: IndexFile) -> FileOutcome:
        """The index holds a file for this artifact: the same release (skip) or a change without
        a version bump (raise). Outcomes name the index's file and its hashes, which is what the
        next run checks the index against."""
        if match.hash_matches(artifact.digests) is True:
            return FileOutcome(match.filename, artifact.kind, artifact.sha256, "present", artifact.md5)
        theirs = self.index.download(match)
        mine = artifact.path.read_bytes()
        internal = {d: self.plan.versions[d] for d in pl.deps if d in self.plan.versions}
        verdict = compare_release(mine, theirs, artifact.filename, internal)
        if verdict != "different":
            return FileOutcome(match.filename, artifact.kind, hashlib.sha256(theirs).hexdigest(), _ACTION[verdict],
                               hashlib.md5(theirs, usedforsecurity=False).hexdigest())
        raise IndexServerError(
            f"version {pl.version} of {pl.name} changed without a bump: the index's {match.filename} differs "
            f"from the one built now ({describe_difference(mine, theirs, artifact.filename)})",
            path=relpath(pl.project.pyproject, self.settings.root), line=find_line(pl.project.text, r"^\s*version\s*="),
            hint=f"bump the version of {pl.name} (e.g. {next_version(pl.version)}) and re-run; a published "
                 "version is immutable, and installs of it must not change under anyone's feet",
        )

    def upload(self, pl: PackagePlan, artifact: Artifact) -> FileOutcome:
        attempts = 3
        metadata = metadata_text(artifact)
        for attempt in range(1, attempts + 1):
            status: int | None
            try:
                answer = upload_file(self.http, self.plan.upload_url, artifact.path, metadata)
                status, body = answer.status, answer.describe()
            except IndexServerError as exc:  # not reached, or timed out: the file may have arrived
                status, body = None, exc.message
            if status in (200, 201):
                return FileOutcome(artifact.filename, artifact.kind, artifact.sha256, "uploaded", artifact.md5)
            if status is not None and 400 <= status < 500:
                return self._refused(pl, artifact, status, body)
            if status in (301, 302, 303, 307, 308):
                raise IndexServerError(
                    f"uploading {artifact.filename}: the upload URL {self._url()} redirects (HTTP {status})",
                    hint="use the hosted repository's URL exactly, with its trailing slash; group/proxy repositories are read-only")
            if status == 503 and self.plan.uses_rest:
                raise IndexServerError(f"uploading {artifact.filename}: 503 from Nexus ({body})",
                                       hint="Nexus may have become read-only; check GET /service/rest/v1/status/writable")
            if status is not None and status < 500:
                raise IndexServerError(f"uploading {artifact.filename}: HTTP {status} {body}",
                                       hint="check the upload URL points at the index's upload endpoint")
            # 5xx or a connection error: the file may have arrived; look before retrying
            match = find_match(self.lookup(pl), artifact)
            if match is not None and match.hash_matches(artifact.digests):
                return FileOutcome(artifact.filename, artifact.kind, artifact.sha256, "uploaded", artifact.md5)
            if attempt < attempts:
                self._sleep(0.5 * 2 ** (attempt - 1))
                continue
            raise IndexServerError(
                f"uploading {artifact.filename} failed after {attempts} attempts: "
                + (f"HTTP {status} {body}" if status else body),
                hint="check the index server's health and log, then re-run (published files are skipped)")
        raise AssertionError("unreachable")  # pragma: no cover

    def _url(self) -> str:
        from nexusify.credentials import mask_url

        return mask_url(self.plan.upload_url)

    def _refused(self, pl: PackagePlan, artifact: Artifact, status: int, body: str) -> FileOutcome:
        """Any 4xx: read the index again and let the content decide; the refusal is an error only
        when the file is not there (or the index cannot be read)."""
        try:
            match = find_match(self.lookup(pl), artifact)
        except NexusifyError:
            match = None  # e.g. the same rejected credentials: the refusal below says what to do
        if match is not None:
            return self.compare(pl, artifact, match)
        if status in (401, 403):
            what = "401 Unauthorized" if status == 401 else "403 Forbidden"
            raise StopUploads(AuthError(
                f"uploading {artifact.filename} to {self._url()}: {what}",
                hint=("set NEXUS_USERNAME/--username and NEXUS_PASSWORD (or .pypirc/keyring)" if status == 401
                      else "the user needs the nx-repository-view-pypi-<repo>-add privilege on this repository"),
            ))
        if status == 413:
            raise IndexServerError(
                f"uploading {artifact.filename} ({artifact.size} bytes): 413 Request Entity Too Large",
                hint="a reverse proxy in front of the index limits upload size: raise nginx client_max_body_size")
        if status == 409 or ALREADY_THERE.search(body):
            raise IndexServerError(
                f"uploading {artifact.filename}: the index says it exists ({body}) but does not list it",
                hint="the index's listing may lag behind; re-run in a minute")
        raise IndexServerError(f"uploading {artifact.filename}: HTTP {status} {body}",
                               hint="check the upload URL points at a hosted PyPI repository: group and "
                                    "proxy repositories are read-only (install from the group with "
                                    "--index-repository, upload to its hosted member with --repository)")

    def publish_package(self, pl: PackagePlan, result: BuildResult) -> PackageOutcome:
        outcome = PackageOutcome(pl.name, pl.version, pl.rel, "present", "already on the index")
        # compare everything first: a changed-without-a-bump file stops the package before any upload
        pending: list[Artifact] = []
        for artifact in result.artifacts:
            match = find_match(pl.existing, artifact)
            if match is None:
                pending.append(artifact)
            else:
                outcome.files.append(self.compare(pl, artifact, match))
        for artifact in pending:
            self.emit("uploading", pl.name, {"file": artifact.filename})
            outcome.files.append(self.upload(pl, artifact))
        if any(f.action == "uploaded" for f in outcome.files):
            outcome.status, outcome.reason = "uploaded", pl.reason
        elif any(f.action == "present-compatible" for f in outcome.files):
            outcome.reason = ("already on the index: the same release (its metadata differs only in form, "
                              "or in ranges that admit the current versions of the packages it needs)")
        elif any(f.action == "present-same-contents" for f in outcome.files):
            outcome.reason = "already on the index (same archive contents)"
        return outcome
