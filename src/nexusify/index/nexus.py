"""Talking to the package index: the one HTTP client factory, PEP 503 simple pages, Nexus REST.

Every request nexusify makes to an index goes through :func:`make_client`:

- a timeout on every request (connect, read, write, pool);
- retries with exponential backoff (and ``Retry-After``) on connection errors and 5xx answers,
  for idempotent methods only (GET, HEAD, OPTIONS, PUT, DELETE); never for 4xx, never for POST;
- no automatic redirects: a redirect to another host (pypiserver's fallback to pypi.org for a
  project it does not hold) is an answer, not something to follow with credentials attached;
- credentials only for the origins they belong to.

Readers here return plain data (:class:`IndexFile`, :class:`Component`); HTTP failures become
:class:`IndexServerError` / :class:`AuthError` with the URL (credentials masked) and a hint.
"""

from __future__ import annotations

import hashlib
import logging
import os
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

import httpx
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from nexusify import __version__
from nexusify.credentials import Credentials, mask_url, redact
from nexusify.errors import AuthError, IndexServerError

log = logging.getLogger(__name__)

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({500, 502, 503, 504})
HASH_NAMES = ("sha256", "md5", "sha1")
USER_AGENT = f"nexusify/{__version__}"


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return (parts.scheme, (parts.hostname or "").lower(), port)


