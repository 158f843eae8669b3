"""Credentials for the index: environment > .pypirc > keyring. Never printed.

A password is held in :class:`Secret`, whose ``repr``/``str`` are ``<hidden>``, so it cannot
leak through logging, error messages or ``--json`` output by accident.
"""

from __future__ import annotations

import configparser
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


class Secret:
    """A string that does not print itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<hidden>"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Credentials:
    username: str | None
    password: Secret | None
    source: str  # "env", "pypirc", "keyring", "none"

    @property
    def present(self) -> bool:
        return bool(self.username) and bool(self.password)

    def auth(self) -> tuple[str, str] | None:
        if self.username and self.password:
            return (self.username, self.password.reveal())
        return None


def _same_repo(a: str, b: str) -> bool:
    return a.strip().rstrip("/") == b.strip().rstrip("/")


def _from_pypirc(url: str | None, path: Path) -> tuple[str | None, str | None]:
    if not url or not path.is_file():
        return None, None
    parser = configparser.RawConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error:
        return None, None
    for section in parser.sections():
        repo = parser.get(section, "repository", fallback=None)
        if repo and _same_repo(repo, url):
            return (
                parser.get(section, "username", fallback=None),
                parser.get(section, "password", fallback=None),
            )
    return None, None


def _from_keyring(url: str | None, username: str | None) -> str | None:
    if not url or not username:
        return None
    try:
        import keyring  # type: ignore[import-not-found,unused-ignore]
    except Exception:
        return None
    try:
        value = keyring.get_password(url, username)
    except Exception:
        return None
    return value if isinstance(value, str) else None


def resolve_credentials(
    username: str | None,
    url: str | None,
    env: Mapping[str, str],
    pypirc: Path | None = None,
) -> Credentials:
    """Username: flag/env/config (already resolved) or .pypirc; password: env > .pypirc > keyring."""
    password = env.get("NEXUS_PASSWORD") or None
    if username and password:
        return Credentials(username, Secret(password), "env")
    rc_path = pypirc or Path(env.get("PYPIRC", "") or Path(env.get("HOME", os.path.expanduser("~"))) / ".pypirc")
    rc_user, rc_pass = _from_pypirc(url, rc_path)
    user = username or rc_user
    if user and password:
        return Credentials(user, Secret(password), "env")
    if user and rc_pass and (not username or username == rc_user):
        return Credentials(user, Secret(rc_pass), "pypirc")
    kr = _from_keyring(url, user)
    if user and kr:
        return Credentials(user, Secret(kr), "keyring")
    return Credentials(user, None, "none")


_USERINFO = re.compile(r"//[^/@\s]+@")


def mask_url(url: str) -> str:
    """Hide any user:password@ in a URL (twine's sanitize_url)."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host += f":{parts.port}"
        return urlunsplit((parts.scheme, f"****@{host}", parts.path, parts.query, parts.fragment))
    return url


def redact(text: str, *secrets: Secret | str | None) -> str:
    """Remove secret values and URL userinfo from free text (error bodies, logs)."""
    for s in secrets:
        value = s.reveal() if isinstance(s, Secret) else s
        if value:
            text = text.replace(value, "<hidden>")
    return _USERINFO.sub("//****@", text)
