"""Check 3, resolve: the consumer's dependencies resolve with every shared package coming from
the configured index and nowhere else.

pip resolves what the consumer installs (the project itself, its top requirements files, or a
virtual project's declared dependencies and dependency groups: uv and PDM install its dev groups,
so a shared package listed only there is checked too) with ``--dry-run --report`` against ONLY the index URL:
``PIP_CONFIG_FILE=/dev/null`` and an environment without ``PIP_*`` variables (but the TLS ones)
keep every other configured index and find-links out, for pip's build subprocesses too, and credentials reach pip through a private netrc file (``NETRC``),
never argv. Every shared package in the report must have been downloaded from under the index
(``<index>/../`` holds the files: pypiserver ``/packages/``, Nexus ``/repository/<repo>/packages/``)
and not from a path or a direct URL.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from nexusify.credentials import INDEX_PASSWORD_VARS, Credentials
from nexusify.deploy.runtime.images import netrc_text
from nexusify.model import Project, Workspace, relpath
from nexusify.model.dockerfiles import installed_requirements
from nexusify.model.readers.pep621 import pep621_arrays
from nexusify.syntax.requirements import requirement_name
from nexusify.tools import run_tool
from nexusify.verify.report import Check, Finding


@dataclass(frozen=True)
class Resolution:
    """One thing pip was asked to resolve: its arguments and how to name it."""

    label: str
    args: tuple[str, ...]
    cwd: Path
    path: str  # the file it comes from, relative to the root


def files_prefix(index_url: str) -> str:
    """Where the index's own files live: the simple URL without its ``simple/``."""
    base = index_url.rstrip("/")
    if base.endswith("/simple"):
        base = base[: -len("/simple")]
    return base + "/"


