"""Dependencies between shared packages declared in setup.cfg `install_requires` / a literal
setup.py `install_requires=[...]` are read by the model: audit's graph, the publish order and
`publish <pkg>` see them; a computed install_requires is a warning that the order may be wrong."""

from __future__ import annotations

import json
import shutil
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
