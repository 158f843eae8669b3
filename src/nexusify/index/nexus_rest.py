"""The parts of Nexus 3's REST API (``/service/rest/v1``) nexusify uses: status, search, components."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from packaging.utils import canonicalize_name

from nexusify.credentials import mask_url
from nexusify.errors import IndexServerError
from nexusify.index.client import RETRY_STATUSES, IndexClient, raise_for_status
from nexusify.index.pages import HASH_NAMES, IndexFile, same_version


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
