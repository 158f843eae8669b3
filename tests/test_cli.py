"""The command line: verbs, version, exit codes, error rendering, secrets never printed."""

from __future__ import annotations

import argparse
import importlib
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from nexusify import __version__, cli, commands
from nexusify.commands.verbs import BY_NAME, VERBS
from nexusify.config import SCHEMA

from .conftest import SAMPLE


def test_help_lists_every_verb() -> None:
    proc = subprocess.run([sys.executable, "-m", "nexusify", "--help"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0
    for verb in ("audit", "publish", "rewrite", "deploy", "rollback", "history"):
        assert verb in proc.stdout


def test_version(run_cli) -> None:  # type: ignore[no-untyped-def]
    proc = subprocess.run([sys.executable, "-m", "nexusify", "--version"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0
    assert __version__ in proc.stdout


_LOADED = """
import contextlib, io, sys
from nexusify.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    main(sys.argv[1:], env={"NO_COLOR": "1"})
print(" ".join(sorted(m for m in sys.modules if m.startswith(("nexusify.", "rich", "httpx")))))
"""


@pytest.mark.parametrize("argv", [["--version"], ["--help"], [], ["audit", "--help"]])
def test_version_and_help_import_no_verb_they_do_not_show(argv: list[str]) -> None:
    """`nexusify --version` imports no more than the command line itself; the top level's help, the
    verbs' list and the help renderer; a verb's help, that verb's module alone."""
    proc = subprocess.run([sys.executable, "-c", _LOADED, *argv], capture_output=True, text=True, check=True)
    loaded = set(proc.stdout.split())
    verbs = {m.removeprefix("nexusify.commands.") for m in loaded if m.startswith("nexusify.commands.")} - {"verbs"}
    assert verbs == ({"audit"} if argv[:1] == ["audit"] else set())
    if argv == ["--version"]:
        assert loaded == {"nexusify.cli"}
    elif not argv or argv == ["--help"]:
        assert not any(m.startswith(("rich", "httpx", "nexusify.config", "nexusify.model")) for m in loaded)


def test_unknown_option_is_usage_error(run_cli) -> None:  # type: ignore[no-untyped-def]
    r = run_cli("audit", "--no-such-flag")
    assert r.exit_code == 2
    assert "unrecognized arguments" in r.stderr
    assert "see `nexusify audit --help`" in r.stderr  # the verb's own help, not the top level's
    r = run_cli("--no-such-flag")
    assert r.exit_code == 2 and "see `nexusify --help`" in r.stderr


def test_missing_root_is_usage_error(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = run_cli("--root", str(tmp_path / "nope"), "audit")
    assert r.exit_code == 2
    assert "no such folder" in r.stderr


def test_config_typo_exit_2_with_suggestion(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "nexusify.toml").write_text('sourcename = "nexus"\n')
    r = run_cli("--root", str(tmp_path), "audit")
    assert r.exit_code == 2
    assert "did you mean `source-name`" in r.stderr
    assert "nexusify.toml:1" in r.stderr


def test_config_error_as_json(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "nexusify.toml").write_text('constraint = "nope"\n')
    r = run_cli("--root", str(tmp_path), "audit", "--json")
    assert r.exit_code == 2
    data = json.loads(r.stdout)
    assert data["error"] == "ConfigError" and data["exit_code"] == 2


def test_global_and_verb_position_options_both_work(run_cli) -> None:  # type: ignore[no-untyped-def]
    a = run_cli("--root", str(SAMPLE), "audit", "--json")
    b = run_cli("audit", "--root", str(SAMPLE), "--json")
    assert a.exit_code == b.exit_code == 0
    assert json.loads(a.stdout) == json.loads(b.stdout)


def test_password_never_printed_even_in_errors(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    secret = "Sup3r-S3cret-Value"
    (tmp_path / "nexusify.toml").write_text(f'nexus-url = "http://admin:{secret}@127.0.0.1:9"\nrepositry = 1\n')
    r = run_cli("--root", str(tmp_path), "audit", env={"NEXUS_PASSWORD": secret, "NO_COLOR": "1"})
    assert r.exit_code == 2
    assert secret not in r.output


# --------------------------------------------------------------------------- help


def _help(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *argv: str) -> str:
    """``nexusify ARGV`` (a --help) in-process at 100 columns; returns what it printed."""
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit) as exit_:
        cli.main(list(argv), env={"NO_COLOR": "1"})
    assert exit_.value.code == 0
    return capsys.readouterr().out


def _sections(text: str) -> list[tuple[str, list[str]]]:
    """(heading, lines) for every section of a help text: a heading is an unindented line ending
    in ':' (``Usage:`` and the description are left out)."""
    out: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line and not line[0].isspace() and line.endswith(":"):
            out.append((line[:-1], []))
        elif out and line:
            out[-1][1].append(line)
    return out


def _flags(lines: list[str]) -> list[str]:
    """The option strings a help section lists (its invocation column, not its help text)."""
    out = []
    for line in lines:
        if line.startswith("  -"):
            invocation = re.split(r"\s{2,}", line.strip())[0]
            out += [tok.rstrip(",") for tok in invocation.split() if tok.startswith("-")]
    return out


def _own_parser(verb: str) -> argparse.ArgumentParser:
    """A parser holding only what the verb's module adds (its own arguments and options)."""
    parser = argparse.ArgumentParser(add_help=False)
    importlib.import_module(f"nexusify.commands.{verb}").add_arguments(parser)
    return parser


def test_every_verb_module_is_a_described_verb() -> None:
    modules = {p.stem for p in Path(commands.__file__).parent.glob("*.py")} - {"__init__", "verbs"}
    assert modules == set(BY_NAME)
    for verb in VERBS:
        assert len(verb.summary) <= 60 and not verb.summary.endswith("."), verb.name
        assert 2 <= len(verb.examples) <= 3, verb.name


def test_top_level_help_lists_each_verb_on_one_line(capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("COLUMNS", "80")  # a narrow terminal still gets one line per verb
    with pytest.raises(SystemExit):
        cli.main(["--help"], env={"NO_COLOR": "1"})
    text = capsys.readouterr().out
    sections = dict(_sections(text))
    assert [line.split()[0] for line in sections["Commands"]] == [v.name for v in VERBS]
    for line, verb in zip(sections["Commands"], VERBS, strict=True):
        assert line.split(None, 1)[1] == verb.summary
    assert list(sections) == ["Commands", "Global options"]
    assert "--nexus-url" not in text  # the index options are in each verb's help, not here
    assert "nexusify COMMAND --help" in text


@pytest.mark.parametrize("verb", [v.name for v in VERBS])
def test_verb_help_own_options_first_index_group_once_then_examples(verb: str, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    text = _help(capsys, monkeypatch, verb, "--help")
    described = BY_NAME[verb]
    assert text.startswith(f"Usage: nexusify {verb} [OPTIONS]")
    assert text.split("\n\n")[1] == described.summary[:1].upper() + described.summary[1:] + "."
    sections = _sections(text)
    titles = [t for t, _ in sections]
    own = _own_parser(verb)
    own_flags = [f for a in own._actions for f in a.option_strings]
    has_args = any(not a.option_strings for a in own._actions)
    index_title = "Index options (flag > environment > config file > default)"
    shown_index = [o.flag for o in SCHEMA if o.flag and (described.index_options is None
                                                        or o.attr in described.index_options)]
    expected = ([*(["Arguments"] if has_args else []), *(["Options"] if own_flags else []),
                 *([index_title] if shown_index else []), "Global options", "Examples"])
    assert titles == expected
    body = dict(sections)
    # the verb's own options, listed once, before the shared groups, and nowhere else
    assert sorted(_flags(body.get("Options", []))) == sorted(own_flags)
    assert all(f not in own_flags for title, lines in sections if title != "Options" for f in _flags(lines))
    # the index group holds exactly the settings this verb uses, once each
    assert _flags(body.get(index_title, [])) == shown_index
    assert _flags(body["Global options"]) == ["--root", "--json", "-v", "--verbose", "--debug", "-h", "--help"]
    # the examples, as described, each a command line the parser accepts
    examples = body["Examples"]
    assert [ln.strip() for ln in examples[0::2]] == [cmd for cmd, _ in described.examples]
    assert [ln.strip() for ln in examples[1::2]] == [what for _, what in described.examples]
    parser = cli.build_parser()
    for cmd, _ in described.examples:
        ns = parser.parse_args(shlex.split(cmd)[1:])
        assert ns.verb == verb


def test_hidden_index_options_are_still_accepted(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = run_cli("history", "--root", str(tmp_path), "--index-url", "http://127.0.0.1:9/simple/", "-e", "x")
    assert r.exit_code == 2 and "unknown environment" in r.stderr  # parsed; the environment is what is missing


def test_no_verb_prints_help_and_exits_2(run_cli) -> None:  # type: ignore[no-untyped-def]
    r = run_cli()
    assert r.exit_code == 2
    assert "Commands:" in r.stdout and "Usage: nexusify" in r.stdout