class IndexClient:
    """An httpx client with timeouts, bounded retries for idempotent requests, and scoped auth.

    ``transport`` lets tests (respx) and callers swap the network layer; ``sleep`` lets tests
    skip the backoff waits.
    """

    def __init__(
        self,
        *,
        timeout: float = 30.0,
        credentials: Credentials | None = None,
        auth_origins: tuple[str, ...] = (),
        retries: int = 3,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.retries = max(0, retries)
        self.backoff = backoff
        self.timeout = timeout
        self._sleep = sleep
        self._credentials = credentials
        self._auth_origins = {origin(u) for u in auth_origins if u}
        self._secret = credentials.password if credentials else None
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
            transport=transport,
            # proxies/.netrc from the environment are not picked up behind the user's back, but a
            # private CA bundle is honoured the way requests (and so twine) honours it
            trust_env=False,
            verify=_verify(),
        )

    def __enter__(self) -> IndexClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    @property
    def has_credentials(self) -> bool:
        return bool(self._credentials and self._credentials.present)

    def _auth_for(self, url: str) -> httpx.BasicAuth | None:
        if self._credentials is None or not self._credentials.present:
            return None
        if self._auth_origins and origin(url) not in self._auth_origins:
            return None
        user, password = self._credentials.auth() or ("", "")
        return httpx.BasicAuth(user, password)

    def redact(self, text: str) -> str:
        return redact(text, self._secret)

    def request(
        self,
        method: str,
        url: str,
        *,
        retry_statuses: frozenset[int] = RETRY_STATUSES,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send a request; idempotent ones are retried on connection errors and ``retry_statuses``.

        Raises :class:`IndexServerError` when the server cannot be reached (after the retries).
        Returns every HTTP answer, 4xx/5xx included: callers decide what a status means.
        """
        method = method.upper()
        attempts = 1 + (self.retries if method in IDEMPOTENT else 0)
        auth = self._auth_for(url)
        if auth is not None:
            kwargs.setdefault("auth", auth)
        last_exc: httpx.TransportError | None = None
        for attempt in range(1, attempts + 1):
            try:
                response = self._client.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                last_exc = exc
                if attempt < attempts:
                    wait = self.backoff * 2 ** (attempt - 1)
                    log.info("%s %s: %s; retrying in %.1fs", method, mask_url(url), type(exc).__name__, wait)
                    self._sleep(wait)
                    continue
                break
            if response.status_code in retry_statuses and attempt < attempts:
                wait = _retry_after(response) or self.backoff * 2 ** (attempt - 1)
                log.info("%s %s: HTTP %s; retrying in %.1fs", method, mask_url(url), response.status_code, wait)
                response.close()
                self._sleep(wait)
                continue
            return response
        assert last_exc is not None
        kind = "timed out" if isinstance(last_exc, httpx.TimeoutException) else "could not be reached"
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        raise IndexServerError(
            f"{method} {mask_url(url)} {kind}{tries}: {self.redact(str(last_exc)) or type(last_exc).__name__}",
            hint="check the URL and that the server is up; raise --timeout for a slow server",
        ) from last_exc

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)


def _verify() -> ssl.SSLContext | bool:
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE")
    if bundle and os.path.isfile(bundle):
        return ssl.create_default_context(cafile=bundle)
    return True


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value and value.strip().isdigit():
        return min(float(value), 30.0)
    return None


def make_client(
    *,
    timeout: float = 30.0,
    credentials: Credentials | None = None,
    auth_origins: tuple[str, ...] = (),
    retries: int = 3,
    backoff: float = 0.5,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> IndexClient:
    """THE factory for index HTTP clients (see the module docstring for the guarantees)."""
    return IndexClient(
        timeout=timeout, credentials=credentials, auth_origins=auth_origins, retries=retries,
        backoff=backoff, transport=transport, sleep=sleep,
    )


def raise_for_status(response: httpx.Response, what: str, client: IndexClient | None = None) -> None:
    """Turn a 4xx/5xx answer into an error naming the URL, the status and what to do."""
    status = response.status_code
    if status < 400:
        return
    url = mask_url(str(response.request.url))
    body = _short_body(response)
    if client is not None:
        body = client.redact(body)
    detail = f": {body}" if body else ""
    if status == 401:
        raise AuthError(
            f"{what}: {url} answered 401 Unauthorized{detail}",
            hint="set NEXUS_USERNAME/--username and NEXUS_PASSWORD (or .pypirc/keyring) for this index",
        )
    if status == 403:
        raise AuthError(
            f"{what}: {url} answered 403 Forbidden{detail}",
            hint="the user lacks a privilege on this repository (Nexus: nx-repository-view-pypi-<repo>-read/-add)",
        )
    if status == 413:
        raise IndexServerError(
            f"{what}: {url} answered 413 Request Entity Too Large",
            hint="a reverse proxy in front of the index limits the body size: raise nginx client_max_body_size",
        )
    raise IndexServerError(
        f"{what}: {url} answered HTTP {status}{detail}",
        hint="retry later; if it persists, check the index server's log" if status >= 500 else None,
    )


def _short_body(response: httpx.Response, limit: int = 300) -> str:
    try:
        text = response.text
    except Exception:  # undecodable body
        return ""
    text = " ".join(_strip_tags(text).split())
    if not text and response.reason_phrase:
        return response.reason_phrase
    return text[:limit] + ("..." if len(text) > limit else "")


def _strip_tags(text: str) -> str:
    if "<" not in text:
        return text
    out: list[str] = []

    class _P(HTMLParser):
        def handle_data(self, data: str) -> None:
            out.append(data)

    p = _P()
    try:
        p.feed(text)
        p.close()
    except Exception:  # malformed HTML: keep the raw text
        return text
    return " ".join(out)


# --------------------------------------------------------------------------- PEP 503


@dataclass(frozen=True)
class IndexFile:
    """One distribution file an index holds, with whatever hashes it told us."""

    filename: str
    url: str
    hashes: Mapping[str, str] = field(default_factory=dict)
    requires_python: str | None = None
    yanked: bool = False
    size: int | None = None

    @property
    def project(self) -> str | None:
        parsed = parse_filename(self.filename)
        return parsed[0] if parsed else None

    @property
    def version(self) -> str | None:
        parsed = parse_filename(self.filename)
        return parsed[1] if parsed else None

    def hash_matches(self, digests: Mapping[str, str]) -> bool | None:
        """True/False when a hash both sides know agrees/differs; None when none is comparable."""
        for name in HASH_NAMES:
            mine, theirs = digests.get(name), self.hashes.get(name)
            if mine and theirs:
                return mine.lower() == theirs.lower()
        return None


def parse_filename(filename: str) -> tuple[str, str, str] | None:
    """(normalised name, version, kind) of a wheel or sdist filename, or None."""
    try:
        if filename.endswith(".whl"):
            name, version, _build, _tags = parse_wheel_filename(filename)
            return (str(name), str(version), "wheel")
        if filename.endswith((".tar.gz", ".zip")):
            name, version = parse_sdist_filename(filename)
            return (str(name), str(version), "sdist")
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None
    return None


def same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


class _LinkParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[dict[str, str | None], str]] = []
        self.base: str | None = None
        self._current: dict[str, str | None] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "base" and self.base is None:
            self.base = dict(attrs).get("href")
        elif tag == "a":
            self._current = dict(attrs)
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._current is not None:
            self.links.append((self._current, "".join(self._text).strip()))
            self._current = None


def parse_simple_page(html: str, page_url: str) -> list[IndexFile]:
    """The files of a PEP 503 project page, with hashes from ``#sha256=``/``#md5=`` fragments."""
    parser = _LinkParser()
    parser.feed(html)
    parser.close()
    base = urljoin(page_url, parser.base) if parser.base else page_url
    files: list[IndexFile] = []
    for attrs, text in parser.links:
        href = attrs.get("href")
        if not href:
            continue
        absolute = urljoin(base, href)
        url, fragment = urldefrag(absolute)
        hashes: dict[str, str] = {}
        if "=" in fragment:
            algo, _, digest = fragment.partition("=")
            if algo.lower() in hashlib.algorithms_guaranteed:
                hashes[algo.lower()] = digest.lower()
        filename = unquote(urlsplit(url).path.rsplit("/", 1)[-1]) or text
        files.append(IndexFile(
            filename=filename,
            url=url,
            hashes=hashes,
            requires_python=attrs.get("data-requires-python"),
            yanked="data-yanked" in attrs,
        ))
    return files


class SimpleIndex:
    """A PEP 503 index: ``project_files(name)`` lists what it holds for a project."""

    def __init__(self, client: IndexClient, simple_url: str) -> None:
        self.client = client
        self.url = simple_url.rstrip("/") + "/"

    def project_url(self, name: str) -> str:
        return f"{self.url}{canonicalize_name(name)}/"

    def project_files(self, name: str) -> list[IndexFile]:
        """Every file of ``name``; [] when the index does not hold the project.

        401/403 raise :class:`AuthError` (never treated as "not there"); other failures raise
        :class:`IndexServerError`.
        """
        url = self.project_url(name)
        for _hop in range(5):
            response = self.client.get(url, headers={"Accept": "text/html", "Cache-Control": "no-cache"})
            if response.status_code in (301, 302, 303, 307, 308):
                location = response.headers.get("Location")
                if not location:
                    break
                target = urljoin(url, location)
                if origin(target) != origin(url):
                    # pypiserver redirects projects it does not hold to its fallback (pypi.org)
                    log.info("%s redirects to %s: not on this index", mask_url(url), mask_url(target))
                    return []
                url = target
                continue
            if response.status_code == 404:
                return []
            raise_for_status(response, f"reading the index page of {name}", self.client)
            return parse_simple_page(response.text, str(response.url))
        raise IndexServerError(f"{mask_url(url)}: too many redirects", hint="check the index URL")

    def download(self, file: IndexFile) -> bytes:
        response = self.client.get(file.url)
        if response.status_code in (301, 302, 303, 307, 308):
            location = response.headers.get("Location", "")
            target = urljoin(file.url, location)
            if origin(target) == origin(file.url):
                response = self.client.get(target)
        raise_for_status(response, f"downloading {file.filename}", self.client)
        return response.content


# --------------------------------------------------------------------------- Nexus REST


@dataclass(frozen=True)
class Asset:
    path: str
    download_url: str
    checksum: Mapping[str, str]
    file_size: int | None = None

    @property
    def filename(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    def as_index_file(self) -> IndexFile:
        return IndexFile(self.filename, self.download_url, dict(self.checksum), size=self.file_size)


@dataclass(frozen=True)
class Component:
    id: str
    repository: str
    name: str
    version: str
    assets: tuple[Asset, ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Component:
        assets = []
        for a in data.get("assets") or []:
            checksum = {k: str(v).lower() for k, v in (a.get("checksum") or {}).items() if k in HASH_NAMES and v}
            assets.append(Asset(
                path=str(a.get("path", "")), download_url=str(a.get("downloadUrl", "")),
                checksum=checksum, file_size=a.get("fileSize"),
            ))
        return cls(
            id=str(data.get("id", "")), repository=str(data.get("repository", "")),
            name=str(data.get("name", "")), version=str(data.get("version", "")), assets=tuple(assets),
        )


class NexusRest:
    """The parts of Nexus' REST API (``/service/rest/v1``) nexusify uses."""

    def __init__(self, client: IndexClient, base_url: str, repository: str) -> None:
        self.client = client
        self.base = base_url.rstrip("/")
        self.repository = repository

    def _url(self, path: str) -> str:
        return f"{self.base}/service/rest/v1/{path}"

    def status(self) -> bool:
        """True when Nexus answers ``GET status`` with 200 (it can serve reads)."""
        response = self.client.get(self._url("status"))
        return response.status_code == 200

    def check_writable(self) -> None:
        """Raise unless ``GET status/writable`` is 200; 503 means read-only (frozen) Nexus."""
        url = self._url("status/writable")
        # 503 is this endpoint's answer for "read-only", not a transient failure: no retry on it
        response = self.client.get(url, retry_statuses=RETRY_STATUSES - {503})
        if response.status_code == 200:
            return
        if response.status_code == 503:
            raise IndexServerError(
                f"Nexus at {mask_url(self.base)} is read-only (GET status/writable answered 503)",
                hint="an administrator has frozen it (System > Support > Read-only mode, or a "
                     "database freeze during backup); re-run when it accepts writes again",
            )
        if response.status_code == 404:
            raise IndexServerError(
                f"{mask_url(url)} answered 404: this does not look like Nexus 3",
                hint="check --nexus-url (the base URL, e.g. https://nexus.example.com), or use "
                     "--repository-url/--index-url for another kind of index",
            )
        raise_for_status(response, "checking that Nexus accepts writes", self.client)

    def _pages(self, path: str, params: dict[str, str], what: str) -> Iterator[dict[str, Any]]:
        token: str | None = None
        seen: set[str] = set()
        while True:
            query = dict(params)
            if token:
                query["continuationToken"] = token
            response = self.client.get(self._url(path), params=query, headers={"Accept": "application/json"})
            if response.status_code == 404 and "repository" in params:
                raise IndexServerError(
                    f"{what}: Nexus has no repository {params['repository']!r} (404)",
                    hint="check --repository (the hosted PyPI repository's name in Nexus)",
                )
            raise_for_status(response, what, self.client)
            try:
                data = response.json()
            except ValueError as exc:
                raise IndexServerError(
                    f"{what}: {mask_url(str(response.request.url))} did not answer JSON",
                    hint="check --nexus-url points at Nexus itself, not at a repository",
                ) from exc
            yield from data.get("items") or []
            token = data.get("continuationToken")
            if not token or token in seen:
                return
            seen.add(token)

    def search(self, name: str, version: str | None = None) -> list[Component]:
        """Components named exactly ``name`` (normalised) in the repository, optionally one version.

        Nexus' search splits names on dashes, so results are re-checked for an exact match.
        """
        params = {"repository": self.repository, "format": "pypi", "name": name}
        if version:
            params["version"] = version
        wanted = canonicalize_name(name)
        out = []
        for item in self._pages("search", params, f"searching Nexus for {name}"):
            c = Component.from_json(item)
            if canonicalize_name(c.name) != wanted:
                continue
            if version and not same_version(c.version, version):
                continue
            if c.repository and c.repository != self.repository:
                continue
            out.append(c)
        return out

    def components(self) -> Iterator[Component]:
        """Every component of the repository (pages of 10 or 100, following continuationToken)."""
        for item in self._pages("components", {"repository": self.repository}, "listing Nexus components"):
            yield Component.from_json(item)

    def project_files(self, name: str) -> list[IndexFile]:
        """Every file of ``name`` in the repository (Nexus stores PyPI names normalised)."""
        return [a.as_index_file() for c in self.search(canonicalize_name(name)) for a in c.assets]
