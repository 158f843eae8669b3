"""Where a repository declares its image builds, beside the Dockerfiles themselves: compose files
(``build.context``, ``build.dockerfile``, ``args``, ``target``, ``additional_contexts``) and CI
workflows (``docker build`` / ``docker/build-push-action`` steps, matrix values filled in). Each
becomes a :class:`~nexusify.model.project.DockerBuild`; :mod:`nexusify.model.dockerfiles` decides
which project each builds.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import Any

from nexusify.errors import Problem
from nexusify.files import relpath
from nexusify.model.project import DockerBuild


def compose_builds(compose: Path, problems: list[Problem], root: Path) -> list[DockerBuild]:
    """The builds a compose file declares (services with a ``build`` key)."""
    import yaml  # type: ignore[import-untyped]

    try:
        data = yaml.safe_load(compose.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        mark = getattr(exc, "problem_mark", None)
        problems.append(Problem(
            "warning", "compose-unreadable", relpath(compose, root), mark.line + 1 if mark else None,
            f"cannot read this compose file: {getattr(exc, 'problem', None) or exc}",
            "fix it so the Dockerfiles it builds can be matched to their services",
        ))
        return []
    services = data.get("services") if isinstance(data, dict) else None
    out: list[DockerBuild] = []
    for name, body in (services or {}).items() if isinstance(services, dict) else []:
        build: Any = body.get("build") if isinstance(body, dict) else None
        if isinstance(build, str):
            build = {"context": build}
        if not isinstance(build, dict):
            continue
        context = _local(compose.parent, build.get("context", "."))
        if context is None:
            continue  # a git URL or a remote context: nothing of this monorepo
        dockerfile = context / str(build.get("dockerfile", "Dockerfile"))
        extra = build.get("additional_contexts") or {}
        if isinstance(extra, list):
            extra = dict(item.split("=", 1) for item in extra if isinstance(item, str) and "=" in item)
        contexts = tuple((str(k), p) for k, v in extra.items() if (p := _local(compose.parent, v)) is not None)
        out.append(DockerBuild(Path(os.path.normpath(dockerfile)), context, f"compose:{relpath(compose, root)}:{name}",
                               contexts, _build_args(build.get("args")), str(build.get("target") or "")))
    return out


_DOCKER_BUILD = re.compile(r"\b(?:docker|podman)\s+(?:buildx\s+)?build\b([^\n;&|]*)")


def ci_builds(root: Path, problems: list[Problem]) -> list[DockerBuild]:
    """The builds GitHub Actions workflows declare: ``docker/build-push-action`` steps (``context``,
    ``file``, ``build-args``, ``target``) and ``docker build [-f FILE] [--build-arg K=V] [--target T]
    CONTEXT`` in ``run`` steps, from the repository root (the workspace a job checks out), once per
    ``strategy.matrix`` combination with ``${{ matrix.KEY }}`` filled in (dataset-viewer's
    ``target: ${{ matrix.project }}``); other expressions are not evaluated: such a path is left out."""
    import yaml

    out: list[DockerBuild] = []
    folder = root / ".github" / "workflows"
    for wf in sorted(folder.glob("*.y*ml")) if folder.is_dir() else []:
        try:
            data = yaml.safe_load(wf.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            problems.append(Problem("warning", "ci-unreadable", relpath(wf, root), None,
                                    f"cannot read this workflow: {exc}",
                                    "fix it so the Dockerfiles it builds can be matched to their services"))
            continue
        jobs = data.get("jobs") if isinstance(data, dict) else None
        for job, body in jobs.items() if isinstance(jobs, dict) else []:
            steps = body.get("steps") if isinstance(body, dict) else None
            for combo in _matrix(body):
                for step in steps if isinstance(steps, list) else []:
                    if isinstance(step, dict):
                        out += _step_builds(_fill(step, combo), root, f"ci:{relpath(wf, root)}:{job}")
    return out


_MATRIX_REF = re.compile(r"\$\{\{\s*matrix\.([\w-]+)\s*\}\}")


def _matrix(job: Any) -> list[dict[str, str]]:
    """The values of a job's ``strategy.matrix``, one dict per job it runs: the product of its
    axes, then each ``include`` entry on its own (at most 100; none: one run without values)."""
    import itertools

    matrix = job.get("strategy", {}).get("matrix") if isinstance(job, dict) and isinstance(job.get("strategy"), dict) else None
    if not isinstance(matrix, dict):
        return [{}]
    axes = {k: v for k, v in matrix.items() if k not in ("include", "exclude") and isinstance(v, list)}
    combos = [dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())] if axes else []
    include = matrix.get("include")
    combos += [e for e in include if isinstance(e, dict)] if isinstance(include, list) else []
    return [{str(k): str(v) for k, v in c.items() if isinstance(v, str | int | float)} for c in combos[:100]] or [{}]


def _fill(value: Any, combo: dict[str, str]) -> Any:
    """``value`` (a step, its strings) with ``${{ matrix.KEY }}`` replaced by the combination's value."""
    if isinstance(value, str):
        return _MATRIX_REF.sub(lambda m: combo.get(m.group(1), m.group(0)), value)
    if isinstance(value, dict):
        return {k: _fill(v, combo) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, combo) for v in value]
    return value


