"""Each verb's help lists the index settings it uses, and an option that means one thing is
accepted by every verb it concerns (issue 24, items 2 and 3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nexusify import cli
from nexusify.commands.verbs import BY_NAME, VERBS
from nexusify.config import SCHEMA

FLAGS = {o.attr: o.flag for o in SCHEMA if o.flag}


def _help(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, verb: str) -> str:
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit):
        cli.main([verb, "--help"], env={"NO_COLOR": "1"})
    return capsys.readouterr().out


def test_every_verb_names_the_index_settings_it_uses() -> None:
    for verb in VERBS:
        assert verb.index_options is not None, f"{verb.name}: say which index settings it uses"
        assert set(verb.index_options) <= set(FLAGS), verb.name


@pytest.mark.parametrize(("verb", "shown", "hidden"), [
    pytest.param("verify", ["--index-url", "--username", "--source-name", "--timeout"],
                 ["--jobs", "--public-index-url", "--constraint", "--priority"], id="verify"),
    pytest.param("audit", ["--public-index-url", "--priority", "--repository-url"],
                 ["--jobs", "--source-name", "--constraint"], id="audit"),
    pytest.param("publish", ["--jobs", "--repository-url"], ["--public-index-url", "--source-name", "--priority"],
                 id="publish"),
    pytest.param("rewrite", ["--constraint", "--priority", "--source-name"], ["--jobs", "--public-index-url"],
                 id="rewrite"),
    pytest.param("affected", ["--index-url"], ["--jobs", "--constraint", "--source-name", "--public-index-url"],
                 id="affected"),
    pytest.param("deploy", ["--index-url"], ["--jobs", "--constraint", "--public-index-url"], id="deploy"),
])
def test_help_lists_only_the_index_options_the_verb_uses(
        verb: str, shown: list[str], hidden: list[str],
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    text = _help(capsys, monkeypatch, verb)
    for flag in shown:
        assert flag in text, (verb, flag)
    for flag in hidden:
        assert flag not in text, (verb, flag)


@pytest.mark.parametrize("verb", ["rewrite", "verify"])
def test_index_auth_is_accepted_by_every_verb_it_concerns(verb: str, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    parser = cli.build_parser()
    assert parser.parse_args([verb, "--no-index-auth"]).index_auth is False
    assert parser.parse_args([verb, "--index-auth"]).index_auth is True
    assert parser.parse_args([verb]).index_auth is None
    text = _help(capsys, monkeypatch, verb)
    assert "--index-auth, --no-index-auth" in text


def test_verify_index_auth_without_credentials_is_a_usage_error(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from .conftest import SAMPLE

    r = run_cli("verify", "--root", str(SAMPLE), "--index-url", "http://127.0.0.1:9/simple/", "--index-auth")
    assert r.exit_code == 2
    assert "--index-auth" in r.stderr and "NEXUS_USERNAME" in r.stderr


def test_verbs_table_still_names_every_verb() -> None:
    assert set(BY_NAME) == {v.name for v in VERBS}
