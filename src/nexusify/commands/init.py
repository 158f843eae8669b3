"""`nexusify init`: write a commented nexusify.toml for this monorepo."""

from __future__ import annotations

import argparse

from nexusify.commands import Context
from nexusify.init import run_init


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true", help="overwrite an existing nexusify.toml")


def run(args: argparse.Namespace, ctx: Context) -> int:
    result = run_init(ctx.settings, force=args.force)
    if ctx.json:
        return ctx.emit({"path": str(result.path), "shared": result.shared, "services": result.services,
                         "notes": result.notes}, 0, errors=[], warnings=[])
    else:
        ctx.out.print(f"wrote {result.path}", markup=False)
        for note in result.notes:
            ctx.out.print(f"note: {note}", markup=False)
        ctx.out.print("next: review it, then run `nexusify audit`", markup=False)
    return 0
