"""``nexusify audit --check-public``: shared package names that also exist on the public index
(the dependency-confusion hazard)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from packaging.utils import canonicalize_name

from nexusify.audit.messages import shown_url
from nexusify.config import Settings
from nexusify.errors import IndexServerError, Problem, Severity
from nexusify.model import Workspace, relpath

if TYPE_CHECKING:  # audit --offline never talks HTTP: httpx is imported when a request is made
    import httpx


def check_public_names(
    ws: Workspace, settings: Settings, transport: httpx.BaseTransport | None = None,
) -> tuple[dict[str, Any], list[Problem]]:
    """Look every shared package's name up on the public index: a name that exists there can
    be served instead of the internal package by a client that consults both
    (``--extra-index-url``, Poetry ``supplemental``): the dependency-confusion hazard."""
    from nexusify.index.client import make_client, origin

    base = settings.public_index_url.rstrip("/") + "/"
    result: dict[str, Any] = {"url": shown_url(base), "checked": False, "names": {}}
    problems: list[Problem] = []
    severity: Severity = "error" if settings.priority == "supplemental" else "warning"
    with make_client(timeout=float(settings.timeout), retries=1, backoff=0.2, transport=transport) as client:
        for p in ws.shared():
            if not p.normalized:
                continue
            url = f"{base}{canonicalize_name(p.normalized)}/"
            try:
                found: bool | None = None
                for _hop in range(3):
                    response = client.get(url, headers={"Accept": "text/html"})
                    code = response.status_code
                    if code in (301, 302, 303, 307, 308):
                        target = urljoin(url, response.headers.get("Location", ""))
                        if origin(target) != origin(url):
                            found = False  # a fallback redirect: this index does not hold it
                            break
                        url = target
                        continue
                    found = True if code == 200 else (False if code in (404, 410) else None)
                    break
            except IndexServerError as exc:
                problems.append(Problem(
                    "warning", "public-index-unreachable", None, None,
                    f"the public index {shown_url(base)} could not be reached, names were not checked: {exc.message}",
                    "set --public-index-url to a reachable index (a PyPI mirror), or drop --check-public",
                ))
                return result, problems
            result["checked"] = True
            result["names"][p.normalized] = found
            if found is None:
                problems.append(Problem("warning", "public-check-failed", None, None,
                                        f"{shown_url(url)} answered HTTP {code}: {p.name} was not checked"))
            elif found:
                problems.append(Problem(
                    severity, "public-name-exists", relpath(p.pyproject, ws.root), None,
                    f"{p.name} also exists on the public index ({shown_url(url)}): a client that consults both "
                    "indexes may install the public one (dependency confusion)",
                    "rename the package with a company prefix, or keep priority = \"explicit\" and install "
                    "only from the Nexus group repository (never --extra-index-url)",
                ))
    return result, problems
