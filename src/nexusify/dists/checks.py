"""Is a built archive fit to publish? Path references and unversioned internal requirements refused.

:func:`check_artifact` reads the wheel's METADATA, the sdist's PKG-INFO and pyproject, and
refuses any path/file reference and any internal requirement that does not admit the version
being published; :func:`check_metadata` checks that the metadata parses and that the long
description renders (what ``twine check`` checks).
"""

from __future__ import annotations

import email.message
import email.parser
import re
import tomllib
from collections.abc import Mapping, Sequence

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from nexusify.dists.archives import read_sdist_members, read_wheel_metadata
from nexusify.dists.artifact import Artifact
from nexusify.syntax.constraints import admits

_FILE_REF = re.compile(r"(?<![\w.])(file:|\$\{PROJECT_ROOT\})", re.I)


def check_requires_dist(
    metadata_text: str, where: str, internal: Mapping[str, str]
) -> list[str]:
    """Problems with the Requires-Dist of a METADATA/PKG-INFO text."""
    msg = email.parser.Parser().parsestr(metadata_text)
    problems = []
    for raw in msg.get_all("Requires-Dist") or []:
        try:
            req = Requirement(raw)
        except InvalidRequirement:
            problems.append(f"{where}: unparseable Requires-Dist {raw!r}")
            continue
        norm = canonicalize_name(req.name)
        if req.url:
            if req.url.startswith("file:") or norm in internal:
                problems.append(f"{where}: Requires-Dist {raw!r} points at a path/URL, which installs nowhere else")
            continue
        if norm in internal and not admits(str(req.specifier), internal[norm]):
            problems.append(f"{where}: Requires-Dist {raw!r} does not admit {req.name} {internal[norm]}, the version being published")
    return problems


def check_pyproject_text(text: str, where: str, internal_names: Sequence[str]) -> list[str]:
    problems = []
    if _FILE_REF.search(text):
        problems.append(f"{where}: still holds a file: URL or ${{PROJECT_ROOT}} reference")
    try:
        data = tomllib.loads(text.removeprefix("\ufeff"))
    except tomllib.TOMLDecodeError:
        return problems
    from nexusify.formats.pyproject_edit import local_entries_left

    left = local_entries_left(text, internal_names)
    if left:
        problems.append(f"{where}: still path-depends on {', '.join(left)}")
    del data
    return problems


def check_artifact(artifact: Artifact, internal: Mapping[str, str]) -> list[str]:
    """Path/file references and unversioned internal requirements inside a built archive."""
    if artifact.kind == "wheel":
        return check_requires_dist(read_wheel_metadata(artifact.path), f"{artifact.filename} METADATA", internal)
    members = read_sdist_members(artifact.path, ("PKG-INFO", "pyproject.toml"))
    problems: list[str] = []
    if "PKG-INFO" in members:
        problems += check_requires_dist(members["PKG-INFO"], f"{artifact.filename} PKG-INFO", internal)
    if "pyproject.toml" in members:
        problems += check_pyproject_text(members["pyproject.toml"], f"{artifact.filename} pyproject.toml", list(internal))
    return problems


def metadata_text(artifact: Artifact) -> str:
    """The core metadata of a built archive: the wheel's METADATA or the sdist's PKG-INFO."""
    if artifact.kind == "wheel":
        return read_wheel_metadata(artifact.path)
    return read_sdist_members(artifact.path, ("PKG-INFO",)).get("PKG-INFO", "")


def check_metadata(artifact: Artifact) -> list[str]:
    """What ``twine check`` checks: the metadata parses and is valid, and the long description
    renders (reStructuredText, the default when no content type is given; Markdown and plain
    text cannot fail to render)."""
    from packaging import metadata as core_metadata
    from packaging.version import InvalidVersion, Version

    text = metadata_text(artifact)
    if not text.strip():
        return [f"{artifact.filename}: has no core metadata (METADATA/PKG-INFO)"]
    raw, unparsed = core_metadata.parse_email(text)
    try:
        old = Version(str(raw.get("metadata_version", "0"))) < Version("2.4")
    except InvalidVersion:
        old = False
    if old:  # setuptools writes License-File into older metadata versions: tolerated (as twine does)
        raw.pop("license_files", None)
        unparsed.pop("license-file", None)
    if unparsed:
        return [f"{artifact.filename}: invalid metadata: "
                + "; ".join(f"unrecognized or malformed field {key!r}" for key in unparsed)]
    try:
        core_metadata.Metadata.from_raw(raw)
    except ExceptionGroup as group:
        if any(getattr(e, "field", None) in ("metadata-version", "metadata_version") for e in group.exceptions):
            # a build backend newer than the installed packaging (hatchling writes 2.5): not the archive's fault
            from importlib.metadata import version as installed

            return [f"{artifact.filename}: metadata version {raw.get('metadata_version')} is newer than the installed "
                    f"packaging {installed('packaging')} can validate; upgrade it: "
                    "python -m pip install --upgrade packaging"]
        return [f"{artifact.filename}: invalid metadata: " + "; ".join(sorted(str(e) for e in group.exceptions))]
    description = raw.get("description")
    content_type = email.message.EmailMessage()
    content_type["content-type"] = str(raw.get("description_content_type") or "text/x-rst")
    if not description or description.rstrip() == "UNKNOWN" or content_type.get_content_type() in ("text/plain", "text/markdown"):
        return []
    import io

    import readme_renderer.rst

    if readme_renderer.rst.render(description, stream=io.StringIO()) is None:
        return [f"{artifact.filename}: the long description has markup errors and would not render"]
    return []
