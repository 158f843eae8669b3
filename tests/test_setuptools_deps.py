"""Dependencies between shared packages declared in setup.cfg `install_requires` / a literal
setup.py `install_requires=[...]` are read by the model: audit's graph, the publish order and
`publish <pkg>` see them; a computed install_requires is a warning that the order may be wrong."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FIXTURES

ENV = {"HOME": "/nonexistent", "NO_COLOR": "1"}
PY_DEPS = FIXTURES / "layouts/setuptools-py-deps"


def _audit(run_cli, root: Path) -> dict:  # type: ignore[no-untyped-def,type-arg]
    result = run_cli("audit", "--root", str(root), "--offline", "--json", env=ENV)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_setup_cfg_install_requires_orders_the_publish(run_cli) -> None:
    data = _audit(run_cli, FIXTURES / "layouts/setuptools-cfg")
    assert {p["name"]: p["depends_on"] for p in data["packages"]} == {"meter-cfg": ["meter-core"], "meter-core": []}
    assert data["publish_order"] == ["meter-core", "meter-cfg"]


def test_setup_py_install_requires_literal_and_computed(run_cli) -> None:
    data = _audit(run_cli, PY_DEPS)
    assert {p["name"]: p["runtime_depends_on"] for p in data["packages"]} == {
        "alpha-io": ["zeta-core"], "beta-dyn": [], "zeta-core": []}
    assert data["publish_order"].index("zeta-core") < data["publish_order"].index("alpha-io")
    assert [(p["path"], p["line"], p["code"], p["severity"]) for p in data["problems"]] == [
        ("libs/beta-dyn/setup.py", 7, "dependencies-dynamic", "warning")]


@pytest.mark.slow
def test_publishing_one_package_publishes_what_its_setup_py_needs_first(run_cli, tmp_path: Path,
                                                                       pypi_server_factory,
                                                                       backend_wheels: list[Path]) -> None:
    """`publish alpha-io` on a real pypiserver uploads zeta-core (its install_requires) too, first."""
    server = pypi_server_factory(auth="update")
    for wheel in backend_wheels:
        shutil.copy(wheel, server.packages)
    root = tmp_path / "repo"
    shutil.copytree(PY_DEPS, root)
    env = {**ENV, "HOME": str(tmp_path), "NEXUS_USERNAME": server.username or "",
           "NEXUS_PASSWORD": server.password or ""}
    published = run_cli("publish", "--root", str(root), "--repository-url", server.url, "--index-url",
                        server.simple_url, "alpha-io", env=env)
    assert published.exit_code == 0, published.output
    names = sorted(p.name for p in server.packages.iterdir() if p.name.startswith(("alpha", "zeta", "beta")))
    assert names == ["alpha_io-0.3.0-py3-none-any.whl", "alpha_io-0.3.0.tar.gz",
                     "zeta_core-1.0.0-py3-none-any.whl", "zeta_core-1.0.0.tar.gz"]
    assert published.output.index("zeta-core") < published.output.index("alpha-io")


CONSTANTS = FIXTURES / "layouts/setuptools-py-constants"


def test_a_setup_py_name_bound_to_a_module_constant_is_read(run_cli) -> None:
    """kevlarr/python-micro: `PACKAGE = "micro.common"`, `setup(name=PACKAGE)`: it used to be a
    shared package with no name (an error without a line), and the service no consumer."""
    data = _audit(run_cli, CONSTANTS)
    assert [(p["name"], p["version"], p["path"]) for p in data["packages"]] == [("micro.common", "1.0.0", "common")]
    assert [(s["path"], s["shared_dependencies"]) for s in data["services"]] == [("services/api", ["micro-common"])]


def test_a_computed_setup_py_name_is_an_error_naming_its_line(run_cli, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(CONSTANTS, root)
    setup_py = root / "common/setup.py"
    setup_py.write_text(setup_py.read_text().replace('PACKAGE = "micro.common"', 'PACKAGE = "micro." + "common"'))
    result = run_cli("audit", "--root", str(root), "--offline", "--json", env=ENV)
    assert result.exit_code == 1, result.output
    errors = json.loads(result.stdout)["errors"]
    assert [(e["path"], e["line"], e["code"]) for e in errors] == [("common/setup.py", 6, "name-computed")]
    assert "setup(name=PACKAGE) is computed" in errors[0]["message"]
    # with no name, nothing takes it "as a shared package": no verb may say ok while services/api takes it by path
    url = "http://127.0.0.1:9/simple/"
    for verb in (("rewrite", "--check"), ("rewrite",), ("verify",)):
        r = run_cli(*verb, "--root", str(root), "--index-url", url, env=ENV)
        assert r.exit_code == 1 and "common/setup.py:6" in r.output, (verb, r.output)


@pytest.mark.slow
def test_setup_py_only_packages_publish_and_pip_installs_the_rewritten_requirements(
        run_cli, tmp_path: Path, pypi_server_factory, backend_wheels: list[Path]) -> None:
    server = pypi_server_factory(auth="update")
    for wheel in backend_wheels:
        shutil.copy(wheel, server.packages)
    root = tmp_path / "repo"
    shutil.copytree(CONSTANTS, root)
    env = {**ENV, "HOME": str(tmp_path), "NEXUS_USERNAME": server.username or "",
           "NEXUS_PASSWORD": server.password or ""}
    common = ("--root", str(root), "--repository-url", server.url, "--index-url", server.simple_url)
    published = run_cli("publish", *common, env=env)
    assert published.exit_code == 0, published.output
    assert sorted(p.name for p in server.packages.iterdir() if p.name.startswith("micro")) == [
        "micro_common-1.0.0-py3-none-any.whl", "micro_common-1.0.0.tar.gz"]
    done = run_cli("rewrite", *common, env=env)
    assert done.exit_code == 0, done.output
    requirements = (root / "services/api/requirements.txt").read_text()
    assert "../../common" not in requirements and "micro.common" in requirements, requirements
    assert run_cli("rewrite", "--check", *common, env=env).exit_code == 0
    verified = run_cli("verify", *common, env=env)
    assert verified.exit_code == 0, verified.output
    target = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--no-cache-dir", "--target", str(target),
                          "-r", "requirements.txt"], cwd=root / "services/api", capture_output=True, text=True,
                         check=False, timeout=300)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    assert (target / "micro/common/__init__.py").is_file()


def test_setup_spread_from_a_module_level_dict_literal_and_an_opaque_spread(run_cli, tmp_path: Path) -> None:
    """ITISFoundation/osparc-simcore's packages: `SETUP = {"name": "simcore-models-library", ...}`,
    `setup(**SETUP)`: the literal dict is read like keywords (its computed version is asked of the
    backend); a `**kwargs` nobody can read is an error naming its line."""
    root = tmp_path / "repo"
    shutil.copytree(CONSTANTS, root)
    setup_py = root / "common/setup.py"
    setup_py.write_text('from setuptools import setup\n\nSETUP = {\n    "name": "micro.common",\n'
                        '    "version": "1.0.0",\n    "packages": ["micro.common"],\n}\n\n'
                        'if __name__ == "__main__":\n    setup(**SETUP)\n')
    data = _audit(run_cli, root)
    assert [(p["name"], p["version"]) for p in data["packages"]] == [("micro.common", "1.0.0")]
    setup_py.write_text(setup_py.read_text().replace("setup(**SETUP)", "setup(**make_setup())"))
    result = run_cli("audit", "--root", str(root), "--offline", "--json", env=ENV)
    assert result.exit_code == 1, result.output
    named = [e for e in json.loads(result.stdout)["errors"] if e["code"] == "name-computed"]
    assert [(e["path"], e["line"]) for e in named] == [("common/setup.py", 10)]
    assert named[0]["message"].startswith("setup(**make_setup()) is computed")
