"""Credentials for the index: environment > .pypirc > keyring. Never printed.

A password is held in :class:`Secret`, whose ``repr``/``str`` are ``<hidden>``, so it cannot
leak through logging, error messages or ``--json`` output by accident.
"""

from __future__ import annotations

import configparser
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit


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
    url_password: Secret | None = None,
) -> Credentials:
    """Username: flag/env/config (already resolved, including a URL's userinfo) or .pypirc;
    password: env > the URL's userinfo (``url_password``, split off by the settings) > .pypirc > keyring."""
    password = env.get("NEXUS_PASSWORD") or (url_password.reveal() if url_password else None)
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


# scheme://userinfo@ : everything between "//" and the first "@" before any "/", space or quote
_USERINFO = re.compile(r"(?P<pre>[A-Za-z][A-Za-z0-9+.-]*://|//)(?P<info>(?:[^/@\s'\"<>]|<hidden>)+)@")
# Authorization / Proxy-Authorization headers, as HTTP text, a Python dict repr or JSON
_AUTH_HEADER = re.compile(
    r"(?P<key>(?:proxy-)?authorization)(?P<sep>['\"]?\s*[:=]\s*['\"]?)"
    r"(?:(?P<scheme>basic|bearer|token|digest|negotiate)\s+)?[^\s'\",}\]]+",
    re.IGNORECASE,
)
_AUTH_WORD = re.compile("authorization", re.IGNORECASE)  # what every _AUTH_HEADER match holds
# a secret at least this long is hidden wherever it occurs; a shorter one only as a whole token
_ANYWHERE = 12


def split_userinfo(url: str) -> tuple[str, str | None, str | None]:
    """``url`` without ``user:password@``, and that username and password (percent-decoded).
    String arithmetic, so a malformed URL (``http://u:p@[::1``) is split too, never raises."""
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url, None, None
    ends = [i for i in (rest.find(c) for c in "/?#") if i >= 0]
    end = min(ends) if ends else len(rest)
    netloc = rest[:end]
    if "@" not in netloc:
        return url, None, None
    userinfo, _, hostport = netloc.rpartition("@")
    user, has_pw, password = userinfo.partition(":")
    clean = f"{scheme}://{hostport}{rest[end:]}"
    return clean, unquote(user) or None, unquote(password) if has_pw and password else None


