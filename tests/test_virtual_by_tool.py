"""A project its own tool does not build is virtual for every verb (issue 20, resolve): uv builds
a project only with a ``[build-system]`` (or ``[tool.uv] package = true``), PDM only with a name.
navigator-backend's services have no ``[build-system]`` and pdm-example-monorepo's root has no
name: pip building them as packages failed ("Multiple top-level packages discovered in a
flat-layout", "Failed to build ... when getting requirements to build wheel") although ``uv sync``
and ``pdm install`` install their dependencies and groups fine; verify resolves those instead."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from nexusify.model import load_workspace
from nexusify.verify.resolve import resolutions
from tests.conftest import FIXTURES
from tests.test_verify_layouts import _uv_env

LIB = ('[project]\nname = "{name}"\nversion = "0.1.0"\n'
       '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n')


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_what_each_tool_builds_decides_virtual(tmp_path: Path) -> None:
    root = _write(tmp_path / "repo", {
        "pyproject.toml": '[project]\nname = "ws"\nversion = "0"\n[tool.uv.workspace]\nmembers = ["libs/*", "apps/*"]\n',
        "libs/common/pyproject.toml": LIB.format(name="common"),
        "apps/plain/pyproject.toml": '[project]\nname = "plain"\nversion = "1"\ndependencies = ["common"]\n'
                                     '[tool.uv.sources]\ncommon = { workspace = true }\n',
        "apps/packaged/pyproject.toml": '[project]\nname = "packaged"\nversion = "1"\ndependencies = ["common"]\n'
                                        '[tool.uv]\npackage = true\n[tool.uv.sources]\ncommon = { workspace = true }\n',
        "pdm/pyproject.toml": '[project]\ndependencies = []\nrequires-python = ">=3.8"\n'
                              '[tool.pdm.dev-dependencies]\ndev = ["-e file:///${PROJECT_ROOT}/packages/core"]\n',
        "pdm/packages/core/pyproject.toml": LIB.format(name="core"),
        "pdmapp/pyproject.toml": '[project]\nname = "pdmapp"\nversion = "1"\ndependencies = ["core"]\n'
                                 '[tool.pdm]\npackage-type = "application"\n',
        "pdmlib/pyproject.toml": '[project]\nname = "pdmlib"\nversion = "1"\n[tool.pdm]\n',
    })
    ws = load_workspace(root)
    virtual = {p.rel(ws.root): p.virtual_reason for p in ws.projects if p.is_virtual}
    assert virtual == {
        ".": "a uv workspace root without [build-system]",
        "apps/plain": "no [build-system]: uv does not build or install it (a virtual project)",
        "pdm": "no project name: PDM installs its dependencies and groups, not the project",
        "pdmapp": '[tool.pdm] package-type = "application"',
    }
    # verify asks pip for what the tool installs: the dependencies and groups, not the folder
    nameless = ws.project_at(root / "pdm")
    assert nameless is not None
    (done,) = resolutions(nameless, ws.root, {"core": "shared"})
    assert done.args[0] == "-e" and done.args[1].startswith("file:")
    assert done.args[1].endswith(f"{(root / 'pdm').resolve().as_posix()}/packages/core")
    plain = ws.by_name["plain"]
    assert [r.args for r in resolutions(plain, ws.root, {"common": "shared"})] == [("common",)]


@pytest.mark.slow
def test_a_uv_service_without_build_system_resolves_from_the_index(run_cli, tmp_path: Path, pypi_server_factory,
                                                                   backend_wheels: list[Path],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """svc-b has no [build-system] and two top-level folders (setuptools' flat-layout refuses to
    build it, as navigator-backend's data-in-pipeline); moved out of the workspace onto the index,
    `uv lock` takes it as a virtual project and verify's resolve proves acme-common from the index."""
    root = tmp_path / "repo"
    shutil.copytree(FIXTURES / "layouts/uv-root-lock", root)
    env = _uv_env(tmp_path, monkeypatch)
    server = pypi_server_factory(auth=None)
    for wheel in backend_wheels:
        shutil.copy(wheel, server.packages)
    common = ("--root", str(root), "--repository-url", server.url, "--index-url", server.simple_url)
    assert run_cli("publish", *common, env=env).exit_code == 0
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(
        'members = ["libs/*", "services/*"]', 'members = ["libs/*", "services/*"]\nexclude = ["services/svc-b"]'))
    svc_b = root / "services/svc-b"
    shutil.rmtree(svc_b / "src")
    for folder in ("app", "infra"):
        (svc_b / folder).mkdir()
        (svc_b / folder / "__init__.py").write_text("")
    manifest = svc_b / "pyproject.toml"
    text = manifest.read_text().split("[build-system]")[0]
    manifest.write_text(text.replace(
        "acme-common = { workspace = true }",
        f'acme-common = {{ index = "nexus" }}\n\n[[tool.uv.index]]\nname = "nexus"\nurl = "{server.simple_url}"\n'
        "explicit = true\n"))
    for folder in (root, svc_b):
        made = subprocess.run(["uv", "lock"], cwd=folder, env=env, capture_output=True, text=True, check=False)
        assert made.returncode == 0, made.stderr
    result = run_cli("verify", *common, "--json", "services/svc-b", env=env)
    moved = json.loads(result.stdout)["consumers"][0]
    assert moved["checks"]["resolve"]["status"] == "ok", moved["checks"]["resolve"]
    assert moved["checks"]["resolve"]["detail"] == f"from {server.simple_url}: acme-common 0.2.0"
    assert result.exit_code == 0, result.output


def test_a_virtual_projects_third_party_sources_reach_pip(tmp_path: Path) -> None:
    """navigator-backend's data-in-pipeline takes `components` from a git repository through
    [tool.uv.sources]; by its name alone pip took a PyPI project called `components`."""
    root = _write(tmp_path / "repo", {
        "libs/common/pyproject.toml": LIB.format(name="common"),
        "svc/pyproject.toml": '[project]\nname = "svc"\nversion = "1"\ndependencies = [\n'
                              '  "common>=0.1", "components>=1.0.3", "vendored[fast] ; python_version >= \'3.9\'",\n'
                              '  "direct", "plain>=2",\n]\n[tool.uv.sources]\ncommon = { path = "../libs/common" }\n'
                              'components = { git = "https://github.com/o/infra", subdirectory = "components", tag = "v1.0.5" }\n'
                              'vendored = { path = "../vendor/vendored-1.0-py3-none-any.whl" }\n'
                              'direct = { url = "https://example.org/direct-1.0.tar.gz" }\n',
    })
    ws = load_workspace(root)
    (done,) = resolutions(ws.by_name["svc"], ws.root, {"common": "shared", "svc": "other"})
    wheel = (root / "vendor/vendored-1.0-py3-none-any.whl").resolve().as_uri()
    assert done.args == (
        "common>=0.1",  # a shared package: by name, from the index (the static check names the path)
        "components @ git+https://github.com/o/infra@v1.0.5#subdirectory=components",
        f'vendored[fast] @ {wheel} ; python_version >= "3.9"',
        "direct @ https://example.org/direct-1.0.tar.gz",
        "plain>=2",
    )
