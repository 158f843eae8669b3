"""PEP 503 (HTML) and PEP 691 (JSON) simple pages: what an index holds for a project.

:class:`SimpleIndex` reads a project's page through the index client and returns plain
:class:`IndexFile` records (filename, URL, the hashes the index told us); :func:`parse_filename`
and :func:`same_version` are the one way to match a file to a project and version.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from nexusify.credentials import mask_url
from nexusify.errors import IndexServerError
from nexusify.index.client import IndexClient, origin, raise_for_status

log = logging.getLogger(__name__)

HASH_NAMES = ("sha256", "md5", "sha1")
PEP691 = "application/vnd.pypi.simple.v1+json"
ACCEPT = f"{PEP691}, text/html;q=0.1"


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


def parse_json_page(text: str, page_url: str) -> list[IndexFile]:
    """The files of a PEP 691 project page (``application/vnd.pypi.simple.v1+json``)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise IndexServerError(f"{mask_url(page_url)} answered invalid JSON: {exc}",
                               hint="check the index URL points at a PEP 503/691 simple index") from exc
    files: list[IndexFile] = []
    raw_files = data.get("files") if isinstance(data, dict) else None
    for item in raw_files if isinstance(raw_files, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("url"), str):
            continue
        url = urljoin(page_url, item["url"])
        raw_hashes: Any = item.get("hashes")
        hashes = {str(k).lower(): str(v).lower() for k, v in (raw_hashes or {}).items()
                  if str(k).lower() in hashlib.algorithms_guaranteed and v} if isinstance(raw_hashes, dict) else {}
        filename = item.get("filename") if isinstance(item.get("filename"), str) else None
        size = item.get("size")
        files.append(IndexFile(
            filename=filename or unquote(urlsplit(url).path.rsplit("/", 1)[-1]),
            url=url,
            hashes=hashes,
            requires_python=item.get("requires-python") if isinstance(item.get("requires-python"), str) else None,
            yanked=bool(item.get("yanked")),
            size=size if isinstance(size, int) else None,
        ))
    return files


def parse_page(response_text: str, content_type: str, page_url: str) -> list[IndexFile]:
    """A project page in whichever form the index answered (PEP 691 JSON or PEP 503 HTML)."""
    if content_type.split(";", 1)[0].strip().lower() == PEP691:
        return parse_json_page(response_text, page_url)
    return parse_simple_page(response_text, page_url)


class SimpleIndex:
    """A PEP 503/691 index: ``project_files(name)`` lists what it holds for a project."""

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
            response = self.client.get(url, headers={"Accept": ACCEPT, "Cache-Control": "no-cache"})
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
            return parse_page(response.text, response.headers.get("Content-Type", ""), str(response.url))
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
