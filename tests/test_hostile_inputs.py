"""Bad input of every kind keeps the rule (issue 21, items 11-17): a clear error at the file
(exit 1 or 2), nothing written, no traceback, never a false "ok"."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from nexusify.errors import TomlError
from nexusify.files import parse_toml

URL = "http://127.0.0.1:9/simple/"
ENV = {"HOME": "/nonexistent", "NO_COLOR": "1"}
Run = Callable[..., "object"]


def test_a_toml_file_nested_thousands_deep_is_an_error_at_the_file() -> None:
    with pytest.raises(TomlError, match="nested too deeply") as err:
        parse_toml("x = " + "[" * 5000 + "]" * 5000 + "\n", Path("deep.toml"))
    assert err.value.path == "deep.toml"


@pytest.mark.parametrize("argv", [["audit", "--offline"], ["rewrite", "--check", "--index-url", URL],
                                  ["publish", "--repository-url", "http://127.0.0.1:9/"]])
def test_every_verb_reports_deep_nesting_at_the_file(run_cli: Run, monorepo: Path, argv: list[str]) -> None:
    pp = monorepo / "shared/packages/monitoring/pyproject.toml"
    pp.write_text(pp.read_text() + "\nx = " + "[" * 5000 + "]" * 5000 + "\n")
    r = run_cli(*argv, "--root", str(monorepo), env=ENV)
    assert r.exit_code == 1, r.output  # type: ignore[attr-defined]
    assert "shared/packages/monitoring/pyproject.toml" in r.output and "nested too deeply" in r.output  # type: ignore[attr-defined]
    assert "internal error" not in r.output and "Traceback" not in r.output  # type: ignore[attr-defined]
