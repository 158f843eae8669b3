"""`nexusify audit`: report shared packages, services, publish order and problems."""

from __future__ import annotations

import argparse

from nexusify.audit import run_audit
from nexusify.commands import Context

HELP = "audit the monorepo"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


def run(args: argparse.Namespace, ctx: Context) -> int:
    del args
    report = run_audit(ctx.settings)
    out = ctx.out
    if ctx.json:
        out.json(report.to_dict())
    else:
        data = report.to_dict()
        out.table(
            f"Shared packages ({len(data['packages'])})",
            ["name", "version", "path", "backend", "depends on"],
            [[p["name"], p["version"], p["path"], p["build_backend"], ", ".join(p["depends_on"])] for p in data["packages"]],
        )
        out.table(
            f"Services ({len(data['services'])})",
            ["name", "path", "shared dependencies", "transitive", "Dockerfiles"],
            [[s["name"], s["path"], ", ".join(s["shared_dependencies"]), ", ".join(s["transitive_shared_dependencies"]),
              ", ".join(s["dockerfiles"])] for s in data["services"]],
        )
        out.print("Publish order: " + (" -> ".join(report.publish_order) or "(none)"))
        for p in report.problems:
            out.print(str(p), markup=False)
        n_err = len(report.errors)
        out.print(f"{n_err} error(s), {len(report.problems) - n_err} warning(s)")
    return 1 if report.errors else 0
