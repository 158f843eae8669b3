"""Staging and building: the source tree is never touched, builds are reproducible, checks bite."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from nexusify.dists.archives import admits_current_versions, equivalent_release
from nexusify.dists.artifact import Artifact
from nexusify.dists.backend import backend_of, build_project, normalise_sdist
from nexusify.dists.checks import check_artifact
from nexusify.dists.envs import BuildEnvs
from nexusify.dists.staging import fingerprint, stage_project
from nexusify.formats.pyproject_edit import versionize
from nexusify.model import load_workspace
from tests.helpers import stamps


def _build_all(monorepo: Path, tmp: Path, envs: BuildEnvs) -> dict[str, tuple[Artifact, Artifact]]:
    ws = load_workspace(monorepo)
    versions = {p.normalized: p.version for p in ws.shared() if p.normalized and p.version}
    out = {}
    for name in ws.publish_order():
        p = ws.by_name[name]
        text = versionize(p.text, [d for d in p.local_deps if d.resolved], versions, path=p.pyproject)
        staged = stage_project(p.path, text, tmp / "stage" / name)
        backend, requires, backend_path = backend_of(p.data)
        result = build_project(staged, tmp / "out" / name, envs.get(requires), backend=backend,
                               backend_path=backend_path, name=name)
        internal = {d.normalized: versions[d.normalized] for d in p.local_deps if d.runtime and d.resolved}
        assert [m for a in result.artifacts for m in check_artifact(a, internal)] == []
        out[name] = (result.sdist, result.wheel)
    return out


@pytest.mark.slow
def test_builds_are_reproducible_and_leave_the_source_alone(monorepo: Path, tmp_path: Path,
                                                            build_env_dir: Path) -> None:
    before = stamps(monorepo)
    first = _build_all(monorepo, tmp_path / "a", BuildEnvs(build_env_dir))
    again_envs = BuildEnvs(build_env_dir)
    second = _build_all(monorepo, tmp_path / "b", again_envs)
    assert again_envs.created == []  # one env per requirement set, reused
    assert stamps(monorepo) == before  # no egg-info, no .pdm-build, no dist in the source tree
    # poetry-core, hatchling, setuptools and pdm-backend all produce byte-identical archives
    assert {n: (s.sha256, w.sha256) for n, (s, w) in first.items()} == \
        {n: (s.sha256, w.sha256) for n, (s, w) in second.items()}
    assert len(first) == 8


def test_fingerprint_follows_content_not_time(monorepo: Path) -> None:
    pkg = monorepo / "shared/packages/core-config"
    text = (pkg / "pyproject.toml").read_text()
    fp = fingerprint(pkg, text, {"backend": "x"})
    (pkg / "maestro_core_config/__init__.py").touch()
    (pkg / "maestro_core_config/__pycache__").mkdir()
    (pkg / "maestro_core_config/__pycache__/x.pyc").write_bytes(b"junk")
    assert fingerprint(pkg, text, {"backend": "x"}) == fp
    assert fingerprint(pkg, text + "\n", {"backend": "x"}) != fp
    assert fingerprint(pkg, text, {"backend": "y"}) != fp
    (pkg / "maestro_core_config/new.py").write_text("X = 1\n")
    assert fingerprint(pkg, text, {"backend": "x"}) != fp


def test_staging_skips_caches_and_fixes_times(monorepo: Path, tmp_path: Path) -> None:
    pkg = monorepo / "shared/packages/core-messaging"
    (pkg / "src/maestro_core_messaging.egg-info").mkdir()
    (pkg / "src/maestro_core_messaging.egg-info/PKG-INFO").write_text("stale")
    (pkg / "dist").mkdir()
    staged = stage_project(pkg, "[project]\nname='x'\n", tmp_path / "s")
    names = {p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()}
    assert "pyproject.toml" in names and "src/maestro_core_messaging/__init__.py" in names
    assert not any("egg-info" in n or n.startswith("dist") for n in names)
    assert (staged / "pyproject.toml").read_text() == "[project]\nname='x'\n"
    assert {int(p.stat().st_mtime) for p in staged.rglob("*")} == {315532800}


def _wheel(path: Path, requires: list[str]) -> Artifact:
    with zipfile.ZipFile(path, "w") as zf:
        meta = "Metadata-Version: 2.1\nName: demo\nVersion: 1.0.0\n" + "".join(f"Requires-Dist: {r}\n" for r in requires)
        zf.writestr("demo-1.0.0.dist-info/METADATA", meta)
        zf.writestr("demo/__init__.py", "")
    return Artifact.from_path(path, "wheel")


@pytest.mark.parametrize(("requires", "problem"), [
    pytest.param(["core @ file:///tmp/core"], "points at a path", id="file-url"),
    pytest.param(["core>=0.1,<0.2"], "does not admit", id="excludes-version"),
    pytest.param(["core>=0.2,<0.3", "requests>=2"], None, id="fine"),
])
def test_wheel_metadata_check(tmp_path: Path, requires: list[str], problem: str | None) -> None:
    problems = check_artifact(_wheel(tmp_path / "demo-1.0.0-py3-none-any.whl", requires), {"core": "0.2.0"})
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problem in problems[0]


@pytest.mark.parametrize(("extra", "problem"), [
    pytest.param("Description-Content-Type: text/x-rst\n\nTitle\n===\n\nA paragraph.\n", None, id="rst-fine"),
    pytest.param("Description-Content-Type: text/x-rst\n\n`broken link <\n\n.. nope::\n", "would not render", id="rst-broken"),
    pytest.param("\n`broken <\n\n.. nope::\n", "would not render", id="no-content-type-means-rst"),
    pytest.param("Description-Content-Type: text/markdown\n\n`broken <\n", None, id="markdown-cannot-fail"),
    pytest.param("Requires-Dist: six >>>= 1\n", "invalid metadata", id="invalid-field"),
    pytest.param("Frobnicate: yes\n", "unrecognized or malformed field 'frobnicate'", id="unknown-field"),
])
def test_metadata_is_valid_and_the_long_description_renders(tmp_path: Path, extra: str, problem: str | None) -> None:
    from nexusify.dists.checks import check_metadata

    path = tmp_path / "demo-1.0.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("demo-1.0.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: demo\nVersion: 1.0.0\n" + extra)
    problems = check_metadata(Artifact.from_path(path, "wheel"))
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problem in problems[0], problems


def test_a_metadata_version_newer_than_packaging_knows_names_the_upgrade(tmp_path: Path) -> None:
    """hatchling writes Metadata-Version 2.5, which packaging < 26 cannot validate: a valid archive
    was refused as "invalid metadata" (found by the lowest-versions CI run); the message now names
    the cause and the fix."""
    from nexusify.dists.checks import check_metadata

    path = tmp_path / "demo-1.0.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("demo-1.0.0.dist-info/METADATA", "Metadata-Version: 9.9\nName: demo\nVersion: 1.0.0\n")
    problems = check_metadata(Artifact.from_path(path, "wheel"))
    assert len(problems) == 1 and "metadata version 9.9 is newer than the installed packaging" in problems[0]
    assert "pip install --upgrade packaging" in problems[0]


def _sdist(path: Path, members: dict[str, bytes], mtime: float = 1_700_000_000.5) -> None:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.uid, info.uname = len(data), mtime, 1000, "dev"
            tf.addfile(info, io.BytesIO(data))


def test_sdist_pyproject_with_a_path_dependency_is_refused(tmp_path: Path) -> None:
    pyproject = b'[tool.poetry]\nname = "demo"\nversion = "1.0.0"\n[tool.poetry.dependencies]\ncore = {path = "../core"}\n'
    path = tmp_path / "demo-1.0.0.tar.gz"
    _sdist(path, {"demo-1.0.0/PKG-INFO": b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0.0\n",
                  "demo-1.0.0/pyproject.toml": pyproject})
    problems = check_artifact(Artifact.from_path(path, "sdist"), {"core": "0.2.0"})
    assert problems and "still path-depends on core" in problems[0]


def test_normalise_sdist_is_byte_stable(tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "x-1.0.tar.gz", tmp_path / "b" / "x-1.0.tar.gz"
    a.parent.mkdir()
    b.parent.mkdir()
    _sdist(a, {"x-1.0/PKG-INFO": b"Name: x\n"}, mtime=1_700_000_000)
    _sdist(b, {"x-1.0/PKG-INFO": b"Name: x\n"}, mtime=1_800_000_000)
    assert a.read_bytes() != b.read_bytes()
    assert normalise_sdist(a) and normalise_sdist(b)
    assert a.read_bytes() == b.read_bytes()
    assert not normalise_sdist(a)  # already normal: left alone
    with tarfile.open(a) as tf:
        assert tf.extractfile("x-1.0/PKG-INFO").read() == b"Name: x\n"  # type: ignore[union-attr]


def test_a_dependency_bump_does_not_count_as_a_change(tmp_path: Path) -> None:
    def wheel(spec: str, body: str = "") -> bytes:
        p = tmp_path / f"w{abs(hash((spec, body)))}.whl"
        with zipfile.ZipFile(p, "w") as zf:
            zf.writestr("demo-1.0.0.dist-info/METADATA",
                        f"Metadata-Version: 2.1\nName: demo\nVersion: 1.0.0\nRequires-Dist: core{spec}\n")
            zf.writestr("demo-1.0.0.dist-info/RECORD", spec)
            zf.writestr("demo/__init__.py", body)
        return p.read_bytes()

    published = wheel(">=0.1.0,<0.2.0")
    name = "demo-1.0.0-py3-none-any.whl"
    assert admits_current_versions(wheel(">=0.1.1,<0.2.0"), published, name, {"core": "0.1.1"})
    assert not admits_current_versions(wheel(">=0.2.0,<0.3.0"), published, name, {"core": "0.2.0"})
    assert not admits_current_versions(wheel(">=0.1.1,<0.2.0", "X = 1"), published, name, {"core": "0.1.1"})


def test_a_newer_backend_writing_the_same_release_is_not_a_change(tmp_path: Path) -> None:
    def wheel(generator: str, meta_version: str, spelling: str, body: str = "X = 1\n") -> bytes:
        p = tmp_path / "w.whl"
        with zipfile.ZipFile(p, "w") as zf:
            zf.writestr("demo/__init__.py", body)
            zf.writestr("demo-1.0.0.dist-info/WHEEL", f"Wheel-Version: 1.0\nGenerator: {generator}\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
            zf.writestr("demo-1.0.0.dist-info/METADATA", f"Metadata-Version: {meta_version}\nName: demo\nVersion: 1.0.0\n"
                        f"Requires-Dist: {spelling}\nRequires-Dist: requests>=2\n\nThe description.\n")
            zf.writestr("demo-1.0.0.dist-info/RECORD", generator)
        return p.read_bytes()

    name = "demo-1.0.0-py3-none-any.whl"
    published = wheel("poetry-core 1.9.0", "2.1", "core (>=0.1.0,<0.2.0)")
    assert equivalent_release(wheel("poetry-core 2.5.0", "2.4", "core<0.2.0,>=0.1.0"), published, name, {"core": "0.1.0"})
    assert not equivalent_release(wheel("poetry-core 2.5.0", "2.4", "core<0.2.0,>=0.1.0", "X = 2\n"), published, name,
                                  {"core": "0.1.0"})
    # third-party requirements must be the same (spelling aside)
    assert equivalent_release(wheel("poetry-core 2.5.0", "2.4", "core<0.2.0,>=0.1.0"), published, name, {})
    assert not equivalent_release(wheel("poetry-core 2.5.0", "2.4", "core>=0.1.0"), published, name, {})


def test_an_sdist_from_older_naming_rules_with_the_same_files_is_the_same_release(tmp_path: Path) -> None:
    from nexusify.dists.archives import same_contents

    old, new = tmp_path / "maestro-core-0.1.0.tar.gz", tmp_path / "maestro_core-0.1.0.tar.gz"
    files = {"PKG-INFO": b"Metadata-Version: 2.1\nName: maestro-core\nVersion: 0.1.0\n", "maestro_core/__init__.py": b"X = 1\n"}
    _sdist(old, {f"maestro-core-0.1.0/{k}": v for k, v in files.items()})
    _sdist(new, {f"maestro_core-0.1.0/{k}": v for k, v in files.items()})
    assert same_contents(new.read_bytes(), old.read_bytes(), new.name)
    _sdist(new, {f"maestro_core-0.1.0/{k}": v + b"# changed\n" for k, v in files.items()})
    assert not same_contents(new.read_bytes(), old.read_bytes(), new.name)
    assert not equivalent_release(new.read_bytes(), old.read_bytes(), new.name, {})


def test_one_archive_reader_for_wheels_and_sdists(tmp_path: Path) -> None:
    from nexusify.dists.archives import archive_members

    path = tmp_path / "demo-1.0.0.tar.gz"
    _sdist(path, {"demo-1.0.0/PKG-INFO": b"Name: demo\n", "demo-1.0.0/demo/__init__.py": b"X = 1\n"})
    assert archive_members(path.read_bytes(), path.name) == {"PKG-INFO": b"Name: demo\n", "demo/__init__.py": b"X = 1\n"}
    wheel = _wheel(tmp_path / "demo-1.0.0-py3-none-any.whl", ["core>=0.2"])
    members = archive_members(wheel.path.read_bytes(), wheel.filename)
    assert set(members) == {"demo-1.0.0.dist-info/METADATA", "demo/__init__.py"}
    with pytest.raises(tarfile.TarError):
        archive_members(b"not an archive", "demo-1.0.0.tar.gz")
