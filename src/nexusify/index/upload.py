"""Uploading one distribution file: the legacy PyPI upload API (what twine speaks), through the index client.

A ``multipart/form-data`` POST to the repository URL with ``:action=file_upload``, the file as
``content``, and the core metadata as form fields (named the way Warehouse, pypiserver and Nexus
read them). It goes through :class:`~nexusify.index.client.IndexClient`, so it has the client's
timeout, is never retried (POST), follows no redirect, and carries credentials only when the
upload URL is inside the configured index.

:func:`upload_file` returns the answer (status and a short, tag-free body); what a status
means for a publish is the caller's decision.
"""

from __future__ import annotations

import email.parser
import hashlib
from dataclasses import dataclass
from pathlib import Path

from nexusify.errors import IndexServerError
from nexusify.index.client import IndexClient, short_body
from nexusify.index.pages import parse_filename

# core metadata fields that may appear several times, and their form names
_MULTI = {
    "classifier": "classifiers", "platform": "platform", "supported-platform": "supported_platform",
    "requires-dist": "requires_dist", "provides-dist": "provides_dist", "obsoletes-dist": "obsoletes_dist",
    "requires-external": "requires_external", "project-url": "project_urls", "provides-extra": "provides_extras",
    "dynamic": "dynamic", "license-file": "license_files", "requires": "requires", "provides": "provides",
    "obsoletes": "obsoletes",
}


@dataclass(frozen=True)
class UploadAnswer:
    status: int
    reason: str
    body: str  # tags stripped, whitespace collapsed, the whole text (no cut)

    @property
    def ok(self) -> bool:
        return self.status in (200, 201)

    def describe(self, limit: int = 300) -> str:
        text = self.body or self.reason
        return text[:limit] + ("..." if len(text) > limit else "")


def form_fields(metadata_text: str, filename: str, data: bytes) -> list[tuple[str, str]]:
    """The upload form of one file: its core metadata, kind, python tag and digests."""
    msg = email.parser.Parser().parsestr(metadata_text)
    fields: list[tuple[str, str]] = [(":action", "file_upload"), ("protocol_version", "1")]
    for key in dict.fromkeys(k.lower() for k in msg):
        for value in msg.get_all(key) or []:
            name = _MULTI.get(key, key.replace("-", "_"))
            if key == "metadata-version":
                name = "metadata_version"
            fields.append((name, str(value)))
    description = msg.get_payload()
    if isinstance(description, str) and description.strip() and "description" not in {k for k, _ in fields}:
        fields.append(("description", description))
    parsed = parse_filename(filename)
    if parsed is None:
        raise IndexServerError(f"{filename} is not a wheel or sdist filename", hint="the backend misnamed its output")
    if parsed[2] == "wheel":
        pyversion = filename[:-4].split("-")[-3]
        fields += [("filetype", "bdist_wheel"), ("pyversion", pyversion)]
    else:
        fields += [("filetype", "sdist"), ("pyversion", "source")]
    fields += [
        ("md5_digest", hashlib.md5(data, usedforsecurity=False).hexdigest()),
        ("sha256_digest", hashlib.sha256(data).hexdigest()),
        ("blake2_256_digest", hashlib.blake2b(data, digest_size=32).hexdigest()),
    ]
    return fields


def upload_file(client: IndexClient, url: str, path: Path, metadata_text: str) -> UploadAnswer:
    """POST ``path`` to the repository ``url``. Raises IndexServerError only when the server
    cannot be reached (the file may or may not have arrived: the caller looks)."""
    data = path.read_bytes()
    fields = form_fields(metadata_text, path.name, data)
    form: dict[str, list[str]] = {}
    for key, value in fields:
        form.setdefault(key, []).append(value)
    response = client.request(
        "POST", url, data=form, files={"content": (path.name, data, "application/octet-stream")},
    )
    try:
        return UploadAnswer(response.status_code, response.reason_phrase or "",
                            client.redact(short_body(response, limit=None)))
    finally:
        response.close()
