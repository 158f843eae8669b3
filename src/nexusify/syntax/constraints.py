"""Version constraint rules shared by publish (staged packages) and rewrite (services).

Modes: caret (``^1.2.3`` = ``>=1.2.3,<2.0.0``; ``^0.2.3`` = ``>=0.2.3,<0.3.0``), tilde
(``>=1.2.3,<1.3.0``), exact (``==1.2.3``), minimum (``>=1.2.3``). A pre-release or dev
version gets a range whose lower bound is that version, so resolvers admit it.
"""

from __future__ import annotations

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from nexusify.errors import ConfigError

MODES = ("caret", "tilde", "exact", "minimum")


def _parse(version: str) -> Version:
    try:
        return Version(version)
    except InvalidVersion as exc:
        raise ConfigError(
            f"{version!r} is not a PEP 440 version", hint="give the package a version like 0.1.0"
        ) from exc


def _upper(v: Version, mode: str) -> str | None:
    major, minor, micro = [*v.release, 0, 0, 0][:3]
    if mode == "caret":
        if major > 0:
            return f"{major + 1}.0.0"
        if minor > 0:
            return f"0.{minor + 1}.0"
        return f"0.0.{micro + 1}"
    if mode == "tilde":
        return f"{major}.{minor + 1}.0"
    return None


def pep440_specifier(version: str, mode: str = "caret") -> str:
    """A PEP 440 specifier set admitting ``version`` under ``mode``."""
    if mode not in MODES:
        raise ConfigError(f"unknown constraint mode {mode!r}", hint=f"use one of {', '.join(MODES)}")
    v = _parse(version)
    if mode == "exact":
        return f"=={v}"
    if mode == "minimum":
        return f">={v}"
    upper = _upper(v, mode)
    return f">={v},<{upper}"


def poetry_constraint(version: str, mode: str = "caret") -> str:
    """A Poetry constraint: ``^X.Y.Z``/``~X.Y.Z`` for releases, explicit ranges for pre-releases."""
    if mode not in MODES:
        raise ConfigError(f"unknown constraint mode {mode!r}", hint=f"use one of {', '.join(MODES)}")
    v = _parse(version)
    if v.is_prerelease or v.is_devrelease or v.is_postrelease or v.local:
        return pep440_specifier(version, mode)
    if mode == "caret":
        return f"^{v}"
    if mode == "tilde":
        return f"~{v}"
    if mode == "exact":
        return f"{v}"
    return f">={v}"


def admits(specifier: str, version: str) -> bool:
    """Whether ``specifier`` (PEP 440; empty = anything) admits ``version``, pre-releases included."""
    try:
        spec = SpecifierSet(specifier)
    except InvalidSpecifier:
        return False
    return spec.contains(_parse(version), prereleases=True)


def poetry_to_pep440(constraint: str) -> str | None:
    """A Poetry constraint (``^0.1.0``, ``~1.2``, ``0.1.0``, ``>=1,<2``, ``*``) as a PEP 440
    specifier set; None for what it cannot translate (``||`` alternatives)."""
    text = constraint.strip()
    if "||" in text or "|" in text:
        return None
    if text in ("", "*"):
        return ""
    out: list[str] = []
    for part in (p.strip() for p in text.replace(" ", ",").split(",")):
        if not part:
            continue
        if part[0] in "^~" and not part.startswith("~="):
            try:
                v = Version(part[1:])
            except InvalidVersion:
                return None
            given = len(part[1:].split("."))
            if part[0] == "^":
                upper = _upper(v, "caret") if given >= 3 else _caret_short(v, given)
            else:
                upper = f"{v.release[0] + 1}.0.0" if given == 1 else _upper(v, "tilde")
            out.append(f">={v},<{upper}")
        elif part[0].isdigit():
            out.append(f"=={part}")
        else:
            out.append(part)
    try:
        return str(SpecifierSet(",".join(out)))
    except InvalidSpecifier:
        return None


def _caret_short(v: Version, given: int) -> str:
    major, minor = [*v.release, 0, 0][:2]
    if major > 0 or given == 1:
        return f"{major + 1}.0.0"
    return f"0.{minor + 1}.0"


def constraint_admits(constraint: str, version: str, *, poetry: bool) -> bool | None:
    """Whether a written constraint (Poetry syntax when ``poetry``, else PEP 440) admits
    ``version``; None when the constraint cannot be read."""
    spec = poetry_to_pep440(constraint) if poetry else constraint
    if spec is None:
        return None
    try:
        SpecifierSet(spec)
    except InvalidSpecifier:
        return None
    return admits(spec, version)