def _step_builds(step: dict[str, Any], root: Path, origin: str) -> list[DockerBuild]:
    found: list[tuple[Any, Any, Any, Any]] = []  # (context, file, build args, target)
    if str(step.get("uses", "")).startswith("docker/build-push-action"):
        given: dict[str, Any] = step["with"] if isinstance(step.get("with"), dict) else {}
        listed = given.get("build-args")
        found.append((given.get("context", "."), given.get("file"),
                      [a.strip() for a in listed.splitlines()] if isinstance(listed, str) else [], given.get("target")))
    run = step.get("run")
    for m in _DOCKER_BUILD.finditer(run.replace("\\\n", " ") if isinstance(run, str) else ""):
        if "${{" in m.group(1):
            continue  # an expression nexusify does not evaluate
        try:
            words = shlex.split(m.group(1))
        except ValueError:
            continue
        file: str | None = None
        target: str | None = None
        args: list[str] = []
        positional: list[str] = []
        k = 0
        while k < len(words):
            w = words[k]
            if w in ("--target",) and k + 1 < len(words):
                target = words[k + 1]
                k += 2
                continue
            if w.startswith("--target="):
                target = w.split("=", 1)[1]
                k += 1
                continue
            if w in ("-f", "--file", "--build-arg") and k + 1 < len(words):
                file, args = (words[k + 1], args) if w != "--build-arg" else (file, [*args, words[k + 1]])
                k += 2
                continue
            if w.startswith(("--file=", "--build-arg=")):
                value = w.split("=", 1)[1]
                file, args = (value, args) if w.startswith("--file=") else (file, [*args, value])
            elif w.startswith("-") and "=" not in w and k + 1 < len(words) and w in ("-t", "--tag", "--target",
                                                                                    "--platform", "--cache-from"):
                k += 1
            elif not w.startswith("-"):
                positional.append(w)
            k += 1
        if positional:
            found.append((positional[-1], file, args, target))
    out: list[DockerBuild] = []
    for context, file, args, target in found:
        if not isinstance(context, str) or "${{" in context or (isinstance(file, str) and "${{" in file):
            continue
        ctx = _local(root, context)
        if ctx is None:
            continue
        dockerfile = Path(os.path.normpath(root / file)) if isinstance(file, str) else ctx / "Dockerfile"
        stage = target if isinstance(target, str) and "${{" not in target else ""
        out.append(DockerBuild(dockerfile, ctx, origin, (), _build_args(list(args)), stage))
    return out


def _build_args(raw: Any) -> tuple[tuple[str, str], ...]:
    """compose ``build.args`` (a mapping or ``KEY=VALUE`` items), ``${VAR}`` filled from the
    environment as compose does; an arg without a value (taken from the caller's environment at
    build time) is left out."""
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw if isinstance(item, str) and "=" in item)
    if not isinstance(raw, dict):
        return ()
    return tuple((str(k), os.path.expandvars(str(v))) for k, v in raw.items()
                 if v is not None and isinstance(v, str | int | float | bool))


def _local(base: Path, value: Any) -> Path | None:
    if not isinstance(value, str) or "://" in value or value.startswith(("git@", "docker-image:", "target:")):
        return None
    return Path(os.path.normpath(base / os.path.expandvars(value)))

