"""Reading built archives, and THE published-vs-local comparison of two archives of one release.

:func:`compare_release` answers "is the index's file the same release as the one built now?":
``same-bytes``, ``same-contents`` (other archive bytes, identical members),
``compatible`` (only metadata differs, in form or in ranges that still admit the versions being
published) or ``different`` ("changed without a bump"; :func:`describe_difference` says how).
"""

from __future__ import annotations

import email.message
import email.parser
import hashlib
import io
import re
import tarfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from nexusify.errors import BuildError
from nexusify.syntax.constraints import admits

Verdict = Literal["same-bytes", "same-contents", "compatible", "different"]

def read_wheel_metadata(path: Path) -> str:
    with zipfile.ZipFile(path) as zf:
        for n in zf.namelist():
            parts = n.split("/")
            if len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] == "METADATA":
                return zf.read(n).decode("utf-8")
    raise BuildError(f"{path.name} has no .dist-info/METADATA", hint="the backend produced a broken wheel")


def read_sdist_members(path: Path, names: Sequence[str]) -> dict[str, str]:
    """The text of top-level ``names`` (e.g. PKG-INFO, pyproject.toml) inside an sdist."""
    found: dict[str, str] = {}
    with tarfile.open(path, "r:gz") as tf:
        for m in tf.getmembers():
            parts = m.name.split("/")
            if len(parts) == 2 and parts[1] in names and m.isfile():
                fh = tf.extractfile(m)
                if fh is not None:
                    found[parts[1]] = fh.read().decode("utf-8", "replace")
    return found


def archive_members(data: bytes, filename: str) -> dict[str, bytes]:
    """THE archive reader: member path -> content of every file of a wheel/zip or an sdist.

    An sdist's top folder is named after the file (older tools wrote "my-pkg-1.0/", newer ones
    "my_pkg-1.0/"), so member paths are given inside it; a symlink's content is
    ``b"symlink:" + target``. Raises ``tarfile.TarError``/``zipfile.BadZipFile``/``OSError``/
    ``EOFError`` for an unreadable archive."""
    out: dict[str, bytes] = {}
    if filename.endswith((".whl", ".zip")):
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for info in zf.infolist():
                if not info.is_dir():
                    out[info.filename] = zf.read(info)
        return out
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tf:
        for m in tf.getmembers():
            name = m.name.split("/", 1)[1] if "/" in m.name else m.name
            if m.isfile():
                fh = tf.extractfile(m)
                out[name] = fh.read() if fh else b""
            elif m.issym():
                out[name] = b"symlink:" + m.linkname.encode()
    return out


def archive_contents(data: bytes, filename: str) -> dict[str, str]:
    """member name -> sha256 of its content (timestamps, owners, compression ignored)."""
    return {name: hashlib.sha256(content).hexdigest() for name, content in archive_members(data, filename).items()}


def same_contents(a: bytes, b: bytes, filename: str) -> bool:
    try:
        return archive_contents(a, filename) == archive_contents(b, filename)
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError):
        return False


def describe_difference(a: bytes, b: bytes, filename: str, limit: int = 5) -> str:
    """Which members differ between two archives (for the "changed without a bump" message)."""
    try:
        ca, cb = archive_contents(a, filename), archive_contents(b, filename)
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError):
        return "the index's copy could not be read as an archive"
    changed = sorted(n for n in ca.keys() & cb.keys() if ca[n] != cb[n])
    added = sorted(ca.keys() - cb.keys())
    removed = sorted(cb.keys() - ca.keys())
    parts = []
    for label, names in (("changed", changed), ("new", added), ("gone", removed)):
        if names:
            shown = ", ".join(names[:limit]) + (f" (+{len(names) - limit} more)" if len(names) > limit else "")
            parts.append(f"{label}: {shown}")
    return "; ".join(parts) or "the archives differ"


_METADATA_MEMBER = re.compile(
    r"(\.dist-info/(METADATA|RECORD|WHEEL)|(^|/)PKG-INFO|(^|/)pyproject\.toml|(^|/)setup\.cfg|(^|/)setup\.py"
    r"|\.egg-info/(PKG-INFO|requires\.txt|SOURCES\.txt))$"
)
# fields a newer backend writes differently for the very same release
_VOLATILE_FIELDS = frozenset({"metadata-version", "dynamic", "license-file", "requires-dist"})


def _member_text(data: bytes, filename: str, member: str) -> str:
    return archive_members(data, filename).get(member, b"").decode("utf-8", "replace")


