"""The one HTTP client factory for package indexes, and the one rule for which URLs get credentials.

Every request nexusify makes to an index goes through :func:`make_client` (or
:func:`index_client`, which derives everything from the settings):

- a timeout on every request (connect, read, write, pool);
- retries with exponential backoff (and ``Retry-After``) on connection errors and 5xx answers,
  for idempotent methods only (GET, HEAD, OPTIONS, PUT, DELETE); never for 4xx, never for POST;
- no automatic redirects: a redirect to another host (pypiserver's fallback to pypi.org for a
  project it does not hold) is an answer, not something to follow with credentials attached;
- credentials only for URLs inside a configured index (:func:`in_scope`): same scheme, host and
  port, and a path under the index's own path (a simple URL ``.../simple/`` stands for its
  repository, ``...``). A client given no scope sends credentials nowhere.

HTTP failures become :class:`IndexServerError` / :class:`AuthError` with the URL (credentials
masked) and a hint (:func:`raise_for_status`).
"""

from __future__ import annotations

import logging
import os
import posixpath
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import httpx

from nexusify import __version__
from nexusify.credentials import Credentials, mask_url, redact
from nexusify.errors import AuthError, IndexServerError

if TYPE_CHECKING:
    from nexusify.config import Settings

log = logging.getLogger(__name__)

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({500, 502, 503, 504})
USER_AGENT = f"nexusify/{__version__}"


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return (parts.scheme, (parts.hostname or "").lower(), port)


def _clean_path(path: str) -> str:
    """A URL path with dot segments and doubled slashes resolved, ending with "/"."""
    path = unquote(path or "/")
    clean = posixpath.normpath("/" + path.lstrip("/"))
    return clean.rstrip("/") + "/"


@dataclass(frozen=True)
class Scope:
    """Where credentials may go: one scheme/host/port and everything under one path."""

    scheme: str
    host: str
    port: int | None
    path: str  # always ends with "/"

    @classmethod
    def of(cls, url: str) -> Scope:
        """The scope of a configured index URL. A PEP 503 root (``.../simple/``) stands for its
        repository: its files are served beside it (``.../packages/...``)."""
        scheme, host, port = origin(url)
        path = _clean_path(urlsplit(url).path)
        if path.endswith("/simple/"):
            path = path[: -len("simple/")]
        return cls(scheme, host, port, path)

    def contains(self, url: str) -> bool:
        if origin(url) != (self.scheme, self.host, self.port):
            return False
        return _clean_path(urlsplit(url).path).startswith(self.path)


def in_scope(url: str, scopes: Iterable[Scope]) -> bool:
    """THE rule: does ``url`` get the index credentials?"""
    return any(s.contains(url) for s in scopes)


def settings_scopes(settings: Settings) -> tuple[str, ...]:
    """The index URLs of a configuration: upload, its simple page, the install index, Nexus."""
    return tuple(u for u in (settings.upload_url, settings.upload_simple_url, settings.simple_url,
                             settings.nexus_url) if u)


class IndexClient:
    """An httpx client with timeouts, bounded retries for idempotent requests, and scoped auth.

    ``auth_origins`` are the configured index URLs: credentials go only to URLs inside them
    (:class:`Scope`).
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
        self._scopes = tuple(Scope.of(u) for u in auth_origins if u)
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
        if not in_scope(url, self._scopes):
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


def index_client(
    settings: Settings,
    credentials: Credentials | None = None,
    *,
    extra_urls: Iterable[str | None] = (),
    retries: int = 3,
    backoff: float = 0.5,
    transport: httpx.BaseTransport | None = None,
) -> IndexClient:
    """The client for the configured index: its timeout, and credentials scoped to its URLs."""
    urls = (*settings_scopes(settings), *(u for u in extra_urls if u))
    return make_client(timeout=float(settings.timeout), credentials=credentials, auth_origins=urls,
                       retries=retries, backoff=backoff, transport=transport)


def raise_for_status(response: httpx.Response, what: str, client: IndexClient | None = None) -> None:
    """Turn a 4xx/5xx answer into an error naming the URL, the status and what to do."""
    status = response.status_code
    if status < 400:
        return
    url = mask_url(str(response.request.url))
    body = short_body(response)
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


def short_body(response: httpx.Response, limit: int | None = 300) -> str:
    """An answer's body as one line of text (HTML tags stripped), cut at ``limit`` characters."""
    try:
        text = response.text
    except Exception:  # undecodable body
        return ""
    text = " ".join(_strip_tags(text).split())
    if not text and response.reason_phrase:
        return response.reason_phrase
    if limit is None or len(text) <= limit:
        return text
    return text[:limit] + "..."


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
