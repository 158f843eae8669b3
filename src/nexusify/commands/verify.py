"""`nexusify verify [TARGETS] [--build]`: the proof that a migration worked, per consumer."""

from __future__ import annotations

import argparse

from rich.markup import escape

from nexusify.commands import Context, add_index_auth
from nexusify.verify import VerifyReport, run_verify


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("targets", nargs="*", metavar="TARGET",
                        help="consumer folders, pyproject.toml files or globs (default: every project that "
                             "depends on shared packages, the root project included)")
    parser.add_argument("--build", action="store_true",
                        help="also build each consumer's Dockerfiles on the engine and import the shared "
                             "packages in the image")
    add_index_auth(parser)


def _cut(text: str, width: int = 110) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def render_report(report: VerifyReport, ctx: Context) -> None:
    """The verify table (consumer x check), each finding, and the verdict line (also the demo's)."""
    columns = report.columns
    rows = [[escape(c.name), escape(c.tool), *(escape(_cut(c.checks[k].cell)) for k in columns)] for c in report.consumers]
    ctx.out.table(f"verify against {report.index_url}", ["consumer", "tool", *columns], rows)
    for c in report.consumers:
        for name in columns:
            check = c.checks[name]
            for f in check.findings:
                ctx.out.print(f"{c.name} {name}: {f}", markup=False)
            if ctx.out.verbose and check.detail:
                ctx.out.print(f"{c.name} {name}: {check.status}: {check.detail}", markup=False)
    failed = [c.name for c in report.consumers if c.failed]
    n = len(report.consumers)
    ctx.out.print(f"{n - len(failed)} of {n} consumer(s) verified" + (f"; failed: {', '.join(failed)}" if failed else ""),
                  markup=False)


def run(args: argparse.Namespace, ctx: Context) -> int:
    report = run_verify(ctx.settings, args.targets, env=ctx.env, build=args.build, cwd=None,
                        index_auth=args.index_auth)
    if ctx.json:
        findings = [{**f.to_dict(), "message": f"{c.name} {name}: {f.message}"}
                    for c in report.consumers for name, check in c.checks.items() for f in check.findings]
        return ctx.emit(report.to_dict(), report.exit_code, errors=findings, warnings=[])
    render_report(report, ctx)
    return report.exit_code
