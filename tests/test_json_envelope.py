"""Every verb's --json output is one envelope (ok, exit_code, errors, warnings, the verb's data),
valid against docs/schema/output.schema.json (issue 24, item 7)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from .conftest import REPO, SAMPLE

SCHEMA = json.loads((REPO / "docs" / "schema" / "output.schema.json").read_text(encoding="utf-8"))
INDEX = "http://127.0.0.1:9/simple/"  # nothing listens: only verbs that stop before asking it


def _envelope(run_cli, *argv: str, expect: int) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = run_cli(*argv, "--json")
    assert r.exit_code == expect, r.output
    data = json.loads(r.stdout)
    jsonschema.validate(data, SCHEMA)
    assert data["exit_code"] == r.exit_code and data["ok"] is (r.exit_code == 0)
    return data


def test_the_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_the_schema_refuses_what_the_envelope_never_is() -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"command": "rewrite", "changed": False}, SCHEMA)  # the old refused rewrite --check
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"command": "audit", "ok": True, "exit_code": 1, "errors": [], "warnings": []}, SCHEMA)


@pytest.fixture
def broken(monorepo: Path) -> Path:
    shutil.rmtree(monorepo / "shared" / "packages" / "core-config")  # services reach it by path
    return monorepo


def test_a_refused_rewrite_check_has_ok_false_and_the_errors(run_cli, broken: Path) -> None:  # type: ignore[no-untyped-def]
    data = _envelope(run_cli, "rewrite", "--check", "--root", str(broken), "--index-url", INDEX, expect=1)
    assert data["command"] == "rewrite" and data["ok"] is False and data["written"] is False
    assert data["errors"] and all(e["message"] for e in data["errors"])
    assert any("core-config" in e["message"] for e in data["errors"])


def test_rewrite_check_that_would_change_says_why_it_is_not_ok(run_cli, monorepo: Path) -> None:  # type: ignore[no-untyped-def]
    data = _envelope(run_cli, "rewrite", "--check", "--no-lock", "--root", str(monorepo), "--index-url", INDEX,
                     expect=1)
    assert data["changed"] is True
    assert any("would be rewritten" in e["message"] for e in data["errors"])


def test_audit_errors_and_warnings_are_its_problems(run_cli, broken: Path) -> None:  # type: ignore[no-untyped-def]
    data = _envelope(run_cli, "audit", "--offline", "--root", str(broken), expect=1)
    assert len(data["errors"]) == sum(p["severity"] == "error" for p in data["problems"]) > 0
    assert len(data["warnings"]) == sum(p["severity"] == "warning" for p in data["problems"])
    ok = _envelope(run_cli, "audit", "--offline", "--root", str(SAMPLE), expect=0)
    assert ok["ok"] is True and ok["errors"] == [] and ok["packages"]


def test_init_and_errors_of_any_verb_share_the_envelope(run_cli, monorepo: Path) -> None:  # type: ignore[no-untyped-def]
    init = _envelope(run_cli, "init", "--root", str(monorepo), expect=0)
    assert init["command"] == "init" and init["path"].endswith("nexusify.toml")
    again = _envelope(run_cli, "init", "--root", str(monorepo), expect=2)  # exists: a usage error
    assert again["command"] == "init" and again["errors"][0]["code"] == "UsageError"
    (monorepo / "nexusify.toml").unlink()
    verify = _envelope(run_cli, "verify", "--root", str(monorepo), expect=2)  # no index configured
    assert verify["command"] == "verify" and verify["errors"][0]["code"] == "ConfigError"
    history = _envelope(run_cli, "history", "--root", str(monorepo), "-e", "nowhere", expect=2)
    assert history["command"] == "history" and history["errors"]
    usage = _envelope(run_cli, "audit", "--no-such-flag", expect=2)
    assert usage["command"] == "audit" and "unrecognized" in usage["errors"][0]["message"]


def test_several_config_errors_are_each_an_error(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "nexusify.toml").write_text('constraint = "nope"\nrepositry = "x"\n')
    data = _envelope(run_cli, "audit", "--root", str(tmp_path), expect=2)
    assert len(data["errors"]) == 2 and {e["line"] for e in data["errors"]} == {1, 2}
