"""Packaging: the base install runs audit/publish/rewrite/verify; deploy and the demo are extras;
every third-party import in src/ is a declared dependency."""

from __future__ import annotations

import ast
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO

SRC = REPO / "src" / "nexusify"
DEPLOY = {"docker", "boto3", "alembic", "sqlalchemy"}
DEMO = {"pypiserver", "passlib"}


def _requirements() -> dict[str | None, set[str]]:
    """extra (None: the base install) -> canonical names it requires (self-references kept)."""
    out: dict[str | None, set[str]] = {}
    for raw in metadata.requires("nexusify") or []:
        req = Requirement(raw)
        extra = None
        if req.marker is not None:
            extra = next((e for e in ("deploy", "demo", "dev", "postgres")
                          if req.marker.evaluate({"extra": e})), None)
        name = canonicalize_name(req.name)
        out.setdefault(extra, set()).add(name)  # `docker[ssh]` counts as docker
        if req.extras:
            out[extra].add(name + f"[{','.join(sorted(req.extras))}]")
    return out


def test_the_base_install_brings_no_engine_sdk_aws_database_or_index_server() -> None:
    reqs = _requirements()
    base = reqs[None]
    assert not base & (DEPLOY | DEMO | {"twine", "build", "requests-toolbelt", "requests"})
    assert {"httpx", "packaging", "tomlkit", "poetry-core", "pyproject-hooks", "rich", "uv"} <= base
    assert reqs["deploy"] >= DEPLOY
    # (hatchling writes the extras an extra includes, nexusify[deploy], as their requirements)
    assert reqs["demo"] >= DEMO | DEPLOY  # the demo also deploys when an engine answers
    assert reqs["dev"] >= DEMO | DEPLOY


def _third_party_imports() -> dict[str, list[str]]:
    """top-level module -> the src files importing it (stdlib and nexusify itself left out)."""
    found: dict[str, list[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("nexusify", "__future__"):
                    found.setdefault(top, []).append(str(path.relative_to(REPO)))
    return found


def test_every_import_in_src_is_a_declared_dependency() -> None:
    declared = set().union(*(names for extra, names in _requirements().items() if extra in (None, "deploy", "demo")))
    declared |= {n.split("[")[0] for n in declared}
    providers = metadata.packages_distributions()
    undeclared = {}
    for module, files in _third_party_imports().items():
        dists = {canonicalize_name(d) for d in providers.get(module, [])}
        if not dists & declared:
            undeclared[module] = files
    # botocore comes with boto3 (deploy)
    undeclared.pop("botocore", None)
    assert undeclared == {}


BLOCKED = sorted(DEPLOY | DEMO | {"botocore", "twine", "requests", "requests_toolbelt", "build"})
_RUN = """
import sys
for name in {blocked!r}:
    sys.modules[name] = None  # importing it raises ImportError, as on a base install
from nexusify import cli
sys.exit(cli.main(sys.argv[1:], env={{"HOME": {home!r}, "NO_COLOR": "1", "PATH": {path!r}}}))
"""


def _run_without_extras(*argv: str) -> subprocess.CompletedProcess[str]:
    import os

    code = _RUN.format(blocked=BLOCKED, home=str(Path.home()), path=os.environ.get("PATH", ""))
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=300,
                          cwd=REPO, check=False)


def test_audit_rewrite_check_and_publish_run_without_the_extras(monorepo: Path, pypi_server_factory,  # type: ignore[no-untyped-def]
                                                                 build_env_dir: Path) -> None:
    audit = _run_without_extras("audit", "--root", str(monorepo), "--offline")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    check = _run_without_extras("rewrite", "--root", str(monorepo), "--repository-url", "http://127.0.0.1:9/", "--check")
    assert check.returncode == 1 and "would be rewritten" in check.stdout + check.stderr, check.stdout + check.stderr
    server = pypi_server_factory(auth=None)
    publish = _run_without_extras("publish", "--root", str(monorepo), "--repository-url", server.url, "--dry-run")
    assert publish.returncode == 0, publish.stdout + publish.stderr
    assert "Traceback" not in publish.stderr + audit.stderr + check.stderr


@pytest.mark.slow
def test_the_embedded_index_without_the_demo_extra_names_the_pip_command(tmp_path: Path) -> None:
    code = (f"import sys\nfor n in {BLOCKED!r}: sys.modules[n] = None\n"
            "from pathlib import Path\nfrom nexusify.errors import ExtraMissing\n"
            "from nexusify.index.local import start_local_index\n"
            f"try:\n    start_local_index(Path({str(tmp_path / 'p')!r}), log_file=Path({str(tmp_path / 'log')!r}))\n"
            "except ExtraMissing as exc:\n    print(exc.exit_code, exc.hint)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert out.stdout.strip() == "2 python -m pip install 'nexusify[demo]'", out.stdout + out.stderr


def test_demo_without_its_extra_exits_2_before_copying_anything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nexusify import cli, extras

    monkeypatch.setattr(extras, "missing", lambda extra: ["pypiserver"] if extra == "demo" else [])
    monkeypatch.setitem(sys.modules, "pypiserver", None)  # `import pypiserver` fails as if not installed
    workdir = tmp_path / "demo"
    code = cli.main(["demo", "--workdir", str(workdir), "--no-engine"], env={"NO_COLOR": "1"})
    assert code == 2
    assert not workdir.exists()


def test_no_extra_pulls_paramiko_or_pins_bcrypt() -> None:
    """ssh:// engines go through the system's ssh (deploy/runtime/ssh_tunnel.py): docker-py's paramiko mode
    (`docker[ssh]`) is no dependency, and the bcrypt pin it needed is gone with it."""
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = [Requirement(r) for extra in ("deploy", "demo") for r in project["optional-dependencies"][extra]]
    docker = [r for r in declared if canonicalize_name(r.name) == "docker"]
    assert docker and not any(r.extras for r in docker), docker
    assert not {"paramiko", "bcrypt"} & {canonicalize_name(r.name) for r in declared}