def _requirement_key(req: Requirement) -> str:
    extras = ",".join(sorted(req.extras))
    return f"{canonicalize_name(req.name)}[{extras}]{req.specifier}{req.url or ''};{req.marker or ''}"


def _same_metadata(mine: str, theirs: str, internal: Mapping[str, str]) -> bool:
    """METADATA/PKG-INFO of the same release: equal fields (order, generator-specific fields and
    requirement spelling aside), equal external requirements, and internal requirements the
    published side still satisfies with the versions being published now."""
    a, b = email.parser.Parser().parsestr(mine), email.parser.Parser().parsestr(theirs)

    def fields(msg: email.message.Message) -> dict[str, list[str]]:
        return {k.lower(): sorted(" ".join(str(v).split()) for v in msg.get_all(k) or [])
                for k in set(msg.keys()) if k.lower() not in _VOLATILE_FIELDS}

    if fields(a) != fields(b):
        return False
    if str(a.get_payload() or "").strip() != str(b.get_payload() or "").strip():
        return False
    try:
        ra = [Requirement(r) for r in a.get_all("Requires-Dist") or []]
        rb = [Requirement(r) for r in b.get_all("Requires-Dist") or []]
    except InvalidRequirement:
        return False
    external_a = sorted(_requirement_key(r) for r in ra if canonicalize_name(r.name) not in internal)
    external_b = sorted(_requirement_key(r) for r in rb if canonicalize_name(r.name) not in internal)
    if external_a != external_b:
        return False

    def shape(reqs: list[Requirement]) -> list[str]:
        return sorted(f"{canonicalize_name(r.name)}[{','.join(sorted(r.extras))}];{r.marker or ''}"
                      for r in reqs if canonicalize_name(r.name) in internal)

    if shape(ra) != shape(rb):
        return False
    return all(not r.url and admits(str(r.specifier), internal[canonicalize_name(r.name)])
               for r in rb if canonicalize_name(r.name) in internal)


def equivalent_release(mine: bytes, theirs: bytes, filename: str, internal: Mapping[str, str]) -> bool:
    """Whether a rebuilt archive is the same release as the published one although its bytes
    and member hashes differ.

    Every file of the package itself must be identical; only metadata may differ, and only the
    way a newer backend (``Generator``, ``Metadata-Version``, requirement spelling) or a
    dependency's version bump (``^0.1.0`` becoming ``^0.1.1``, which the published range still
    admits) changes it. Anything else is a real change: "changed without a bump"."""
    try:
        ca, cb = archive_contents(mine, filename), archive_contents(theirs, filename)
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError):
        return False
    differing = {n for n in ca.keys() | cb.keys() if ca.get(n) != cb.get(n)}
    if not differing or any(not _METADATA_MEMBER.search(n) or n not in ca or n not in cb for n in differing):
        return False
    names = [re.escape(n) for n in internal] + [re.escape(n.replace("-", "_")) for n in internal]
    mentions = re.compile(r"(?i)(?<![\w.-])(" + "|".join(names) + r")(?![\w.-])") if names else None

    def kept(text: str) -> list[str]:
        return [ln for ln in text.splitlines() if mentions is None or not mentions.search(ln)]

    for member in differing:
        if member.endswith("RECORD"):
            continue  # hashes of the other members, which are compared themselves
        a, b = _member_text(mine, filename, member), _member_text(theirs, filename, member)
        if member.endswith(("METADATA", "PKG-INFO")):
            if not _same_metadata(a, b, internal):
                return False
        elif member.endswith("WHEEL"):
            if [ln for ln in a.splitlines() if not ln.startswith("Generator:")] != \
                    [ln for ln in b.splitlines() if not ln.startswith("Generator:")]:
                return False
        elif kept(a) != kept(b):
            return False
    return True


def admits_current_versions(mine: bytes, theirs: bytes, filename: str, internal: Mapping[str, str]) -> bool:
    """Kept for callers of the first API: see :func:`equivalent_release`."""
    return equivalent_release(mine, theirs, filename, internal)


def compare_release(mine: bytes, theirs: bytes, filename: str, internal: Mapping[str, str]) -> Verdict:
    """THE comparison of an archive built now (``mine``) with the index's file of the same name."""
    if mine == theirs:
        return "same-bytes"
    if same_contents(mine, theirs, filename):
        return "same-contents"
    if equivalent_release(mine, theirs, filename, internal):
        return "compatible"
    return "different"
