"""`nexusify init` writes the index settings it was given (flag or environment), not the
placeholders (issue 24, item 4)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from nexusify.config import resolve_settings


@pytest.mark.parametrize(("env", "expected"), [
    pytest.param({"NEXUS_REPOSITORY_URL": "http://127.0.0.1:8080/", "NEXUS_INDEX_URL": "http://127.0.0.1:8080/simple/"},
                 {"repository-url": "http://127.0.0.1:8080/", "index-url": "http://127.0.0.1:8080/simple/"},
                 id="full-urls"),
    pytest.param({"NEXUS_REPOSITORY_URL": "http://ci:s3cr3t@127.0.0.1:8080/"},
                 {"repository-url": "http://127.0.0.1:8080/"}, id="credentials-left-out"),
    pytest.param({"NEXUS_URL": "https://nexus.example.com", "NEXUS_REPOSITORY": "py-hosted",
                  "NEXUS_INDEX_REPOSITORY": "py-group"},
                 {"nexus-url": "https://nexus.example.com", "repository": "py-hosted", "index-repository": "py-group"},
                 id="nexus"),
])
def test_init_writes_the_index_urls_of_the_environment(run_cli, monorepo: Path, env: dict[str, str],  # type: ignore[no-untyped-def]
                                                       expected: dict[str, str]) -> None:
    r = run_cli("--root", str(monorepo), "init", env={"NO_COLOR": "1", "HOME": str(monorepo), **env})
    assert r.exit_code == 0, r.output
    text = (monorepo / "nexusify.toml").read_text()
    data = tomllib.loads(text)
    for key, value in expected.items():
        assert data[key] == value, text
    assert "s3cr3t" not in text
    if "nexus-url" not in expected:  # a full upload URL overrides nexus-url/repository: no default written as if it applied
        assert "repository" not in data and "nexus-url" not in data
    # the file alone (no environment) locates the same index
    given = resolve_settings(monorepo, env=env)
    alone = resolve_settings(monorepo, env={})
    assert (alone.upload_url, alone.simple_url) == (given.upload_url, given.simple_url)


def test_init_without_index_settings_leaves_examples_commented(run_cli, monorepo: Path) -> None:  # type: ignore[no-untyped-def]
    assert run_cli("--root", str(monorepo), "init").exit_code == 0
    text = (monorepo / "nexusify.toml").read_text()
    data = tomllib.loads(text)
    assert "repository-url" not in data and "index-url" not in data and "nexus-url" not in data
    assert '# repository-url = "' in text and '# index-url = "' in text
