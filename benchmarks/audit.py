"""Benchmark: `nexusify audit` on a synthetic monorepo of 1,000 services.

Generates, in a temporary folder, 60 shared packages under ``libs/`` (a layered DAG, Poetry,
PEP 621 + uv sources and PDM file URLs mixed) and 1,000 services under ``services/``, each
with 2-6 shared dependencies (some as absolute container paths, mapped onto the monorepo) and
a Dockerfile that copies shared code. Then it times, in the same run:

- baseline: walking the tree and ``tomllib``-parsing every pyproject.toml (the least any
  audit must do);
- audit: ``run_audit`` (discovery, dependency reading, resolution, classification, checks,
  cycles, publish order, Dockerfile scan) plus ``AuditReport.to_dict()``.

Prints both times (best of N) and their ratio. Goal: 1,000 services under 2 s (GOAL line, exit 1
when over; the command line's goals of issue 22 are benchmarks/cli.py's).

    python benchmarks/audit.py [--services 1000] [--shared 60] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

sys.path.insert(0, str(Path(__file__).resolve().parent))

from goals import Goal, finish

from nexusify.audit.report import run_audit
from nexusify.config import resolve_settings

POETRY_BS = '[build-system]\nrequires = ["poetry-core>=1.0.0"]\nbuild-backend = "poetry.core.masonry.api"\n'
HATCH_BS = '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'


def shared_text(i: int, deps: list[int]) -> str:
    name = f"acme-lib-{i:03d}"
    style = i % 3
    if style == 0:
        lines = "".join(f'acme-lib-{d:03d} = {{path = "../lib-{d:03d}", develop = true}}\n' for d in deps)
        return (f'[tool.poetry]\nname = "{name}"\nversion = "1.{i}.0"\ndescription = "lib {i}"\n'
                f'authors = ["Acme <dev@acme.example>"]\n\n[tool.poetry.dependencies]\npython = "^3.11"\n'
                f'requests = "^2.31"\n{lines}\n{POETRY_BS}')
    if style == 1:
        reqs = "".join(f'    "acme-lib-{d:03d}",\n' for d in deps)
        sources = "".join(f'acme-lib-{d:03d} = {{ path = "../lib-{d:03d}", editable = true }}\n' for d in deps)
        return (f'[project]\nname = "{name}"\nversion = "2.{i}.0"\nrequires-python = ">=3.11"\n'
                f'dependencies = [\n    "httpx>=0.27",\n{reqs}]\n\n[tool.uv.sources]\n{sources}\n{HATCH_BS}')
    reqs = "".join(f'    "acme-lib-{d:03d} @ file:///${{PROJECT_ROOT}}/../lib-{d:03d}",\n' for d in deps)
    return (f'[project]\nname = "{name}"\nversion = "3.{i}.0"\nrequires-python = ">=3.11"\n'
            f'dependencies = [\n{reqs}]\n\n[build-system]\nrequires = ["pdm-backend"]\nbuild-backend = "pdm.backend"\n')


def service_text(i: int, deps: list[int]) -> str:
    name = f"svc-{i:04d}"
    if i % 2 == 0:
        lines = []
        for k, d in enumerate(deps):
            path = f"/shared/libs/lib-{d:03d}" if k == 0 and i % 4 == 0 else f"../../libs/lib-{d:03d}"
            lines.append(f'acme-lib-{d:03d} = {{path = "{path}", develop = true}}\n')
        return (f'[tool.poetry]\nname = "{name}"\nversion = "0.{i}.0"\ndescription = "service {i}"\n'
                f'authors = ["Acme <dev@acme.example>"]\npackages = [{{include = "svc_{i:04d}"}}]\n\n'
                f'[tool.poetry.dependencies]\npython = "^3.11"\nfastapi = "^0.110"\nuvicorn = "^0.29"\n'
                f'{"".join(lines)}\n[tool.poetry.group.dev.dependencies]\npytest = "^8.0"\n\n{POETRY_BS}')
    reqs = "".join(f'    "acme-lib-{d:03d}>=1",\n' for d in deps)
    sources = "".join(f'acme-lib-{d:03d} = {{ path = "../../libs/lib-{d:03d}", editable = true }}\n' for d in deps)
    return (f'[project]\nname = "{name}"\nversion = "0.{i}.0"\nrequires-python = ">=3.11"\n'
            f'dependencies = [\n    "fastapi>=0.110",\n{reqs}]\n\n[dependency-groups]\ndev = ["pytest>=8"]\n\n'
            f'[tool.uv.sources]\n{sources}\n{HATCH_BS}')


DOCKERFILE = """FROM python:3.11-slim AS build
WORKDIR /app
RUN python -m venv /opt/venv
COPY ../../libs /libs
COPY pyproject.toml README.md ./
RUN pip install --no-cache-dir .

FROM python:3.11-slim
COPY --from=build /opt/venv /opt/venv
CMD ["python", "-m", "app"]
"""


def generate(root: Path, n_services: int, n_shared: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    for i in range(n_shared):
        # a layered DAG: each library depends on up to 3 lower-numbered ones
        deps = sorted(rng.sample(range(i), min(i, rng.randint(0, 3)))) if i else []
        d = root / "libs" / f"lib-{i:03d}"
        (d / f"acme_lib_{i:03d}").mkdir(parents=True)
        (d / f"acme_lib_{i:03d}/__init__.py").write_text("")
        (d / "pyproject.toml").write_text(shared_text(i, deps))
    for i in range(n_services):
        deps = sorted(rng.sample(range(n_shared), rng.randint(2, 6)))
        d = root / "services" / f"svc-{i:04d}"
        (d / f"svc_{i:04d}").mkdir(parents=True)
        (d / f"svc_{i:04d}/__init__.py").write_text("")
        (d / "pyproject.toml").write_text(service_text(i, deps))
        (d / "Dockerfile").write_text(DOCKERFILE)


def baseline(root: Path) -> int:
    count = 0
    for dirpath, _dirnames, filenames in os.walk(root):
        if "pyproject.toml" in filenames:
            with open(os.path.join(dirpath, "pyproject.toml"), "rb") as fh:
                tomllib.load(fh)
            count += 1
    return count


def audit(root: Path) -> tuple[int, int]:
    report = run_audit(resolve_settings(root, env={}), index=False)
    data = report.to_dict()
    return len(data["services"]), len(data["packages"])


def best(fn, repeat: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    times = []
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--shared", type=int, default=60)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="nexusify-bench-") as tmp:
        root = Path(tmp)
        generate(root, args.services, args.shared)
        base_t, files = best(lambda: baseline(root), args.repeat)
        audit_t, counts = best(lambda: audit(root), args.repeat)
        services, packages = counts  # type: ignore[misc]
        print(f"monorepo: {files} pyproject.toml files ({services} services, {packages} shared packages)")
        print(f"baseline (walk + tomllib parse of every file): {base_t * 1000:8.1f} ms")
        print(f"nexusify audit (full report, offline):          {audit_t * 1000:8.1f} ms")
        print(f"ratio audit/baseline: {audit_t / base_t:.2f}x")
        target = 2.0 * args.services / 1000
        verdict = "within" if audit_t < target else "OVER"
        print(f"target: {args.services} services under {target:.1f} s -> {verdict} ({audit_t:.2f} s)")
        # the command line's goals (issue 22, ratios to a floor) are benchmarks/cli.py's
        finish([Goal("audit-in-process", audit_t, target, " s")])


if __name__ == "__main__":
    main()
