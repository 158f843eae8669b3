"""The ecosystem manifest parses and every repository carries the ground truth ecosystem/run.py compares with."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "ecosystem" / "manifest.toml"
EXPECT = {"migrate", "either", "stays", "control"}
TOOLS = {"uv", "poetry", "pdm", "pip"}


def _repos() -> list[dict]:  # type: ignore[type-arg]
    with MANIFEST.open("rb") as fh:
        repos: list[dict] = tomllib.load(fh)["repo"]  # type: ignore[type-arg]
    return repos


def test_the_manifest_lists_at_least_twenty_repositories_once_each() -> None:
    repos = _repos()
    keys = [(r["name"], r.get("subdir", "")) for r in repos]
    assert len(keys) == len(set(keys))
    assert len({r["name"] for r in repos}) >= 20
    assert len({r["name"] for r in repos if r["layout"] != "control"}) >= 15


@pytest.mark.parametrize("repo", _repos(), ids=lambda r: r["name"] + (":" + r["subdir"] if r.get("subdir") else ""))
def test_every_repository_has_the_ground_truth_fields(repo: dict) -> None:  # type: ignore[type-arg]
    assert re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", repo["name"])
    assert re.fullmatch(r"[0-9a-f]{40}", repo["commit"])
    assert repo["layout"] and repo["summary"]
    shared = {s["name"]: s for s in repo["shared"]}
    for s in repo["shared"]:
        assert s["path"] and not s["path"].startswith("/")
        assert set(s["deps"]) <= set(shared), f"{s['name']} depends on a package the manifest does not list"
    named = set(shared) | set(repo.get("shared_optional", []))
    paths = set()
    for c in repo["consumers"]:
        assert {"path", "name", "tool", "shared", "expect"} <= set(c), c
        assert c["tool"] in TOOLS and c["expect"] in EXPECT
        assert set(c["shared"]) <= named, f"{c['path']} takes a package the manifest does not list"
        paths.add(c["path"])
    for d in repo["dockerfiles"]:
        assert {"path", "context", "consumer"} <= set(d), d
        for built in d.get("consumers", [d["consumer"]] if d["consumer"] else []):
            assert built in paths, f"{d['path']} builds an unlisted consumer"
    if repo["layout"] == "control":
        assert not repo["shared"]
        assert all(c["expect"] == "control" for c in repo["consumers"])


def test_the_runner_loads_the_manifest_and_names_checkouts_as_fetch_leaves_them() -> None:
    sys.path.insert(0, str(ROOT / "ecosystem"))
    try:
        import run  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(ROOT / "ecosystem"))
    repos = run.load_manifest(MANIFEST)
    assert run.folder_name(repos[0]) == repos[0]["name"].replace("/", "+")
    assert run.canonical("xyz_lib_A") == "xyz-lib-a"
    assert run.label({"name": "a/b", "subdir": "pdm"}) == "a/b:pdm"