def mask_url(url: str) -> str:
    """Hide any user:password@ in a URL (twine's sanitize_url)."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host += f":{parts.port}"
        return urlunsplit((parts.scheme, f"****@{host}", parts.path, parts.query, parts.fragment))
    return url


def _token_pattern(value: str) -> re.Pattern[str]:
    escaped = re.escape(value)
    if len(value) >= _ANYWHERE:
        return re.compile(escaped)
    if _is_plain_word(value):  # only where a secret stands: after a secret-looking key
        return re.compile(rf"(?P<key>{_SECRET_KEY}['\"]?(?:\s*[:=]\s*|\s+)['\"]?){escaped}(?!\w)", re.IGNORECASE)
    return re.compile(rf"(?<!\w){escaped}(?!\w)")


# what names a secret in text: `password: x`, `NEXUS_PASSWORD=x`, `"token": "x"`, `netrc password x`
_SECRET_KEY = r"(?:pass(?:word)?|passwd|pwd|token|secret|api[-_]?key)"


def _is_plain_word(value: str) -> bool:
    """A short secret made of letters only (``index``, ``nexus``, ``e``): as a whole token it is
    also an ordinary word of the output (``[[tool.uv.index]]``, a JSON key), where hiding it would
    garble the text and, by the places hidden, give the password away. It is hidden where it
    stands as a secret (after a secret-looking key), in URL userinfo and in auth headers."""
    return len(value) < _ANYWHERE and value.isalpha()


class Redactor:
    """The one rule for hiding secrets in text: URL userinfo, Authorization header values, and
    known secret values (and their percent-encoded forms).

    A known value is replaced only where it stands as a whole token (not inside a longer word),
    so a one-letter password never turns ``Shared packages`` into ``Shar<hidden>d``; a value of
    12 characters or more is hidden wherever it occurs; a short one made of letters only (a
    common word such as ``index``) only where it follows a secret-looking key (``password:``,
    ``NEXUS_PASSWORD=``, ``"token": ``), see :func:`_is_plain_word`. URL userinfo and header values are
    hidden structurally, whatever the password's length.
    """

    def __init__(self, secrets: Iterable[Secret | str | None] = ()) -> None:
        self._values: set[str] = set()
        self._patterns: list[re.Pattern[str]] = []
        for s in secrets:
            self.add(s)

    def add(self, secret: Secret | str | None) -> None:
        value = secret.reveal() if isinstance(secret, Secret) else secret
        if not value or not value.strip():
            return
        for form in {value, quote(value, safe=""), quote(value, safe="!$&'()*+,;=")}:
            if form not in self._values:
                self._values.add(form)
                self._patterns.append(_token_pattern(form))
        # longest first, so a value containing another is hidden whole
        self._patterns.sort(key=lambda p: len(p.pattern), reverse=True)

    def __call__(self, text: str) -> str:
        if not text:
            return text
        # known values first: a secret that is itself a URL with userinfo is hidden whole
        for pattern in self._patterns:
            text = pattern.sub(lambda m: (m.groupdict().get("key") or "") + "<hidden>", text)
        # both patterns are slow on long text (a JSON report of megabytes) and match only around
        # an "@" or the word "authorization": text without them is returned as it is
        if "@" in text:
            # userinfo holds no whitespace: a match lies within one line, so only lines with an "@" are searched
            text = "\n".join(_USERINFO.sub(_userinfo, line) if "@" in line else line for line in text.split("\n"))
        if _AUTH_WORD.search(text):
            text = _AUTH_HEADER.sub(_auth_header, text)
        return text


def _userinfo(m: re.Match[str]) -> str:
    return f"{m.group('pre')}****@"


def _auth_header(m: re.Match[str]) -> str:
    return f"{m.group('key')}{m.group('sep')}{(m.group('scheme') + ' ') if m.group('scheme') else ''}<hidden>"


def redact(text: str, *secrets: Secret | str | None) -> str:
    """Remove secret values (see :class:`Redactor`), URL userinfo and auth headers from free text."""
    return Redactor(secrets)(text)


# nexusify's own index credentials in the environment: the passwords, and with them the usernames.
# Kept from every process that must not log in with them (tools given their own variables, builds,
# the local index server): the one list, asked through :func:`without_index_credentials`.
INDEX_PASSWORD_VARS = ("NEXUS_PASSWORD", "TWINE_PASSWORD")
INDEX_CREDENTIAL_VARS = (*INDEX_PASSWORD_VARS, "NEXUS_USERNAME", "TWINE_USERNAME")


def without_index_credentials(env: Mapping[str, str], *, usernames: bool = True,
                              also: tuple[str, ...] = ()) -> dict[str, str]:
    """``env`` without nexusify's index credentials (passwords only when ``usernames`` is False),
    nor the variables in ``also``."""
    drop = {*(INDEX_CREDENTIAL_VARS if usernames else INDEX_PASSWORD_VARS), *also}
    return {k: v for k, v in env.items() if k not in drop}


# Environment variables whose values are secrets wherever they appear.
SECRET_ENV = frozenset({
    "NEXUS_PASSWORD", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "TWINE_PASSWORD", "NEXUSIFY_REGISTRY_PASSWORD",
    "UV_INDEX_PASSWORD", "POETRY_PYPI_TOKEN_PYPI",
})
_SECRET_NAME = re.compile(r"(PASSWORD|SECRET|TOKEN)$|_(PASSWORD|TOKEN)_", re.IGNORECASE)


def secrets_in_env(env: Mapping[str, str]) -> list[str]:
    """Every secret value ``env`` holds: the known secret variables (and any *_PASSWORD, *_TOKEN,
    *_SECRET of 4 characters or more: shorter ones are flags), and the password of any URL with
    userinfo (NEXUS_URL=http://u:p@host)."""
    found = [v for k, v in env.items() if v and (k in SECRET_ENV or (_SECRET_NAME.search(k) and len(v) >= 4))]
    for value in env.values():
        if "@" in value and "://" in value:
            for m in _USERINFO.finditer(value):
                _, _, password = m.group("info").partition(":")
                if password:
                    found.extend({password, unquote(password)})
    return found


# --------------------------------------------------------------------------- the consumers' own tools

#: the variables PDM expands in a source URL's userinfo (``http://${NEXUS_USERNAME}:${NEXUS_PASSWORD}@host``):
#: PDM reads source credentials only from there or from its own config (shared/notes/tools.md)
PDM_URL_VARS = ("NEXUS_USERNAME", "NEXUS_PASSWORD")


def url_with_env_userinfo(url: str) -> str:
    """``url`` with ``${NEXUS_USERNAME}:${NEXUS_PASSWORD}@`` as its userinfo: what a PDM source
    holds when the index needs credentials (the names, never the values, go into the file)."""
    clean, _, _ = split_userinfo(url)
    scheme, sep, rest = clean.partition("://")
    if not sep:
        return url
    user, password = PDM_URL_VARS
    return f"{scheme}://${{{user}}}:${{{password}}}@{rest}"


def source_key(name: str) -> str:
    """A source name as uv and Poetry spell it in their variables (``UV_INDEX_<KEY>_USERNAME``)."""
    return name.upper().replace("-", "_").replace(".", "_")


def tool_env(tool: str, source_name: str, creds: Credentials | None, base: Mapping[str, str]) -> dict[str, str]:
    """The environment a consumer's own tool (uv, Poetry, PDM, pip) runs in: ``base`` without
    nexusify's own secrets, plus the index credentials in the variables ``tool`` reads for the source
    ``source_name`` (never argv, never a file; verified per tool in shared/notes/tools.md). PDM
    reads them only from ``${VAR}`` in the source URL (:func:`url_with_env_userinfo`), so for PDM
    NEXUS_USERNAME/NEXUS_PASSWORD hold them. The one rule for rewrite's and release's re-lock and
    for verify."""
    env = dict(base) if tool == "pdm" else without_index_credentials(base, usernames=False)
    env.setdefault("PATH", os.environ.get("PATH", ""))
    env.setdefault("HOME", os.environ.get("HOME", "/root"))
    auth = creds.auth() if creds else None
    if auth:
        key = source_key(source_name)
        if tool == "poetry":
            env[f"POETRY_HTTP_BASIC_{key}_USERNAME"], env[f"POETRY_HTTP_BASIC_{key}_PASSWORD"] = auth
        elif tool == "uv":
            env[f"UV_INDEX_{key}_USERNAME"], env[f"UV_INDEX_{key}_PASSWORD"] = auth
        elif tool == "pdm":
            env[PDM_URL_VARS[0]], env[PDM_URL_VARS[1]] = auth
    env.setdefault("POETRY_NO_INTERACTION", "1")
    if tool == "uv":  # a missing interpreter fails at once, named, instead of a download that may never arrive
        env.setdefault("UV_PYTHON_DOWNLOADS", "never")
    return env