def _virtual_requirements(consumer: Project, local: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """(pip arguments, the tables they come from) for a virtual project: its dependencies and
    every dependency group (PEP 735, uv's and PDM's dev groups: what its tool installs by
    default), through the model's one reader of those arrays. Entries naming a monorepo project
    that is no shared package (``local``: name -> role) are left out: nothing publishes them.
    PDM's ``-e <path>`` stays an editable path for pip, with ``${PROJECT_ROOT}`` filled in."""
    args: list[str] = []
    tables: list[str] = []
    for table, group, _runtime, items in pep621_arrays(consumer.data):
        if group.startswith("extra:"):
            continue
        taken = 0
        for item in items:
            if not isinstance(item, str):
                continue  # {include-group = ...}: its own group is read as well
            text = item.replace("${PROJECT_ROOT}", consumer.path.as_posix()).strip()
            if text.startswith(("-e ", "--editable ")):  # PDM's editable forms: pip takes -e <target>
                args += ["-e", text.split(None, 1)[1].split(";")[0].strip()]
                taken += 1
                continue
            name = requirement_name(text)
            if name and local.get(name, "shared") != "shared":
                continue
            args.append(_uv_direct(text, consumer) if name and name not in local else text)
            taken += 1
        if taken:
            tables.append(".".join(table))
    poetry_args, poetry_tables = _poetry_requirements(consumer, local)
    return args + poetry_args, tables + poetry_tables


def _uv_direct(text: str, consumer: Project) -> str:
    """A requirement of a third-party package whose ``[tool.uv.sources]`` entry is a git repository,
    a URL or a path, as the PEP 508 direct reference uv installs (``components @
    git+https://...@v1.0.5#subdirectory=components``): by its name alone pip would take whatever the
    index holds under that name (navigator-backend's ``components``: a PyPI project of that name)."""
    from packaging.requirements import InvalidRequirement, Requirement

    sources = consumer.data.get("tool", {}).get("uv", {}).get("sources", {}) \
        if isinstance(consumer.data.get("tool"), dict) else {}
    try:
        req = Requirement(text)
    except InvalidRequirement:
        return text
    entry = next((v for k, v in (sources.items() if isinstance(sources, dict) else ())
                  if canonicalize_name(k) == canonicalize_name(req.name)), None)
    if not isinstance(entry, dict):
        return text
    if isinstance(entry.get("git"), str):
        ref = next((str(entry[k]) for k in ("rev", "tag", "branch") if entry.get(k)), "")
        url = "git+" + entry["git"].removeprefix("git+") + (f"@{ref}" if ref else "")
        url += f"#subdirectory={entry['subdirectory']}" if entry.get("subdirectory") else ""
    elif isinstance(entry.get("url"), str):
        url = entry["url"]
    elif isinstance(entry.get("path"), str):
        url = (consumer.path / entry["path"]).resolve().as_uri()
    else:
        return text  # an index or the workspace: the index decides
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    return f"{req.name}{extras} @ {url}" + (f" ; {req.marker}" if req.marker else "")


def _poetry_requirements(consumer: Project, local: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """A Poetry project's dependency tables (main and every non-optional group: what ``poetry
    install`` installs) as pip requirements: a version constraint in PEP 440 form, a path as the
    path pip installs (then reported as not from the index), extras kept; ``python`` left out."""
    from nexusify.syntax.constraints import poetry_to_pep440

    poetry = consumer.data.get("tool", {}).get("poetry", {}) if isinstance(consumer.data.get("tool"), dict) else {}
    if not isinstance(poetry, dict):
        return [], []
    tables: list[tuple[str, Any]] = [("tool.poetry.dependencies", poetry.get("dependencies"))]
    for group, body in (poetry.get("group") or {}).items():
        if isinstance(body, dict) and not body.get("optional"):
            tables.append((f"tool.poetry.group.{group}.dependencies", body.get("dependencies")))
    args: list[str] = []
    names: list[str] = []
    for label, deps in tables:
        taken = 0
        for name, spec in (deps or {}).items() if isinstance(deps, dict) else ():
            norm = canonicalize_name(name)
            if norm == "python" or local.get(norm, "shared") != "shared":
                continue
            specs = spec if isinstance(spec, list) else [spec]
            first = specs[0] if specs else "*"
            if isinstance(first, dict) and first.get("optional"):
                continue
            extras = f"[{','.join(first['extras'])}]" if isinstance(first, dict) and first.get("extras") else ""
            if isinstance(first, dict) and "path" in first:
                args.append(str((consumer.path / str(first["path"])).resolve()) + extras)
            elif isinstance(first, dict) and ("git" in first or "url" in first):
                args.append(f"{name}{extras} @ {first.get('url') or 'git+' + str(first['git'])}")
            else:
                raw = first.get("version", "*") if isinstance(first, dict) else str(first)
                pep = poetry_to_pep440(str(raw)) if str(raw).strip() not in ("", "*") else ""
                args.append(f"{name}{extras}{pep or ''}")
            taken += 1
        if taken:
            names.append(label)
    return args, names


def resolutions(consumer: Project, root: Path, local: Mapping[str, str] | None = None) -> list[Resolution]:
    """What pip resolves for ``consumer``: the project itself, or a virtual project's dependencies
    and dependency groups (``local``: monorepo project name -> role), and its top requirements files."""
    out: list[Resolution] = []
    if not consumer.requirements_only:
        rel = relpath(consumer.pyproject, root)
        if not consumer.is_virtual and consumer.package_mode:
            out.append(Resolution(f"{consumer.name or rel}", (str(consumer.path),), consumer.path, rel))
        else:
            reqs, tables = _virtual_requirements(consumer, local or {})
            if reqs:
                out.append(Resolution(f"{rel} [{', '.join(tables)}]", tuple(reqs), consumer.path, rel))
    for top in consumer.requirement_tops:
        out.append(Resolution(relpath(top, root), ("-r", str(top)), consumer.path, relpath(top, root)))
    return out


#: PIP_* variables kept (TLS to the index); every other one could add an index or find-links
_PIP_KEEP = ("PIP_CERT", "PIP_CLIENT_CERT")


def _pip_env(base: Mapping[str, str], netrc: Path | None, timeout: int) -> dict[str, str]:
    env = {k: v for k, v in base.items()
           if (not k.startswith("PIP_") or k in _PIP_KEEP) and k not in INDEX_PASSWORD_VARS}
    env.setdefault("PATH", os.environ.get("PATH", ""))
    env.setdefault("HOME", os.environ.get("HOME", "/root"))
    # no config file at all (global, user, site), and the same for pip's build-isolation subprocesses
    env.update({"PIP_CONFIG_FILE": os.devnull, "PIP_NO_INPUT": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
                "PIP_RETRIES": "1", "PIP_TIMEOUT": str(timeout)})
    if netrc is not None:
        env["NETRC"] = str(netrc)
    else:
        env.pop("NETRC", None)
    return env


def shared_origins(report: dict[str, Any], shared: set[str], prefix: str) -> tuple[list[str], list[str]]:
    """(from the index, from elsewhere) for every shared package in a pip ``--report``."""
    good: list[str] = []
    bad: list[str] = []
    for item in report.get("install", []):
        meta = item.get("metadata", {})
        name = canonicalize_name(str(meta.get("name", "")))
        if name not in shared:
            continue
        info = item.get("download_info", {})
        url = str(info.get("url", ""))
        label = f"{meta.get('name')} {meta.get('version', '')}".strip()
        if item.get("is_direct") or "dir_info" in info or not url.startswith(prefix):
            bad.append(f"{label} from {url or 'an unknown place'}")
        else:
            good.append(label)
    return good, bad


def resolve_check(consumer: Project, ws: Workspace, index_url: str, creds: Credentials | None,
                  env: Mapping[str, str], timeout: int = 30) -> Check:
    todo = resolutions(consumer, ws.root, {p.normalized: "shared" if ws.is_shared(p) else "other"
                                          for p in ws.projects if p.normalized})
    # what its images install by name and no file of its own names (`pip install 'shared>=0.1'`)
    image_only = set(ws.takes(consumer)) - set(consumer.internal_names())
    for build in ws.dockerfiles_of(consumer):
        for _, text, line in installed_requirements(build, image_only):
            where = f"{relpath(build.dockerfile, ws.root)}:{line}"
            todo.append(Resolution(f"{where} ({text})", (text,), consumer.path, relpath(build.dockerfile, ws.root)))
    if not todo:
        return Check.na("resolve", "nothing pip can install (a virtual project without dependencies or groups)")
    shared = {p.normalized for p in ws.shared() if p.normalized} - {consumer.normalized}  # itself: from its folder
    prefix = files_prefix(index_url)
    findings: list[Finding] = []
    proved: list[str] = []
    with tempfile.TemporaryDirectory(prefix="nexusify-verify-") as tmp:
        netrc: Path | None = None
        if creds is not None and creds.present:
            netrc = Path(tmp) / "netrc"
            fd = os.open(netrc, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(netrc_text(index_url, creds))
        pip_env = _pip_env(env, netrc, timeout)
        for i, res in enumerate(todo):
            report_file = Path(tmp) / f"report-{i}.json"
            argv = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                    "--report", str(report_file),
                    "--index-url", index_url, *res.args]
            run = run_tool(argv, res.cwd, pip_env, creds)
            if not run.ok or not report_file.is_file():
                what = res.label if res.label != res.path else "it"
                findings.append(Finding(f"{what} does not resolve from the index alone: {run.reason(2)}",
                                        res.path, hint="publish the shared packages (`nexusify publish`); the index "
                                        "must also serve the third-party packages (a Nexus group)"))
                continue
            good, bad = shared_origins(json.loads(report_file.read_text(encoding="utf-8")), shared, prefix)
            prefix_label = f"{res.label}: " if res.label != res.path else ""
            findings += [Finding(f"{prefix_label}shared package {b}, not from the index", res.path,
                                 hint="depend on it by version from the index (`nexusify rewrite`)") for b in bad]
            proved += good
    names = ", ".join(sorted(set(proved))) or "no shared package installed"
    check = Check.of("resolve", findings, f"from {index_url}: {names}")
    check.packages = sorted({canonicalize_name(label.split()[0]) for label in proved})
    return check
