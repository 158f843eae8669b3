"""`nexusify publish`: build every shared package and upload it in dependency order."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from nexusify.commands import Context, add_strict
from nexusify.credentials import mask_url
from nexusify.model import relpath
from nexusify.publish import PublishOptions, PublishReport, execute_plan, plan_publish

STATUS_TEXT = {
    "uploaded": "uploaded",
    "present": "already on the index",
    "unchanged": "unchanged (not rebuilt)",
    "failed": "FAILED",
    "blocked": "blocked",
    "would-build": "would build",
    "would-skip": "would skip",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_strict(parser)
    g = parser  # listed under Arguments and Options (help: nexusify.ui.help)
    g.add_argument("packages", nargs="*", metavar="PACKAGE",
                   help="publish only these shared packages (and the shared packages they need)")
    g.add_argument("--dry-run", action="store_true",
                   help="print what would be built, skipped and uploaded, and why; build and upload nothing")
    g.add_argument("--force-build", action="store_true",
                   help="rebuild every package even when its content fingerprint is unchanged")
    g.add_argument("--verify", dest="verify", action="store_true", default=True,
                   help="after uploading, resolve name==version from the index URL afresh (default)")
    g.add_argument("--no-verify", dest="verify", action="store_false", help="skip that check")


def run(args: argparse.Namespace, ctx: Context) -> int:
    options = PublishOptions(
        dry_run=args.dry_run, force_build=args.force_build, verify=args.verify,
        packages=tuple(args.packages), env=ctx.env,
    )
    out = ctx.out
    plan = plan_publish(ctx.settings, options)
    if not ctx.json:
        out.info(f"publishing {len(plan.packages)} shared package(s) to {mask_url(plan.upload_url)}"
                 + (" (dry run)" if options.dry_run else ""))
    with out.progress("publishing", total=len(plan.packages)) as bar:

        def reporter(event: str, name: str | None, data: Mapping[str, Any]) -> None:
            if event == "done" and name:
                bar.advance(1, description=f"{name}: {STATUS_TEXT.get(str(data.get('status')), data.get('status'))}")
            elif event == "uploading" and name:
                out.debug(f"{name}: uploading {data.get('file')}")

        report = execute_plan(plan, options, reporter)
    ws = plan.workspace
    shared_files = {relpath(p.manifest, ws.root) for p in ws.shared()}
    warnings = [p for p in ws.problems if p.severity == "warning" and p.path in shared_files]
    code = ctx.verdict(sum(not p.ok for p in report.packages), len(warnings))
    if ctx.json:
        failed = [{"message": f"{p.name} {p.version}: {p.status}" + (f": {p.reason}" if p.reason else ""),
                   "path": p.path, "hint": p.error.hint if p.error else None} for p in report.packages if not p.ok]
        return ctx.emit(report.to_dict(), code, errors=failed, warnings=warnings)
    render(report, ctx)
    for w in warnings:
        out.print(str(w), markup=False)
    return code


def render(report: PublishReport, ctx: Context) -> None:
    out = ctx.out
    rows = []
    for p in report.packages:
        files = ", ".join(f"{f.filename} ({f.action})" for f in p.files) if ctx.out.verbose else \
            ", ".join(sorted({f.action for f in p.files}))
        rows.append([p.name, p.version, STATUS_TEXT.get(p.status, p.status), p.reason, files])
    title = "Publish plan (dry run: nothing built or uploaded)" if report.dry_run else "Published"
    out.table(title, ["package", "version", "result", "why", "files"], rows)
    for p in report.packages:
        if p.error is not None:
            out.print(f"{p.name}: {p.error}", markup=False)
    counts = report.counts()
    summary = ", ".join(f"{n} {STATUS_TEXT.get(k, k)}" for k, n in counts.items())
    out.print(f"{summary} in {report.seconds:.1f}s" + (f"; {len(report.uploaded)} file(s) uploaded" if report.uploaded else ""),
              markup=False)
