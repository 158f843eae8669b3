"""The constraint rules publish and rewrite share, as a table."""

from __future__ import annotations

import pytest

from nexusify.errors import ConfigError
from nexusify.syntax.constraints import admits, pep440_specifier, poetry_constraint


@pytest.mark.parametrize(
    ("version", "mode", "pep440", "poetry"),
    [
        pytest.param("1.2.3", "caret", ">=1.2.3,<2.0.0", "^1.2.3", id="caret-major"),
        pytest.param("0.2.3", "caret", ">=0.2.3,<0.3.0", "^0.2.3", id="caret-zero-major"),
        pytest.param("0.0.3", "caret", ">=0.0.3,<0.0.4", "^0.0.3", id="caret-zero-minor"),
        pytest.param("1.2.3", "tilde", ">=1.2.3,<1.3.0", "~1.2.3", id="tilde"),
        pytest.param("1.2.3", "exact", "==1.2.3", "1.2.3", id="exact"),
        pytest.param("1.2.3", "minimum", ">=1.2.3", ">=1.2.3", id="minimum"),
        pytest.param("0.2.0rc1", "caret", ">=0.2.0rc1,<0.3.0", ">=0.2.0rc1,<0.3.0", id="pre-release-range"),
        pytest.param("1.0.0.dev1", "tilde", ">=1.0.0.dev1,<1.1.0", ">=1.0.0.dev1,<1.1.0", id="dev-release-range"),
        pytest.param("2", "caret", ">=2,<3.0.0", "^2", id="short-version"),
    ],
)
def test_constraint_table(version: str, mode: str, pep440: str, poetry: str) -> None:
    assert pep440_specifier(version, mode) == pep440
    assert poetry_constraint(version, mode) == poetry
    assert admits(pep440, version), "the constraint must admit the version it was made from"


@pytest.mark.parametrize(
    ("spec", "version", "expected"),
    [
        pytest.param(">=0.2.0rc1,<0.3.0", "0.2.0rc1", True, id="pre-admitted"),
        pytest.param(">=0.1.0,<0.2.0", "0.2.0", False, id="upper-bound-excluded"),
        pytest.param(">=1.2.3,<2.0.0", "2.0.0rc1", False, id="next-major-pre-excluded"),
        pytest.param("", "9.9.9", True, id="empty-admits-all"),
        pytest.param("not a spec", "1.0", False, id="invalid-spec"),
    ],
)
def test_admits(spec: str, version: str, expected: bool) -> None:
    assert admits(spec, version) is expected


def test_bad_inputs_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="PEP 440"):
        pep440_specifier("one.two", "caret")
    with pytest.raises(ConfigError, match="constraint mode"):
        poetry_constraint("1.0.0", "loose")
