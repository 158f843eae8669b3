"""`nexusify publish` errors that need no server: all found before anything is built or sent."""

from __future__ import annotations

from pathlib import Path


def test_unknown_package_is_a_usage_error_with_a_suggestion(monorepo: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("publish", "--root", str(monorepo), "--repository-url", "http://127.0.0.1:9/",
                     "maestro-core-ap")
    assert result.exit_code == 2
    assert "did you mean 'maestro-core-api'" in result.output
    assert not (monorepo / ".nexusify").exists()


def test_no_index_configured_says_how_to_set_one(monorepo: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("publish", "--root", str(monorepo))
    assert result.exit_code == 2
    assert "no index to publish to" in result.output and "--nexus-url" in result.output


def test_a_cycle_stops_publishing_before_any_build(monorepo: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    config = monorepo / "shared/packages/core-config/pyproject.toml"
    config.write_text(config.read_text().replace(
        'python = "^3.11"', 'python = "^3.11"\nmaestro-core-logging = {path = "../core-logging"}', 1))
    result = run_cli("publish", "--root", str(monorepo), "--repository-url", "http://127.0.0.1:9/")
    assert result.exit_code == 1
    assert "cycle" in result.output and "maestro-core-config" in result.output
    assert not (monorepo / ".nexusify").exists()


def test_unreachable_index_is_reported_not_crashed(monorepo: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    from tests.helpers import free_port

    url = f"http://127.0.0.1:{free_port()}/"
    result = run_cli("publish", "--root", str(monorepo), "--repository-url", url, "--timeout", "2",
                     env={"HOME": str(Path.home()), "NO_COLOR": "1", "NEXUS_USERNAME": "u", "NEXUS_PASSWORD": "pw-secret-1"})
    assert result.exit_code == 1
    assert "could not be reached" in result.output and "internal error" not in result.output
    assert "pw-secret-1" not in result.output


def test_vcs_versions_are_pinned_for_the_staged_copy() -> None:
    from nexusify.publish.builds import scm_version_env

    env = scm_version_env("Acme.Events", "2.0.0b1")
    assert env["SETUPTOOLS_SCM_PRETEND_VERSION_FOR_ACME_EVENTS"] == "2.0.0b1"
    assert env["SETUPTOOLS_SCM_PRETEND_VERSION"] == env["PDM_BUILD_SCM_VERSION"] == "2.0.0b1"


def test_a_second_publish_at_the_same_time_is_refused(monorepo: Path) -> None:
    import pytest

    from nexusify.config import resolve_settings
    from nexusify.errors import OperationFailed
    from nexusify.publish.state import publish_lock

    settings = resolve_settings(monorepo, {}, {})
    settings.state_path.mkdir()
    held = publish_lock(settings)
    try:
        with pytest.raises(OperationFailed, match="another `nexusify publish` is running"):
            publish_lock(settings)
    finally:
        held.close()
    publish_lock(settings).close()  # free again
