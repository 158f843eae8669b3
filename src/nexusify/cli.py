# PYTHON_ARGCOMPLETE_OK
"""The ``nexusify`` command line: parse argv, resolve settings, call one verb, map errors.

This is the one place where errors become messages and exit codes:
0 success, 1 the operation found problems or failed, 2 usage or configuration errors.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

from rich.markup import escape

from nexusify import __version__
from nexusify.commands import Context
from nexusify.config import SCHEMA, resolve_settings
from nexusify.errors import NexusifyError, UsageError
from nexusify.ui.interrupts import interrupts_raise
from nexusify.ui.output import Output

VERBS: dict[str, str] = {
    "audit": "find shared packages, the services that path-depend on them, and the publish order",
    "publish": "build every shared package and upload it to Nexus in dependency order",
    "rewrite": "make services depend on shared packages by version from Nexus (pyproject + Dockerfile)",
    "affected": "list changed shared packages, their dependents, and the consumers that use any of them",
    "release": "bump changed shared packages and their dependents, re-pin consumers, changelog, publish",
    "deploy": "secrets, migrations, image build and push, blue-green switch, history",
    "rollback": "switch an environment back to a kept version, with health check, no rebuild",
    "history": "show the deployment history of an environment",
    "init": "write a commented nexusify.toml for this monorepo",
    "demo": "run the whole journey on the sample monorepo with an embedded local index",
    "completion": "print a shell completion script for bash, zsh or fish",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message, hint=f"see `{self.prog} --help`")


def _command_module(verb: str) -> ModuleType:
    return importlib.import_module(f"nexusify.commands.{verb}")


def _add_common(parser: argparse.ArgumentParser) -> None:
    """Options accepted before or after the verb (defaults suppressed so both places work)."""
    s = argparse.SUPPRESS
    g = parser.add_argument_group("common options")
    g.add_argument("--root", metavar="DIR", default=s, help="monorepo root (default: the current directory)")
    g.add_argument("--json", action="store_true", default=s, help="print machine-readable JSON")
    g.add_argument("-v", "--verbose", action="count", default=s, help="more detail (repeatable)")
    g.add_argument("--debug", action="store_true", default=s, help="show tracebacks for errors")
    n = parser.add_argument_group("index settings (flag > environment > config file > default)")
    for opt in SCHEMA:
        if not opt.flag:
            continue
        kwargs: dict[str, Any] = {"default": s, "dest": opt.attr, "help": opt.help + (f" [env {opt.env}]" if opt.env else "")}
        if opt.kind == "choice":
            kwargs["choices"] = opt.choices
        if opt.kind == "int":
            kwargs["type"] = int
        n.add_argument(opt.flag, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="nexusify",
        description="Publish a monorepo's shared packages to Nexus, make services depend on them by "
        "version, and deploy the services blue-green.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit codes: 0 success, 1 problems found or operation failed, 2 usage or configuration error",
    )
    parser.add_argument("--version", action="version", version=f"nexusify {__version__}")
    _add_common(parser)
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    for verb, help_text in VERBS.items():
        p = sub.add_parser(verb, help=help_text, description=help_text)
        _add_common(p)
        _command_module(verb).add_arguments(p)
    return parser


def _settings_flags(ns: argparse.Namespace) -> dict[str, Any]:
    return {opt.attr: getattr(ns, opt.attr, None) for opt in SCHEMA if opt.flag}


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Run nexusify; returns the exit code (tests call this directly)."""
    env = dict(os.environ) if env is None else dict(env)
    args_list = list(sys.argv[1:] if argv is None else argv)
    json_mode = "--json" in args_list
    debug = "--debug" in args_list
    out = Output(json_mode=json_mode, env=env)
    # Ctrl-C, and SIGTERM (a CI job cancelled, `kill`) once, end every command through its cleanup:
    # containers, servers and half-done switches it started are undone before it exits 130
    with interrupts_raise(signal.SIGINT), interrupts_raise(signal.SIGTERM, once=True):
        return _run(args_list, env, out, debug)


def _run(args_list: list[str], env: dict[str, str], out: Output, debug: bool) -> int:
    try:
        parser = build_parser()
        if "_ARGCOMPLETE" in env:
            import argcomplete

            argcomplete.autocomplete(parser)
        ns = parser.parse_args(args_list)
        if not ns.verb:
            parser.print_help()
            return 2
        verbose = getattr(ns, "verbose", 0) or 0
        out = Output(json_mode=getattr(ns, "json", False), verbose=verbose, env=env)
        logging.basicConfig(level=logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING,
                            format="%(levelname)s %(name)s: %(message)s")
        root = Path(getattr(ns, "root", None) or env.get("NEXUSIFY_ROOT") or os.getcwd())
        if not root.is_dir():
            raise UsageError(f"--root {root}: no such folder", hint="give the monorepo's top folder")
        settings = resolve_settings(root, _settings_flags(ns), env)
        ctx = Context(root=root.resolve(), settings=settings, env=env, out=out)
        return int(_command_module(ns.verb).run(ns, ctx))
    except NexusifyError as exc:
        if debug:
            traceback.print_exc()
        if out.json_mode:
            out.json(exc.to_dict())
        else:
            out.err.print(f"[bold red]error:[/bold red] {escape(str(exc))}", markup=True, highlight=False)
        return exc.exit_code
    except KeyboardInterrupt:
        out.err.print("interrupted")
        return 130
    except Exception as exc:  # an unexpected failure: say so plainly, never a silent 0
        if debug:
            traceback.print_exc()
        out.err.print(f"error: internal error: {type(exc).__name__}: {out.redact(str(exc))}\n"
                      "  hint: re-run with --debug for the traceback, and report it", markup=False)
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
