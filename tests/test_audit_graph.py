"""`nexusify audit --graph`: Mermaid and dot output of the sample, unknown formats, cycles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nexusify.audit.graph import render_graph
from nexusify.audit.report import run_audit
from nexusify.config import resolve_settings

from .conftest import SAMPLE

GRAPH_CASES = [
    pytest.param("mermaid", ["graph LR", 'n_maestro_core_api["maestro-core-api 0.1.0"]', 'n_gateway(["gateway"])',
                             "n_gateway --> n_maestro_core_auth",
                             "n_maestro_core_auth -. dev .-> n_maestro_test_healer"], id="mermaid"),
    pytest.param("dot", ["digraph nexusify {", '"maestro-core-api" [label="maestro-core-api\\n0.1.0", shape=box];',
                         '"gateway" -> "maestro-core-auth";',
                         '"maestro-core-auth" -> "maestro-test-healer" [style=dashed, label="dev"];'], id="dot"),
]



@pytest.mark.parametrize(("fmt", "expected"), GRAPH_CASES)
def test_graph(run_cli, fmt: str, expected: list[str]) -> None:  # type: ignore[no-untyped-def]
    r = run_cli("audit", "--root", str(SAMPLE), "--graph", fmt)
    assert r.exit_code == 0
    lines = r.stdout.splitlines()
    for line in expected:
        assert any(line in got for got in lines), line
    assert "Shared packages" not in r.stdout  # only the graph on stdout
    assert "0 error(s), 6 warning(s)" in r.stderr
    edges = [line for line in lines if "->" in line or "-->" in line or ".->" in line]
    assert len(edges) == 18



def test_graph_in_json(run_cli) -> None:  # type: ignore[no-untyped-def]
    r = run_cli("audit", "--root", str(SAMPLE), "--graph", "dot", "--json")
    assert json.loads(r.stdout)["graph"].startswith("digraph nexusify {")



def test_graph_rejects_unknown_format(run_cli) -> None:  # type: ignore[no-untyped-def]
    assert run_cli("audit", "--root", str(SAMPLE), "--graph", "svg").exit_code == 2
    report = run_audit(resolve_settings(SAMPLE, env={}), index=False)
    with pytest.raises(ValueError, match="unknown graph format"):
        render_graph(report, "svg")



def test_graph_of_a_cycle_still_renders(tmp_path: Path) -> None:
    for a, b in (("a", "b"), ("b", "a")):
        d = tmp_path / "libs" / a
        d.mkdir(parents=True)
        d.joinpath("pyproject.toml").write_text(
            f'[project]\nname = "{a}"\nversion = "1"\ndependencies = ["{b} @ file:///${{PROJECT_ROOT}}/../{b}"]\n'
            '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n')
    report = run_audit(resolve_settings(tmp_path, env={}), index=False)
    text = render_graph(report, "mermaid")
    assert "n_a --> n_b" in text and "n_b --> n_a" in text
    assert report.exit_code == 1
