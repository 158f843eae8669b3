"""Benchmark: `nexusify rewrite --check` (the full plan) on a synthetic monorepo of 1,000 services.

Uses the audit benchmark's generator (60 shared packages in a layered DAG, Poetry, PEP 621 + uv
and PDM styles mixed; 1,000 services with 2-6 shared dependencies each, some through absolute
container paths, and a Dockerfile copying shared code). Times, in the same run:

- baseline: a tomlkit parse + dump of every service pyproject.toml and a read of its
  Dockerfile (the least any format-preserving rewriter does);
- plan: ``plan_rewrite`` for every service (discovery, validation, transitive closure under the
  explicit priority, the pyproject edits, re-parse checks, Dockerfile parse + patch, diffs to
  edits) -- what ``nexusify rewrite --check`` does;
- apply: writing the planned ~2,000 files atomically, once, on a fresh copy.

Prints the times (best of N), the ratio plan/baseline, and the verdict against the target
(1,000 services under 5 s).

    python benchmarks/rewrite.py [--services 1000] [--shared 60] [--repeat 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))

import tomlkit  # noqa: E402
from goals import Goal, finish  # noqa: E402

from nexusify.config import resolve_settings  # noqa: E402
from nexusify.rewrite.apply import apply_plan  # noqa: E402
from nexusify.rewrite.plan import plan_rewrite  # noqa: E402

URL = "https://nexus.example.com/repository/pypi-group/simple/"


def _audit_benchmark():  # type: ignore[no-untyped-def]
    """The audit benchmark's module: its monorepo generator and its best-of-N timer."""
    spec = importlib.util.spec_from_file_location("bench_audit", HERE / "audit.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def baseline(root: Path) -> int:
    count = 0
    for folder in sorted((root / "services").iterdir()):
        text = (folder / "pyproject.toml").read_text(encoding="utf-8")
        tomlkit.dumps(tomlkit.parse(text))
        (folder / "Dockerfile").read_text(encoding="utf-8")
        count += 1
    return count


def plan(root: Path):  # type: ignore[no-untyped-def]
    settings = resolve_settings(root, {"index_url": URL, "path_aliases": None}, {})
    return plan_rewrite(settings)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--shared", type=int, default=60)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    bench = _audit_benchmark()
    generate, best = bench.generate, bench.best
    with tempfile.TemporaryDirectory(prefix="nexusify-bench-") as tmp:
        root = Path(tmp)
        generate(root, args.services, args.shared)
        base_t, count = best(lambda: baseline(root), args.repeat)
        plan_t, result = best(lambda: plan(root), args.repeat)
        assert not result.errors, [str(p) for p in result.errors[:5]]  # type: ignore[attr-defined]
        files = result.files  # type: ignore[attr-defined]
        edits = sum(len(f.edits) for f in files)
        t0 = time.perf_counter()
        apply_plan(result)  # type: ignore[arg-type]
        apply_t = time.perf_counter() - t0
        again_t, again = best(lambda: plan(root), 1)
        print(f"monorepo: {count} services, {args.shared} shared packages")
        print(f"baseline (tomlkit parse + dump of every service, read Dockerfile): {base_t * 1000:8.1f} ms")
        print(f"rewrite plan / --check ({len(files)} files, {edits} edits):          {plan_t * 1000:8.1f} ms")
        print(f"apply (atomic write of {len(files)} files):                           {apply_t * 1000:8.1f} ms")
        print(f"second run (no-op, {len(again.files)} files change):                       "  # type: ignore[attr-defined]
              f"{again_t * 1000:8.1f} ms")
        print(f"ratio plan/baseline: {plan_t / base_t:.2f}x")
        target = 5.0 * args.services / 1000
        verdict = "within" if plan_t < target else "OVER"
        print(f"target: {args.services} services under {target:.1f} s -> {verdict} ({plan_t:.2f} s)")
        # the command line's goals (issue 22, ratios to a floor) are benchmarks/cli.py's
        finish([Goal("rewrite-plan-in-process", plan_t, target, " s")])


if __name__ == "__main__":
    main()
