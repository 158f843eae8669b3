"""README.md and docs/ stay true: the generated reference is current, the README's two set-up
commands are the ones CI and the demo run, its ten-line journey is the documented one, and
every command line of the journey (docs/journey.md, docs/deploy.md) runs as written against a
real index (the Nexus emulator) and, for deploy, the real engine and nginx."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path

import pytest

from nexusify import docs

from .conftest import REPO, SAMPLE

README = REPO / "README.md"
DOCS = REPO / "docs"
JOURNEY = (DOCS / "journey.md", DOCS / "deploy.md")  # the journey's pages, in order


def _blocks(text: str) -> list[tuple[str, str, str]]:
    """(language, body, the paragraph line just before the block) for every fenced block."""
    out = []
    for m in re.finditer(r"(?P<before>[^\n]*)\n\n```(?P<lang>\w*)\n(?P<body>.*?)```", text, re.S):
        out.append((m.group("lang"), m.group("body"), m.group("before")))
    return out


def _section(text: str, title: str) -> str:
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 3)
    return text[start:end if end != -1 else None]


def test_generated_reference_is_current() -> None:
    for page in docs.PAGES:
        text = (REPO / page).read_text(encoding="utf-8")
        assert docs.render(text) == text, "run: python -m nexusify.docs"
    commands = (DOCS / "commands.md").read_text(encoding="utf-8")
    assert "<!-- BEGIN GENERATED: verbs -->" in commands  # the Commands table, from commands/verbs.py
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    assert "<!-- BEGIN GENERATED: settings -->" in text
    for key in ("nexus-url", "index-repository", "constraint", "priority", "path-aliases", "stay-in-workspace"):
        assert f"`{key}`" in text
    for key in ("container-port", "health-path", "secret-ids", "lock-wait"):
        assert f"`{key}`" in text


def test_exactly_two_setup_commands_and_ci_runs_the_test_one() -> None:
    setup = _section(README.read_text(encoding="utf-8"), "Set up (fresh machine)")
    commands = [body.strip() for lang, body, _ in _blocks(setup) if lang == "bash"]
    assert commands == ["python3 -m pip install -e '.[demo]' && nexusify demo", "bash scripts/test"]
    ci = (REPO / ".ci" / "run").read_text()
    assert "bash scripts/test" in ci


def _journey() -> tuple[list[str], str]:
    """The shell lines of the journey, in order, and the deploy TOML it adds to nexusify.toml."""
    lines: list[str] = []
    toml_text = ""
    for page in JOURNEY:
        for lang, body, _ in _blocks(page.read_text(encoding="utf-8")):
            if lang == "bash":
                lines += [ln for ln in body.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
            elif lang == "toml":
                toml_text += body
    return lines, toml_text


def test_readme_is_what_a_newcomer_needs() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 80
    assert re.findall(r"^## (.+)$", text, re.M) == ["Set up (fresh machine)", "The journey in ten lines", "Read more"]
    journey = [body for lang, body, _ in _blocks(_section(text, "The journey in ten lines")) if lang == "bash"]
    commands = [ln.split("#")[0].strip() for ln in journey[0].splitlines() if ln.strip()]
    assert len(commands) == 10
    # each is the documented journey's, or shown on the page that explains it (verify)
    documented = set(_journey()[0]) | {ln.split("#")[0].strip() for _, body, _ in
                                       _blocks((DOCS / "verify.md").read_text(encoding="utf-8"))
                                       for ln in body.splitlines()}
    for command in commands:
        assert command.startswith("export NEXUS_") or command in documented, command
    for link in re.findall(r"\]\((docs/[^)#]+)", text):  # every page it sends to exists
        assert (REPO / link).is_file(), link


def test_journey_is_well_formed() -> None:
    lines, toml_text = _journey()
    verbs = [ln.split()[1] for ln in lines if ln.startswith("nexusify ")]
    for verb in ("init", "audit", "publish", "rewrite", "deploy", "history", "rollback"):
        assert verb in verbs
    tomllib.loads(toml_text)
    for line in lines:
        if line.startswith("export "):
            names = re.findall(r"(\w+)=", line)
            assert names and all(n.startswith("NEXUS_") for n in names), line


@pytest.mark.engine
@pytest.mark.slow
def test_every_journey_command_runs_as_written(
    docker_client, nexus_factory, backend_wheels: list[Path], tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    """Runs each line of the documented journey in a copy of the sample, in order, with bash.

    The `export NEXUS_*` lines are the only ones not run as written: their values point at a
    real Nexus emulator on loopback (a hosted repository, a proxy holding the build backends,
    and a group of both, as a real Nexus would be set up)."""
    lines, toml_text = _journey()
    emu = nexus_factory(extra_repos=["pypi-proxy"], groups={"pypi-group": ["pypi-hosted", "pypi-proxy"]})
    proxy_dir = emu.data / "pypi-proxy"
    proxy_dir.mkdir(parents=True, exist_ok=True)
    for wheel in backend_wheels:
        shutil.copy(wheel, proxy_dir / wheel.name)

    root = tmp_path / "monorepo"
    shutil.copytree(SAMPLE, root, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    public_port = 18080
    toml_text = toml_text.replace("public-port = 18080", f"public-port = {public_port}")
    bindir = str(Path(sys.executable).parent)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("NEXUS", "PYTEST"))},
        "PATH": bindir + os.pathsep + os.environ.get("PATH", ""),
        "NEXUS_URL": emu.base_url, "NEXUS_REPOSITORY": "pypi-hosted", "NEXUS_INDEX_REPOSITORY": "pypi-group",
        "NEXUS_USERNAME": emu.username, "NEXUS_PASSWORD": emu.password,
        "NEXUSIFY_STATE_DIR": ".nexusify", "NO_COLOR": "1",
    }
    outputs: list[str] = []
    try:
        for line in lines:
            if line.startswith("export "):
                continue
            if line.startswith("nexusify deploy") and "[deploy" not in (root / "nexusify.toml").read_text():
                with (root / "nexusify.toml").open("a") as fh:
                    fh.write("\n" + toml_text)
            proc = subprocess.run(["bash", "-c", line], cwd=root, env=env, capture_output=True, text=True,
                                  timeout=600, check=False)
            outputs.append(proc.stdout + proc.stderr)
            assert proc.returncode == 0, f"journey line failed: {line}\n{proc.stdout}\n{proc.stderr}"
            if line == "nexusify rewrite services/*":
                text = (root / "services/quality-fabric/pyproject.toml").read_text()
                assert 'source = "nexus"' in text and "path =" not in text
        # what the journey promised: the service runs behind nginx after deploy and rollback
        with urllib.request.urlopen(f"http://127.0.0.1:{public_port}/", timeout=10) as resp:
            body = resp.read().decode()
        assert '"service": "quality-fabric"' in body
        assert "maestro-core-api" in body
        history = (root / ".nexusify/deploy/staging/history.jsonl").read_text()
        assert history.count("\n") >= 3  # two deploys and a rollback
    finally:
        _cleanup(docker_client, root)
    assert all(emu.password not in out for out in outputs)
    secret_line = (root / ".env.staging").read_text().strip().split("=", 1)[1]
    assert all(secret_line not in out for out in outputs)
    assert secret_line not in history


def _cleanup(client, root: Path) -> None:  # type: ignore[no-untyped-def]
    """Stop what the journey started: its containers (labelled by nexusify) and its nginx."""
    labels = ["io.nexusify.service=quality-fabric", "io.nexusify.environment=staging"]
    for c in client.containers.list(all=True, filters={"label": labels}):
        with contextlib.suppress(Exception):
            c.remove(force=True)
    for pid_file in root.glob(".nexusify/deploy/*/nginx/**/*.pid"):
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pid_file.read_text().strip()), 15)
