"""`nexusify demo`: the whole journey on the sample monorepo with an embedded local index."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from nexusify import extras
from nexusify.commands import Context
from nexusify.commands.verify import render_report
from nexusify.demo.report import TUNABLE, DemoEvent, DemoOptions, DemoReport
from nexusify.demo.run import run_demo
from nexusify.demo.sample import DEFAULT_WORKDIR
from nexusify.errors import UsageError

INDEX_SETTINGS = ("nexus_url", "repository", "index_repository", "repository_url", "index_url", "username")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser  # listed under Arguments and Options (help: nexusify.ui.help)
    g.add_argument("--workdir", metavar="DIR", default=DEFAULT_WORKDIR,
                   help=f"working folder the sample is copied to (default: ./{DEFAULT_WORKDIR}); "
                        "re-running replaces it only if an earlier demo made it")
    g.add_argument("--no-engine", dest="engine", action="store_false",
                   help="skip the container steps (image build, blue-green deploy) even when an engine is reachable")


def render_event(ctx: Context, event: DemoEvent) -> None:
    if event.kind == "start":
        ctx.out.info(f"[{event.step}] {event.message} ...")
    elif event.kind == "done":
        ctx.out.info(f"[{event.step}] done in {event.seconds or 0:.1f}s")
    elif event.kind == "skip":
        ctx.out.info(f"[{event.step}] {event.message}")
    elif event.kind == "fail":
        ctx.out.info(f"[{event.step}] FAILED after {event.seconds or 0:.1f}s: {event.message}")
    elif ctx.out.verbose or event.step != "publish":
        ctx.out.info(f"[{event.step}]   {event.message}")


def render(ctx: Context, report: DemoReport) -> None:
    out = ctx.out
    rows = []
    for s in report.steps:
        status = {"ok": "ok", "skipped": "skipped", "failed": "FAILED"}.get(s.status, s.status)
        time_text = f"{s.seconds:.1f}s" if s.status != "skipped" else "-"
        rows.append([s.title, time_text, status, s.summary])
    verdict = "finished" if report.ok else "stopped"
    out.table(f"nexusify demo {verdict} in {report.seconds:.1f}s", ["step", "time", "result", "what it did"], rows)
    if report.verify is not None:
        render_report(report.verify, ctx)
    if report.index_url:
        state = "stopped" if report.index_stopped else "STILL RUNNING"
        out.print(f"Local index: {report.index_url} ({state}); its packages are in "
                  f"{_show(report.workdir / '.demo' / 'index')}", markup=False)
    for note in report.notes:
        out.print(note[:1].upper() + note[1:], markup=False)
    if report.engine_skipped:
        out.print(f"Container steps skipped: {report.engine_skipped}", markup=False)
    diff = report.workdir / ".demo" / "rewrite.diff"
    out.print(f"Working folder: {_show(report.workdir)} (the sample monorepo after the rewrite"
              + (f"; every edit is in {_show(diff)})" if diff.is_file() else ")"), markup=False)
    if report.environment:
        out.print(f"Deploy history: nexusify history --root {_show(report.workdir)} -e {report.environment}",
                  markup=False)
    if report.ok:
        out.print("Next, on your own monorepo: `nexusify init`, then `nexusify audit`, `nexusify publish`, "
                  "`nexusify rewrite`, `nexusify deploy` (see the README)", markup=False)


def _show(path: Path) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return rel if not rel.startswith("..") else str(path)


def run(args: argparse.Namespace, ctx: Context) -> int:
    workdir = Path(args.workdir)
    if not workdir.is_absolute():
        workdir = Path(os.getcwd()) / workdir
    flags = {k for k, v in ctx.settings.sources.items() if v == "flag"}
    refused = sorted(flags & set(INDEX_SETTINGS))
    if refused:
        names = ", ".join("--" + k.replace("_", "-") for k in refused)
        raise UsageError(f"{names}: the demo publishes to its own local index",
                         hint="to use your own index, run audit/publish/rewrite on your monorepo (see `nexusify init`)")
    missing = extras.missing("demo")
    if missing:  # before anything is copied or started
        extras.require("demo", missing[0])
    options = DemoOptions(workdir=workdir, engine=args.engine, env=ctx.env,
                          settings={k: getattr(ctx.settings, k) for k in TUNABLE if k in flags})
    report = run_demo(options, on_event=lambda e: render_event(ctx, e))  # cli.main turns SIGTERM into an interrupt
    if ctx.json:
        failed = [f"{s.name}: {s.summary}" for s in report.steps if s.status == "failed"]
        return ctx.emit(report.to_dict(), 0 if report.ok else (report.error.exit_code if report.error else 1),
                        errors=[*failed, *([report.error] if report.error else [])], warnings=[])
    render(ctx, report)
    if report.error is not None:
        raise report.error
    return 0 if report.ok else 1
