"""Settings precedence (flag > env > file > default), URL derivation, and config errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from nexusify.config import ConfigFile, load_config_file, resolve_settings
from nexusify.errors import ConfigError, ConfigErrors

ROOT = Path("/tmp")


@pytest.mark.parametrize(
    ("flags", "env", "file", "expected", "source"),
    [
        pytest.param({}, {}, {}, "pypi-hosted", None, id="default"),
        pytest.param({}, {}, {"repository": "from-file"}, "from-file", "file", id="file-over-default"),
        pytest.param({}, {"NEXUS_REPOSITORY": "from-env"}, {"repository": "from-file"}, "from-env", "env", id="env-over-file"),
        pytest.param({"repository": "from-flag"}, {"NEXUS_REPOSITORY": "from-env"}, {"repository": "from-file"},
                     "from-flag", "flag", id="flag-over-env"),
        pytest.param({"repository": None}, {"NEXUS_REPOSITORY": "from-env"}, {}, "from-env", "env", id="absent-flag-falls-through"),
        pytest.param({}, {"NEXUS_REPOSITORY": ""}, {"repository": "from-file"}, "from-file", "file", id="empty-env-ignored"),
    ],
)
def test_precedence(flags: dict[str, str], env: dict[str, str], file: dict[str, str], expected: str, source: str | None) -> None:
    s = resolve_settings(ROOT, flags, env, ConfigFile(None, file))
    assert s.repository == expected
    assert s.sources.get("repository") == source


@pytest.mark.parametrize(
    ("values", "upload", "simple", "is_nexus"),
    [
        pytest.param({"nexus_url": "http://nx:8081/"}, "http://nx:8081/repository/pypi-hosted/",
                     "http://nx:8081/repository/pypi-hosted/simple/", True, id="nexus-defaults"),
        pytest.param({"nexus_url": "http://nx", "repository": "py-int", "index_repository": "py-group"},
                     "http://nx/repository/py-int/", "http://nx/repository/py-group/simple/", True, id="group-index"),
        pytest.param({"repository_url": "http://127.0.0.1:9/", "index_url": "http://127.0.0.1:9/simple"},
                     "http://127.0.0.1:9/", "http://127.0.0.1:9/simple/", False, id="overrides-get-slash"),
        pytest.param({"repository_url": "http://127.0.0.1:9"}, "http://127.0.0.1:9/", "http://127.0.0.1:9/simple/", False,
                     id="index-derived-from-upload"),
        pytest.param({}, None, None, False, id="nothing-configured"),
    ],
)
def test_urls(values: dict[str, str], upload: str | None, simple: str | None, is_nexus: bool) -> None:
    s = resolve_settings(ROOT, values, {}, ConfigFile(None, {}))
    assert s.upload_url == upload
    assert s.simple_url == simple
    assert s.is_nexus is is_nexus


def test_typo_in_config_file_suggests_and_names_line(tmp_path: Path) -> None:
    (tmp_path / "nexusify.toml").write_text('# settings\nnexus-url = "http://nx"\nrepositry = "x"\n')
    with pytest.raises(ConfigError) as info:
        resolve_settings(tmp_path, {}, {})
    err = info.value
    assert "did you mean `repository`" in err.message
    assert err.line == 3
    assert err.path is not None and err.path.endswith("nexusify.toml")
    assert err.exit_code == 2


def test_all_problems_reported_together(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.nexusify]\nconstraint = "loose"\njobz = 2\npassword = "hunter2"\n'
    )
    with pytest.raises(ConfigErrors) as info:
        resolve_settings(tmp_path, {}, {})
    text = str(info.value)
    assert "constraint" in text and "caret" in text
    assert "did you mean `jobs`" in text
    assert "must not be in a config file" in text
    assert "hunter2" not in text
    assert len(info.value.errors) == 3


def test_both_config_files_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "nexusify.toml").write_text('repository = "a"\n')
    (tmp_path / "pyproject.toml").write_text('[tool.nexusify]\nrepository = "b"\n')
    with pytest.raises(ConfigError, match="both"):
        load_config_file(tmp_path)


def test_invalid_toml_names_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "nexusify.toml").write_text('repository = "a"\nnexus-url = \n')
    with pytest.raises(ConfigError) as info:
        resolve_settings(tmp_path, {}, {})
    assert info.value.line == 2
    assert info.value.column is not None


def test_env_values_are_coerced() -> None:
    s = resolve_settings(ROOT, {}, {"NEXUSIFY_JOBS": "3", "NEXUSIFY_CONSTRAINT": "exact"}, ConfigFile(None, {}))
    assert s.jobs == 3 and s.constraint == "exact"
    with pytest.raises(ConfigError, match="NEXUSIFY_JOBS"):
        resolve_settings(ROOT, {}, {"NEXUSIFY_JOBS": "many"}, ConfigFile(None, {}))
